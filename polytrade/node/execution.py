"""Execution algorithms: one decision of the node, worked into child orders through a gateway.

At a bar's close the node decides to change its position in one symbol by N contracts (signed:
positive buys). The strategy's ``execution`` spec says how that change is worked; `execute`
works it through an `OrderGateway` (the node's crash-safe order manager) and answers with an
`ExecutionReport`. Every child order is an `OrderIntent` whose client order id is
``client_order_id(deployment, decided_at_ms, style, n)``, n counting the decision's children
0, 1, 2 ... in the order they are sent, so a restarted node derives the same ids.

Styles (sizes are whole lots; a child larger than the contract's `max_contracts` is sent as
several children of at most that size, split as evenly as the lots allow):

- ``market``: one market child for the whole change.
- ``limit_post_only``: a post-only limit at the best bid (buy) or best ask (sell), `offset_bps`
  further away from the book, on the tick grid. A child the venue rejects because it would
  cross (`rejected_for_crossing`) is re-priced once from a fresh quote; a second rejection
  sends the rest to the fallback at once. The child rests until ``timeout_bars x bar_seconds``
  after the decision, then is cancelled and the unfilled rest goes to `fallback` (one market
  child, or nothing). Should the venue close the child early without filling it, the rest is
  posted again at a fresh price.
- ``twap`` / ``vwap``: `slices` children at ``decided_at + k x duration / slices``, sized by
  `slice_sizes` (twap: equal; vwap: proportional to `volume_profile` weights). Each child
  brings what is filled or working up to the schedule's cumulative target, so the unfilled rest
  of a cancelled limit child rolls into the next child and a slice too small to trade (below
  the minimum size) is merged into its neighbour. A twap's limit children (``child:
  limit_post_only``, at the touch) live until the next slice, then are cancelled; the last one
  lives until the end of the duration, and its rest goes to one market child. Market children
  (vwap's always) whose fills fall short (a thin book) roll their rest into the next slice;
  after the last slice it stays unfilled.
- ``iceberg``: a post-only limit showing `visible_lots` of the total (``visible_fraction``,
  whole lots, at least the minimum; a last tail below the minimum is shown with the part before
  it). When a shown child is done, the next one is shown at a fresh price. After
  `timeout_seconds` the shown child is cancelled and the rest goes to `fallback`.

Time is the caller's: `now_ms` and `sleep` are injected (the node passes the venue's clock;
tests pass an accelerated one), schedules and timeouts count from `decided_at_ms`, and a
working passive child is refreshed every `poll_seconds`.

**Invariants**, checked before every send (a breach raises `AssertionError` and nothing is
sent): what is filled by finished children plus the full size of every child that may still
fill plus the new child never exceeds the decision's size, so the decision never overfills,
whatever a cancel races; a reduce-only decision never exceeds the position it reduces, and no
child exceeds `max_contracts`; no child is sent once `stop` is set.

**Stopping.** Setting `stop` (an `asyncio.Event`) ends the decision at the next step: nothing
more is sent, working children are cancelled, and the report says ``stopped``. Cancelling the
task that runs `execute` does the same, then re-raises `CancelledError`. An error raised by the
gateway propagates as it is, leaving the children as they are: the store knows them.

**Resumption.** After a crash the node calls `execute` again with the same decision and
`recorded`: the `OrderView` of every child of the decision its store holds. Those children are
refreshed and adopted: none is sent again, what they filled counts, a working one keeps working
(or is cancelled where the algorithm would cancel it), and new children are numbered after the
last recorded one. The schedule continues from now: slices whose time has passed are merged
into the next one. (A re-price already spent before the crash may be spent once more;
`ExecutionReport.fallback_used` speaks of the resumed call only.)

**Parity with the backtest kernel** (`engine.kernel._work_order`, `engine.backtest`): the
kernel works the same intents on bars. Its post-only limit is priced from the decision bar's
close (live: the best bid/ask when sent), is rejected on arrival when it would cross and then
goes straight to its fallback (live: re-priced once first), fills only when a bar trades
through it (live: whenever the venue fills it), and falls back after `timeout_bars` bars. An
iceberg is a post-only limit for the whole size there, with ``ceil(timeout_seconds / bar)`` bars
of timeout (live shows only the visible part). TWAP and VWAP are filled there as takers at the
middle of their window within the next bar, each slice paying the slippage of its size (live:
real children, post-only ones as makers); a duration longer than a bar is clipped to one bar
there, and the volume profile is not read (its slices only size the slippage). Both sides
send a reduce-only order only to reduce and never let it flip the position.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import TYPE_CHECKING, Final

import numpy as np

from polytrade.core.orders import OrderIntent, OrderStatus, client_order_id
from polytrade.node.gateway import OrderView
from polytrade.spec.models.strategy import (
    IcebergExecution,
    MarketExecution,
    PostOnlyExecution,
    TwapExecution,
    VwapExecution,
)

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence

    from numpy.typing import ArrayLike

    from polytrade.core.orders import OrderKind, Side
    from polytrade.exchange.poloniex.adapter import Contract
    from polytrade.node.gateway import OrderGateway

log = logging.getLogger(__name__)

ExecutionStyle = (
    MarketExecution | PostOnlyExecution | TwapExecution | VwapExecution | IcebergExecution
)
"""A strategy's ``execution`` spec (`polytrade.spec.models.strategy.Execution`)."""

