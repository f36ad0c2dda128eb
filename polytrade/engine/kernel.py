"""The engine's per-bar step, compiled: stops, exits, sizing, risk, orders, fills, portfolio.

One step (`step`) serves every mode. A backtest calls it in a compiled loop over history
(`run`); paper and live call it once per closed bar with the bar the feed delivered. Its whole
state is one float64 vector (`S_*` slots), so the node can persist it and a restart resumes
exactly where it was. Signals come from the strategy's Plan (batch == streaming, bit for bit).

Per bar t, in this order (the order the market would show them):

1. funding settles when a settlement time falls in the bar (before fills at that time: a
   position held up to the settlement pays or receives it);
2. the working order: a market order decided at the previous close fills at this bar's open
   (`next_open`), moved along the bar by the latency, with slippage and the taker fee; a
   post-only limit order is rejected on arrival if it would cross (then its fallback acts),
   otherwise it rests and fills at its price, with the maker fee, only when the bar trades
   through it (or touches it, by the profile's `limit_rule`); at its timeout the rest falls back
   to a market order or is cancelled. Every fill is capped by a participation rate of the bar's
   volume, the rest keeps working. Reduce-only orders (exits) are clipped so they never grow
   or flip the position;
3. the bar's path is checked against the protective levels: stop-loss / trailing stop (filled
   at the level, or at the open when the bar gaps through it), then liquidation (judged on the
   bar's adverse extreme, filled at the liquidation price, liquidation fee charged out of what
   is left of the margin; maintenance margin from the instrument's tier for the position's
   size), then take-profit (a resting limit: maker fee, no slippage);
4. mark to market at the close; post-trade risk: drawdown and daily loss limits act (halt,
   reduce-only, flatten), losing streaks start a cooldown;
5. the decision: exits, entries and the time stop give a target side, the sizing method a
   size, pre-trade risk clips or denies (every reason counted); the order is sent for the next
   bar (or filled at this close when `market_price` is `close`).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from polytrade.data.depth import walk_bps
from polytrade.engine.accounting import (
    fee,
    funding_payment,
    isolated_margin,
    liquidation_price,
    unrealized_pnl,
)

# ---------------------------------------------------------------- signal rows
SIG_ENTRY_LONG, SIG_EXIT_LONG, SIG_ENTRY_SHORT, SIG_EXIT_SHORT = 0, 1, 2, 3
SIG_STOP_LOSS, SIG_TAKE_PROFIT, SIG_TRAILING, SIG_REGIME, SIG_VOL, SIG_AVG_VOLUME = 4, 5, 6, 7, 8, 9
SIG_SIZE_VOL = 10
"""SIG_VOL and SIG_AVG_VOLUME are lagged one bar (slippage of a fill at the open knows only the
bars before it); SIG_SIZE_VOL includes the bar (sizing decides at its close)."""
SIGNAL_ROWS = 11

# ---------------------------------------------------------------- configuration slots
(
    C_CAPITAL, C_CONTRACT_SIZE, C_LOT, C_MIN_QTY, C_MMR, C_LIQ_FEE, C_ISOLATED, C_LEVERAGE,
    C_TAKER_BPS, C_MAKER_BPS, C_SLIP_MODEL, C_SLIP_A, C_LATENCY_FRACTION, C_PARTICIPATION,
    C_FILL_AT_CLOSE, C_SIZING, C_SIZE_A, C_SIZE_B, C_MAX_BARS, C_MAX_POSITION_NOTIONAL,
    C_MAX_ORDER_NOTIONAL, C_MAX_LEVERAGE, C_DAILY_LIMIT, C_DAILY_ACTION, C_DD_LIMIT, C_DD_ACTION,
    C_STREAK, C_COOLDOWN_MS, C_REGIME_FLATTEN, C_BAR_MS, C_PERIODS_PER_YEAR, C_TICK,
    C_EXEC_STYLE, C_LIMIT_OFFSET_BPS, C_LIMIT_TIMEOUT, C_LIMIT_FALLBACK, C_LIMIT_TOUCH,
    C_EXEC_WINDOW, C_EXEC_SLICES, C_ABSENT_SIGNALS, C_TIER_COUNT, C_TIERS,
) = range(42)  # fmt: skip
ALL_SIGNALS = (1 << SIGNAL_ROWS) - 1
"""C_ABSENT_SIGNALS is a bit mask of the SIG_* rows the signal matrix does not hold (bit SIG_x
set: row x is not filled; 0, the default, means every row is). An absent row is never read:
it has its default instead (1.0 for the regime gate, NaN for the others), so a backtest need
not write whole rows of defaults."""
MAX_TIERS = 8
"""Risk-limit tiers: from C_TIERS, MAX_TIERS rows of (largest |position| in contracts,
maintenance margin rate, largest leverage); C_TIER_COUNT rows are used, the last one is
unbounded. The whole position pays its tier's rate."""
TIER_WIDTH = 3
C_DEPTH = C_TIERS + TIER_WIDTH * MAX_TIERS
"""Where the order-book depth curve starts when the slippage model is `depth` (see
`polytrade.data.depth`): the curve's flat vector is appended to the configuration."""
CONFIG_SIZE = C_DEPTH

EXEC_MARKET, EXEC_POST_ONLY = 0, 1
FALLBACK_CANCEL, FALLBACK_MARKET = 0, 1

SLIP_NONE, SLIP_FIXED, SLIP_VOLATILITY, SLIP_SQRT, SLIP_DEPTH = 0, 1, 2, 3, 4
SIZE_FIXED_FRACTION, SIZE_FIXED_NOTIONAL, SIZE_VOL_TARGET, SIZE_RISK_PER_TRADE = 0, 1, 2, 3
ACT_REDUCE_ONLY, ACT_HALT, ACT_FLATTEN = 1, 2, 3
"""Risk actions, by precedence: the strongest one in force acts (a halt is not lifted by a
reduce-only; flatten becomes a halt once flat)."""

