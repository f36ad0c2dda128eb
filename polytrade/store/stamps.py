"""What a run was made of: hashes of its specs and data, the code version, the seed.

Two runs with equal stamps ran the same specs on the same data with the same code, so their
results must be equal; a difference in results with equal stamps is a bug worth chasing.
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import subprocess
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Final

import numpy as np

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

_PACKAGE: Final = Path(__file__).resolve().parents[1]
_GIT_TIMEOUT_S: Final = 5.0


@dataclass(frozen=True)
class RunStamps:
    """The identity of a run's inputs.

    Attributes:
        spec_hash: `spec_hash` of the profile and every spec it references.
        data_fingerprint: `data_fingerprint` of the bars (and funding) the run read.
        code_version: `code_version()` when the run was made.
        seed: the synthetic market's seed, None for recorded data.
    """

    spec_hash: str
    data_fingerprint: str
    code_version: str
    seed: int | None = None


def data_fingerprint(columns: Mapping[str, np.ndarray]) -> str:
    """A sha256 of data columns: their names, dtypes, shapes and bytes, in order of name.

    Values are hashed little-endian and C-contiguous, so the fingerprint does not depend on
    the machine or on how the arrays were sliced.

    Returns:
        `sha256:` and 64 hex digits.

    Raises:
        TypeError: a column holds Python objects (they have no stable bytes).
    """
    digest = hashlib.sha256(b"polytrade-data-v1\0")
    for name in sorted(columns):
        array = np.asarray(columns[name])
        if array.dtype.hasobject:
            raise TypeError(f"column {name} holds Python objects; it has no stable bytes")
        little = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<"))
        for part in (name.encode(), little.dtype.str.encode(), repr(little.shape).encode()):
            digest.update(_framed(part))
        digest.update(little.nbytes.to_bytes(8, "little"))
        digest.update(little.reshape(-1).view(np.uint8).data)
    return f"sha256:{digest.hexdigest()}"


def spec_hash(files: Iterable[tuple[str, bytes]]) -> str:
    """A sha256 of spec files given as (name, content) pairs, in the order given.

    Each name and content is length-prefixed, so moving bytes from one file to the next
    changes the hash.

    Returns:
        `sha256:` and 64 hex digits.
    """
    digest = hashlib.sha256(b"polytrade-specs-v1\0")
    for name, content in files:
        digest.update(_framed(name.encode()))
        digest.update(_framed(bytes(content)))
    return f"sha256:{digest.hexdigest()}"


@functools.cache
def code_version() -> str:
    """The Polytrade version, with `git describe --always --dirty` when run from a checkout.

    For example `0.1.0 git 07c4c32-dirty`, or `0.1.0` for an installed package. Never fails:
    without git or outside a repository the git part is left out. Computed once per process.
    """
    try:
        package = version("polytrade")
    except PackageNotFoundError:
        package = "0+unknown"
    described = _git_describe(_PACKAGE.parent)
    return f"{package} git {described}" if described else package


def _git_describe(root: Path) -> str | None:
    """`git describe --always --dirty` of `root` when it is the top of a work tree, else None."""
    git = shutil.which("git")
    if git is None or not (root / ".git").exists():
        return None
    # Optional locks off: describing must not take the index lock from someone else's git.
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0"}
    try:
        described = subprocess.run(  # noqa: S603 - fixed arguments, git found on PATH
            [git, "-C", str(root), "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            timeout=_GIT_TIMEOUT_S,
            check=False,
            env=env,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    text = described.stdout.strip()
    return text if described.returncode == 0 and text else None


def _framed(data: bytes) -> bytes:
    """`data` after its length (8 bytes, little-endian), so fields cannot run into each other."""
    return len(data).to_bytes(8, "little") + data