DAY_MS: Final = 86_400_000
MINUTE_MS: Final = 60_000
SETTLE_POLLS: Final = 10
"""Refreshes (one every `poll_seconds`) granted to a child to reach a final state after a
cancel, or a market child to report its fills, before the report is written without it."""
ADOPT_SEARCH: Final = 1_000
"""How far past the number of recorded children their indices are searched for."""
_PRICE_NOISE: Final = 1e-6
"""A price within this many ticks of the grid is on it (binary floating-point noise)."""
_LOT_NOISE: Final = 1e-6
"""A size within this many lots of a whole number is that number."""
_CROSSING_WORDS: Final = ("cross", "post-only", "post only", "postonly", "maker")


def _wall_clock_ms() -> int:
    return int(time.time() * 1000)


def _ensure(condition: bool, message: str) -> None:  # noqa: FBT001 - an assertion's shape
    """Raise `AssertionError` (a bug: nothing is sent) unless `condition` holds."""
    if not condition:
        raise AssertionError(message)


# ---------------------------------------------------------------- contract rules


@dataclass(frozen=True, slots=True)
class ContractRules:
    """What an order of one perpetual must respect (contracts, USDT).

    Attributes:
        tick: price step in USDT.
        lot: size step in contracts.
        min_contracts: smallest order in contracts.
        max_contracts: largest order in contracts; None when the venue lists none.
    """

    tick: float
    lot: float
    min_contracts: float
    max_contracts: float | None = None

    def __post_init__(self) -> None:
        if not (self.tick > 0.0 and self.lot > 0.0 and self.min_contracts > 0.0):
            raise ValueError(
                "tick, lot and min_contracts must be positive; they were "
                f"{self.tick}, {self.lot} and {self.min_contracts}"
            )
        if self.max_contracts is not None and self.max_contracts < self.min_contracts:
            raise ValueError(
                f"max_contracts ({self.max_contracts}) is below min_contracts "
                f"({self.min_contracts})"
            )

    @classmethod
    def of(cls, contract: Contract) -> ContractRules:
        """The rules of a contract as the adapter loaded it from the venue."""
        return cls(
            tick=float(contract.tick),
            lot=float(contract.lot),
            min_contracts=float(contract.min_contracts),
            max_contracts=None if contract.max_contracts is None else float(contract.max_contracts),
        )

    @property
    def min_lots(self) -> int:
        """The smallest order in lots (at least 1)."""
        return max(1, math.ceil(self.min_contracts / self.lot - 1e-9))

    @property
    def max_lots(self) -> int | None:
        """The largest order in lots, or None."""
        if self.max_contracts is None:
            return None
        return max(self.min_lots, math.floor(self.max_contracts / self.lot + 1e-9))

    def lots(self, contracts: float) -> int:
        """`contracts` (unsigned) in whole lots; ValueError when off the lot grid."""
        exact = abs(contracts) / self.lot
        lots = round(exact)
        if abs(exact - lots) > _LOT_NOISE:
            raise ValueError(
                f"{contracts} contracts is not a whole number of lots of {self.lot}; round the "
                "decision to the lot before executing it"
            )
        return lots

    def contracts(self, lots: int) -> float:
        """`lots` in contracts, without binary noise (3 lots of 0.1 is 0.3)."""
        return round(lots * self.lot, _decimals(self.lot))


def _decimals(step: float) -> int:
    exponent = Decimal(repr(step)).normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


# ---------------------------------------------------------------- pure schedule functions