# ---------------------------------------------------------------- state slots
(
    S_CASH, S_QTY, S_ENTRY, S_PEAK, S_DAY, S_DAY_START, S_BARS_IN, S_BEST, S_STOP, S_TAKE,
    S_TRAIL, S_PENDING, S_PENDING_REASON, S_MODE, S_DAY_MODE, S_STREAK, S_COOLDOWN_UNTIL,
    S_FEES, S_FUNDING, S_SLIPPAGE, S_FILLS, S_TRADE_PNL, S_LIQUIDATIONS, S_MARGIN, S_EQUITY,
    S_PREV_HIGH, S_PREV_LOW, S_TURNOVER, S_TARGET, S_ORDER_TYPE, S_LIMIT_PRICE, S_LIMIT_AGE,
    S_REDUCE_ONLY, S_NEXT_DAY, S_LIQ, S_NEXT_STOP, S_NEXT_TAKE, S_NEXT_TRAIL,
) = range(38)  # fmt: skip
STATE_SIZE = 38
ORDER_MARKET, ORDER_LIMIT = 0, 1

# ---------------------------------------------------------------- fill reasons and risk codes
REASON_SIGNAL, REASON_STOP, REASON_TAKE, REASON_TRAIL, REASON_TIME = 1, 2, 3, 4, 5
REASON_LIQUIDATION, REASON_RISK, REASON_REGIME = 6, 7, 8
REASON_NAMES = {
    REASON_SIGNAL: "signal",
    REASON_STOP: "stop_loss",
    REASON_TAKE: "take_profit",
    REASON_TRAIL: "trailing_stop",
    REASON_TIME: "time_stop",
    REASON_LIQUIDATION: "liquidation",
    REASON_RISK: "risk_flatten",
    REASON_REGIME: "regime_flatten",
}
(
    DENY_HALTED, DENY_REDUCE_ONLY, DENY_MIN_SIZE, DENY_COOLDOWN, DENY_BAD_PRICE,
    CLIP_ORDER_NOTIONAL, CLIP_POSITION_NOTIONAL, CLIP_LEVERAGE, DENY_NO_STOP,
    REJECT_POST_ONLY, LIMIT_EXPIRED, CANCEL_REDUCE_ONLY, CLIP_TIER,
) = range(13)  # fmt: skip
RISK_CODES = (
    "halted",
    "reduce_only",
    "below_min_size",
    "loss_streak_cooldown",
    "bad_price",
    "clipped_order_notional",
    "clipped_position_notional",
    "clipped_leverage",
    "no_stop_distance",
    "post_only_would_cross",
    "limit_timed_out",
    "reduce_only_cancelled",
    "clipped_risk_limit_tier",
)
"""Counters of denied or clipped orders (pre-trade risk) and of orders the venue rejected,
timed out or cancelled, by reason code."""
FILL_COLUMNS = 7
"""Per fill: bar, signed contracts, price, fee, slippage cost, reason, realized PnL."""
F_BAR, F_QTY, F_PRICE, F_FEE, F_SLIPPAGE, F_REASON, F_REALIZED = range(FILL_COLUMNS)

DAY_MS = 86_400_000
EXACT = 1e-12
TICK_NOISE = 1e-6
"""A price within a millionth of a tick of the grid is on it (binary noise, not a price)."""


def new_state(config: np.ndarray) -> np.ndarray:
    """The state before the first bar: all cash, flat, no order, trading allowed."""
    state = np.empty(STATE_SIZE)
    reset_state(state, config)
    return state


@njit(cache=True, error_model="numpy", nogil=True)
def reset_state(state: np.ndarray, config: np.ndarray) -> None:
    """`state` (STATE_SIZE slots) set to the state before the first bar (see `new_state`)."""
    state[:] = 0.0
    state[S_CASH] = config[C_CAPITAL]
    state[S_PEAK] = config[C_CAPITAL]
    state[S_DAY] = -1.0
    state[S_NEXT_DAY] = -np.inf
    state[S_LIQ] = np.nan
    state[S_NEXT_STOP] = np.nan
    state[S_NEXT_TAKE] = np.nan
    state[S_NEXT_TRAIL] = np.nan
    state[S_DAY_START] = config[C_CAPITAL]
    state[S_ENTRY] = np.nan
    state[S_STOP] = np.nan
    state[S_TAKE] = np.nan
    state[S_TRAIL] = np.nan
    state[S_BEST] = np.nan
    state[S_EQUITY] = config[C_CAPITAL]
    state[S_PREV_HIGH] = np.nan
    state[S_PREV_LOW] = np.nan
    state[S_LIMIT_PRICE] = np.nan


@njit(cache=True, error_model="numpy", nogil=True)
def signal(signals: np.ndarray, config: np.ndarray, which: int, row: int) -> float:
    """Signal `which` (a SIG_* row) at column `row`, or its default when the row is absent."""
    if (int(config[C_ABSENT_SIGNALS]) >> which) & 1:
        return 1.0 if which == SIG_REGIME else np.nan
    return signals[which, row]  # type: ignore[no-any-return]


@njit(cache=True, error_model="numpy", nogil=True)
def _slippage_fraction(
    config: np.ndarray, qty: float, price: float, vol: float, avg_volume: float, prev_range: float
) -> float:
    """Adverse price move of a market order, as a fraction of price."""
    model = int(config[C_SLIP_MODEL])
    if model == SLIP_FIXED:
        return config[C_SLIP_A] * 1e-4  # type: ignore[no-any-return]
    if model == SLIP_VOLATILITY:
        if np.isnan(prev_range):
            return 0.0
        return config[C_SLIP_A] * prev_range / price  # type: ignore[no-any-return]
    if model == SLIP_SQRT:
        base = abs(qty) * config[C_CONTRACT_SIZE]
        if np.isnan(vol) or np.isnan(avg_volume) or avg_volume <= 0.0:
            return 0.0
        return config[C_SLIP_A] * vol * np.sqrt(base / avg_volume)  # type: ignore[no-any-return]
    if model == SLIP_DEPTH:
        # The walk measures from the mid: half the spread is in it (a bar's price is a trade).
        return walk_bps(config, C_DEPTH, abs(qty) * config[C_CONTRACT_SIZE], qty > 0.0) * 1e-4
    return 0.0


@njit(cache=True, error_model="numpy", nogil=True)
def _refresh_liquidation(state: np.ndarray, config: np.ndarray) -> None:
    """Recompute the liquidation price: after every fill and funding payment (what moves it)."""
    position = state[S_QTY]
    if position == 0.0:
        state[S_LIQ] = np.nan
        return
    collateral = state[S_MARGIN] if config[C_ISOLATED] > 0.0 else state[S_CASH]
    state[S_LIQ] = liquidation_price(
        position, state[S_ENTRY], collateral, config[C_CONTRACT_SIZE],
        maintenance_rate(config, position),
    )  # fmt: skip


