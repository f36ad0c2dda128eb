"""A plain-Python simulator of a strategy's life on a perpetual, written from the rules.

It is the slow, obvious twin the engine (`polytrade.engine.kernel`) is measured against: one bar
at a time, in Python floats, with one small function per rule, and nothing taken from the
kernel but the names of the fill reasons. It reads the rules from the same documents a user
writes (Strategy, RiskBudget, the profile's execution model) and the contract facts of
`polytrade.core.instruments`, and it takes the plan's outputs (`plan.run(bars, params)`: entry
and exit rules, `stops.*`, `regime`) as given.

The rules, per bar (prices in USDT per coin, sizes in signed contracts, money in USDT):

1. Funding. A settlement inside the bar is paid on the position held at the bar's open, at
   the open price: the position receives -contracts * contract_size * open * rate (longs pay
   positive rates).
2. The working order meets the bar.
   - A market order decided at a close reaches the venue after the latency: it fills at
     open + (close - open) * latency / bar length. A sliced order (TWAP/VWAP over a window of
     the bar) fills at the middle of its window, each slice paying the slippage of its size.
     Market fills pay the taker fee and slippage (below).
   - A post-only limit (buy: the close less the offset, rounded down to the tick grid; sell:
     plus the offset, rounded up) is rejected on arrival when it would take liquidity: a buy
     at or above the arrival price, a sell at or below it. Its fallback then acts at once
     (market: it fills as a market order in this bar; cancel: it is gone). Otherwise it rests
     and fills at its own price with the maker fee when the bar trades through it (low below
     a buy, high above a sell), or only touches it under the `touch` rule. After
     `timeout_bars` bars without a complete fill its rest falls back (a market order from
     the next bar's open) or is cancelled.
   - Every fill is capped at the participation rate of the bar's volume, in whole lots; the
     rest keeps working in the next bars.
   - An exit is reduce-only: it never opens, grows or flips a position (it is clipped to
     the position, or cancelled when there is nothing left to reduce).
3. The bar's path against the position's protective levels, which the decision measured from
   its close and which belong to the position the order opens (they are installed by the fill
   that opens it; until then the position held keeps its own levels).
   - The stop is the fixed stop-loss or the trailing stop (best price since entry, up to the
     previous bar, less the trailing distance), whichever is nearer to the price; the fixed
     stop wins a tie. It fills at its level, or at the open when the bar gaps through it,
     with the slippage of the whole position and the taker fee.
   - Liquidation (Poloniex's arithmetic): collateral (the isolated margin, entry value /
     leverage; or in cross margin the wallet: cash) plus unrealized PnL falls to the
     maintenance margin, `rate * entry value`, the rate of the risk-limit tier of the
     position's size. It is judged on the bar's adverse extreme; when the stop lies beyond
     the liquidation price the liquidation comes first. It fills at the liquidation price
     (or a gapping open) and the liquidation fee (a fraction of the notional) is taken out of
     what is left of the collateral, never more.
   - The take-profit is a resting limit: it fills at its level with the maker fee, no
     slippage, when the bar reaches it.
4. Mark to market at the close (the mark price where known, else the close). Post-trade risk:
   a drawdown from the peak or a loss since the UTC day's start (the last equity of the day
   before) at or beyond its limit sets its action. The strictest action rules: flatten
   (close with market orders, then halt) before halt (no orders, working ones cancelled)
   before reduce-only (only orders that shrink the position). A daily action is lifted at the
   next UTC day. A run of losing trades (PnL with fees and funding; a flip's fee belongs to
   the trade it closes) of the budget's length pauses new exposure for `cooldown_seconds`
   from this close.
5. The decision at the close. Rules act on the position being worked toward (held plus the
   working order): an exit (or the opposite entry alone) closes it; from flat an entry on one
   side alone opens, but not again on the side that just exited. The time stop closes a
   position held `max_bars` bars. A shut regime gate blocks new entries or, with `flatten`,
   closes. A new position's size: the sizing method, then the caps of the risk budget
   (position notional, leverage on equity, the leverage allowed by the risk-limit tier of
   that size, order notional of the part that opens exposure), rounded down to lots; below
   the minimum size it is not opened. Exits never wait for a limit: time stop, regime
   flatten and risk flatten go as market orders, rule exits in the strategy's style.

Slippage models (an adverse move, as a fraction of the price): `fixed` (bps), `volatility`
(a fraction of the previous bar's high - low, over the price), `sqrt_impact`
(k * sigma * sqrt(order coins / average bar volume in coins), with sigma the population std of
the last n one-bar log returns and the average over the last n bars, both up to the previous
bar: what is known when the order arrives). `vol_target` sizing uses the same sigma up to the
decision bar itself, annualized over a 365-day year.

The market statistics are computed with numpy's plain mean and std over sliding windows (the
one place numpy serves the reference: obvious, and fast enough to keep tests quick).

Where the documents leave room, the reference takes these sides:
- stop and take-profit levels are measured from the close where the entry was decided (the
  Stops spec says "from the entry price"; a venue-side stop sent with the order is fixed then);
- a flip's fee belongs to the trade it closes (as `trades_from_fills` counts it);
- liquidation is judged on the traded high/low, not the mark (bars carry no mark path), and
  fills at the liquidation price; Poloniex's engine takes the position over at the
  bankruptcy price, which would leave the trader nothing of the maintenance margin;
- the take-profit fills at its level even when the bar opens beyond it (a resting limit is
  lifted at its own price);
- the volatility slippage uses the previous bar's range (the profile's field text says "of the
  fill bar", which is not known when the order is sent);
- the budget's order notional caps the part of an order that opens exposure (closing is never
  held back);
- the loss-streak pause runs from the close where the streak is known.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from polytrade.core.instruments import instrument
from polytrade.core.timeframes import timeframe_seconds
from polytrade.spec.models.profile import (
    FixedSlippage,
    NoSlippage,
    SqrtImpactSlippage,
    VolatilitySlippage,
)
from polytrade.spec.models.strategy import (
    FixedFraction,
    FixedNotional,
    MarketExecution,
    PostOnlyExecution,
    TwapExecution,
    VolTarget,
    VwapExecution,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

    from polytrade.spec.models import RiskBudgetDocument, StrategyDocument
    from polytrade.spec.models.profile import ExecutionModel

DAY_MS = 86_400_000
YEAR_MS = 365 * DAY_MS
NAN = math.nan

# The risk budget's actions, by strictness: flatten closes then halts; halt sends no orders;
# reduce-only still lets a position shrink.
STRICTNESS = {None: 0, "reduce_only": 1, "halt": 2, "flatten": 3}


def sign(x: float) -> int:
    """-1, 0 or +1."""
    return (x > 0) - (x < 0)


@dataclass(frozen=True)
class Rules:
    """Everything the simulation obeys, as plain numbers read from the documents."""

    capital: float
    contract_size: float
    lot: float
    min_qty: float
    tick: float
    tiers: tuple[tuple[float, float, float], ...]
    """(largest |contracts|, maintenance margin rate, largest leverage); the last unbounded."""
    liquidation_fee: float
    isolated: bool
    leverage: float
    """The isolated position's leverage: its margin is entry value / leverage."""
    taker_bps: float
    maker_bps: float
    latency: float
    """Latency as a fraction of the bar."""
    participation: float
    touch: bool
    slippage: str = "none"
    slippage_value: float = 0.0
    statistics_bars: int = 96
    """Bars of the sqrt-impact statistics (sigma of log returns, mean volume)."""
    style: str = "market"
    """market, post_only or sliced."""
    offset_bps: float = 0.0
    timeout_bars: int = 0
    fallback: str = "cancel"
    window: float = 0.0
    slices: int = 1
    sizing: str = "fixed_fraction"
    size_a: float = 0.0
    size_b: float = 0.0
    vol_bars: int = 96
    max_bars: int = 0
    max_position_notional: float = math.inf
    max_order_notional: float = math.inf
    max_leverage: float = math.inf
    daily_limit: float = 0.0
    daily_action: str = "halt"
    drawdown_limit: float = 0.0
    drawdown_action: str = "halt"
    streak: int = 0
    cooldown_ms: float = 0.0
    regime_flatten: bool = False
    bar_ms: int = 3_600_000

    @classmethod
    def from_documents(  # noqa: C901, PLR0912 - one branch per choice of the documents
        cls,
        strategy: StrategyDocument,
        risk: RiskBudgetDocument,
        execution: ExecutionModel,
        *,
        params: Mapping[str, float] | None = None,
        margin_mode: str = "cross",
        allocation: float = 1.0,
    ) -> Rules:
        """The rules of one strategy's sleeve (capital and notional limits scaled)."""
        spec = strategy.spec
        budget = risk.spec
        contract = instrument(spec.instruments[0])
        bar_ms = timeframe_seconds(spec.timeframe) * 1000
        if execution.fills.market_price != "next_open":
            raise NotImplementedError("the reference fills market orders at the next open only")
        choices: dict[str, Any] = {}
        slip = execution.slippage
        if isinstance(slip, FixedSlippage):
            choices |= {"slippage": "fixed", "slippage_value": slip.bps}
        elif isinstance(slip, VolatilitySlippage):
            choices |= {"slippage": "volatility", "slippage_value": slip.range_fraction}
        elif isinstance(slip, SqrtImpactSlippage):
            choices |= {
                "slippage": "sqrt_impact",
                "slippage_value": slip.coefficient,
                "statistics_bars": slip.volume_lookback_bars,
            }
        elif not isinstance(slip, NoSlippage):
            raise NotImplementedError(f"the reference has no {slip.model} slippage")
        style = spec.execution
        if isinstance(style, PostOnlyExecution):
            choices |= {
                "style": "post_only",
                "offset_bps": style.offset_bps,
                "timeout_bars": style.timeout_bars,
                "fallback": style.fallback,
            }
        elif isinstance(style, TwapExecution | VwapExecution):
            # Children are charged as takers whatever their type (the unknown queue position).
            choices |= {
                "style": "sliced",
                "window": min(style.duration_seconds * 1000 / bar_ms, 1.0),
                "slices": style.slices,
            }
        elif not isinstance(style, MarketExecution):
            raise NotImplementedError(f"the reference has no {style.style} execution")
        sizing = spec.sizing
        if isinstance(sizing, FixedFraction):
            choices |= {"size_a": sizing.fraction}
        elif isinstance(sizing, FixedNotional):
            choices |= {"size_a": sizing.notional_usdt}
        elif isinstance(sizing, VolTarget):
            choices |= {
                "size_a": sizing.target_annual_vol,
                "size_b": sizing.max_fraction,
                "vol_bars": sizing.lookback_bars,
            }
        else:
            choices |= {"size_a": sizing.risk_fraction, "size_b": sizing.max_fraction}
        max_bars = spec.stops.max_bars
        if isinstance(max_bars, str):
            values = {name: p.default for name, p in spec.params.items()} | dict(params or {})
            max_bars = int(values[max_bars])
        streak = budget.loss_streak
        return cls(
            capital=budget.capital_usdt * allocation,
            contract_size=contract.contract_size,
            lot=contract.lot,
            min_qty=contract.min_qty,
            tick=contract.tick,
            tiers=contract.maintenance_tiers
            or ((math.inf, contract.maintenance_margin_rate, contract.max_leverage),),
            liquidation_fee=contract.liquidation_fee_rate,
            isolated=margin_mode == "isolated",
            leverage=min(budget.max_leverage, contract.max_leverage),
            taker_bps=execution.fees.taker_bps,
            maker_bps=execution.fees.maker_bps,
            latency=min(execution.latency_ms / bar_ms, 1.0),
            participation=execution.fills.participation,
            touch=execution.fills.limit_rule == "touch",
            sizing=sizing.method,
            max_bars=int(max_bars or 0),
            max_position_notional=budget.max_position_notional_usdt * allocation,
            max_order_notional=budget.max_order_notional_usdt * allocation,
            max_leverage=budget.max_leverage,
            daily_limit=budget.max_daily_loss.limit,
            daily_action=budget.max_daily_loss.action,
            drawdown_limit=budget.max_drawdown.limit,
            drawdown_action=budget.max_drawdown.action,
            streak=streak.losses if streak else 0,
            cooldown_ms=streak.cooldown_seconds * 1000.0 if streak else 0.0,
            regime_flatten=spec.regime is not None and spec.regime.otherwise == "flatten",
            bar_ms=bar_ms,
            **choices,
        )


