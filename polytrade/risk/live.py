"""The live risk engine: a check before every order, the budget's limits after every mark.

The live node asks `LiveRisk.check` before it sends an order and feeds it every equity mark,
closed trade, market datum, venue error and clock measurement. It is pure and deterministic:
no clock is read (every call carries `now_ms`, epoch milliseconds), nothing is sent or stored,
and the whole state is one JSON-able dict (`state` / `restore`) that the node persists, so a
restart resumes with every limit, window and trip exactly as it stood: the same inputs after a
restart give the same decisions as without one. Every decision and transition comes back as
audit rows (`AuditRecord`: ``{"at", "action", "code", "detail"}``) for the node's append-only
audit log.

**Same vocabulary as the backtest.** The kernel (`polytrade.engine.kernel`) applies the same
RiskBudget per bar; the live engine keeps its actions and precedence:

- `TradingMode` RUNNING < REDUCING < HALTED < FLATTENING is the kernel's 0 < ACT_REDUCE_ONLY <
  ACT_HALT < ACT_FLATTEN: the strongest mode in force acts (a halt is not lifted by a
  reduce-only). HALTED denies every new order; REDUCING and FLATTENING deny every order that
  opens or grows exposure; FLATTENING asks the node to close everything (the kill-switch
  procedure) and becomes HALTED once the node confirms flat (`confirm_flat`), as the kernel
  turns ACT_FLATTEN into ACT_HALT once flat.
- Denial codes reuse the kernel's `RISK_CODES` names where they mean the same: ``halted``,
  ``reduce_only`` (the mode allows only orders that shrink exposure), ``below_min_size``,
  ``loss_streak_cooldown``. Where the kernel clips an order (``clipped_order_notional``,
  ``clipped_position_notional``, ``clipped_leverage``) the live engine **denies** it with
  ``max_order_notional``, ``max_position_notional``, ``max_leverage``: an order is never
  resized here, the node decides what to send instead (a smaller order, or nothing). The
  kernel's ``bad_price`` (sizing at a non-positive price or equity) is ``bad_input`` here.
- Post-trade limits are the kernel's `_mark_to_market`, threshold for threshold:
  drawdown trips when ``equity <= peak * (1 - max_drawdown.limit)``, the peak starting at the
  starting equity (`capital_usdt` unless given); daily loss trips when ``equity <= day_start *
  (1 - max_daily_loss.limit)``, where the day's starting equity is the equity of the last mark
  before the UTC day began (the starting equity before the first day). Both count unrealised
  PnL: `equity` is wallet balance plus unrealised PnL. A daily-loss mode is lifted when the
  next UTC day begins; a drawdown mode stays until an operator resumes (`resume`, which also
  restarts the peak from the current equity). A losing trade (fees and funding included, as
  the kernel counts it; a trade at exactly zero breaks the streak) lengthens the streak;
  `loss_streak.losses` in a row start a cooldown of `cooldown_seconds` from that trade's close,
  during which entries are denied and exits pass.

  Differences from the kernel, all of timing only: the kernel stamps a bar's mark with the
  bar's OPEN time, so the mark at a bar's close belongs to the day the bar opened in; a node
  that wants the same day boundaries passes bar-close marks with the bar's open time. The
  kernel starts a cooldown at the close of the bar in which the losing trade ended; live
  starts it at the trade's own close time (up to one bar earlier). When a flattened limit
  stays breached the kernel re-enters ACT_FLATTEN at each mark and drops back to ACT_HALT at
  the decision (flat, nothing happens); live stays HALTED (the node is not asked to flatten
  an account it has already confirmed flat). The kernel applies a budget per sleeve, with
  capital and notional limits scaled by the sleeve's allocation; a LiveRisk enforces the
  budget it is given (for a sleeve, give it the scaled budget and its `starting_equity`).

**Pre-trade checks** (`PreTradeRisk.check`), in this order; the first that fails denies:

1. ``bad_input``: a size, price, mark, contract size or equity that is NaN, infinite, zero or
   negative (a position or other-symbol notional that is not finite; a limit order without a
   price, a market order with one; an unknown side or kind). The engine keeps no trace of a
   bad order and goes on working.
2. Reduce-only orders: on the same side as the position, or with no position, is
   ``increases_position_while_reducing``; larger than the position is
   ``reduce_only_exceeds_position`` (a reduce-only order never flips the position).
3. Kill-switch orders (`OrderCheck.kill_switch`) stop here and are approved: they must be
   reduce-only and pass 1 and 2 (a zero or negative equity is allowed: a broken account
   must still be able to close), and they bypass the mode, breakers, cooldown, sizes, prices,
   notionals, leverage and rates (they still count against the rate windows).
4. The mode: ``halted``; ``reduce_only`` (REDUCING or FLATTENING, for an order that opens or
   grows exposure).
5. Blocks in force (`RiskState.blocks`): ``clock_skew``, ``error_rate_breaker``,
   ``stale_data`` stop every order; ``volatility_breaker`` (on its symbol) and
   ``loss_streak_cooldown`` stop orders that open or grow exposure.
6. ``stale_data``: the order's own mark is older than `stale_data.max_age_seconds`. This is
   the market order's price check: it has no price of its own, so its mark must be fresh.
7. ``below_min_size`` / ``above_max_size``: the venue's size limits, when given.
8. Limit orders: ``price_band`` when the price is more than `price_band_bps` from the mark;
   ``venue_price_limit`` when a buy is above the venue's `buyLmt` or a sell below `sellLmt`.
9. Orders that open or grow exposure (the "opening part": what the order adds beyond the
   current position; for a flip, the whole new side; the closing part only reduces risk, as in
   the kernel): ``max_order_notional`` when the opening part, at the order's price (the mark for
   a market order), is worth more than `max_order_notional_usdt`; ``max_position_notional``
   when the position after the fill, at the mark, is worth more than
   `max_position_notional_usdt`; ``max_leverage`` when the gross notional after the fill (this
   symbol at the mark plus `OrderCheck.other_notional`) is more than `max_leverage` times the
   equity. Orders that only shrink the position pass these three.
10. ``order_rate``: another order now would put more than the budget's rate in a rolling
    window (see `budget_rate_windows`) or more than a venue quota (`RateWindow`s given to the
    engine) in its window. Every approved order counts; denied ones do not.

Every limit is inclusive: a value at its limit passes (within a billionth of it, relative:
binary noise is not a breach), one beyond it denies.
Cancels are never denied (they only take risk away); `count_cancel` counts them against the
rate windows, as the budget's `order_rate` covers "new, amend and cancel". An amend is checked
as the new limit order it becomes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Final, TypeGuard

from polytrade.errors import ExitCode, PolytradeError
from polytrade.risk.breakers import (
    CLOCK_SKEW,
    ERROR_RATE_BREAKER,
    STALE_DATA,
    VOLATILITY_BREAKER,
    AuditRecord,
    Block,
    CircuitBreakers,
    audit_record,
    check_version,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from polytrade.core.orders import OrderKind, Side
    from polytrade.spec.models.risk_budget import LimitAction, OrderRate, RiskBudgetSpec

__all__ = [
    "BAD_INPUT",
    "CLOCK_SKEW",
    "DENY_CODES",
    "ERROR_RATE_BREAKER",
    "STALE_DATA",
    "VOLATILITY_BREAKER",
    "AuditRecord",
    "Block",
    "CircuitBreakers",
    "LiveRisk",
    "OrderCheck",
    "PostTradeRisk",
    "PreTradeRisk",
    "RateWindow",
    "RiskDecision",
    "RiskState",
    "RiskStateError",
    "TradingMode",
    "budget_rate_windows",
]

DAY_MS: Final = 86_400_000
_FLAT: Final = 1e-12
"""A position within this many contracts of zero is flat (the kernel's rule)."""
_STATE_VERSION: Final = 1
_NOISE: Final = 1e-9
"""Pre-trade limits: a value within this fraction of its limit is at it (binary noise, such as
25 x 0.001 x 40,000 coming out a hair above 1,000, is not a breach)."""

# ---------------------------------------------------------------- codes
APPROVED: Final = "approved"
BAD_INPUT: Final = "bad_input"
HALTED: Final = "halted"
REDUCE_ONLY: Final = "reduce_only"
LOSS_STREAK_COOLDOWN: Final = "loss_streak_cooldown"
BELOW_MIN_SIZE: Final = "below_min_size"
ABOVE_MAX_SIZE: Final = "above_max_size"
INCREASES_POSITION_WHILE_REDUCING: Final = "increases_position_while_reducing"
REDUCE_ONLY_EXCEEDS_POSITION: Final = "reduce_only_exceeds_position"
PRICE_BAND: Final = "price_band"
VENUE_PRICE_LIMIT: Final = "venue_price_limit"
MAX_ORDER_NOTIONAL: Final = "max_order_notional"
MAX_POSITION_NOTIONAL: Final = "max_position_notional"
MAX_LEVERAGE: Final = "max_leverage"
ORDER_RATE: Final = "order_rate"
DENY_CODES: Final = (
    BAD_INPUT,
    INCREASES_POSITION_WHILE_REDUCING,
    REDUCE_ONLY_EXCEEDS_POSITION,
    HALTED,
    REDUCE_ONLY,
    CLOCK_SKEW,
    ERROR_RATE_BREAKER,
    STALE_DATA,
    VOLATILITY_BREAKER,
    LOSS_STREAK_COOLDOWN,
    BELOW_MIN_SIZE,
    ABOVE_MAX_SIZE,
    PRICE_BAND,
    VENUE_PRICE_LIMIT,
    MAX_ORDER_NOTIONAL,
    MAX_POSITION_NOTIONAL,
    MAX_LEVERAGE,
    ORDER_RATE,
)
"""Every code a pre-trade check can deny with, in the order the checks run (breakers and the
cooldown in the order `LiveRisk.risk_state` lists them)."""

MAX_DRAWDOWN: Final = "max_drawdown"
MAX_DAILY_LOSS: Final = "max_daily_loss"
KILL_SWITCH: Final = "kill_switch"


class RiskStateError(PolytradeError):
    """A persisted risk state could not be read back; the node must not trade on a guess."""

    exit_code = ExitCode.RISK_HALT


class TradingMode(StrEnum):
    """What the risk engine lets through, by precedence (the stronger mode acts)."""

    RUNNING = "running"
    """Every check applies; nothing more is stopped."""
    REDUCING = "reducing"
    """Only orders that shrink exposure (the kernel's ACT_REDUCE_ONLY)."""
    HALTED = "halted"
    """No new orders at all; cancels and kill-switch orders pass (ACT_HALT)."""
    FLATTENING = "flattening"
    """Close everything (kill-switch procedure), then HALTED once flat (ACT_FLATTEN)."""

    @property
    def rank(self) -> int:
        """Precedence: 0 (running) to 3 (flattening), the kernel's ACT_* values."""
        return _RANK[self]


_RANK: Final = {
    TradingMode.RUNNING: 0,
    TradingMode.REDUCING: 1,
    TradingMode.HALTED: 2,
    TradingMode.FLATTENING: 3,
}
MODE_OF_ACTION: Final[dict[str, TradingMode]] = {
    "reduce_only": TradingMode.REDUCING,
    "halt": TradingMode.HALTED,
    "flatten": TradingMode.FLATTENING,
}
"""The mode a limit's `action` (RiskBudget `LimitAction`) puts the engine in."""
_ACTION_OF_MODE: Final = {mode: action for action, mode in MODE_OF_ACTION.items()}


def _strongest(modes: Sequence[tuple[TradingMode, str]]) -> tuple[TradingMode, str]:
    """The strongest mode and what set it (the first of equals wins)."""
    best = (TradingMode.RUNNING, "")
    for mode, reason in modes:
        if mode.rank > best[0].rank:
            best = (mode, reason)
    return best


# ---------------------------------------------------------------- inputs and outputs


@dataclass(frozen=True, slots=True)
class OrderCheck:
    """One order the node is about to send, with the facts the checks need.

    Nothing is validated on construction: a NaN or negative value is what `check` is for (it
    denies it with ``bad_input``).

    Attributes:
        symbol: the venue's symbol, e.g. ``BTC_USDT_PERP``.
        side: "buy" or "sell".
        contracts: order size in contracts (positive).
        kind: "market" or "limit".
        limit_price: the limit price, USDT; None for a market order.
        position: the current position on `symbol`, signed contracts (long positive).
        mark_price: the symbol's mark price, USDT.
        mark_ms: when that mark was observed (epoch ms).
        contract_size: coins per contract (0.001 for BTC_USDT_PERP).
        equity: the deployment's equity, USDT: wallet balance plus unrealised PnL.
        now_ms: the time of the check (epoch ms).
        reduce_only: the order may only shrink the position (sent with ``reduceOnly``).
        kill_switch: an order of the kill-switch procedure (must be reduce-only; bypasses
            the mode, breakers and limits, see the module docstring).
        other_notional: gross notional of the positions on other symbols, USDT at their
            marks (for the leverage check; 0 when this is the only symbol).
        buy_limit: the venue's highest allowed buy price (`buyLmt`), None when unknown.
        sell_limit: the venue's lowest allowed sell price (`sellLmt`), None when unknown.
        min_contracts: the venue's smallest order size (`minSz`), contracts; 0: none.
        max_contracts: the venue's largest order size (`limitMaxQty`), contracts; None: none.
        client_order_id: the order's client id, for the audit row.
    """

    symbol: str
    side: Side
    contracts: float
    kind: OrderKind
    limit_price: float | None
    position: float
    mark_price: float
    mark_ms: int
    contract_size: float
    equity: float
    now_ms: int
    reduce_only: bool = False
    kill_switch: bool = False
    other_notional: float = 0.0
    buy_limit: float | None = None
    sell_limit: float | None = None
    min_contracts: float = 0.0
    max_contracts: float | None = None
    client_order_id: str = ""

    @property
    def signed_contracts(self) -> float:
        """Contracts with the sign of the side (buy positive)."""
        return self.contracts if self.side == "buy" else -self.contracts


@dataclass(frozen=True, slots=True)
class RiskState:
    """What stops orders at one moment: the mode, what set it, and the blocks in force.

    `LiveRisk.risk_state(now_ms)` builds it from the post-trade limits, the kill switch, the
    breakers and the cooldown; `PreTradeRisk` used alone takes it from the caller.
    """

    mode: TradingMode = TradingMode.RUNNING
    reason: str = ""
    """What set the mode: ``max_drawdown``, ``max_daily_loss`` or ``kill_switch``."""
    blocks: tuple[Block, ...] = ()


@dataclass(frozen=True, slots=True)
class RiskDecision:
    """The verdict on one order.

    Attributes:
        approved: send it (True) or not.
        code: ``approved``, or the denial code (`DENY_CODES`).
        message: what was wrong and what would pass, in full words.
        detail: the figures behind the verdict (JSON-able).
        audit: the rows to append to the audit log, in order: transitions found while
            checking (a breaker that tripped or cleared, a new day), then the decision.
    """

    approved: bool
    code: str
    message: str
    detail: dict[str, Any]
    audit: tuple[AuditRecord, ...] = ()


@dataclass(frozen=True, slots=True)
class RateWindow:
    """At most `limit` orders in any rolling window of `window_ms` milliseconds.

    `source` names where the limit comes from (``budget`` or the venue endpoint's name).
    """

    limit: int
    window_ms: int
    source: str = "venue"


def budget_rate_windows(rate: OrderRate) -> tuple[RateWindow, RateWindow]:
    """The budget's `order_rate` as rolling windows.

    `max_per_second` r: with r >= 1, at most floor(r) orders in any 1,000 ms (a fraction of an
    order is not an order); with r < 1, one order per 1,000 / r ms (ceil). `max_per_minute`:
    at most that many in any 60,000 ms.
    """
    per_second = rate.max_per_second
    if per_second >= 1.0:
        fast = RateWindow(math.floor(per_second), 1_000, "budget")
    else:
        fast = RateWindow(1, math.ceil(1_000 / per_second), "budget")
    return fast, RateWindow(rate.max_per_minute, 60_000, "budget")


@dataclass(frozen=True, slots=True)
class _Denial:
    code: str
    message: str
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Exposure:
    """What an order does to its symbol's position."""

    after: float
    """The position once the order fills, signed contracts."""
    opening: float
    """Contracts the order opens or adds (0: it only shrinks the position)."""

    @property
    def reducing(self) -> bool:
        return self.opening == 0.0

    @classmethod
    def of(cls, order: OrderCheck) -> _Exposure:
        position = order.position
        after = position + order.signed_contracts
        if abs(after) < _FLAT:
            return cls(0.0, 0.0)
        if position == 0.0 or math.copysign(1.0, after) != math.copysign(1.0, position):
            return cls(after, abs(after))  # opened, or flipped: the whole new side opens
        return cls(after, max(0.0, abs(after) - abs(position)))


def _finite(value: object) -> TypeGuard[float]:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _positive(value: object) -> TypeGuard[float]:
    return _finite(value) and value > 0.0


def _time(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _over(value: float, limit: float) -> bool:
    """`value` is beyond the upper `limit` by more than noise."""
    return value > limit * (1.0 + _NOISE)


def _under(value: float, limit: float) -> bool:
    """`value` is below the lower `limit` by more than noise."""
    return value < limit * (1.0 - _NOISE)


def _usdt(value: float) -> str:
    return f"{value:,.2f} USDT"


# ---------------------------------------------------------------- pre-trade


class PreTradeRisk:
    """The checks before every order (see the module docstring for the list and order).

    Holds one piece of state: the times of the orders it approved (and cancels counted) within
    the longest rate window, so the rolling limits hold across calls and restarts.

    Args:
        budget: the deployment's RiskBudget spec.
        venue_quotas: the venue's own limits for these requests (e.g. ``RateWindow(50, 1000,
            "place")``); the engine stays within them as well as within the budget's.
    """

    def __init__(self, budget: RiskBudgetSpec, venue_quotas: Sequence[RateWindow] = ()) -> None:
        self.budget = budget
        self.windows: tuple[RateWindow, ...] = (*budget_rate_windows(budget.order_rate),)
        self.windows += tuple(venue_quotas)
        bad = [window for window in self.windows if window.limit < 1 or window.window_ms < 1]
        if bad:
            raise ValueError(f"rate windows need a limit and a length of at least 1; {bad} do not")
        self._span_ms = max(window.window_ms for window in self.windows)
        self._max_age_ms = budget.circuit_breakers.stale_data.max_age_seconds * 1000
        self._admitted: list[int] = []

    def check(self, order: OrderCheck, state: RiskState | None = None) -> RiskDecision:
        """Approve or deny `order` under `state` (default: running, nothing blocked).

        An approved order is counted against the rate windows at `order.now_ms`: call this
        once per order actually about to be sent.
        """
        state = state if state is not None else RiskState()
        exposure: _Exposure | None = None
        denial = _bad_input(order) or _reduce_only_rules(order)
        if denial is None:
            exposure = _Exposure.of(order)
            if not order.kill_switch:
                denial = (
                    self._gate(order, state, exposure)
                    or _size_and_price(order, self.budget)
                    or _exposure_limits(order, exposure, self.budget)
                    or self._rate(order.now_ms)
                )
        if denial is not None:
            return _decision(order, approved=False, denial=denial)
        self._prune(order.now_ms)
        self._admitted.append(order.now_ms)
        assert exposure is not None  # noqa: S101 - set whenever the input is valid
        detail = _exposure_detail(order, exposure)
        what = "kill-switch order" if order.kill_switch else "order"
        return _decision(order, approved=True, denial=_Denial(APPROVED, f"{what} approved", detail))

    def count_cancel(self, now_ms: int) -> None:
        """A cancel is about to be sent: it is never denied, but it uses the rate windows."""
        self._prune(now_ms)
        self._admitted.append(now_ms)

    def rate_usage(self, now_ms: int) -> list[dict[str, Any]]:
        """Per rate window: its limit, its length and how many requests it holds at `now_ms`."""
        return [
            {
                "source": window.source,
                "limit": window.limit,
                "window_ms": window.window_ms,
                "count": sum(1 for t in self._admitted if t > now_ms - window.window_ms),
            }
            for window in self.windows
        ]

    def state(self) -> dict[str, Any]:
        """The request times inside the longest window, as a JSON-able dict."""
        return {"version": _STATE_VERSION, "admitted_ms": list(self._admitted)}

    def restore(self, state: dict[str, Any]) -> None:
        """Resume from what `state` returned.

        Raises:
            ValueError: the dict is not one `state` wrote.
        """
        check_version(state, "pre-trade", _STATE_VERSION)
        try:
            admitted = [int(t) for t in state["admitted_ms"]]
        except (KeyError, TypeError) as error:
            raise ValueError(f"the pre-trade state is malformed ({error!r})") from error
        self._admitted = admitted

    def _prune(self, now_ms: int) -> None:
        # Times after now_ms (a clock that stepped back) stay: they still count.
        self._admitted = [t for t in self._admitted if t > now_ms - self._span_ms]

    def _gate(self, order: OrderCheck, state: RiskState, exposure: _Exposure) -> _Denial | None:
        why = f" ({state.reason})" if state.reason else ""
        if state.mode is TradingMode.HALTED:
            return _Denial(
                HALTED,
                f"trading is halted{why}: no new orders until it is lifted",
                {"mode": state.mode.value, "reason": state.reason},
            )
        if state.mode.rank >= TradingMode.REDUCING.rank and not exposure.reducing:
            return _Denial(
                REDUCE_ONLY,
                f"trading is {state.mode.value}{why}: only orders that shrink the position pass, "
                f"and this one would open {exposure.opening:g} contracts",
                {"mode": state.mode.value, "reason": state.reason},
            )
        for block in state.blocks:
            if block.applies_to(order.symbol, reducing=exposure.reducing):
                until = "" if block.until_ms is None else f" until {block.until_ms} ms"
                stops = "every new order" if block.scope == "orders" else "new entries"
                return _Denial(
                    block.code,
                    f"{block.code} stops {stops}{until}",
                    {"until_ms": block.until_ms, "symbol": block.symbol, **block.detail},
                )
        age = order.now_ms - order.mark_ms
        if age > self._max_age_ms:
            return _Denial(
                STALE_DATA,
                f"the order's mark is {age} ms old; marks older than {self._max_age_ms} ms "
                "(stale_data.max_age_seconds) are not traded on",
                {"mark_ms": order.mark_ms, "age_ms": age, "max_age_ms": self._max_age_ms},
            )
        return None

    def _rate(self, now_ms: int) -> _Denial | None:
        for window in self.windows:
            inside = sorted(t for t in self._admitted if t > now_ms - window.window_ms)
            if len(inside) >= window.limit:
                # The window has room again once enough of its oldest requests have left it.
                retry = inside[len(inside) - window.limit] + window.window_ms - now_ms
                return _Denial(
                    ORDER_RATE,
                    f"{len(inside)} requests in the last {window.window_ms} ms reach the "
                    f"{window.source} limit of {window.limit}; retry in {retry} ms",
                    {
                        "source": window.source,
                        "limit": window.limit,
                        "window_ms": window.window_ms,
                        "count": len(inside),
                        "retry_after_ms": retry,
                    },
                )
        return None


def _bad_input(order: OrderCheck) -> _Denial | None:  # noqa: C901, PLR0912 - one rule per field
    problems: list[str] = []
    if not isinstance(order.symbol, str) or not order.symbol:
        problems.append(f"symbol was {order.symbol!r}; name the venue's symbol")
    if order.side not in {"buy", "sell"}:
        problems.append(f"side was {order.side!r}; use 'buy' or 'sell'")
    if not _positive(order.contracts):
        problems.append(f"contracts was {order.contracts!r}; use a finite positive size")
    if order.kind == "limit":
        if not _positive(order.limit_price):
            problems.append(f"limit_price was {order.limit_price!r}; a limit needs a price > 0")
    elif order.kind == "market":
        if order.limit_price is not None:
            problems.append("a market order has no price; limit_price must be None")
    else:
        problems.append(f"kind was {order.kind!r}; use 'market' or 'limit'")
    if not _finite(order.position):
        problems.append(f"position was {order.position!r}; use finite signed contracts")
    if not _positive(order.mark_price):
        problems.append(f"mark_price was {order.mark_price!r}; use a finite positive price")
    if not _positive(order.contract_size):
        problems.append(f"contract_size was {order.contract_size!r}; use a finite size > 0")
    if not _finite(order.equity) or (not order.kill_switch and not order.equity > 0.0):
        problems.append(f"equity was {order.equity!r}; use the finite positive equity in USDT")
    if not _finite(order.other_notional) or order.other_notional < 0.0:
        problems.append(f"other_notional was {order.other_notional!r}; use a finite USDT >= 0")
    for name in ("buy_limit", "sell_limit", "max_contracts"):
        value = getattr(order, name)
        if value is not None and not _positive(value):
            problems.append(f"{name} was {value!r}; use a finite positive number or None")
    if not _finite(order.min_contracts) or order.min_contracts < 0.0:
        problems.append(f"min_contracts was {order.min_contracts!r}; use a finite size >= 0")
    if not _time(order.now_ms) or not _time(order.mark_ms):
        problems.append(f"now_ms and mark_ms were {order.now_ms!r}, {order.mark_ms!r}; use ints")
    if order.kill_switch and not order.reduce_only:
        problems.append("a kill-switch order must be reduce-only")
    if not problems:
        return None
    return _Denial(BAD_INPUT, "; ".join(problems), {"problems": problems})


def _reduce_only_rules(order: OrderCheck) -> _Denial | None:
    if not order.reduce_only:
        return None
    position = order.position
    if position == 0.0 or math.copysign(1.0, order.signed_contracts) == math.copysign(
        1.0, position
    ):
        return _Denial(
            INCREASES_POSITION_WHILE_REDUCING,
            f"a reduce-only {order.side} cannot shrink a position of {position:g} contracts",
            {"position": position},
        )
    if order.contracts - abs(position) > _FLAT:
        return _Denial(
            REDUCE_ONLY_EXCEEDS_POSITION,
            f"a reduce-only order of {order.contracts:g} contracts is larger than the position "
            f"of {abs(position):g}; send at most {abs(position):g} (it never flips the position)",
            {"position": position, "largest_contracts": abs(position)},
        )
    return None


def _size_and_price(order: OrderCheck, budget: RiskBudgetSpec) -> _Denial | None:
    if _under(order.contracts, order.min_contracts):
        return _Denial(
            BELOW_MIN_SIZE,
            f"{order.contracts:g} contracts is below the venue's minimum of "
            f"{order.min_contracts:g}",
            {"min_contracts": order.min_contracts},
        )
    if order.max_contracts is not None and _over(order.contracts, order.max_contracts):
        return _Denial(
            ABOVE_MAX_SIZE,
            f"{order.contracts:g} contracts is above the venue's maximum of "
            f"{order.max_contracts:g}; split the order",
            {"max_contracts": order.max_contracts},
        )
    price = order.limit_price
    if price is None:
        return None
    mark = order.mark_price
    distance_bps = abs(price - mark) / mark * 10_000.0
    if _over(distance_bps, budget.price_band_bps):
        return _Denial(
            PRICE_BAND,
            f"the limit price {price:g} is {distance_bps:.2f} bps from the mark {mark:g}; "
            f"price_band_bps allows {budget.price_band_bps:g}",
            {"price": price, "mark": mark, "distance_bps": distance_bps},
        )
    if order.side == "buy" and order.buy_limit is not None and _over(price, order.buy_limit):
        return _Denial(
            VENUE_PRICE_LIMIT,
            f"the buy price {price:g} is above the venue's limit (buyLmt) {order.buy_limit:g}",
            {"price": price, "buy_limit": order.buy_limit},
        )
    if order.side == "sell" and order.sell_limit is not None and _under(price, order.sell_limit):
        return _Denial(
            VENUE_PRICE_LIMIT,
            f"the sell price {price:g} is below the venue's limit (sellLmt) {order.sell_limit:g}",
            {"price": price, "sell_limit": order.sell_limit},
        )
    return None


def _exposure_limits(
    order: OrderCheck, exposure: _Exposure, budget: RiskBudgetSpec
) -> _Denial | None:
    if exposure.reducing:
        return None
    facts = _exposure_detail(order, exposure)
    opening = facts["order_notional"]
    if _over(opening, budget.max_order_notional_usdt):
        return _Denial(
            MAX_ORDER_NOTIONAL,
            f"the order would open {_usdt(opening)}; max_order_notional_usdt allows "
            f"{_usdt(budget.max_order_notional_usdt)} per order (send smaller orders)",
            facts,
        )
    position = facts["position_notional"]
    if _over(position, budget.max_position_notional_usdt):
        return _Denial(
            MAX_POSITION_NOTIONAL,
            f"the position would be worth {_usdt(position)} at the mark; "
            f"max_position_notional_usdt allows {_usdt(budget.max_position_notional_usdt)}",
            facts,
        )
    gross = facts["gross_notional"]
    if _over(gross, budget.max_leverage * order.equity):
        return _Denial(
            MAX_LEVERAGE,
            f"the gross notional would be {_usdt(gross)}, {gross / order.equity:.3f}x the "
            f"equity of {_usdt(order.equity)}; max_leverage allows {budget.max_leverage:g}x",
            facts,
        )
    return None


def _exposure_detail(order: OrderCheck, exposure: _Exposure) -> dict[str, Any]:
    price = order.limit_price if order.limit_price is not None else order.mark_price
    position_notional = abs(exposure.after) * order.contract_size * order.mark_price
    gross = order.other_notional + position_notional
    return {
        "position_after": exposure.after,
        "opening_contracts": exposure.opening,
        "order_notional": exposure.opening * order.contract_size * price,
        "position_notional": position_notional,
        "gross_notional": gross,
        "leverage": gross / order.equity if order.equity > 0.0 else None,
    }


def _decision(order: OrderCheck, *, approved: bool, denial: _Denial) -> RiskDecision:
    facts = {
        "symbol": order.symbol,
        "side": order.side,
        "kind": order.kind,
        "contracts": _json_number(order.contracts),
        "limit_price": _json_number(order.limit_price),
        "position": _json_number(order.position),
        "reduce_only": order.reduce_only,
        "kill_switch": order.kill_switch,
        "client_order_id": order.client_order_id,
        **{key: _json_number(value) for key, value in denial.detail.items()},
    }
    at = order.now_ms if _time(order.now_ms) else 0
    row = audit_record(
        at, "approve" if approved else "deny", denial.code, {**facts, "message": denial.message}
    )
    return RiskDecision(approved, denial.code, denial.message, facts, (row,))


def _json_number(value: object) -> object:
    """`value` itself unless it is a number JSON cannot hold (NaN, inf): then its repr."""
    if isinstance(value, int | float) and not _finite(value):
        return repr(value)
    return value


# ---------------------------------------------------------------- post-trade


class PostTradeRisk:
    """The limits that act on equity marks and closed trades (see the module docstring).

    Args:
        budget: the deployment's RiskBudget spec.
        starting_equity: equity at the start, USDT: the first peak and the first day's
            starting equity (default `capital_usdt`, as in the backtest).
    """

    def __init__(self, budget: RiskBudgetSpec, *, starting_equity: float | None = None) -> None:
        start = budget.capital_usdt if starting_equity is None else starting_equity
        if not _positive(start):
            raise ValueError(f"starting_equity was {start!r}; use a finite positive USDT amount")
        self.budget = budget
        self._equity = float(start)
        self._peak = float(start)
        self._day_start = float(start)
        self._next_day_ms: int | None = None
        self._drawdown_mode = TradingMode.RUNNING
        self._daily_mode = TradingMode.RUNNING
        self._streak = 0
        self._cooldown_until_ms: int | None = None

    @property
    def equity(self) -> float:
        """The last equity marked, USDT."""
        return self._equity

    @property
    def peak(self) -> float:
        """The highest equity marked (or the starting equity), USDT."""
        return self._peak

    @property
    def day_start(self) -> float:
        """The current UTC day's starting equity, USDT."""
        return self._day_start

    @property
    def streak(self) -> int:
        """Losing trades in a row since the last win or the last cooldown."""
        return self._streak

    @property
    def cooldown_until_ms(self) -> int | None:
        """When the loss-streak cooldown ends (epoch ms); None: none announced."""
        return self._cooldown_until_ms

    def modes(self, now_ms: int) -> tuple[TradingMode, TradingMode]:
        """The drawdown limit's mode and the daily-loss limit's mode at `now_ms`.

        The daily mode reads RUNNING from the first millisecond of the next UTC day, whether
        or not a mark has arrived since.
        """
        daily = self._daily_mode
        if self._next_day_ms is None or now_ms >= self._next_day_ms:
            daily = TradingMode.RUNNING
        return self._drawdown_mode, daily

    def mode(self, now_ms: int) -> tuple[TradingMode, str]:
        """The stronger of the two limits' modes, and which limit set it."""
        drawdown, daily = self.modes(now_ms)
        return _strongest([(drawdown, MAX_DRAWDOWN), (daily, MAX_DAILY_LOSS)])

    def blocks(self, now_ms: int) -> list[Block]:
        """The loss-streak cooldown, while it lasts (it stops entries, not exits)."""
        until = self._cooldown_until_ms
        if until is None or now_ms >= until:
            return []
        return [Block(LOSS_STREAK_COOLDOWN, "entries", None, until, {})]

    def on_equity(self, now_ms: int, equity: float) -> list[AuditRecord]:
        """A mark of the equity (wallet balance plus unrealised PnL, USDT) at `now_ms`.

        Raises:
            ValueError: `equity` is not finite (`LiveRisk` screens it first).
        """
        if not _finite(equity):
            raise ValueError(f"equity must be finite; it was {equity!r}")
        records = self.poll(now_ms)
        self._equity = float(equity)
        self._peak = max(self._peak, self._equity)
        drawdown, daily = self.budget.max_drawdown, self.budget.max_daily_loss
        if self._equity <= self._peak * (1.0 - drawdown.limit):
            records += self._trip(now_ms, MAX_DRAWDOWN, drawdown.action, self._peak)
        if self._equity <= self._day_start * (1.0 - daily.limit):
            records += self._trip(now_ms, MAX_DAILY_LOSS, daily.action, self._day_start)
        return records

    def on_trade_closed(self, now_ms: int, pnl: float) -> list[AuditRecord]:
        """A position closed (or flipped) at `now_ms` with `pnl` USDT, fees and funding in.

        Raises:
            ValueError: `pnl` is not finite.
        """
        if not _finite(pnl):
            raise ValueError(f"a trade's PnL must be finite; it was {pnl!r}")
        records = self.poll(now_ms)
        self._streak = self._streak + 1 if pnl < 0.0 else 0
        streak = self.budget.loss_streak
        if streak is not None and self._streak >= streak.losses:
            until = now_ms + streak.cooldown_seconds * 1000
            if self._cooldown_until_ms is not None:
                until = max(until, self._cooldown_until_ms)
            self._cooldown_until_ms = until
            detail = {"losses": self._streak, "last_pnl": pnl, "until_ms": until}
            self._streak = 0
            records.append(audit_record(now_ms, "cooldown", LOSS_STREAK_COOLDOWN, detail))
        return records

    def poll(self, now_ms: int) -> list[AuditRecord]:
        """Transitions that time alone makes: a new UTC day, the end of a cooldown."""
        records: list[AuditRecord] = []
        if self._next_day_ms is None or now_ms >= self._next_day_ms:
            # The day's loss counts from the last mark before it began; a daily-loss mode ends.
            day = now_ms // DAY_MS
            self._next_day_ms = (day + 1) * DAY_MS
            self._day_start = self._equity
            if self._daily_mode is not TradingMode.RUNNING:
                was = self._daily_mode
                self._daily_mode = TradingMode.RUNNING
                records.append(
                    audit_record(now_ms, "lift", MAX_DAILY_LOSS, {"was": was.value, "day": day})
                )
            detail = {"day": day, "day_start": self._day_start}
            records.append(audit_record(now_ms, "day_start", MAX_DAILY_LOSS, detail))
        until = self._cooldown_until_ms
        if until is not None and now_ms >= until:
            self._cooldown_until_ms = None
            records.append(audit_record(now_ms, "lift", LOSS_STREAK_COOLDOWN, {"until_ms": until}))
        return records

    def confirm_flat(self, now_ms: int) -> list[AuditRecord]:
        """The node verified every position closed: a FLATTENING limit becomes HALTED."""
        records = []
        if self._drawdown_mode is TradingMode.FLATTENING:
            self._drawdown_mode = TradingMode.HALTED
            records.append(audit_record(now_ms, "halt", MAX_DRAWDOWN, {"flat": True}))
        if self._daily_mode is TradingMode.FLATTENING:
            self._daily_mode = TradingMode.HALTED
            records.append(audit_record(now_ms, "halt", MAX_DAILY_LOSS, {"flat": True}))
        return records

    def resume(self, now_ms: int) -> list[AuditRecord]:
        """An operator lifts the drawdown limit's mode; the peak restarts at the last equity.

        A daily-loss mode is not lifted (it ends with the UTC day), nor is a cooldown.
        """
        was = self._drawdown_mode
        self._drawdown_mode = TradingMode.RUNNING
        self._peak = self._equity
        detail = {"was": was.value, "peak": self._peak}
        return [audit_record(now_ms, "lift", MAX_DRAWDOWN, detail)]

    def state(self) -> dict[str, Any]:
        """Everything the limits remember, as a JSON-able dict (see `restore`)."""
        return {
            "version": _STATE_VERSION,
            "equity": self._equity,
            "peak": self._peak,
            "day_start": self._day_start,
            "next_day_ms": self._next_day_ms,
            "drawdown_mode": self._drawdown_mode.value,
            "daily_mode": self._daily_mode.value,
            "streak": self._streak,
            "cooldown_until_ms": self._cooldown_until_ms,
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Resume from what `state` returned.

        Raises:
            ValueError: the dict is not one `state` wrote.
        """
        check_version(state, "post-trade", _STATE_VERSION)
        try:
            values = (
                float(state["equity"]),
                float(state["peak"]),
                float(state["day_start"]),
                _optional_int(state["next_day_ms"]),
                TradingMode(state["drawdown_mode"]),
                TradingMode(state["daily_mode"]),
                int(state["streak"]),
                _optional_int(state["cooldown_until_ms"]),
            )
        except (KeyError, TypeError) as error:
            raise ValueError(f"the post-trade state is malformed ({error!r})") from error
        if not all(_finite(value) for value in values[:3]):
            raise ValueError("the post-trade state holds a non-finite equity")
        (
            self._equity,
            self._peak,
            self._day_start,
            self._next_day_ms,
            self._drawdown_mode,
            self._daily_mode,
            self._streak,
            self._cooldown_until_ms,
        ) = values

    def _trip(
        self, now_ms: int, limit: str, action: LimitAction, reference: float
    ) -> list[AuditRecord]:
        mode = MODE_OF_ACTION[action]
        current = self._drawdown_mode if limit == MAX_DRAWDOWN else self._daily_mode
        if current is not TradingMode.RUNNING:
            # Already acting (a flatten confirmed flat stays HALTED; see the module docstring).
            return []
        if limit == MAX_DRAWDOWN:
            self._drawdown_mode = mode
        else:
            self._daily_mode = mode
        fraction = (
            self.budget.max_drawdown.limit
            if limit == MAX_DRAWDOWN
            else (self.budget.max_daily_loss.limit)
        )
        detail = {
            "equity": self._equity,
            "reference": reference,
            "loss": 1.0 - self._equity / reference,
            "limit": fraction,
            "mode": mode.value,
        }
        return [audit_record(now_ms, action, limit, detail)]


def _optional_int(value: object) -> int | None:
    if value is None:
        return None
    if not _time(value):
        raise TypeError(f"expected an int or None, found {value!r}")
    return value


# ---------------------------------------------------------------- the facade


class LiveRisk:
    """The node's risk engine: pre-trade checks, post-trade limits, breakers, kill switch.

    One instance per deployment. Every method that changes something returns the audit rows
    of what changed; `state` / `restore` carry all of it across a restart.

    Args:
        budget: the deployment's RiskBudget spec.
        venue_quotas: the venue's request quotas the order rate must also stay within.
        starting_equity: the first peak and day start, USDT (default `capital_usdt`).
    """

    def __init__(
        self,
        budget: RiskBudgetSpec,
        *,
        venue_quotas: Sequence[RateWindow] = (),
        starting_equity: float | None = None,
    ) -> None:
        self.budget = budget
        self.pre = PreTradeRisk(budget, venue_quotas)
        self.post = PostTradeRisk(budget, starting_equity=starting_equity)
        self.breakers = CircuitBreakers(budget.circuit_breakers)
        self._kill_mode = TradingMode.RUNNING
        self._kill_reason = ""

    # ------------------------------------------------------------ queries

    def mode(self, now_ms: int) -> TradingMode:
        """The trading mode at `now_ms` (the strongest of kill switch, drawdown, daily loss)."""
        return self.risk_state(now_ms).mode

    def risk_state(self, now_ms: int) -> RiskState:
        """What stops orders at `now_ms`: mode, its reason, breakers and cooldown (pure)."""
        limit_mode, limit_reason = self.post.mode(now_ms)
        mode, reason = _strongest([(self._kill_mode, KILL_SWITCH), (limit_mode, limit_reason)])
        blocks = (*self.breakers.blocks(now_ms), *self.post.blocks(now_ms))
        return RiskState(mode, reason, blocks)

    # ------------------------------------------------------------ decisions

    def check(self, order: OrderCheck) -> RiskDecision:
        """Approve or deny one order about to be sent (see the module docstring).

        Time-driven transitions due at `order.now_ms` are applied first and their audit rows
        come first in the decision's `audit`.
        """
        if not _time(order.now_ms):
            return self.pre.check(order)  # denied as bad_input; nothing else is touched
        records = self.poll(order.now_ms)
        decision = self.pre.check(order, self.risk_state(order.now_ms))
        return replace(decision, audit=(*records, *decision.audit))

    def count_cancel(self, now_ms: int) -> None:
        """A cancel is about to be sent: never denied, counted against the rate windows."""
        self.pre.count_cancel(now_ms)

    # ------------------------------------------------------------ inputs

    def poll(self, now_ms: int) -> list[AuditRecord]:
        """Apply what time alone changes (new day, cooldowns ending, data going stale).

        `check` does this itself; a node calls it on a timer so the audit log and alerts see
        such transitions when they happen, not at the next order.
        """
        return [event.record() for event in self.breakers.poll(now_ms)] + self.post.poll(now_ms)

    def on_equity(self, now_ms: int, equity: float) -> list[AuditRecord]:
        """An equity mark (wallet plus unrealised PnL, USDT): drawdown and daily loss act."""
        if not _time(now_ms) or not _finite(equity):
            return [_ignored(now_ms, "equity", equity)]
        return self.poll(now_ms) + self.post.on_equity(now_ms, equity)

    def on_trade_closed(self, now_ms: int, pnl: float) -> list[AuditRecord]:
        """A position closed (or flipped) with `pnl` USDT (fees, funding in): loss streak."""
        if not _time(now_ms) or not _finite(pnl):
            return [_ignored(now_ms, "pnl", pnl)]
        return self.poll(now_ms) + self.post.on_trade_closed(now_ms, pnl)

    def on_market_data(
        self, now_ms: int, symbol: str, data_ts_ms: int, mark_price: float | None = None
    ) -> list[AuditRecord]:
        """Market data stamped `data_ts_ms` arrived; a `mark_price` feeds volatility."""
        if not _time(now_ms) or not _time(data_ts_ms):
            return [_ignored(now_ms, "data_ts_ms", data_ts_ms)]
        if mark_price is not None and not _positive(mark_price):
            return [_ignored(now_ms, "mark_price", mark_price)]
        events = self.breakers.on_market_data(now_ms, symbol, data_ts_ms, mark_price)
        return [event.record() for event in events] + self.post.poll(now_ms)

    def on_error(self, now_ms: int, what: str = "") -> list[AuditRecord]:
        """A venue request failed (rejected, timed out, 5xx, 429): the error-rate breaker."""
        if not _time(now_ms):
            return [_ignored(now_ms, "now_ms", now_ms)]
        events = self.breakers.on_error(now_ms, what)
        return [event.record() for event in events] + self.post.poll(now_ms)

    def on_clock_offset(self, now_ms: int, offset_ms: float) -> list[AuditRecord]:
        """A measured venue-minus-local clock offset, ms: the clock-skew breaker."""
        if not _time(now_ms) or not _finite(offset_ms):
            return [_ignored(now_ms, "offset_ms", offset_ms)]
        events = self.breakers.on_clock_offset(now_ms, offset_ms)
        return [event.record() for event in events] + self.post.poll(now_ms)

    # ------------------------------------------------------------ kill switch

    def kill(self, now_ms: int, reason: str = "operator") -> list[AuditRecord]:
        """The kill switch fired (`polytrade kill`, a signal, a tripped flatten limit).

        The mode becomes FLATTENING when `kill_switch.flatten` is set (HALTED once the node
        confirms flat), else HALTED; it stays until `resume` (or, with
        `kill_switch.require_manual_resume` false, until a restart). The row's detail says
        what the node must do: cancel orders, flatten, verify flat within the given seconds.
        """
        policy = self.budget.kill_switch
        self._kill_mode = TradingMode.FLATTENING if policy.flatten else TradingMode.HALTED
        self._kill_reason = reason
        detail = {
            "reason": reason,
            "mode": self._kill_mode.value,
            "cancel_orders": policy.cancel_orders,
            "flatten": policy.flatten,
            "verify_flat_seconds": policy.verify_flat_seconds,
            "require_manual_resume": policy.require_manual_resume,
        }
        return [audit_record(now_ms, _ACTION_OF_MODE[self._kill_mode], KILL_SWITCH, detail)]

    def confirm_flat(self, now_ms: int) -> list[AuditRecord]:
        """The node verified (by a positions query) that nothing is open: flatten -> halted."""
        records = []
        if self._kill_mode is TradingMode.FLATTENING:
            self._kill_mode = TradingMode.HALTED
            records.append(audit_record(now_ms, "halt", KILL_SWITCH, {"flat": True}))
        return records + self.post.confirm_flat(now_ms)

    def resume(self, now_ms: int, operator: str) -> list[AuditRecord]:
        """`polytrade resume`: lifts the kill switch and the drawdown limit (peak restarts).

        A daily-loss mode still ends only with its UTC day; breakers and a cooldown end on
        their own.
        """
        detail = {"operator": operator, "was": self._kill_mode.value, "reason": self._kill_reason}
        self._kill_mode = TradingMode.RUNNING
        self._kill_reason = ""
        records = [audit_record(now_ms, "lift", KILL_SWITCH, detail)]
        return records + self.post.resume(now_ms)

    # ------------------------------------------------------------ persistence

    def state(self) -> dict[str, Any]:
        """The whole engine as a JSON-able dict; `restore` on a new instance resumes it."""
        return {
            "version": _STATE_VERSION,
            "kill": {"mode": self._kill_mode.value, "reason": self._kill_reason},
            "pre": self.pre.state(),
            "post": self.post.state(),
            "breakers": self.breakers.state(),
        }

    def restore(self, state: dict[str, Any], *, now_ms: int = 0) -> list[AuditRecord]:
        """Resume from what `state` returned (after a restart).

        With `kill_switch.require_manual_resume` false, a kill-switch halt does not survive
        the restart (the budget says only an operator's resume should need to lift it when
        it is true). Returns the audit rows of the restart (`now_ms` stamps them).

        Raises:
            RiskStateError: the dict is not one `state` wrote; the node must not trade.
        """
        try:
            check_version(state, "risk", _STATE_VERSION)
            kill_mode = TradingMode(state["kill"]["mode"])
            kill_reason = str(state["kill"]["reason"])
            self.pre.restore(state["pre"])
            self.post.restore(state["post"])
            self.breakers.restore(state["breakers"])
        except (KeyError, TypeError, ValueError) as error:
            raise RiskStateError(
                f"the persisted risk state cannot be read back ({error}); trading stays stopped "
                "until it is repaired or an operator starts from a fresh state"
            ) from error
        self._kill_mode, self._kill_reason = kill_mode, kill_reason
        records = [audit_record(now_ms, "restore", "restart", {"kill_mode": kill_mode.value})]
        if (
            kill_mode is not TradingMode.RUNNING
            and not self.budget.kill_switch.require_manual_resume
        ):
            self._kill_mode, self._kill_reason = TradingMode.RUNNING, ""
            detail = {"was": kill_mode.value, "require_manual_resume": False}
            records.append(audit_record(now_ms, "lift", KILL_SWITCH, detail))
        return records


def _ignored(now_ms: object, name: str, value: object) -> AuditRecord:
    at = now_ms if _time(now_ms) else 0
    detail = {"input": name, "value": repr(value), "now_ms": repr(now_ms)}
    return audit_record(at, "ignore", BAD_INPUT, detail)