@njit(cache=True, error_model="numpy", nogil=True)
def _fill(  # noqa: C901, PLR0913, PLR0915, PLR0917 - one fill needs all of these
    state: np.ndarray,
    config: np.ndarray,
    fills: np.ndarray,
    bar: int,
    qty: float,
    price: float,
    fee_bps: float,
    slip_cost: float,
    reason: int,
) -> None:
    """Apply a fill of `qty` contracts at `price` (slippage already in it) to the portfolio."""
    cs = config[C_CONTRACT_SIZE]
    position = state[S_QTY]
    paid = fee(qty, price, cs, fee_bps)
    realized = 0.0
    if position != 0.0 and np.sign(qty) != np.sign(position):
        closing = min(abs(qty), abs(position)) * np.sign(qty)
        realized = -closing * cs * (price - state[S_ENTRY])
    new_position = position + qty
    if abs(new_position) < 1e-12:  # noqa: PLR2004 - contracts are whole lots
        new_position = 0.0
    if new_position == 0.0:
        entry = np.nan
    elif position == 0.0 or np.sign(new_position) != np.sign(position):
        entry = price  # opened, or flipped through zero
    elif np.sign(qty) == np.sign(position):
        entry = (state[S_ENTRY] * position + price * qty) / new_position
    else:
        entry = state[S_ENTRY]  # reduced: the rest keeps its entry
    state[S_CASH] += realized - paid
    state[S_FEES] += paid
    state[S_SLIPPAGE] += slip_cost
    state[S_TURNOVER] += abs(qty) * cs * price
    state[S_TRADE_PNL] += realized - paid
    opened = new_position != 0.0 and (position == 0.0 or np.sign(new_position) != np.sign(position))
    state[S_QTY] = new_position
    state[S_ENTRY] = entry
    if config[C_ISOLATED] > 0.0:
        state[S_MARGIN] = (
            isolated_margin(
                new_position,
                entry,
                cs,
                min(config[C_LEVERAGE], tier_leverage(config, new_position)),
            )
            if new_position != 0.0
            else 0.0
        )
    k = int(state[S_FILLS])
    if k < fills.shape[0]:
        fills[k, 0] = bar
        fills[k, 1] = qty
        fills[k, 2] = price
        fills[k, 3] = paid
        fills[k, 4] = slip_cost
        fills[k, 5] = reason
        fills[k, 6] = realized
    state[S_FILLS] = k + 1
    _refresh_liquidation(state, config)
    if position != 0.0 and (new_position == 0.0 or opened):
        # A trade ended: a loss (fees and funding included) lengthens the losing streak.
        state[S_STREAK] = state[S_STREAK] + 1.0 if state[S_TRADE_PNL] < 0.0 else 0.0
        state[S_TRADE_PNL] = 0.0
    if opened:
        # The levels decided with the order that opened it (a flip's old side kept its own).
        state[S_BARS_IN] = 0.0
        state[S_BEST] = price
        state[S_STOP] = state[S_NEXT_STOP]
        state[S_TAKE] = state[S_NEXT_TAKE]
        state[S_TRAIL] = state[S_NEXT_TRAIL]
    if new_position == 0.0:
        state[S_BARS_IN] = 0.0
        state[S_BEST] = np.nan
        state[S_STOP] = np.nan
        state[S_TAKE] = np.nan
        state[S_TRAIL] = np.nan


@njit(cache=True, error_model="numpy", nogil=True)
def _tier_row(config: np.ndarray, qty: float) -> int:
    """Where the tier of a position of |qty| contracts starts in `config` (-1 without tiers)."""
    size = abs(qty)
    count = int(config[C_TIER_COUNT])
    for tier in range(count):
        row = C_TIERS + TIER_WIDTH * tier
        if size <= config[row] or tier == count - 1:
            return row
    return -1


@njit(cache=True, error_model="numpy", nogil=True)
def maintenance_rate(config: np.ndarray, qty: float) -> float:
    """Maintenance margin rate of a position of |qty| contracts, from the instrument's tiers."""
    row = _tier_row(config, qty)
    return config[row + 1] if row >= 0 else config[C_MMR]  # type: ignore[no-any-return]


@njit(cache=True, error_model="numpy", nogil=True)
def _isolated_leverage(config: np.ndarray, qty: float) -> float:
    """The configured leverage, capped by the position's tier (margin never below maintenance)."""
    return min(config[C_LEVERAGE], tier_leverage(config, qty))  # type: ignore[no-any-return]


@njit(cache=True, error_model="numpy", nogil=True)
def tier_leverage(config: np.ndarray, qty: float) -> float:
    """The largest leverage of a position of |qty| contracts, from the tiers (inf without)."""
    row = _tier_row(config, qty)
    return config[row + 2] if row >= 0 else np.inf


@njit(cache=True, error_model="numpy", nogil=True)
def tier_notional_cap(config: np.ndarray, price: float, equity: float) -> float:
    """The largest notional (USDT) the risk-limit tiers allow with `equity`.

    A position in a tier may use at most that tier's leverage; inf without tiers.
    """
    count = int(config[C_TIER_COUNT])
    if count == 0:
        return np.inf
    best = 0.0
    for tier in range(count):
        row = C_TIERS + TIER_WIDTH * tier
        largest = config[row] * config[C_CONTRACT_SIZE] * price
        best = max(best, min(largest, config[row + 2] * equity))
    return best


@njit(cache=True, error_model="numpy", nogil=True, inline="always")
def _participation_cap(config: np.ndarray, qty: float, volume: float) -> float:
    """`qty` cut to the participation rate of the bar's volume, in whole lots."""
    if config[C_PARTICIPATION] <= 0.0:
        return qty
    cap = config[C_PARTICIPATION] * volume / config[C_CONTRACT_SIZE]
    if abs(qty) <= cap:
        return qty
    return np.sign(qty) * np.floor(cap / config[C_LOT]) * config[C_LOT]  # type: ignore[no-any-return]


@njit(cache=True, error_model="numpy", nogil=True, inline="always")
def _cancel(state: np.ndarray) -> None:
    """Drop the working order: the target becomes what is held."""
    state[S_PENDING] = 0.0
    state[S_PENDING_REASON] = 0.0
    state[S_TARGET] = state[S_QTY]
    state[S_ORDER_TYPE] = ORDER_MARKET