@dataclass(frozen=True)
class Fill:
    """One fill: bar index, signed contracts, price, fee and slippage cost (USDT), reason."""

    bar: int
    qty: float
    price: float
    fee: float
    slippage: float
    reason: str
    realized: float


@dataclass(frozen=True)
class Levels:
    """Protective levels of a position: stop and take-profit prices, trailing distance."""

    stop: float | None
    take: float | None
    trail: float | None


@dataclass
class Order:
    """The working order: what is left of it and the position it leaves once filled."""

    qty: float
    target: float
    reason: str
    reduce_only: bool
    limit: float | None = None
    """The post-only limit price; None for a market order."""
    age: int = 0
    """Bars it has rested."""
    levels: Levels | None = None
    """The levels of the position it opens (None when it opens none)."""


@dataclass
class Outcome:
    """The simulation's record."""

    fills: list[Fill]
    equity: list[float]
    position: list[float]
    events: Counter[str]
    """How often each rule acted (funding, limit_fill, post_only_rejected, liquidation...)."""


@dataclass
class Simulation:
    """The state of one sleeve, advanced bar by bar by `simulate`."""

    rules: Rules
    cash: float = 0.0
    qty: float = 0.0
    entry: float = NAN
    margin: float = 0.0
    levels: Levels = field(default_factory=lambda: Levels(None, None, None))
    best: float = NAN
    bars_held: int = 0
    order: Order | None = None
    peak: float = 0.0
    equity: float = 0.0
    day: int = -1
    day_start: float = 0.0
    drawdown_action: str | None = None
    daily_action: str | None = None
    losses: int = 0
    trade_pnl: float = 0.0
    paused_until: float = -math.inf
    prev_range: float = NAN
    fills: list[Fill] = field(default_factory=list)
    events: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self.cash = self.peak = self.equity = self.day_start = self.rules.capital

    # ------------------------------------------------------------ contract arithmetic

    def maintenance_rate(self, qty: float) -> float:
        """The maintenance margin rate of the tier a position of |qty| contracts is in."""
        for largest, rate, _ in self.rules.tiers:
            if abs(qty) <= largest:
                return rate
        return self.rules.tiers[-1][1]

    def liquidation_price(self) -> float:
        """Where collateral + unrealized PnL equals the maintenance margin (long: 0 = never)."""
        coins = self.qty * self.rules.contract_size
        collateral = self.margin if self.rules.isolated else self.cash
        maintenance = self.maintenance_rate(self.qty) * abs(coins) * self.entry
        # collateral + coins * (price - entry) = maintenance, solved for the price
        price = self.entry - (collateral - maintenance) / coins
        if self.qty > 0:
            return max(price, 0.0)
        # A short whose level is at or below zero is under water at every price.
        return price if price > 0 else 0.0

    def largest_tier_notional(self, price: float, equity: float) -> float:
        """The largest notional whose tier allows its leverage on `equity`."""
        best = 0.0
        smallest = 0.0  # contracts where the tier starts
        for largest, _, leverage in self.rules.tiers:
            top = min(largest * self.rules.contract_size * price, leverage * equity)
            if top >= smallest * self.rules.contract_size * price:
                best = max(best, top)
            smallest = largest
        return best

    # ------------------------------------------------------------ fills

    def fill(
        self, bar: int, qty: float, price: float, fee_rate: float, slippage: float, reason: str
    ) -> None:
        """Trade `qty` contracts at `price` (slippage already in it), paying `fee_rate`."""
        cs = self.rules.contract_size
        held = self.qty
        fee = abs(qty) * cs * price * fee_rate
        realized = 0.0
        if held != 0 and sign(qty) != sign(held):
            closed = min(abs(qty), abs(held))
            realized = closed * cs * (price - self.entry) * sign(held)
        after = held + qty
        if after == 0:
            entry = NAN
        elif held == 0 or sign(after) != sign(held):
            entry = price
        elif sign(qty) == sign(held):
            entry = (self.entry * abs(held) + price * abs(qty)) / abs(after)
        else:
            entry = self.entry
        self.cash += realized - fee
        self.trade_pnl += realized - fee
        self.events[reason] += 1
        self.fills.append(Fill(bar, qty, price, fee, slippage, reason, realized))
        self.qty, self.entry = after, entry
        self.margin = abs(after) * cs * entry / self.rules.leverage if after != 0 else 0.0
        if held != 0 and (after == 0 or sign(after) != sign(held)):
            self.losses = self.losses + 1 if self.trade_pnl < 0 else 0
            self.trade_pnl = 0.0
        if after == 0:
            self.levels, self.best, self.bars_held = Levels(None, None, None), NAN, 0
        elif held == 0 or sign(after) != sign(held):
            # Opened: the levels the order was decided with now protect the position.
            order = self.order
            if order is not None and order.levels is not None and sign(order.target) == sign(after):
                self.levels = order.levels
            else:
                self.levels = Levels(None, None, None)
            self.best, self.bars_held = price, 0

    def slippage_fraction(self, coins: float, price: float, stats: tuple[float, float]) -> float:
        """The adverse move of a taker fill of `coins`, as a fraction of `price`."""
        model, value = self.rules.slippage, self.rules.slippage_value
        if model == "fixed":
            return value / 1e4
        if model == "volatility":
            return 0.0 if math.isnan(self.prev_range) else value * self.prev_range / price
        if model == "sqrt_impact":
            sigma, volume = stats
            if math.isnan(sigma) or math.isnan(volume) or volume <= 0:
                return 0.0
            return value * sigma * math.sqrt(abs(coins) / volume)
        return 0.0

    def participation_cap(self, qty: float, volume: float) -> float:
        """`qty` cut to the participation rate of the bar's volume, in whole lots."""
        cap = self.rules.participation * volume / self.rules.contract_size
        if abs(qty) <= cap:
            return qty
        return sign(qty) * math.floor(cap / self.rules.lot) * self.rules.lot

    # ------------------------------------------------------------ 1. funding

    def settle_funding(self, open_: float, rate: float) -> None:
        """Pay or receive the settlement on the position held, at the open price."""
        if math.isnan(rate) or self.qty == 0:
            return
        received = -self.qty * self.rules.contract_size * open_ * rate
        self.cash += received
        self.trade_pnl += received
        self.events["funding"] += 1

    # ------------------------------------------------------------ 2. the working order

    def cancel(self) -> None:
        """Drop the working order."""
        self.order = None

    def work_order(
        self,
        bar: int,
        bar_prices: tuple[float, float, float, float, float],
        stats: tuple[float, float],
    ) -> None:
        """Let the working order meet this bar: (open, high, low, close, volume)."""
        order = self.order
        if order is None:
            return
        open_, high, low, close, volume = bar_prices
        if order.reduce_only:
            if self.qty == 0 or sign(order.qty) == sign(self.qty):
                self.events["reduce_only_cancelled"] += 1
                self.cancel()
                return
            if abs(order.qty) > abs(self.qty):
                self.events["reduce_only_clipped"] += 1
                order.qty = -self.qty
        if order.limit is not None:
            arrival = open_ + (close - open_) * self.rules.latency
            if order.age > 0 or not self.would_cross(order, arrival):
                self.rest_limit(bar, order, high, low, volume)
                return
            self.events["post_only_rejected"] += 1
            if self.rules.fallback != "market":
                self.cancel()
                return
            order.limit = None  # the fallback market order goes at once
        self.take_market(bar, order, open_, close, volume, stats)

    @staticmethod
    def would_cross(order: Order, arrival: float) -> bool:
        """A buy limit at or above the market, or a sell at or below it, takes liquidity."""
        assert order.limit is not None
        return order.limit >= arrival if order.qty > 0 else order.limit <= arrival

    def rest_limit(self, bar: int, order: Order, high: float, low: float, volume: float) -> None:
        """A resting post-only limit through a bar: filled at its price when reached."""
        assert order.limit is not None
        buy = order.qty > 0
        if self.rules.touch:
            reached = low <= order.limit if buy else high >= order.limit
        else:
            reached = low < order.limit if buy else high > order.limit
        if reached:
            qty = self.participation_cap(order.qty, volume)
            if qty != 0:
                self.events["limit_fill"] += 1
                if qty != order.qty:
                    self.events["partial_fill"] += 1
                self.fill(bar, qty, order.limit, self.rules.maker_bps / 1e4, 0.0, order.reason)
                order.qty -= qty
        order.age += 1
        if order.qty == 0:
            self.order = None
        elif order.age >= self.rules.timeout_bars:
            self.events["limit_expired"] += 1
            if self.rules.fallback == "market":
                order.limit = None  # a market order from the next bar's open
            else:
                self.cancel()

    def take_market(
        self,
        bar: int,
        order: Order,
        open_: float,
        close: float,
        volume: float,
        stats: tuple[float, float],
    ) -> None:
        """A market (or sliced) order: filled on the bar's path after the latency."""
        qty = self.participation_cap(order.qty, volume)
        if qty != 0:
            # A sliced order is worked over a window: it fills around the window's middle.
            middle = min(self.rules.latency + self.rules.window / 2, 1.0)
            reference = open_ + (close - open_) * middle
            slice_coins = abs(qty) / self.rules.slices * self.rules.contract_size
            slip = self.slippage_fraction(slice_coins, reference, stats)
            price = reference * (1 + slip) if qty > 0 else reference * (1 - slip)
            cost = abs(qty) * self.rules.contract_size * abs(price - reference)
            self.events["market_fill"] += 1
            if qty != order.qty:
                self.events["partial_fill"] += 1
            self.fill(bar, qty, price, self.rules.taker_bps / 1e4, cost, order.reason)
            order.qty -= qty
        if order.qty == 0:
            self.order = None

    # ------------------------------------------------------------ 3. protective levels

    def protect(
        self, bar: int, open_: float, high: float, low: float, stats: tuple[float, float]
    ) -> None:
        """Check the bar's path against the stop, the liquidation price and the target."""
        if self.qty == 0:
            return
        long = self.qty > 0
        cs = self.rules.contract_size
        stop, reason = self.levels.stop, "stop_loss"
        if self.levels.trail is not None:
            trail = self.best - self.levels.trail if long else self.best + self.levels.trail
            if stop is None or (trail > stop if long else trail < stop):
                stop, reason = trail, "trailing_stop"
        liquidation = self.liquidation_price()
        if (
            stop is not None
            and (low <= stop if long else high >= stop)
            and (stop >= liquidation if long else stop <= liquidation)
        ):
            level = min(open_, stop) if long else max(open_, stop)
            if level == open_ and level != stop:
                self.events["stop_gap"] += 1
            slip = self.slippage_fraction(abs(self.qty) * cs, level, stats)
            price = level * (1 - slip) if long else level * (1 + slip)
            self.fill(
                bar, -self.qty, price, self.rules.taker_bps / 1e4,
                abs(self.qty) * cs * abs(price - level), reason,
            )  # fmt: skip
            self.cancel()
        elif low <= liquidation if long else high >= liquidation:
            price = min(open_, liquidation) if long else max(open_, liquidation)
            if price != liquidation:
                self.events["liquidation_gap"] += 1
            collateral = self.margin if self.rules.isolated else self.cash
            left = collateral + self.qty * cs * (price - self.entry)
            notional = abs(self.qty) * cs * price
            charge = min(self.rules.liquidation_fee * notional, max(left, 0.0))
            self.fill(bar, -self.qty, price, charge / notional, 0.0, "liquidation")
            self.cancel()
        elif self.levels.take is not None and (
            high >= self.levels.take if long else low <= self.levels.take
        ):
            self.fill(
                bar, -self.qty, self.levels.take, self.rules.maker_bps / 1e4, 0.0, "take_profit"
            )
            self.cancel()

    # ------------------------------------------------------------ 4. post-trade risk

    def post_trade(self, ts: int, equity: float) -> None:
        """New day, peak, loss limits and the losing streak, after the bar's close."""
        rules = self.rules
        day = ts // DAY_MS
        if day != self.day:
            self.day, self.day_start, self.daily_action = day, self.equity, None
        self.equity = equity
        self.peak = max(self.peak, equity)
        if rules.drawdown_limit > 0 and equity <= self.peak * (1 - rules.drawdown_limit):
            self.drawdown_action = stricter(self.drawdown_action, rules.drawdown_action)
        if rules.daily_limit > 0 and equity <= self.day_start * (1 - rules.daily_limit):
            self.daily_action = stricter(self.daily_action, rules.daily_action)
        if rules.streak > 0 and self.losses >= rules.streak:
            self.events["cooldown"] += 1
            self.paused_until = ts + rules.bar_ms + rules.cooldown_ms
            self.losses = 0

    # ------------------------------------------------------------ 5. the decision

    def size(self, price: float, equity: float, sigma: float, stop_distance: float) -> float:
        """Contracts of a new position (>= 0): the sizing method under the budget's caps."""
        rules = self.rules
        cs = rules.contract_size
        if not (price > 0 and equity > 0):
            self.events["bad_price"] += 1
            return 0.0
        if rules.sizing == "fixed_fraction":
            wanted = rules.size_a * equity
        elif rules.sizing == "fixed_notional":
            wanted = rules.size_a
        elif rules.sizing == "vol_target":
            annual = sigma * math.sqrt(YEAR_MS / rules.bar_ms)
            wanted = min(
                rules.size_a / annual * equity if annual > 0 else 0.0, rules.size_b * equity
            )
        else:  # risk_per_trade: the stop's loss is the risked fraction of equity
            if not stop_distance > 0:
                self.events["no_stop_distance"] += 1
                return 0.0
            wanted = min(rules.size_a * equity / stop_distance * price, rules.size_b * equity)
        caps = {
            "position_capped": rules.max_position_notional,
            "leverage_capped": rules.max_leverage * equity,
            "tier_capped": self.largest_tier_notional(price, equity),
            "order_capped": rules.max_order_notional,
        }
        for name, cap in caps.items():
            if wanted > cap:
                self.events[name] += 1
                wanted = cap
        qty = math.floor(wanted / (cs * price) / rules.lot) * rules.lot
        if qty < rules.min_qty:
            self.events["below_min_size"] += 1
            return 0.0
        return qty

    def decide(  # noqa: C901, PLR0912, PLR0915 - rules, sizing, pre-trade risk
        self,
        close_time: int,
        close: float,
        equity: float,
        signals: dict[str, float],
        sigma: float,
    ) -> None:
        """The target at this close and the order that moves toward it."""
        rules = self.rules
        held = self.qty
        aim = self.order.target if self.order is not None else held
        side = sign(aim)
        entry_long, entry_short = signals["entry_long"] == 1, signals["entry_short"] == 1
        exit_long, exit_short = signals["exit_long"] == 1, signals["exit_short"] == 1
        want = side
        if (side > 0 and (exit_long or (entry_short and not entry_long))) or (
            side < 0 and (exit_short or (entry_long and not entry_short))
        ):
            want = 0
        if want == 0:
            fresh = (
                1 if entry_long and not entry_short else -1 if entry_short and not entry_long else 0
            )
            # The side that just exited is not entered again on the same bar.
            want = 0 if side != 0 and fresh == side else fresh
        reason = "signal"
        if held != 0 and rules.max_bars > 0 and self.bars_held >= rules.max_bars:
            want, reason = 0, "time_stop"
        if signals["regime"] != 1:
            if rules.regime_flatten:
                if held != 0:
                    reason = "regime_flatten"
                want = 0
            elif want not in {0, side}:
                self.events["regime_blocked"] += 1
                want = 0
        action = max(self.drawdown_action, self.daily_action, key=lambda a: STRICTNESS[a])
        if action == "flatten" and held == 0:
            # Flat at last: the flatten action becomes a halt, from this decision on (so the
            # entries it stops are denied, and counted, as a halt's).
            if self.drawdown_action == "flatten":
                self.drawdown_action = "halt"
            if self.daily_action == "flatten":
                self.daily_action = "halt"
            action = max(self.drawdown_action, self.daily_action, key=lambda a: STRICTNESS[a])
        if action == "flatten":
            want, reason = 0, "risk_flatten"
        if want == 0:
            target = 0.0
        elif want == side:
            target = aim
        else:
            target = want * self.size(close, equity, sigma, signals["stops.stop_loss"])
        order = target - held
        grows = not (target == 0 or (sign(target) == sign(held) and abs(target) < abs(held)))
        if order != 0:
            closing_part = -held if want != sign(held) else 0.0
            if action == "halt":
                self.events["halt_denied"] += 1
                order = 0.0
            elif action == "reduce_only" and grows:
                self.events["reduce_only_denied"] += 1
                order = closing_part
            elif grows and close_time < self.paused_until:
                self.events["cooldown_denied"] += 1
                order = closing_part
        if order == 0:
            self.cancel()
            return
        after = held + order
        current = self.order
        if current is not None and current.qty == order and current.target == after:
            return  # the same order keeps working, with its price and age
        levels = None
        if after != 0 and sign(after) != sign(held):
            s = sign(after)
            stop_distance = signals["stops.stop_loss"]
            take_distance = signals["stops.take_profit"]
            trail_distance = signals["stops.trailing"]
            levels = Levels(
                close - s * stop_distance if stop_distance > 0 else None,
                close + s * take_distance if take_distance > 0 else None,
                trail_distance if trail_distance > 0 else None,
            )
        limit = None
        if rules.style == "post_only" and reason == "signal":
            limit = self.passive_price(close, buy=order > 0)
        reduce_only = after == 0 or (sign(after) == sign(held) and abs(after) < abs(held))
        self.order = Order(order, after, reason, reduce_only, limit, 0, levels)

    def passive_price(self, close: float, *, buy: bool) -> float:
        """The close moved away by the offset, on the tick grid, on the passive side."""
        per_unit = round(1 / self.rules.tick)
        offset = self.rules.offset_bps / 1e4
        wanted = close * (1 - offset) if buy else close * (1 + offset)
        # The grid index, free of the binary noise of `wanted * per_unit`.
        ticks = round(wanted * per_unit, 6)
        ticks = math.floor(ticks) if buy else math.ceil(ticks)
        return ticks / per_unit


