"""Every numeric field of every spec model states its unit in its description."""

from __future__ import annotations

import re
import types
from typing import Annotated, Any, Union, get_args, get_origin

import pytest
from pydantic import BaseModel

from polytrade.spec.models import KINDS

# Words that name a unit or say the number is dimensionless on purpose.
UNIT = re.compile(
    r"\b(bars?|seconds?|s|ms|minutes?|hours?|days?|years?|USDT|bps|basis points|fraction|"
    r"probability|count|x|ATRs?|standard deviations|sigma|dimensionless|t-stat|Sharpe|"
    r"ratio|coins?|contracts?|orders?|trades?|errors?|losses|individuals|generations|"
    r"folds|groups|levels|processes|index|seed|port)\b",
    re.IGNORECASE,
)


def _concrete(annotation: Any) -> list[Any]:
    origin = get_origin(annotation)
    if origin is Annotated:
        return _concrete(get_args(annotation)[0])
    if origin in {Union, types.UnionType}:
        return [c for arg in get_args(annotation) for c in _concrete(arg)]
    if origin in {tuple, list}:
        return [c for arg in get_args(annotation) if arg is not Ellipsis for c in _concrete(arg)]
    if origin is dict:
        return _concrete(get_args(annotation)[1])
    return [annotation]


def _numeric_fields() -> list[tuple[str, str]]:
    seen: set[type[BaseModel]] = set()
    out: list[tuple[str, str]] = []
    stack: list[type[BaseModel]] = list(KINDS.values())
    while stack:
        model = stack.pop()
        if model in seen:
            continue
        seen.add(model)
        for name, info in model.model_fields.items():
            kinds = _concrete(info.annotation)
            stack.extend(k for k in kinds if isinstance(k, type) and issubclass(k, BaseModel))
            numeric = {k for k in kinds if k in {int, float}}
            # Gene bounds and defaults are in the param's own `unit` field.
            if numeric and not model.__name__.endswith("Param"):
                out.append((f"{model.__name__}.{name}", info.description or ""))
    return sorted(out)


@pytest.mark.parametrize(("field", "description"), _numeric_fields())
def test_every_numeric_field_states_its_unit(field: str, description: str) -> None:
    assert UNIT.search(description), f"{field}: the description does not state a unit"
