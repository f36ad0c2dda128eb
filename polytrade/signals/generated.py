"""Generated Python modules kept as files, so that numba can cache their compiled code."""

from __future__ import annotations

import importlib.util
import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path
    from types import ModuleType


def load_generated(folder: Path, name: str, source: str) -> ModuleType:
    """Write `source` to `folder/name.py` (atomically, only when it changed) and import it.

    The module is registered in sys.modules under `name`: numba's disk cache finds a cached
    function's module by name when it loads it. A module already imported is reused.
    """
    if name in sys.modules:
        return sys.modules[name]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.py"
    if not path.exists() or path.read_text(encoding="utf-8") != source:
        temporary = path.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_text(source, encoding="utf-8")
        temporary.replace(path)
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:  # pragma: no cover - a .py file always has one
        raise ImportError(f"cannot load the generated module {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
