"""Argument and output kinds of operators (no numba here: the type checker imports this)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Arg(Enum):
    """What an operator argument accepts."""

    SERIES = "series"
    """A number series (a constant is broadcast to every bar)."""
    BOOL = "bool"
    """A boolean series (true/false constant or bool param broadcast)."""
    INT = "int"
    """A whole number >= 1 fixed for the run: an int literal or an int param (window lengths)."""
    FLOAT = "float"
    """A number fixed for the run: a literal, a param, or arithmetic of them (multipliers)."""

    @property
    def is_series(self) -> bool:
        """Whether the argument changes every bar."""
        return self in {Arg.SERIES, Arg.BOOL}


class Out(Enum):
    """What an operator returns every bar."""

    SERIES = "series"
    BOOL = "bool"


@dataclass(frozen=True)
class Signature:
    """What the type checker needs of an operator: its name, arguments and output kind."""

    name: str
    args: tuple[tuple[str, Arg], ...]
    output: Out

    @property
    def series_args(self) -> tuple[str, ...]:
        """Names of the per-bar arguments."""
        return tuple(name for name, kind in self.args if kind.is_series)

    @property
    def signature(self) -> str:
        """`ema(x, length)` as shown in docs and error messages."""
        return f"{self.name}({', '.join(name for name, _ in self.args)})"