@njit(cache=True, error_model="numpy", nogil=True)
def _work_order(  # noqa: C901, PLR0912, PLR0913, PLR0915, PLR0917 - the venue's side of a bar
    state: np.ndarray,
    config: np.ndarray,
    bar: int,
    o: float,
    h: float,
    lo: float,
    c: float,
    volume: float,
    signals: np.ndarray,
    row: int,
    fills: np.ndarray,
    risk_counts: np.ndarray,
) -> None:
    """Step 2: the working order meets this bar (see the module docstring)."""
    pending = state[S_PENDING]
    if pending == 0.0:
        return
    position = state[S_QTY]
    if state[S_REDUCE_ONLY] > 0.0:
        # A reduce-only order never opens, grows or flips a position.
        if position == 0.0 or np.sign(pending) == np.sign(position):
            risk_counts[CANCEL_REDUCE_ONLY] += 1
            _cancel(state)
            return
        if abs(pending) > abs(position):
            pending = -position
            state[S_PENDING] = pending
            state[S_TARGET] = 0.0
    reason = int(state[S_PENDING_REASON])
    arrival = o + (c - o) * config[C_LATENCY_FRACTION]
    if state[S_ORDER_TYPE] == ORDER_LIMIT:
        limit = state[S_LIMIT_PRICE]
        buy = pending > 0.0
        if state[S_LIMIT_AGE] == 0.0 and (
            (buy and limit >= arrival) or (not buy and limit <= arrival)
        ):
            # Post-only: it would take liquidity on arrival, so the venue rejects it.
            risk_counts[REJECT_POST_ONLY] += 1
            if config[C_LIMIT_FALLBACK] == FALLBACK_MARKET:
                state[S_ORDER_TYPE] = ORDER_MARKET
            else:
                _cancel(state)
                return
        else:
            touch = config[C_LIMIT_TOUCH] > 0.0
            traded = (buy and (lo < limit or (touch and lo <= limit))) or (
                not buy and (h > limit or (touch and h >= limit))
            )
            if traded:
                qty = _participation_cap(config, pending, volume)
                if qty != 0.0:
                    _fill(state, config, fills, bar, qty, limit, config[C_MAKER_BPS], 0.0, reason)
                state[S_PENDING] = pending - qty
            state[S_LIMIT_AGE] += 1.0
            if state[S_PENDING] == 0.0:
                state[S_PENDING_REASON] = 0.0
                state[S_ORDER_TYPE] = ORDER_MARKET
            elif state[S_LIMIT_AGE] >= config[C_LIMIT_TIMEOUT]:
                risk_counts[LIMIT_EXPIRED] += 1
                if config[C_LIMIT_FALLBACK] == FALLBACK_MARKET:
                    state[S_ORDER_TYPE] = ORDER_MARKET  # the rest goes at the next open
                else:
                    _cancel(state)
            return
    qty = _participation_cap(config, pending, volume)
    if qty != 0.0:
        # A sliced order (TWAP/VWAP) is worked over a window of the bar: it fills around the
        # window's middle on the bar's path, each slice paying the slippage of its own size.
        middle = min(config[C_LATENCY_FRACTION] + 0.5 * config[C_EXEC_WINDOW], 1.0)
        arrival = o + (c - o) * middle
        slices = max(config[C_EXEC_SLICES], 1.0)
        slip = _slippage_fraction(
            config,
            qty / slices,
            arrival,
            signal(signals, config, SIG_VOL, row),
            signal(signals, config, SIG_AVG_VOLUME, row),
            state[S_PREV_HIGH] - state[S_PREV_LOW],
        )
        price = arrival * (1.0 + np.sign(qty) * slip)
        cost = abs(qty) * config[C_CONTRACT_SIZE] * abs(price - arrival)
        _fill(state, config, fills, bar, qty, price, config[C_TAKER_BPS], cost, reason)
    state[S_PENDING] = pending - qty
    if state[S_PENDING] == 0.0:
        state[S_PENDING_REASON] = 0.0


@njit(cache=True, error_model="numpy", nogil=True)
def _protect(  # noqa: PLR0913, PLR0917 - the bar's path against the protective levels
    state: np.ndarray,
    config: np.ndarray,
    bar: int,
    o: float,
    h: float,
    lo: float,
    signals: np.ndarray,
    row: int,
    fills: np.ndarray,
) -> None:
    """Step 3: stop-loss / trailing stop, liquidation, take-profit on the bar's path."""
    position = state[S_QTY]
    if position == 0.0:
        return
    cs = config[C_CONTRACT_SIZE]
    long = position > 0.0
    stop = state[S_STOP]
    reason = REASON_STOP
    if not np.isnan(state[S_TRAIL]):
        trail = state[S_BEST] - state[S_TRAIL] if long else state[S_BEST] + state[S_TRAIL]
        if np.isnan(stop) or (long and trail > stop) or (not long and trail < stop):
            stop = trail
            reason = REASON_TRAIL
    collateral = state[S_MARGIN] if config[C_ISOLATED] > 0.0 else state[S_CASH]
    liq = state[S_LIQ]
    hit_stop = not np.isnan(stop) and ((long and lo <= stop) or (not long and h >= stop))
    stop_first = hit_stop and ((long and stop >= liq) or (not long and stop <= liq))
    if stop_first:
        level = min(o, stop) if long else max(o, stop)
        slip = _slippage_fraction(
            config,
            position,
            level,
            signal(signals, config, SIG_VOL, row),
            signal(signals, config, SIG_AVG_VOLUME, row),
            state[S_PREV_HIGH] - state[S_PREV_LOW],
        )
        price = level * (1.0 - np.sign(position) * slip)
        _fill(
            state, config, fills, bar, -position, price, config[C_TAKER_BPS],
            abs(position) * cs * abs(price - level), reason,
        )  # fmt: skip
        _cancel(state)
    elif (long and lo <= liq) or (not long and h >= liq):
        price = min(o, liq) if long else max(o, liq)
        # The liquidation fee takes what is left of the margin at the liquidation price.
        # It is the liquidation fill's fee, so the trade's PnL and the fill list carry it.
        left = collateral + unrealized_pnl(position, state[S_ENTRY], price, cs)
        size = abs(position) * cs * price
        charge = min(config[C_LIQ_FEE] * size, max(left, 0.0))
        _fill(
            state, config, fills, bar, -position, price, charge / size * 1e4, 0.0,
            REASON_LIQUIDATION,
        )  # fmt: skip
        state[S_LIQUIDATIONS] += 1.0
        _cancel(state)
    elif not np.isnan(state[S_TAKE]) and (
        (long and h >= state[S_TAKE]) or (not long and lo <= state[S_TAKE])
    ):
        # A resting limit: it fills at its own price even when the bar gaps through it.
        _fill(
            state, config, fills, bar, -position, state[S_TAKE], config[C_MAKER_BPS], 0.0,
            REASON_TAKE,
        )  # fmt: skip
        _cancel(state)


