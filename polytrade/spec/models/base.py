"""The base of every spec model, and the small constrained types the specs share."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, Strict, StringConstraints


class SpecModel(BaseModel):
    """Frozen, strict, closed: unknown keys are errors and `"12"` is not an int."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, validate_default=True)


T = TypeVar("T")


def _list_as_tuple(value: Any) -> Any:
    # Lists in YAML become tuples, so that a frozen model is frozen all the way down.
    return tuple(value) if isinstance(value, list) else value


Items = Annotated[tuple[T, ...], BeforeValidator(_list_as_tuple)]
"""A YAML list, held as a tuple."""


def _number_as_text(value: Any) -> Any:
    # `stop_loss: 150` is a valid expression; YAML hands it over as a number.
    if isinstance(value, int | float) and not isinstance(value, bool):
        return repr(value)
    return value


Identifier = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,47}$"),
    Field(description="A lower-case name: a letter, then letters, digits or '_' (at most 48)."),
]
Name = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$"),
    Field(description="A lower-case name of letters, digits, '-' and '_' (at most 63)."),
]
Expression = Annotated[
    str,
    BeforeValidator(_number_as_text),
    StringConstraints(min_length=1, max_length=2000),
    Field(
        description=(
            "An expression over bar fields, params, named signals and operators, e.g. "
            "`ema(close, fast) > ema(close@4h, 50)`."
        )
    ),
]
RefPath = Annotated[
    str,
    StringConstraints(pattern=r"^[^\x00]+\.ya?ml$"),
    Field(description="Path of another spec file, relative to the file that names it."),
]
EnvVarName = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Z_][A-Z0-9_]*$"),
    Field(description="The NAME of an environment variable (never its value)."),
]
Symbol = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Z0-9]+_USDT_PERP$"),
    Field(description="A Poloniex USDT-margined perpetual, e.g. BTC_USDT_PERP."),
]
Date = Annotated[
    dt.date,
    Strict(strict=False),
    Field(description="A UTC calendar date, YYYY-MM-DD."),
]