def slice_sizes(total_lots: int, weights: Sequence[float], min_lots: int = 1) -> list[int]:
    """Whole-lot sizes of the slices of `total_lots`, proportional to `weights`.

    Each slice gets the floor of its exact share; the lots left over go one each to the slices
    with the largest remainders (ties: the earlier slice), so the sizes add up to exactly
    `total_lots` (equal weights: sizes differ by at most one lot, the larger ones first). A
    slice below `min_lots` is merged into the next one (the last into the one before it), and
    is then 0: every size is 0 or at least `min_lots`. Weights must be non-negative; if they
    add up to zero, the slices are equal.

    Raises:
        ValueError: no slices, a negative or non-finite weight, a negative total, or a total
            above zero but below `min_lots` (it cannot be traded at all).
    """
    if not weights:
        raise ValueError("a schedule needs at least one slice")
    if total_lots < 0 or min_lots < 1:
        raise ValueError(
            f"total_lots must be >= 0 and min_lots >= 1; they were {total_lots} and {min_lots}"
        )
    if 0 < total_lots < min_lots:
        raise ValueError(f"{total_lots} lots is below the minimum order of {min_lots} lots")
    if any(not (math.isfinite(w) and w >= 0.0) for w in weights):
        raise ValueError(f"weights must be finite and non-negative; they were {list(weights)}")
    shares = [Fraction(w) for w in weights]
    whole = sum(shares, Fraction(0))
    if whole == 0:
        shares, whole = [Fraction(1)] * len(weights), Fraction(len(weights))
    exact = [total_lots * share / whole for share in shares]
    sizes = [math.floor(q) for q in exact]
    left = total_lots - sum(sizes)
    by_remainder = sorted(range(len(exact)), key=lambda i: (-(exact[i] - sizes[i]), i))
    for i in by_remainder[:left]:
        sizes[i] += 1
    return _merge_small(sizes, min_lots)


def _merge_small(sizes: list[int], min_lots: int) -> list[int]:
    merged = [0] * len(sizes)
    carry = 0
    last = -1
    for i, size in enumerate(sizes):
        carry += size
        if carry >= min_lots:
            merged[i], carry, last = carry, 0, i
    if carry:
        if last < 0:  # pragma: no cover - ruled out: the total is 0 or at least min_lots
            raise AssertionError("a positive total below the minimum cannot be sliced")
        merged[last] += carry
    return merged


def slice_times(start_ms: int, duration_seconds: float, slices: int) -> list[int]:
    """When each slice is sent (ms): ``start + k x duration / slices``, k = 0 .. slices - 1."""
    if slices < 1 or not duration_seconds > 0:
        raise ValueError(
            f"a schedule needs slices >= 1 and a positive duration; they were {slices} and "
            f"{duration_seconds} s"
        )
    return [start_ms + round(k * duration_seconds * 1000 / slices) for k in range(slices)]


def split_lots(lots: int, max_lots: int | None, min_lots: int = 1) -> list[int]:
    """`lots` as the fewest orders of at most `max_lots` each, as equal as whole lots allow."""
    if lots <= 0:
        return []
    if max_lots is None or lots <= max_lots:
        return [lots]
    count = math.ceil(lots / max_lots)
    size, larger = divmod(lots, count)
    if size < min_lots:  # pragma: no cover - a venue whose largest order is under twice its least
        return [part for part in slice_sizes(lots, [1.0] * count, min_lots) if part]
    return [size + 1] * larger + [size] * (count - larger)


def visible_lots(total_lots: int, fraction: float, min_lots: int, max_lots: int | None) -> int:
    """The lots an iceberg shows: `fraction` of the total, floored, at least the minimum.

    Never more than the total, nor more than `max_lots`.
    """
    shown = max(math.floor(total_lots * fraction + 1e-9), min_lots)
    if max_lots is not None:
        shown = min(shown, max_lots)
    return min(shown, total_lots)


def to_tick(price: float, tick: float, *, up: bool) -> float:
    """`price` on the tick grid, rounded up or down (a price on the grid stays where it is)."""
    ticks = price / tick
    nearest = round(ticks)
    if abs(ticks - nearest) <= _PRICE_NOISE:
        whole = nearest
    else:
        whole = math.ceil(ticks) if up else math.floor(ticks)
    return round(whole * tick, _decimals(tick))