@njit(cache=True, error_model="numpy", nogil=True, inline="always")
def _idle(  # noqa: PLR0913, PLR0917 - scalars only: no array references per bar
    mode: float,
    pending: float,
    position: float,
    entry_long: bool,
    entry_short: bool,
    exit_long: bool,
    exit_short: bool,
    timed_out: bool,
    gate_open: bool,
) -> bool:
    """The common bar: no risk action, nothing working, no rule that would change the position.

    The full rules (`_decide`) reach the same outcome; this only spares the work. (Scalar
    arguments: an inlined function taking arrays costs reference counting on every bar.)
    """
    if mode != 0.0 or pending != 0.0:
        return False
    if position == 0.0:
        return entry_long == entry_short
    if position > 0.0:
        held = not exit_long and (entry_long or not entry_short)
    else:
        held = not exit_short and (entry_short or not entry_long)
    return held and not timed_out and gate_open


@njit(cache=True, error_model="numpy", nogil=True, inline="always")
def _touched(  # noqa: PLR0913, PLR0917 - scalars only: no array references per bar
    position: float,
    stop: float,
    best: float,
    trail: float,
    liq: float,
    take: float,
    h: float,
    lo: float,
) -> bool:
    """Whether the bar reaches a protective level (stop, trailing stop, liquidation, take)."""
    if position > 0.0:
        return lo <= stop or lo <= best - trail or lo <= liq or h >= take
    return h >= stop or h >= best + trail or h >= liq or lo <= take


@njit(cache=True, error_model="numpy", nogil=True, inline="always")
def _mark_to_market(
    state: np.ndarray, config: np.ndarray, ts: int, h: float, lo: float, mark_price: float
) -> float:
    """Step 4 (and the position's age and best price): equity at the mark, post-trade risk."""
    cs = config[C_CONTRACT_SIZE]
    if state[S_QTY] != 0.0:
        state[S_BARS_IN] += 1.0
        state[S_BEST] = max(state[S_BEST], h) if state[S_QTY] > 0.0 else min(state[S_BEST], lo)
    equity = state[S_CASH] + unrealized_pnl(state[S_QTY], state[S_ENTRY], mark_price, cs)
    if config[C_ISOLATED] > 0.0 and state[S_QTY] == 0.0:
        state[S_MARGIN] = 0.0
    if ts >= state[S_NEXT_DAY]:
        # A new UTC day: the daily loss counts from the last close of the day before, and a
        # daily-loss action is lifted (a drawdown action is not).
        day = ts // DAY_MS
        state[S_DAY] = day
        state[S_NEXT_DAY] = (day + 1) * DAY_MS
        state[S_DAY_START] = state[S_EQUITY]
        state[S_DAY_MODE] = 0.0
    state[S_EQUITY] = equity
    state[S_PEAK] = max(state[S_PEAK], equity)
    if config[C_DD_LIMIT] > 0.0 and equity <= state[S_PEAK] * (1.0 - config[C_DD_LIMIT]):
        state[S_MODE] = max(state[S_MODE], config[C_DD_ACTION])
    if config[C_DAILY_LIMIT] > 0.0 and equity <= state[S_DAY_START] * (1.0 - config[C_DAILY_LIMIT]):
        state[S_DAY_MODE] = max(state[S_DAY_MODE], config[C_DAILY_ACTION])
    if config[C_STREAK] > 0.0 and state[S_STREAK] >= config[C_STREAK]:
        state[S_COOLDOWN_UNTIL] = ts + config[C_BAR_MS] + config[C_COOLDOWN_MS]
        state[S_STREAK] = 0.0
    state[S_PREV_HIGH] = h
    state[S_PREV_LOW] = lo
    return equity  # type: ignore[no-any-return]


@njit(cache=True, error_model="numpy", nogil=True)
def _close_fill(
    state: np.ndarray,
    config: np.ndarray,
    fills: np.ndarray,
    bar: int,
    c: float,
    volume: float,
    mark_price: float,
) -> None:
    """`market_price: close`: the decision's order fills at this close, then equity is marked."""
    if config[C_FILL_AT_CLOSE] > 0.0 and state[S_PENDING] != 0.0:
        _fill_at_close(state, config, fills, bar, c, volume)
        state[S_EQUITY] = state[S_CASH] + unrealized_pnl(
            state[S_QTY], state[S_ENTRY], mark_price, config[C_CONTRACT_SIZE]
        )


@njit(cache=True, error_model="numpy", nogil=True)
def step(  # noqa: PLR0913, PLR0917 - the engine's one step
    state: np.ndarray,
    config: np.ndarray,
    bar: int,
    ts: int,
    o: float,
    h: float,
    lo: float,
    c: float,
    volume: float,
    mark: float,
    funding_rate: float,
    signals: np.ndarray,
    row: int,
    fills: np.ndarray,
    risk_counts: np.ndarray,
) -> None:
    """Advance the engine by one closed bar (see the module docstring for the order).

    `signals[:, row]` holds this bar's signal values (SIG_* rows): a backtest passes its whole
    signal matrix and the bar's index, the node a one-column matrix and 0.
    """
    cs = config[C_CONTRACT_SIZE]
    if np.isnan(o) or np.isnan(h) or np.isnan(lo) or np.isnan(c):
        return  # a bar without data: nothing happens, nothing is decided
    mark_price = mark if not np.isnan(mark) else c
    # 1. funding at the settlement inside this bar (on the position held then, at the open)
    if not np.isnan(funding_rate) and state[S_QTY] != 0.0:
        paid = funding_payment(state[S_QTY], o, cs, funding_rate)
        state[S_CASH] += paid
        state[S_FUNDING] -= paid
        state[S_TRADE_PNL] += paid
        _refresh_liquidation(state, config)
    # 2. the working order meets the bar (the checks here keep quiet bars cheap)
    if config[C_FILL_AT_CLOSE] == 0.0 and state[S_PENDING] != 0.0:
        _work_order(state, config, bar, o, h, lo, c, volume, signals, row, fills, risk_counts)
    # 3. protective levels on the bar's path
    if state[S_QTY] != 0.0 and _touched(
        state[S_QTY], state[S_STOP], state[S_BEST], state[S_TRAIL], state[S_LIQ], state[S_TAKE],
        h, lo,
    ):  # fmt: skip
        _protect(state, config, bar, o, h, lo, signals, row, fills)
    # 4. mark to market, post-trade risk
    equity = _mark_to_market(state, config, ts, h, lo, mark_price)
    # 5. the decision at this close
    if not _idle(
        max(state[S_MODE], state[S_DAY_MODE]), state[S_PENDING], state[S_QTY],
        signal(signals, config, SIG_ENTRY_LONG, row) == 1.0,
        signal(signals, config, SIG_ENTRY_SHORT, row) == 1.0,
        signal(signals, config, SIG_EXIT_LONG, row) == 1.0,
        signal(signals, config, SIG_EXIT_SHORT, row) == 1.0,
        config[C_MAX_BARS] > 0.0 and state[S_BARS_IN] >= config[C_MAX_BARS],
        signal(signals, config, SIG_REGIME, row) == 1.0 or config[C_REGIME_FLATTEN] == 0.0,
    ):  # fmt: skip
        _decide(state, config, ts, c, equity, signals, row, risk_counts)
    _close_fill(state, config, fills, bar, c, volume, mark_price)


