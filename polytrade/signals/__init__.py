"""Streaming operators as numba state updates; batch runs are compiled loops over the same update.

Layer 1: imports only polytrade.core (and no pydantic).

numba's disk cache checks only the source file of the function it caches, not the functions
it calls in other files, so a changed operator could be served stale from the cache. Unless
NUMBA_CACHE_DIR is set, Polytrade points numba at a cache folder named by a fingerprint of
every operator source file (`cache_root()/numba/<fingerprint>`): changed code, fresh cache.
It is done when this package is imported, before any of its modules imports numba.
"""

from __future__ import annotations

import hashlib
import os
import sys
from functools import cache
from pathlib import Path

CACHE_ENV = "POLYTRADE_CACHE_DIR"
"""Environment variable naming Polytrade's cache folder (default ~/.cache/polytrade)."""


def cache_root() -> Path:
    """Polytrade's cache folder: $POLYTRADE_CACHE_DIR, or ~/.cache/polytrade."""
    root = os.environ.get(CACHE_ENV)
    return Path(root) if root else Path.home() / ".cache" / "polytrade"


@cache
def code_fingerprint() -> str:
    """sha256 over the source of every module compiled code may import (about 1 ms).

    numba's own cache index already records numba's version.
    """
    digest = hashlib.sha256()
    package = Path(__file__).resolve().parents[1]
    for path in sorted([*package.glob("signals/**/*.py"), *package.glob("compile/**/*")]):
        if path.is_file() and path.suffix in {".py", ".j2"}:
            digest.update(path.relative_to(package).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def point_numba_cache() -> None:
    """Set NUMBA_CACHE_DIR to the fingerprinted folder, unless set or numba is already loaded."""
    if "NUMBA_CACHE_DIR" not in os.environ and "numba" not in sys.modules:
        os.environ["NUMBA_CACHE_DIR"] = str(cache_root() / "numba" / code_fingerprint()[:16])


point_numba_cache()