def passive_price(side: Side, bid: float, ask: float, offset_bps: float, tick: float) -> float:
    """The price of a resting limit: behind the best bid (buy) or ask (sell) by `offset_bps`.

    Rounded away from the book onto the tick grid (a buy down, a sell up), so it never crosses
    the quote it was computed from. Prices in USDT; `offset_bps` in basis points of price.
    """
    if not (bid > 0.0 and ask > 0.0):
        raise ValueError(f"a quote needs a positive bid and ask; they were {bid} and {ask}")
    offset = offset_bps * 1e-4
    if side == "buy":
        return to_tick(bid * (1.0 - offset), tick, up=False)
    return to_tick(ask * (1.0 + offset), tick, up=True)


def rejected_for_crossing(reason: str) -> bool:
    """Whether a rejection's reason says a post-only order would have crossed the book.

    The gateway passes the venue's words on (Poloniex: code 10002, "post-only buy at ...
    would cross the book"); a rejection for anything else (margin, price band, no position)
    is not re-priced.
    """
    text = reason.lower()
    if "insufficient" in text or "price band" in text:
        return False
    return any(word in text for word in _CROSSING_WORDS)


def volume_profile(
    ts_ms: ArrayLike,
    volume: ArrayLike,
    start_ms: int,
    duration_seconds: float,
    slices: int,
    lookback_days: int,
    *,
    bar_ms: int | None = None,
) -> np.ndarray:
    """VWAP slice weights from history: each slice's share of the usual volume at its time of day.

    Args:
        ts_ms: start times (ms) of history bars (any order, not overlapping).
        volume: their volumes (contracts; any unit, only ratios matter).
        start_ms: when the schedule starts (ms); only bars closed by then are read.
        duration_seconds: the schedule's length; slice i covers
            ``[start + i x d / slices, start + (i + 1) x d / slices)``.
        slices: number of slices.
        lookback_days: days of history read: the same windows 1 .. `lookback_days` days
            before `start_ms` (same time of day, UTC).
        bar_ms: the bars' length in ms; None: the smallest spacing between bar starts (one
            minute when there is a single bar).

    Returns:
        `slices` weights adding up to 1. A bar's volume is spread evenly over its time; a
        slice's usual volume is the volume its windows saw over those days, per ms of bars
        there, times the slice's length (a day without bars in the window does not count). A
        slice with no history at all gets the mean of the others ("uniform where history is
        missing"); with no usable history at all the weights are equal.
    """
    if slices < 1 or lookback_days < 1 or not duration_seconds > 0:
        raise ValueError(
            "a volume profile needs slices >= 1, lookback_days >= 1 and a positive duration; "
            f"they were {slices}, {lookback_days} and {duration_seconds} s"
        )
    starts = np.asarray(ts_ms, dtype=np.int64).ravel()
    sizes = np.asarray(volume, dtype=np.float64).ravel()
    if starts.shape != sizes.shape:
        raise ValueError(
            f"ts_ms and volume must have the same length; they were {starts.size} and {sizes.size}"
        )
    if bar_ms is None:
        spacing = np.diff(np.unique(starts))
        bar_ms = int(spacing.min()) if spacing.size else MINUTE_MS
    if bar_ms <= 0:
        raise ValueError(f"bar_ms must be positive; it was {bar_ms}")
    keep = (starts + bar_ms <= start_ms) & np.isfinite(sizes) & (sizes >= 0.0)
    order = np.argsort(starts[keep], kind="stable")
    starts, sizes = starts[keep][order], sizes[keep][order]
    uniform = np.full(slices, 1.0 / slices)
    if starts.size == 0:
        return uniform

    edges = np.array(
        [round(i * duration_seconds * 1000 / slices) for i in range(slices + 1)], dtype=np.int64
    )
    days = np.arange(1, lookback_days + 1, dtype=np.int64)
    base = start_ms - days[:, None] * DAY_MS  # (days, 1)
    lows, highs = base + edges[None, :-1], base + edges[None, 1:]  # (days, slices)
    before = np.concatenate(([0.0], np.cumsum(sizes)))

    def traded(t: np.ndarray) -> np.ndarray:
        # Volume and bar time (ms) up to t: full bars before the last bar started by t, plus
        # the elapsed part of that bar.
        last = np.searchsorted(starts, t, side="right") - 1
        inside = np.clip((t - starts[np.maximum(last, 0)]) / bar_ms, 0.0, 1.0)
        inside = np.where(last >= 0, inside, 0.0)
        safe = np.maximum(last, 0)
        vol = np.where(last >= 0, before[safe] + sizes[safe] * inside, 0.0)
        covered = np.where(last >= 0, (safe + inside) * bar_ms, 0.0)
        return np.stack((vol, covered))

    seen = traded(highs) - traded(lows)  # (2, days, slices)
    vol, covered = seen[0].sum(axis=0), seen[1].sum(axis=0)
    lengths = np.diff(edges).astype(np.float64)
    known = covered > 0.0
    if not known.any():
        return uniform
    usual = np.zeros(slices)
    usual[known] = vol[known] / covered[known] * lengths[known]
    usual[~known] = usual[known].mean()
    total = float(usual.sum())
    if not total > 0.0:
        return uniform
    weights: np.ndarray = usual / total
    return weights