@njit(cache=True, error_model="numpy", nogil=True)
def _decide(  # noqa: C901, PLR0912, PLR0913, PLR0915, PLR0917 - rules, sizing, pre-trade risk
    state: np.ndarray,
    config: np.ndarray,
    ts: int,
    c: float,
    equity: float,
    signals: np.ndarray,
    row: int,
    risk_counts: np.ndarray,
) -> None:
    """Step 5: the target position at this close, and the order that moves toward it.

    Rules act on the position being worked toward (what is held plus the working order), so a
    partly filled entry keeps working instead of being decided again from scratch.
    """
    mode = max(state[S_MODE], state[S_DAY_MODE])
    position = state[S_QTY]
    if mode >= ACT_FLATTEN and position == 0.0:
        # Flat: a flatten has done its work and becomes a halt (new orders are denied, and
        # counted as such, from this close on).
        state[S_MODE] = ACT_HALT if state[S_MODE] >= ACT_FLATTEN else state[S_MODE]
        state[S_DAY_MODE] = ACT_HALT if state[S_DAY_MODE] >= ACT_FLATTEN else state[S_DAY_MODE]
        mode = max(state[S_MODE], state[S_DAY_MODE])
    working = state[S_TARGET]
    target_side = np.sign(working)
    reason = REASON_SIGNAL
    entry_long = signal(signals, config, SIG_ENTRY_LONG, row) == 1.0
    entry_short = signal(signals, config, SIG_ENTRY_SHORT, row) == 1.0
    exit_long = signal(signals, config, SIG_EXIT_LONG, row) == 1.0
    exit_short = signal(signals, config, SIG_EXIT_SHORT, row) == 1.0
    if (working > 0.0 and (exit_long or (entry_short and not entry_long))) or (
        working < 0.0 and (exit_short or (entry_long and not entry_short))
    ):
        target_side = 0.0
    if target_side == 0.0:
        if entry_long and not entry_short:
            target_side = 1.0
        elif entry_short and not entry_long:
            target_side = -1.0
        if target_side == np.sign(working) and working != 0.0:
            target_side = 0.0  # the exit fired: no re-entry on the same bar
    if position != 0.0 and config[C_MAX_BARS] > 0.0 and state[S_BARS_IN] >= config[C_MAX_BARS]:
        target_side = 0.0
        reason = REASON_TIME
    if signal(signals, config, SIG_REGIME, row) != 1.0:  # the regime gate is shut (or unknown)
        if config[C_REGIME_FLATTEN] > 0.0:
            if position != 0.0:
                reason = REASON_REGIME
            target_side = 0.0
        elif target_side != 0.0 and target_side != np.sign(working):
            target_side = 0.0  # no new entries; exits still happen
    if mode >= ACT_FLATTEN:
        target_side = 0.0
        reason = REASON_RISK
    target = working
    if target_side == 0.0:
        target = 0.0
    elif target_side != np.sign(working):
        target = target_side * _size(config, signals, row, c, equity, risk_counts)
    order = target - position
    if order != 0.0:
        reducing = target == 0.0 or (
            abs(target) < abs(position) and np.sign(target) == np.sign(position)
        )
        # (Under ACT_FLATTEN the target is flat, so the order reduces and passes.)
        if mode == ACT_HALT:
            risk_counts[DENY_HALTED] += 1
            order = 0.0
        elif mode == ACT_REDUCE_ONLY and not reducing:
            risk_counts[DENY_REDUCE_ONLY] += 1
            order = -position if target_side != np.sign(position) else 0.0
        elif not reducing and ts + config[C_BAR_MS] < state[S_COOLDOWN_UNTIL]:
            # Paused after a losing streak (decided at this bar's close): exits only.
            risk_counts[DENY_COOLDOWN] += 1
            order = -position if target_side != np.sign(position) else 0.0
    after = position + order  # what the order leaves once filled (risk may have cut it)
    if order == 0.0:
        _cancel(state)
        return
    if order == state[S_PENDING] and after == working:
        return  # the same order keeps working (a resting limit keeps its price and age)
    limit = config[C_EXEC_STYLE] == EXEC_POST_ONLY and reason == REASON_SIGNAL
    reduce_only = after == 0.0 or (
        abs(after) < abs(position) and np.sign(after) == np.sign(position)
    )
    state[S_PENDING] = order
    state[S_PENDING_REASON] = reason
    state[S_TARGET] = after
    state[S_REDUCE_ONLY] = 1.0 if reduce_only else 0.0
    state[S_ORDER_TYPE] = ORDER_LIMIT if limit else ORDER_MARKET
    state[S_LIMIT_AGE] = 0.0
    if limit:
        # Behind the close by the offset, on the tick grid, on the passive side.
        offset = config[C_LIMIT_OFFSET_BPS] * 1e-4
        if order > 0.0:
            state[S_LIMIT_PRICE] = to_tick(c * (1.0 - offset), config[C_TICK], -1.0)
        else:
            state[S_LIMIT_PRICE] = to_tick(c * (1.0 + offset), config[C_TICK], 1.0)
    if after != 0.0 and np.sign(after) != np.sign(position):
        # Levels of the new position, measured from this close (where the signal fired).
        stop_distance = signal(signals, config, SIG_STOP_LOSS, row)
        take_distance = signal(signals, config, SIG_TAKE_PROFIT, row)
        trail_distance = signal(signals, config, SIG_TRAILING, row)
        side = np.sign(after)
        state[S_NEXT_STOP] = c - side * stop_distance if stop_distance > 0.0 else np.nan
        state[S_NEXT_TAKE] = c + side * take_distance if take_distance > 0.0 else np.nan
        state[S_NEXT_TRAIL] = trail_distance if trail_distance > 0.0 else np.nan


