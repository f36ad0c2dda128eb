"""Circuit breakers: automatic halts for a wild market, a failing venue, stale data, a bad clock.

Pure and deterministic: no clock is read (every call carries `now_ms`, epoch milliseconds), no
I/O, and the whole state is a JSON-able dict (`state` / `restore`) that the node persists, so a
restart resumes with every breaker exactly as it stood.

The four breakers of `RiskBudget.spec.circuit_breakers` (`docs/risk-budget.md`):

- volatility: a symbol's mark moves more than `max_move` (a fraction) within `window_seconds`.
  Stops new entries on that symbol (exits pass) until `cooldown_seconds` after the last move
  that tripped it.
- error_rate: `max_errors` or more failed venue requests within `window_seconds`. Stops every
  new order until `cooldown_seconds` after the last error that tripped it.
- stale_data: the newest market data (of any symbol) is more than `max_age_seconds` old, or
  none has arrived yet. Stops every new order until fresh data arrives.
- clock_skew: the measured local-vs-venue clock offset is larger than `max_skew_ms` either way.
  Stops every new order until a later measurement is within bounds.

Windows are rolling and half-open: a window of W ms at time t holds the events stamped in
(t - W, t]. "More than" is strict (a move of exactly `max_move`, an age of exactly
`max_age_seconds`, a skew of exactly `max_skew_ms` pass); the error count trips AT
`max_errors`. The move of a new mark is its largest relative distance from any mark of the same
symbol in the window: max((p - low) / low, (high - p) / high).

A breaker blocks through `blocks(now_ms)`, a pure function of the state and the time, so a
cooldown ends on time whether or not anybody looks. Every transition is reported once as a
`BreakerEvent` (a trip, or the clear that ends it) for alerts and the audit log; a trip that
lapses on time is reported cleared by the first call after it lapsed (`poll` on a timer
does it promptly). A breaker that trips again while tripped extends its end silently.

Cancels never pass through here: a breaker stops orders that add risk, never the ones that
take it away (the kill switch's orders bypass every breaker; see `polytrade.risk.live`).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Literal, TypeAlias

if TYPE_CHECKING:
    from polytrade.spec.models.risk_budget import CircuitBreakers as BreakerSettings

AuditRecord: TypeAlias = dict[str, Any]
"""A row of the node's append-only audit log: ``{"at", "action", "code", "detail"}``, JSON-able."""

BreakerName = Literal["volatility", "error_rate", "stale_data", "clock_skew"]
BlockScope = Literal["orders", "entries"]
"""What a block stops: every new order, or only orders that open or grow exposure."""

VOLATILITY_BREAKER: Final = "volatility_breaker"
ERROR_RATE_BREAKER: Final = "error_rate_breaker"
STALE_DATA: Final = "stale_data"
CLOCK_SKEW: Final = "clock_skew"
BREAKER_CODES: Final[dict[BreakerName, str]] = {
    "volatility": VOLATILITY_BREAKER,
    "error_rate": ERROR_RATE_BREAKER,
    "stale_data": STALE_DATA,
    "clock_skew": CLOCK_SKEW,
}
"""The denial code each breaker gives an order it stops."""

_STATE_VERSION: Final = 1


def audit_record(at_ms: int, action: str, code: str, detail: dict[str, Any]) -> AuditRecord:
    """An audit row: when (`at_ms`, epoch ms), what was done (`action`), why (`code`), facts."""
    return {"at": at_ms, "action": action, "code": code, "detail": detail}


@dataclass(frozen=True, slots=True)
class Block:
    """Something that stops orders now, and the code an order it stops is denied with.

    Attributes:
        code: the denial code (`BREAKER_CODES`, or ``loss_streak_cooldown``).
        scope: "orders" stops every new order; "entries" only orders that open or grow
            exposure (exits pass).
        symbol: the one symbol it applies to; None: every symbol.
        until_ms: when it ends by itself (epoch ms); None: when its condition clears.
        detail: facts for the denial's audit row (JSON-able).
    """

    code: str
    scope: BlockScope
    symbol: str | None = None
    until_ms: int | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    def applies_to(self, symbol: str, *, reducing: bool) -> bool:
        """Whether this block stops an order on `symbol` (`reducing`: it only shrinks risk)."""
        if self.symbol is not None and self.symbol != symbol:
            return False
        return self.scope == "orders" or not reducing


