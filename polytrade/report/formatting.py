"""Numbers as a trader reads them: units, thousands separators, signs, UTC times.

Every function takes a plain number and returns text; a missing value (None or NaN) reads
"—" and an infinite one "∞". The templates use them as Jinja filters (see `FILTERS`).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Callable

MISSING: Final = "\u2014"
"""An em dash: the text of a missing value."""
MINUS: Final = "\u2212"
"""The typographic minus sign, as wide as the plus sign in tabular figures."""
_DAY_MS: Final = 86_400_000


def _special(value: float | None) -> str | None:
    if value is None or math.isnan(value):
        return MISSING
    if math.isinf(value):
        return "∞" if value > 0 else f"{MINUS}∞"
    return None


def _minus(text: str) -> str:
    """The text with typographic minus signs."""
    return text.replace("-", MINUS)


def number(value: float | None, digits: int = 2, *, signed: bool = False) -> str:
    """`value` with thousands separators and `digits` decimals ("12,345.68")."""
    special = _special(value)
    if special is not None:
        return special
    assert value is not None  # noqa: S101 - _special caught None
    return _minus(f"{value:+,.{digits}f}" if signed else f"{value:,.{digits}f}")


def percent(value: float | None, digits: int = 2, *, signed: bool = False) -> str:
    """A fraction as a percentage (0.1234 -> "12.34%")."""
    special = _special(value)
    if special is not None:
        return special
    assert value is not None  # noqa: S101 - _special caught None
    return number(value * 100.0, digits, signed=signed) + "%"


def usdt(value: float | None, digits: int = 2, *, signed: bool = False) -> str:
    """An amount in USDT with its unit ("1,234.56 USDT")."""
    text = number(value, digits, signed=signed)
    return text if text == MISSING else f"{text} USDT"


def count(value: float | None) -> str:
    """A whole count with thousands separators ("70,080")."""
    return number(value, 0)


def days(value: float | None) -> str:
    """A duration in days ("412 days", "3.5 days", "1 day")."""
    special = _special(value)
    if special is not None:
        return special
    assert value is not None  # noqa: S101 - _special caught None
    text = f"{value:,.0f}" if value == round(value) else f"{value:,.1f}"
    return f"{text} day" if text == "1" else f"{text} days"


def duration(ms: float | None) -> str:
    """A span of milliseconds in the two largest units ("3d 4h", "2h 30m", "15m")."""
    special = _special(ms)
    if special is not None:
        return special
    assert ms is not None  # noqa: S101 - _special caught None
    minutes = round(ms / 60_000)
    d, rest = divmod(minutes, 1440)
    h, m = divmod(rest, 60)
    if d:
        return f"{d}d {h}h" if h else f"{d}d"
    if h:
        return f"{h}h {m}m" if m else f"{h}h"
    return f"{m}m"


def utc(ts_ms: float | None, *, minutes: bool = True) -> str:
    """A UTC epoch-millisecond time as "2024-01-31 23:45" (or "2024-01-31")."""
    special = _special(ts_ms)
    if special is not None:
        return special
    assert ts_ms is not None  # noqa: S101 - _special caught None
    moment = datetime.fromtimestamp(ts_ms / 1000.0, tz=UTC)
    return moment.strftime("%Y-%m-%d %H:%M" if minutes else "%Y-%m-%d")


def utc_date(ts_ms: float | None) -> str:
    """A UTC epoch-millisecond time as its date ("2024-01-31")."""
    return utc(ts_ms, minutes=False)


def tone(value: float | None) -> str:
    """The CSS class of a signed number: "pos", "neg", or "" for zero and missing values."""
    if value is None or math.isnan(value) or value == 0:
        return ""
    return "pos" if value > 0 else "neg"


FILTERS: Final[dict[str, Callable[..., str]]] = {
    "number": number,
    "percent": percent,
    "usdt": usdt,
    "count": count,
    "days": days,
    "duration": duration,
    "utc": utc,
    "utc_date": utc_date,
    "tone": tone,
}
"""The filters every Polytrade template may use, by name."""