@njit(cache=True, error_model="numpy", nogil=True)
def to_tick(price: float, tick: float, direction: float) -> float:
    """`price` on the tick grid: rounded down (direction -1) or up (+1).

    Works in whole ticks so a price already on the grid stays exactly where it is (40,776.70
    does not become 40,776.69 through binary floating point).
    """
    if not tick > 0.0:
        return price
    inverse = np.round(1.0 / tick)
    decimal = abs(inverse * tick - 1.0) <= EXACT  # 0.01: count in hundredths, divide back
    ticks = price * inverse if decimal else price / tick
    nearest = np.round(ticks)
    if abs(ticks - nearest) <= TICK_NOISE:
        ticks = nearest  # on the grid but for binary noise
    elif direction < 0.0:
        ticks = np.floor(ticks)
    else:
        ticks = np.ceil(ticks)
    return ticks / inverse if decimal else ticks * tick  # type: ignore[no-any-return]


@njit(cache=True, error_model="numpy", nogil=True)
def _fill_at_close(
    state: np.ndarray, config: np.ndarray, fills: np.ndarray, bar: int, c: float, volume: float
) -> None:
    """`market_price: close`: the working order fills at this close (participation-capped)."""
    qty = _participation_cap(config, state[S_PENDING], volume)
    if qty != 0.0:
        reason = int(state[S_PENDING_REASON])
        _fill(state, config, fills, bar, qty, c, config[C_TAKER_BPS], 0.0, reason)
    state[S_PENDING] -= qty
    if state[S_PENDING] == 0.0:
        _cancel(state)


@njit(cache=True, error_model="numpy", nogil=True)
def _size(  # noqa: C901 - one branch per sizing method and cap
    config: np.ndarray,
    signals: np.ndarray,
    row: int,
    price: float,
    equity: float,
    risk_counts: np.ndarray,
) -> float:
    """Contracts of a new position (>= 0) from the sizing method and the risk caps."""
    cs = config[C_CONTRACT_SIZE]
    method = int(config[C_SIZING])
    if not price > 0.0 or not equity > 0.0:
        risk_counts[DENY_BAD_PRICE] += 1
        return 0.0
    if method == SIZE_FIXED_FRACTION:
        wanted = config[C_SIZE_A] * equity
    elif method == SIZE_FIXED_NOTIONAL:
        wanted = config[C_SIZE_A]
    elif method == SIZE_VOL_TARGET:
        vol = signal(signals, config, SIG_SIZE_VOL, row) * np.sqrt(config[C_PERIODS_PER_YEAR])
        wanted = config[C_SIZE_A] / vol * equity if vol > 0.0 else 0.0
        wanted = min(wanted, config[C_SIZE_B] * equity)
    else:
        distance = signal(signals, config, SIG_STOP_LOSS, row)
        if not distance > 0.0:
            risk_counts[DENY_NO_STOP] += 1
            return 0.0
        wanted = config[C_SIZE_A] * equity / distance * price
        wanted = min(wanted, config[C_SIZE_B] * equity)
    if wanted > config[C_MAX_POSITION_NOTIONAL]:
        risk_counts[CLIP_POSITION_NOTIONAL] += 1
        wanted = config[C_MAX_POSITION_NOTIONAL]
    if wanted > config[C_MAX_LEVERAGE] * equity:
        risk_counts[CLIP_LEVERAGE] += 1
        wanted = config[C_MAX_LEVERAGE] * equity
    tier_cap = tier_notional_cap(config, price, equity)
    if wanted > tier_cap:
        risk_counts[CLIP_TIER] += 1
        wanted = tier_cap
    # The order's opening part (a flip's closing part only reduces risk).
    if wanted > config[C_MAX_ORDER_NOTIONAL]:
        risk_counts[CLIP_ORDER_NOTIONAL] += 1
        wanted = config[C_MAX_ORDER_NOTIONAL]
    qty = np.floor(wanted / (cs * price) / config[C_LOT]) * config[C_LOT]
    if qty < config[C_MIN_QTY]:
        risk_counts[DENY_MIN_SIZE] += 1
        return 0.0
    return qty  # type: ignore[no-any-return]