# ---------------------------------------------------------------- the report


@dataclass(frozen=True, slots=True)
class ExecutionReport:
    """What became of one decision.

    Attributes:
        symbol: the venue's symbol.
        style: the execution style (``market``, ``twap`` ...).
        requested_contracts: the decision, signed (positive buys).
        filled_contracts: what filled, signed like the request.
        average_price: volume-weighted fill price in USDT; None with no fill.
        fees: fees paid by the children, USDT (negative: rebates).
        children: every child of the decision known to this call (recorded ones first), in
            the order sent, as last seen.
        fallback_used: this call sent the unfilled rest of passive children as a market child.
        unfilled_contracts: requested minus filled, signed: what the decision did not get
            (cancelled at a timeout with ``fallback: cancel``, stopped, or short of liquidity).
        stopped: the decision was stopped before it was done (`stop` set).
    """

    symbol: str
    style: str
    requested_contracts: float
    filled_contracts: float
    average_price: float | None
    fees: float
    children: tuple[OrderView, ...]
    fallback_used: bool
    unfilled_contracts: float
    stopped: bool


# ---------------------------------------------------------------- one decision at work


@dataclass
class _Child:
    index: int
    view: OrderView
    fallback: bool = False


@dataclass
class _Work:
    """The state of one decision: its children and what they filled (sizes in lots)."""

    style: str
    symbol: str
    side: Side
    total_lots: int
    reduce_only: bool
    limit_lots: int
    """The most the children may commit: the total (and, reduce-only, the position)."""
    decided_at_ms: int
    deployment: str
    gateway: OrderGateway
    rules: ContractRules
    now_ms: Callable[[], int]
    sleep: Callable[[float], Awaitable[None]]
    poll_seconds: float
    stop: asyncio.Event | None
    children: list[_Child] = field(default_factory=list)
    next_index: int = 0

    # ------------------------------------------------------------ bookkeeping
    @property
    def stopped(self) -> bool:
        return self.stop is not None and self.stop.is_set()

    def working(self) -> list[_Child]:
        return [c for c in self.children if not c.view.status.terminal]

    def filled_lots(self) -> int:
        return sum(self.rules.lots(c.view.filled_contracts) for c in self.children)

    def committed_lots(self) -> int:
        """Filled by finished children plus the whole size of every child that may fill."""
        return sum(
            self.rules.lots(c.view.filled_contracts if c.view.status.terminal else c.view.contracts)
            for c in self.children
        )

    def rest_lots(self) -> int:
        return self.total_lots - self.committed_lots()

    async def adopt(self, recorded: Sequence[OrderView]) -> None:
        """Take over the recorded children of this decision (refreshing the unfinished ones)."""
        by_id = {view.client_order_id: view for view in recorded}
        found: list[_Child] = []
        for index in range(len(by_id) + ADOPT_SEARCH):
            if len(found) == len(by_id):
                break
            view = by_id.get(self._id(index))
            if view is not None:
                found.append(_Child(index, view))
        if len(found) != len(by_id):
            ours = {self._id(c.index) for c in found}
            strangers = sorted(set(by_id) - ours)
            raise ValueError(
                f"recorded orders {strangers} are not children of this decision "
                f"({self.style} of {self.deployment!r} decided at {self.decided_at_ms})"
            )
        self.children = found
        self.next_index = found[-1].index + 1 if found else 0
        await self.refresh_working()

    def _id(self, index: int) -> str:
        return client_order_id(self.deployment, self.decided_at_ms, self.style, index)

    # ------------------------------------------------------------ sending
    async def submit(
        self, kind: OrderKind, lots: int, price: float | None = None, *, fallback: bool = False
    ) -> OrderView | None:
        """Send one child; None (nothing sent) once stopped or when `lots` is below the minimum."""
        if self.stopped or lots < self.rules.min_lots:
            return None
        committed = self.committed_lots()
        _ensure(
            committed + lots <= self.limit_lots,
            f"a child of {lots} lots would commit {committed + lots} lots of a decision limited "
            f"to {self.limit_lots} (size {self.total_lots}, reduce-only {self.reduce_only})",
        )
        max_lots = self.rules.max_lots
        _ensure(
            max_lots is None or lots <= max_lots,
            f"a child of {lots} lots is above the largest order of {max_lots} lots",
        )
        index = self.next_index
        self.next_index += 1
        intent = OrderIntent(
            client_order_id=self._id(index),
            symbol=self.symbol,
            side=self.side,
            kind=kind,
            contracts=self.rules.contracts(lots),
            price=price,
            post_only=kind == "limit",
            reduce_only=self.reduce_only,
            purpose=self.style,
            decided_at_ms=self.decided_at_ms,
        )
        # Known before it is sent, so a stop while it is in flight still finds and cancels it.
        child = _Child(
            index,
            OrderView(intent.client_order_id, OrderStatus.PENDING_SUBMIT, intent.contracts),
            fallback,
        )
        self.children.append(child)
        child.view = await self.gateway.submit(intent)
        return child.view

    async def send_market(self, lots: int, *, fallback: bool = False) -> None:
        """Market children for `lots` (split at the largest order size)."""
        for part in split_lots(lots, self.rules.max_lots, self.rules.min_lots):
            if await self.submit("market", part, fallback=fallback) is None:
                return

    async def post(self, lots: int, offset_bps: float) -> bool:
        """Post-only children for `lots` at a fresh passive price; False if refused.

        A child rejected for crossing is re-priced once from a fresh quote; a second rejection,
        or a rejection for another reason, refuses the rest (nothing more is posted).
        """
        repriced = False
        price = await self.passive_price(offset_bps)
        for part in split_lots(lots, self.rules.max_lots, self.rules.min_lots):
            while True:
                view = await self.submit("limit", part, price)
                if view is None:
                    return False
                if view.status is not OrderStatus.REJECTED:
                    break
                if repriced or not rejected_for_crossing(view.reason):
                    log.info("post-only child %s refused: %s", view.client_order_id, view.reason)
                    return False
                repriced = True
                price = await self.passive_price(offset_bps)
        return True

    async def passive_price(self, offset_bps: float) -> float:
        bid, ask = await self.gateway.quote(self.symbol)
        return passive_price(self.side, bid, ask, offset_bps, self.rules.tick)

    # ------------------------------------------------------------ waiting
    async def pause(self, seconds: float) -> None:
        """Wait `seconds`, or less if `stop` is set meanwhile."""
        if self.stop is None:
            await self.sleep(seconds)
            return
        if self.stop.is_set():
            return
        napping = asyncio.ensure_future(self.sleep(seconds))
        stopping = asyncio.ensure_future(self.stop.wait())
        try:
            await asyncio.wait({napping, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            napping.cancel()
            stopping.cancel()

    async def pause_until(self, deadline_ms: int, until: Callable[[], bool] | None = None) -> None:
        """Wait until `deadline_ms`, until stopped, or (refreshing every poll) until `until()`."""
        while not self.stopped:
            if until is not None and until():
                return
            left_s = (deadline_ms - self.now_ms()) / 1000.0
            if left_s <= 0.0:
                return
            if until is None:
                await self.pause(left_s)
                continue
            await self.pause(min(left_s, self.poll_seconds))
            if not self.stopped:
                await self.refresh_working()

    async def refresh_working(self) -> None:
        for child in self.working():
            child.view = await self.gateway.refresh(child.view.client_order_id)

    async def settle(self) -> None:
        """Give unfinished children a few polls to report their final state."""
        for _ in range(SETTLE_POLLS):
            if not self.working():
                return
            await self.sleep(self.poll_seconds)
            await self.refresh_working()

    async def cancel_working(self) -> None:
        """Cancel every working child and wait (a few polls) for each to be final."""
        for child in self.working():
            if child.view.status is OrderStatus.PENDING_SUBMIT:
                child.view = await self.gateway.refresh(child.view.client_order_id)
                if child.view.status.terminal:
                    continue
            child.view = await self.gateway.cancel(child.view.client_order_id)
        await self.settle()

    async def abandon(self) -> None:
        """Cancel what works after the task was cancelled; a failure is logged, not raised."""
        for child in self.working():
            try:
                if child.view.status is OrderStatus.PENDING_SUBMIT:
                    child.view = await self.gateway.refresh(child.view.client_order_id)
                if not child.view.status.terminal:
                    child.view = await self.gateway.cancel(child.view.client_order_id)
            except Exception:
                log.exception(
                    "could not cancel child %s of a stopped decision; reconciliation will",
                    child.view.client_order_id,
                )

    # ------------------------------------------------------------ the answer
    def report(self) -> ExecutionReport:
        sign = 1.0 if self.side == "buy" else -1.0
        filled = sum(c.view.filled_contracts for c in self.children)
        value = sum(
            c.view.filled_contracts * c.view.average_price
            for c in self.children
            if c.view.average_price is not None and c.view.filled_contracts > 0.0
        )
        requested = self.rules.contracts(self.total_lots)
        filled_exact = self.rules.contracts(self.filled_lots())
        return ExecutionReport(
            symbol=self.symbol,
            style=self.style,
            requested_contracts=sign * requested,
            filled_contracts=sign * filled_exact,
            average_price=value / filled if filled > 0.0 else None,
            fees=sum(c.view.fees for c in self.children),
            children=tuple(c.view for c in self.children),
            fallback_used=any(c.fallback for c in self.children),
            unfilled_contracts=sign * self.rules.contracts(self.total_lots - self.filled_lots()),
            stopped=self.stopped,
        )


# ---------------------------------------------------------------- the algorithms


async def _work_market(work: _Work) -> None:
    await work.send_market(work.rest_lots())


async def _work_passive(
    work: _Work, show_lots: int, offset_bps: float, deadline_ms: int, fallback: str
) -> None:
    """Post-only children of at most `show_lots` until the deadline, then the fallback."""
    while not work.stopped and work.now_ms() < deadline_ms:
        if not work.working():
            rest = work.rest_lots()
            if rest < work.rules.min_lots:
                break
            shown = min(show_lots, rest)
            if rest - shown < work.rules.min_lots:
                shown = rest  # a tail too small to show on its own goes with this one
            if not await work.post(shown, offset_bps):
                break  # refused twice (or for good): the fallback acts now
            if not work.working():
                # It ended at once (never sent, or filled on arrival): breathe before the next.
                await work.pause(work.poll_seconds)
                continue
        await work.pause_until(deadline_ms, until=lambda: not work.working())
    if work.stopped:
        return
    await work.cancel_working()
    if fallback == "market":
        await work.send_market(work.total_lots - work.filled_lots(), fallback=True)


async def _work_schedule(
    work: _Work, sizes: Sequence[int], times: Sequence[int], end_ms: int, child: str
) -> None:
    """TWAP/VWAP: at each slice time, bring what is filled or working up to the schedule."""
    target = 0
    for k, (size, at) in enumerate(zip(sizes, times, strict=True)):
        target += size
        if k + 1 < len(times) and times[k + 1] <= work.now_ms():
            continue  # missed (a resumed decision): its part goes with the next slice
        await work.pause_until(at)
        if work.stopped:
            return
        if child == "limit_post_only":
            await work.cancel_working()  # the rest rolls into this slice's child
        rest = min(target, work.total_lots) - work.committed_lots()
        if rest < work.rules.min_lots:
            continue
        if child == "market":
            await work.send_market(rest)
        else:
            await work.post(rest, 0.0)
    if child != "limit_post_only" or work.stopped:
        return
    await work.pause_until(end_ms)
    if work.stopped:
        return
    await work.cancel_working()
    await work.send_market(work.total_lots - work.filled_lots(), fallback=True)


# ---------------------------------------------------------------- the entry point


async def execute(  # noqa: PLR0913 - one decision and the means to work it, keyword-only
    style: ExecutionStyle,
    *,
    symbol: str,
    contracts: float,
    decided_at_ms: int,
    deployment: str,
    gateway: OrderGateway,
    contract: ContractRules,
    bar_seconds: float,
    reduce_only: bool = False,
    position: float | None = None,
    profile: Sequence[float] | None = None,
    recorded: Sequence[OrderView] = (),
    stop: asyncio.Event | None = None,
    now_ms: Callable[[], int] = _wall_clock_ms,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    poll_seconds: float = 1.0,
) -> ExecutionReport:
    """Work one decision (change the position in `symbol` by `contracts`) in `style`.

    Args:
        style: the strategy's execution spec.
        symbol: the venue's symbol (``BTC_USDT_PERP``).
        contracts: the change, signed (positive buys), a whole number of lots, at least the
            minimum order.
        decided_at_ms: the close (ms) of the bar that decided it: ids derive from it, and
            schedules and timeouts count from it.
        deployment: what trades (profile and spec hash): ids derive from it.
        gateway: the order manager (`OrderGateway`).
        contract: tick, lot, minimum and maximum order (`ContractRules.of` an adapter
            `Contract`).
        bar_seconds: the strategy's bar length (the post-only timeout is in bars).
        reduce_only: every child is reduce-only.
        position: the signed position when the decision was taken (before any of its children
            filled); required with `reduce_only`, which may not exceed it.
        profile: vwap only: the slice weights (`volume_profile`); None: equal weights.
        recorded: the views of this decision's children the store holds (resumption after a
            crash); they are adopted, never sent again.
        stop: set it to stop the decision (see the module docstring).
        now_ms: the clock (ms since the epoch).
        sleep: how to wait (seconds).
        poll_seconds: how often a working passive child is refreshed.

    Returns:
        The `ExecutionReport`.

    Raises:
        ValueError: the decision cannot be worked as given (zero or off the lot grid, below
            the minimum, reduce-only beyond the position, a profile of the wrong length,
            recorded orders that are not this decision's).
        AssertionError: an invariant would break (a bug); nothing was sent for it.
    """
    total_lots, limit_lots = _sizes(contracts, contract, reduce_only=reduce_only, position=position)
    weights: Sequence[float] | None = None
    if isinstance(style, VwapExecution):
        weights = [1.0] * style.slices if profile is None else profile
        if len(weights) != style.slices:
            raise ValueError(
                f"a vwap of {style.slices} slices needs {style.slices} weights; the profile "
                f"had {len(weights)}"
            )
    if not poll_seconds > 0:
        raise ValueError(f"poll_seconds must be positive; it was {poll_seconds}")

    work = _Work(
        style=style.style,
        symbol=symbol,
        side="buy" if contracts > 0 else "sell",
        total_lots=total_lots,
        reduce_only=reduce_only,
        limit_lots=limit_lots,
        decided_at_ms=decided_at_ms,
        deployment=deployment,
        gateway=gateway,
        rules=contract,
        now_ms=now_ms,
        sleep=sleep,
        poll_seconds=poll_seconds,
        stop=stop,
    )
    try:
        await work.adopt(recorded)
        if not work.stopped:
            await _run(work, style, weights, bar_seconds)
        if work.stopped:
            await work.cancel_working()
        else:
            await work.settle()
    except asyncio.CancelledError:
        await work.abandon()
        raise
    return work.report()


def _sizes(
    contracts: float, contract: ContractRules, *, reduce_only: bool, position: float | None
) -> tuple[int, int]:
    """The decision's size in lots, and the most its children may commit (see `_Work`)."""
    if not contracts:
        raise ValueError("a decision to change the position by 0 contracts needs no execution")
    total_lots = contract.lots(contracts)
    if total_lots < contract.min_lots:
        raise ValueError(
            f"{abs(contracts)} contracts is below the minimum order of {contract.min_contracts}"
        )
    if not reduce_only:
        return total_lots, total_lots
    if position is None or not position or (position > 0) == (contracts > 0):
        raise ValueError(
            f"a reduce-only decision of {contracts} contracts needs an opposite position to "
            f"reduce; the position was {position}"
        )
    held = math.floor(abs(position) / contract.lot + _LOT_NOISE)
    if total_lots > held:
        raise ValueError(
            f"a reduce-only decision of {contracts} contracts exceeds the position of "
            f"{position}; reduce it to the position"
        )
    return total_lots, min(total_lots, held)


async def _run(
    work: _Work, style: ExecutionStyle, weights: Sequence[float] | None, bar_seconds: float
) -> None:
    start = work.decided_at_ms
    rules = work.rules
    if isinstance(style, MarketExecution):
        await _work_market(work)
    elif isinstance(style, PostOnlyExecution):
        deadline = start + round(style.timeout_bars * bar_seconds * 1000)
        await _work_passive(work, work.total_lots, style.offset_bps, deadline, style.fallback)
    elif isinstance(style, IcebergExecution):
        shown = visible_lots(
            work.total_lots, style.visible_fraction, rules.min_lots, rules.max_lots
        )
        deadline = start + style.timeout_seconds * 1000
        await _work_passive(work, shown, style.offset_bps, deadline, style.fallback)
    else:
        slice_weights = [1.0] * style.slices if weights is None else weights
        sizes = slice_sizes(work.total_lots, slice_weights, rules.min_lots)
        times = slice_times(start, style.duration_seconds, style.slices)
        end = start + style.duration_seconds * 1000
        child = style.child if isinstance(style, TwapExecution) else "market"
        await _work_schedule(work, sizes, times, end, child)
