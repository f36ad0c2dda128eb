"""The operator table: every operator the expression language knows, by name."""

from __future__ import annotations

from types import MappingProxyType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping

    from polytrade.signals.operator import Operator

_OPERATORS: dict[str, Operator] = {}


def register(*operators: Operator) -> None:
    """Add operators to the table; a name may be registered once."""
    for op in operators:
        if op.name in _OPERATORS:
            raise ValueError(f"operator {op.name!r} is registered twice")
        _OPERATORS[op.name] = op


def operators() -> Mapping[str, Operator]:
    """Every operator by name (read-only), after loading all operator families."""
    from polytrade.signals import ops  # noqa: F401, PLC0415 - registers the families on import

    return MappingProxyType(_OPERATORS)