@njit(cache=True, error_model="numpy", nogil=True)
def _quiet_stretch(  # noqa: C901, PLR0913, PLR0915, PLR0917 - one history's arrays, as locals
    state: np.ndarray,
    config: np.ndarray,
    start: int,
    ts: np.ndarray,
    o: np.ndarray,
    h: np.ndarray,
    lo: np.ndarray,
    c: np.ndarray,
    mark: np.ndarray,
    funding: np.ndarray,
    signals: np.ndarray,
    equity: np.ndarray,
    position: np.ndarray,
) -> int:
    """Bars `start`.. while they are quiet and idle; returns the first bar it did not take.

    A quiet, idle bar only marks to market: no funding, no working order, no protective level
    touched, no new day, no decision. Most bars are such bars. Here they run on local scalars
    (the state vector is read once and written once per stretch), doing exactly the arithmetic
    of `_mark_to_market` and `_idle` in the same order, so the outcome is bit for bit `step`'s,
    which the property tests check bar by bar. A bar that is not such a bar is left untouched
    for the caller.
    """
    n = ts.shape[0]
    settles = funding.shape[0] > 0
    if state[S_PENDING] != 0.0 or start >= n:
        return start
    if config[C_STREAK] > 0.0 and state[S_STREAK] >= config[C_STREAK]:
        return start  # a cooldown starts at this bar's mark
    cs = config[C_CONTRACT_SIZE]
    qty, entry, cash = state[S_QTY], state[S_ENTRY], state[S_CASH]
    stop, take, trail, liq = state[S_STOP], state[S_TAKE], state[S_TRAIL], state[S_LIQ]
    bars_in, best, value = state[S_BARS_IN], state[S_BEST], state[S_EQUITY]
    peak, mode, day_mode = state[S_PEAK], state[S_MODE], state[S_DAY_MODE]
    day_start, next_day = state[S_DAY_START], state[S_NEXT_DAY]
    prev_high, prev_low = state[S_PREV_HIGH], state[S_PREV_LOW]
    dd_limit, dd_action = config[C_DD_LIMIT], config[C_DD_ACTION]
    daily_limit, daily_action = config[C_DAILY_LIMIT], config[C_DAILY_ACTION]
    max_bars = config[C_MAX_BARS]
    absent = int(config[C_ABSENT_SIGNALS])
    has_entry_long = (absent >> SIG_ENTRY_LONG) & 1 == 0
    has_entry_short = (absent >> SIG_ENTRY_SHORT) & 1 == 0
    has_exit_long = (absent >> SIG_EXIT_LONG) & 1 == 0
    has_exit_short = (absent >> SIG_EXIT_SHORT) & 1 == 0
    # Without a regime row the gate is open (its default is 1.0).
    regime_free = config[C_REGIME_FLATTEN] == 0.0 or (absent >> SIG_REGIME) & 1 == 1
    if config[C_ISOLATED] > 0.0 and qty == 0.0:
        state[S_MARGIN] = 0.0
    t = start
    while t < n:
        hi, low, close = h[t], lo[t], c[t]
        if np.isnan(o[t]) or np.isnan(hi) or np.isnan(low) or np.isnan(close):
            break
        if ts[t] >= next_day:
            break
        if qty != 0.0 and (
            (settles and not np.isnan(funding[t]))
            or _touched(qty, stop, best, trail, liq, take, hi, low)
        ):
            break
        mark_price = mark[t] if not np.isnan(mark[t]) else close
        new_bars_in, new_best = bars_in, best
        if qty != 0.0:
            new_bars_in = bars_in + 1.0
            new_best = max(best, hi) if qty > 0.0 else min(best, low)
        new_value = cash + unrealized_pnl(qty, entry, mark_price, cs)
        new_peak = max(peak, new_value)
        new_mode, new_day_mode = mode, day_mode
        if dd_limit > 0.0 and new_value <= new_peak * (1.0 - dd_limit):
            new_mode = max(new_mode, dd_action)
        if daily_limit > 0.0 and new_value <= day_start * (1.0 - daily_limit):
            new_day_mode = max(new_day_mode, daily_action)
        if not _idle(
            max(new_mode, new_day_mode), 0.0, qty,
            has_entry_long and signals[SIG_ENTRY_LONG, t] == 1.0,
            has_entry_short and signals[SIG_ENTRY_SHORT, t] == 1.0,
            has_exit_long and signals[SIG_EXIT_LONG, t] == 1.0,
            has_exit_short and signals[SIG_EXIT_SHORT, t] == 1.0,
            max_bars > 0.0 and new_bars_in >= max_bars,
            regime_free or signals[SIG_REGIME, t] == 1.0,
        ):  # fmt: skip
            break
        bars_in, best, value, peak = new_bars_in, new_best, new_value, new_peak
        mode, day_mode, prev_high, prev_low = new_mode, new_day_mode, hi, low
        equity[t] = value
        position[t] = qty
        t += 1
    state[S_BARS_IN], state[S_BEST], state[S_EQUITY], state[S_PEAK] = bars_in, best, value, peak
    state[S_MODE], state[S_DAY_MODE] = mode, day_mode
    state[S_PREV_HIGH], state[S_PREV_LOW] = prev_high, prev_low
    return t


@njit(cache=True, error_model="numpy", nogil=True)
def run_block(  # noqa: PLR0913, PLR0917 - arrays of one stretch of history
    state: np.ndarray,
    config: np.ndarray,
    first: int,
    ts: np.ndarray,
    o: np.ndarray,
    h: np.ndarray,
    lo: np.ndarray,
    c: np.ndarray,
    volume: np.ndarray,
    mark: np.ndarray,
    funding: np.ndarray,
    signals: np.ndarray,
    fills: np.ndarray,
    risk_counts: np.ndarray,
    equity: np.ndarray,
    position: np.ndarray,
) -> None:
    """`run` over a stretch of history whose first bar is bar `first` of the whole.

    Arrays hold the stretch only (signals, equity and position too, indexed from 0); fills
    record whole-history bar numbers. Calling it on consecutive stretches with the same state
    gives what one `run` over their concatenation gives (the population evaluator feeds
    history a cache-sized stretch at a time).

    `signals` is (SIGNAL_ROWS, bars): one contiguous row per signal. `mark` may be the close
    itself when there is no mark price (what a NaN mark means); `funding` may be empty when
    nothing settles (all NaN).
    """
    n = ts.shape[0]
    settles = funding.shape[0] > 0
    t = 0
    while t < n:
        t = _quiet_stretch(
            state, config, t, ts, o, h, lo, c, mark, funding, signals, equity, position
        )
        if t >= n:
            break
        # A bar the stretch does not take (an order working, funding, a level touched, a new
        # day, a decision to make) goes through the one step every mode runs.
        step(
            state, config, first + t, ts[t], o[t], h[t], lo[t], c[t], volume[t], mark[t],
            funding[t] if settles else np.nan, signals, t, fills, risk_counts,
        )  # fmt: skip
        equity[t] = state[S_EQUITY]
        position[t] = state[S_QTY]
        t += 1


@njit(cache=True, error_model="numpy", nogil=True)
def run(  # noqa: PLR0913, PLR0917 - arrays of one history
    state: np.ndarray,
    config: np.ndarray,
    ts: np.ndarray,
    o: np.ndarray,
    h: np.ndarray,
    lo: np.ndarray,
    c: np.ndarray,
    volume: np.ndarray,
    mark: np.ndarray,
    funding: np.ndarray,
    signals: np.ndarray,
    fills: np.ndarray,
    risk_counts: np.ndarray,
    equity: np.ndarray,
    position: np.ndarray,
) -> None:
    """The backtest: `step` over every bar; per-bar equity and position into the outputs.

    `signals` is (SIGNAL_ROWS, bars): one contiguous row per signal. `mark` may be the close
    itself when there is no mark price (what a NaN mark means); `funding` may be empty when
    nothing settles (all NaN).
    """
    run_block(
        state, config, 0, ts, o, h, lo, c, volume, mark, funding, signals, fills, risk_counts,
        equity, position,
    )  # fmt: skip