@dataclass(frozen=True, slots=True)
class BreakerEvent:
    """A breaker tripped (`tripped`) or cleared: for alerts and the audit log.

    Attributes:
        name: which breaker.
        tripped: True when it tripped, False when it cleared.
        at_ms: when this event happened (epoch ms).
        since_ms: when the trip began (equals `at_ms` on a trip).
        until_ms: when the trip ends by itself; None: when its condition clears.
        symbol: the symbol a volatility trip is about; None for the others.
        detail: the measurement behind it (JSON-able).
    """

    name: BreakerName
    tripped: bool
    at_ms: int
    since_ms: int
    until_ms: int | None
    symbol: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def code(self) -> str:
        """The breaker's denial code."""
        return BREAKER_CODES[self.name]

    def record(self) -> AuditRecord:
        """The audit row: action ``trip`` or ``clear``, the breaker's code, the facts."""
        detail: dict[str, Any] = {
            "breaker": self.name,
            "since_ms": self.since_ms,
            "until_ms": self.until_ms,
            **self.detail,
        }
        if self.symbol is not None:
            detail["symbol"] = self.symbol
        return audit_record(self.at_ms, "trip" if self.tripped else "clear", self.code, detail)


@dataclass(slots=True)
class _Trip:
    name: BreakerName
    since_ms: int
    until_ms: int | None
    symbol: str | None
    detail: dict[str, Any]

    def active(self, now_ms: int) -> bool:
        return self.until_ms is None or now_ms < self.until_ms

    def event(self, at_ms: int, *, tripped: bool) -> BreakerEvent:
        return BreakerEvent(
            self.name, tripped, at_ms, self.since_ms, self.until_ms, self.symbol, dict(self.detail)
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "since_ms": self.since_ms,
            "until_ms": self.until_ms,
            "symbol": self.symbol,
            "detail": self.detail,
        }


@dataclass(slots=True)
class _Marks:
    """One symbol's marks in the volatility window, as two monotonic queues (max and min)."""

    last_ms: int
    highs: deque[tuple[int, float]] = field(default_factory=deque)
    lows: deque[tuple[int, float]] = field(default_factory=deque)


