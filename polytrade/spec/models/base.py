"""The base of every spec model, and the small constrained types the specs share."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator, Mapping
from typing import Annotated, Any, Final, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    Strict,
    StringConstraints,
)


class SpecModel(BaseModel):
    """Frozen, strict, closed: unknown keys are errors and `"12"` is not an int."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, validate_default=True)


T = TypeVar("T")


def _list_as_tuple(value: Any) -> Any:
    # Lists in YAML become tuples, so that a frozen model is frozen all the way down.
    return tuple(value) if isinstance(value, list) else value


Items = Annotated[tuple[T, ...], BeforeValidator(_list_as_tuple)]
"""A YAML list, held as a tuple."""

K = TypeVar("K")
V = TypeVar("V")


class FrozenMap(Mapping[K, V]):
    """A read-only, hashable mapping: what a YAML mapping becomes inside a frozen model."""

    __slots__ = ("_data",)

    def __init__(self, data: Mapping[K, V]) -> None:
        self._data = dict(data)

    def __getitem__(self, key: K) -> V:
        return self._data[key]

    def __iter__(self) -> Iterator[K]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __hash__(self) -> int:
        return hash(frozenset(self._data.items()))

    def __eq__(self, other: object) -> bool:
        return dict(self._data) == other if isinstance(other, Mapping) else NotImplemented

    def __repr__(self) -> str:
        return f"FrozenMap({self._data!r})"


def _freeze(value: Mapping[Any, Any]) -> FrozenMap[Any, Any]:
    return FrozenMap(value)


def _thaw(value: Mapping[Any, Any]) -> dict[Any, Any]:
    return dict(value)


Map = Annotated[Mapping[K, V], AfterValidator(_freeze), PlainSerializer(_thaw)]
"""A YAML mapping, held as a read-only FrozenMap (dumped as a dict)."""


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
_DATE_TEXT: Final = re.compile(r"^\d{4}-\d{2}-\d{2}")


def _date_text_only(value: Any) -> Any:
    # Lax dates would read numbers (and numeric text) as Unix timestamps: `start: 0` is 1970.
    if isinstance(value, dt.date) or (isinstance(value, str) and _DATE_TEXT.match(value)):
        return value
    raise ValueError("Input should be a date written YYYY-MM-DD")


Date = Annotated[
    dt.date,
    BeforeValidator(_date_text_only),
    Strict(strict=False),
    Field(description="A UTC calendar date, YYYY-MM-DD."),
]