def stricter(current: str | None, new: str) -> str:
    """The stricter of two risk actions."""
    return new if current is None or STRICTNESS[new] > STRICTNESS[current] else current


def statistics(bars: Mapping[str, np.ndarray], n: int) -> tuple[list[float], list[float]]:
    """Per bar, up to and including it: the population std of the last n one-bar log
    returns of the close, and the mean volume of the last n bars (NaN before there are n)."""
    close = np.asarray(bars["close"], dtype=float)
    volume = np.asarray(bars["volume"], dtype=float)
    sigma = np.full(close.size, np.nan)
    mean = np.full(close.size, np.nan)
    returns = np.log(close[1:] / close[:-1])
    if returns.size >= n:
        sigma[n:] = sliding_window_view(returns, n).std(axis=1)
    if volume.size >= n:
        mean[n - 1 :] = sliding_window_view(volume, n).mean(axis=1)
    return sigma.tolist(), mean.tolist()


SIGNALS = (
    "entry_long",
    "exit_long",
    "entry_short",
    "exit_short",
    "stops.stop_loss",
    "stops.take_profit",
    "stops.trailing",
    "regime",
)


def simulate(
    rules: Rules, bars: Mapping[str, np.ndarray], outputs: Mapping[str, np.ndarray]
) -> Outcome:
    """Run the rules over `bars` (ts, OHLCV; `funding`: the rate settling in the bar; optional
    `mark_price`) with the plan's `outputs`."""
    n = len(bars["ts"])
    ts = [int(t) for t in bars["ts"]]
    columns = {
        name: np.asarray(bars[name], dtype=float).tolist()
        for name in ("open", "high", "low", "close", "volume")
    }
    nans = [NAN] * n
    funding = np.asarray(bars["funding"], dtype=float).tolist() if "funding" in bars else nans
    mark = np.asarray(bars["mark_price"], dtype=float).tolist() if "mark_price" in bars else nans
    signals = {
        name: np.asarray(outputs[name], dtype=float).tolist() if name in outputs else nans
        for name in SIGNALS
    }
    if "regime" not in outputs:
        signals["regime"] = [1.0] * n
    fill_sigma, fill_volume = statistics(bars, rules.statistics_bars)
    size_sigma, _ = statistics(bars, rules.vol_bars)
    sim = Simulation(rules)
    equity_curve: list[float] = []
    positions: list[float] = []
    for t in range(n):
        o, h, lo, c, v = (columns[f][t] for f in ("open", "high", "low", "close", "volume"))
        if math.isnan(o) or math.isnan(h) or math.isnan(lo) or math.isnan(c):
            # A bar without data: nothing happens and nothing is decided.
            equity_curve.append(sim.equity)
            positions.append(sim.qty)
            continue
        # What is known when an order arrives in this bar: the statistics up to the bar before.
        stats = (fill_sigma[t - 1], fill_volume[t - 1]) if t > 0 else (NAN, NAN)
        sim.settle_funding(o, funding[t])
        sim.work_order(t, (o, h, lo, c, v), stats)
        sim.protect(t, o, h, lo, stats)
        if sim.qty != 0:
            sim.bars_held += 1
            sim.best = max(sim.best, h) if sim.qty > 0 else min(sim.best, lo)
        price = mark[t] if not math.isnan(mark[t]) else c
        equity = sim.cash + (
            sim.qty * rules.contract_size * (price - sim.entry) if sim.qty else 0.0
        )
        sim.post_trade(ts[t], equity)
        sim.prev_range = h - lo
        sim.decide(
            ts[t] + rules.bar_ms, c, equity, {name: signals[name][t] for name in SIGNALS},
            size_sigma[t],
        )  # fmt: skip
        equity_curve.append(equity)
        positions.append(sim.qty)
    return Outcome(sim.fills, equity_curve, positions, sim.events)