class CircuitBreakers:
    """The four breakers of a risk budget (see the module docstring for what each does).

    Args:
        settings: `RiskBudgetSpec.circuit_breakers`.
    """

    def __init__(self, settings: BreakerSettings) -> None:
        self.settings = settings
        self._volatility_window_ms = settings.volatility.window_seconds * 1000
        self._volatility_cooldown_ms = settings.volatility.cooldown_seconds * 1000
        self._error_window_ms = settings.error_rate.window_seconds * 1000
        self._error_cooldown_ms = settings.error_rate.cooldown_seconds * 1000
        self._max_age_ms = settings.stale_data.max_age_seconds * 1000
        self._marks: dict[str, _Marks] = {}
        self._errors: deque[int] = deque()
        self._last_data_ms: int | None = None
        self._trips: dict[str, _Trip] = {}

    # ------------------------------------------------------------ inputs

    def on_market_data(
        self, now_ms: int, symbol: str, data_ts_ms: int, mark_price: float | None = None
    ) -> list[BreakerEvent]:
        """Market data arrived: `data_ts_ms` is its venue time; `mark_price` feeds volatility.

        Fresh data clears a stale-data trip. The volatility window is measured in the data's
        own time (a mark stamped before the symbol's newest one counts as that newest time).

        Raises:
            ValueError: `mark_price` is given but not a finite positive number (the facade
                `LiveRisk` screens inputs first and reports them as bad_input instead).
        """
        if mark_price is not None and not (math.isfinite(mark_price) and mark_price > 0.0):
            raise ValueError(f"a mark price must be finite and positive; it was {mark_price}")
        events = self._expire(now_ms)
        if self._last_data_ms is None or data_ts_ms > self._last_data_ms:
            self._last_data_ms = data_ts_ms
        stale = self._trips.get("stale_data")
        if stale is not None and not self._is_stale(now_ms):
            del self._trips["stale_data"]
            events.append(stale.event(now_ms, tripped=False))
        if mark_price is not None:
            events.extend(self._on_mark(now_ms, symbol, data_ts_ms, mark_price))
        return events

    def on_error(self, now_ms: int, what: str = "") -> list[BreakerEvent]:
        """A venue request failed (a reject, a timeout, a 5xx, a 429); `what` names it."""
        events = self._expire(now_ms)
        self._errors.append(now_ms)
        while self._errors and self._errors[0] <= now_ms - self._error_window_ms:
            self._errors.popleft()
        count = sum(1 for t in self._errors if t > now_ms - self._error_window_ms)
        limit = self.settings.error_rate.max_errors
        if count >= limit:
            detail = {
                "errors": count,
                "max_errors": limit,
                "window_ms": self._error_window_ms,
                "last_error": what,
            }
            events.extend(
                self._trip("error_rate", now_ms, now_ms + self._error_cooldown_ms, None, detail)
            )
        return events

    def on_clock_offset(self, now_ms: int, offset_ms: float) -> list[BreakerEvent]:
        """A measurement of venue time minus local time, ms: too large a skew halts trading.

        Raises:
            ValueError: `offset_ms` is not finite.
        """
        if not math.isfinite(offset_ms):
            raise ValueError(f"a clock offset must be finite; it was {offset_ms}")
        events = self._expire(now_ms)
        limit = self.settings.clock_skew.max_skew_ms
        trip = self._trips.get("clock_skew")
        if abs(offset_ms) > limit:
            detail = {"offset_ms": offset_ms, "max_skew_ms": limit}
            if trip is None:
                events.extend(self._trip("clock_skew", now_ms, None, None, detail))
            else:
                trip.detail = detail
        elif trip is not None:
            del self._trips["clock_skew"]
            events.append(trip.event(now_ms, tripped=False))
        return events

    def poll(self, now_ms: int) -> list[BreakerEvent]:
        """Transitions that time alone makes: cooldowns that lapsed, data that went stale."""
        events = self._expire(now_ms)
        if self._is_stale(now_ms) and "stale_data" not in self._trips:
            age = None if self._last_data_ms is None else now_ms - self._last_data_ms
            detail = {
                "last_data_ms": self._last_data_ms,
                "age_ms": age,
                "max_age_ms": self._max_age_ms,
            }
            events.extend(self._trip("stale_data", now_ms, None, None, detail))
        return events

    # ------------------------------------------------------------ queries

    def blocks(self, now_ms: int) -> list[Block]:
        """What the breakers stop at `now_ms` (pure: nothing changes).

        In a fixed order: clock skew, error rate, stale data, then volatility by symbol.
        """
        out: list[Block] = []
        skew = self._trips.get("clock_skew")
        if skew is not None:
            out.append(Block(CLOCK_SKEW, "orders", None, None, dict(skew.detail)))
        errors = self._trips.get("error_rate")
        if errors is not None and errors.active(now_ms):
            out.append(
                Block(ERROR_RATE_BREAKER, "orders", None, errors.until_ms, dict(errors.detail))
            )
        if self._is_stale(now_ms):
            age = None if self._last_data_ms is None else now_ms - self._last_data_ms
            detail = {
                "last_data_ms": self._last_data_ms,
                "age_ms": age,
                "max_age_ms": self._max_age_ms,
            }
            out.append(Block(STALE_DATA, "orders", None, None, detail))
        for key in sorted(self._trips):
            trip = self._trips[key]
            if trip.name == "volatility" and trip.active(now_ms):
                out.append(
                    Block(
                        VOLATILITY_BREAKER, "entries", trip.symbol, trip.until_ms, dict(trip.detail)
                    )
                )
        return out

    def tripped(self) -> list[BreakerEvent]:
        """The trips announced and not yet cleared, as their trip events (oldest first)."""
        trips = sorted(self._trips.values(), key=lambda trip: (trip.since_ms, trip.name))
        return [trip.event(trip.since_ms, tripped=True) for trip in trips]

    # ------------------------------------------------------------ persistence

    def state(self) -> dict[str, Any]:
        """Everything the breakers remember, as a JSON-able dict (see `restore`)."""
        return {
            "version": _STATE_VERSION,
            "marks": {
                symbol: {
                    "last_ms": marks.last_ms,
                    "highs": [list(item) for item in marks.highs],
                    "lows": [list(item) for item in marks.lows],
                }
                for symbol, marks in sorted(self._marks.items())
            },
            "errors": list(self._errors),
            "last_data_ms": self._last_data_ms,
            "trips": {key: trip.as_dict() for key, trip in sorted(self._trips.items())},
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Resume from what `state` returned (after a restart): every breaker as it stood.

        Raises:
            ValueError: the dict is not one `state` wrote (the caller must then refuse to
                trade: see `polytrade.risk.live.RiskStateError`).
        """
        check_version(state, "breaker")
        try:
            marks = {
                str(symbol): _Marks(
                    int(item["last_ms"]),
                    deque((int(t), float(p)) for t, p in item["highs"]),
                    deque((int(t), float(p)) for t, p in item["lows"]),
                )
                for symbol, item in state["marks"].items()
            }
            errors = deque(int(t) for t in state["errors"])
            last = state["last_data_ms"]
            trips = {
                str(key): _Trip(
                    _breaker_name(item["name"]),
                    int(item["since_ms"]),
                    None if item["until_ms"] is None else int(item["until_ms"]),
                    None if item["symbol"] is None else str(item["symbol"]),
                    dict(item["detail"]),
                )
                for key, item in state["trips"].items()
            }
        except (KeyError, TypeError, AttributeError) as error:
            raise ValueError(f"the breaker state is incomplete or malformed ({error!r})") from error
        self._marks = marks
        self._errors = errors
        self._last_data_ms = None if last is None else int(last)
        self._trips = trips

    # ------------------------------------------------------------ internals

    def _is_stale(self, now_ms: int) -> bool:
        return self._last_data_ms is None or now_ms - self._last_data_ms > self._max_age_ms

    def _on_mark(
        self, now_ms: int, symbol: str, data_ts_ms: int, price: float
    ) -> list[BreakerEvent]:
        marks = self._marks.get(symbol)
        if marks is None:
            marks = self._marks[symbol] = _Marks(data_ts_ms)
        ts = max(data_ts_ms, marks.last_ms)
        marks.last_ms = ts
        horizon = ts - self._volatility_window_ms
        while marks.highs and marks.highs[0][0] <= horizon:
            marks.highs.popleft()
        while marks.lows and marks.lows[0][0] <= horizon:
            marks.lows.popleft()
        move = 0.0
        if marks.highs:
            high, low = marks.highs[0][1], marks.lows[0][1]
            move = max((price - low) / low, (high - price) / high)
        # Monotonic queues: the front of `highs` is the window's highest mark, of `lows` its
        # lowest; a mark that a newer, more extreme one dominates can never be either again.
        while marks.highs and marks.highs[-1][1] <= price:
            marks.highs.pop()
        marks.highs.append((ts, price))
        while marks.lows and marks.lows[-1][1] >= price:
            marks.lows.pop()
        marks.lows.append((ts, price))
        limit = self.settings.volatility.max_move
        if move > limit:
            detail = {
                "move": move,
                "max_move": limit,
                "price": price,
                "window_ms": self._volatility_window_ms,
            }
            until = now_ms + self._volatility_cooldown_ms
            return self._trip("volatility", now_ms, until, symbol, detail)
        return []

    def _trip(
        self,
        name: BreakerName,
        now_ms: int,
        until_ms: int | None,
        symbol: str | None,
        detail: dict[str, Any],
    ) -> list[BreakerEvent]:
        key = name if symbol is None else f"{name}:{symbol}"
        trip = self._trips.get(key)
        if trip is not None:
            # Tripped again while tripped: the end moves out, no new event.
            if trip.until_ms is not None and until_ms is not None:
                trip.until_ms = max(trip.until_ms, until_ms)
            trip.detail = detail
            return []
        trip = self._trips[key] = _Trip(name, now_ms, until_ms, symbol, detail)
        return [trip.event(now_ms, tripped=True)]

    def _expire(self, now_ms: int) -> list[BreakerEvent]:
        events = []
        for key in sorted(self._trips):
            trip = self._trips[key]
            if not trip.active(now_ms):
                del self._trips[key]
                events.append(trip.event(now_ms, tripped=False))
        return events


def _breaker_name(value: object) -> BreakerName:
    for name in BREAKER_CODES:
        if value == name:
            return name
    raise ValueError(f"unknown breaker {value!r}")


def check_version(state: object, what: str, version: int = _STATE_VERSION) -> None:
    """Raise ValueError unless `state` is a dict that `state()` of this version wrote."""
    found = state.get("version") if isinstance(state, dict) else None
    if found != version:
        raise ValueError(f"the {what} state is not one this version wrote (version {found!r})")
