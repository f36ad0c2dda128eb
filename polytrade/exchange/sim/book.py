"""The order book of one perpetual on the emulated venue: user orders and synthetic liquidity.

Two kinds of liquidity share each price level:

- **resting user orders**, in price-time priority (better price first; at one price, the order
  that arrived first fills first);
- **synthetic levels** around the replayed market (a `DepthProfile` around the mid, or a
  replayed snapshot), standing for everybody else on the exchange. `set_synthetic` replaces
  them wholesale; what a taker consumes stays consumed until the next replacement.

At one price, user orders fill BEFORE the synthetic quantity: a user order resting at a price
was, as far as the emulator can know, in the queue before the market's quantity that the next
snapshot reports there. The rule is deterministic, so a seeded run is reproducible.

Prices are integer ticks (price / tick size) so that levels compare exactly; quantities are
contracts. The book holds no accounts and no fees: `polytrade.exchange.sim.matching` decides
what a fill costs.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Generic, Protocol, TypeVar

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

BUY: Final = 1
SELL: Final = -1
DUST: Final = 1e-9
"""Contracts below this are nothing (quantities are whole lots; this absorbs float noise)."""


class Resting(Protocol):
    """What the book needs of a user order: side (+1 buy, -1 sell), price, arrival, size."""

    @property
    def side(self) -> int:
        """+1 for a buy, -1 for a sell."""
        ...

    @property
    def price_ticks(self) -> int:
        """Limit price in ticks."""
        ...

    @property
    def seq(self) -> int:
        """Arrival number: smaller arrived first."""
        ...

    @property
    def remaining(self) -> float:
        """Contracts still to fill."""
        ...


OrderT = TypeVar("OrderT", bound=Resting)


@dataclass(frozen=True, slots=True)
class DepthProfile:
    """Synthetic liquidity around a mid price: the same size at evenly spaced ticks.

    Attributes:
        tick_levels: Levels on each side.
        size_per_level_contracts: Contracts offered at each level.
        spread_ticks: The best bid is the tick at or below `mid - spread/2`, the best ask the
            tick at or above `mid + spread/2` (spread in ticks), so the book's spread is at
            least this many ticks and the mid sits inside it.
        step_ticks: Distance between neighbouring levels of one side, in ticks.
    """

    tick_levels: int = 20
    size_per_level_contracts: float = 100.0
    spread_ticks: int = 2
    step_ticks: int = 10

    def __post_init__(self) -> None:
        if self.tick_levels < 1 or self.spread_ticks < 1 or self.step_ticks < 1:
            raise ValueError(
                "a depth profile needs tick_levels, spread_ticks and step_ticks of at least 1; "
                f"they were {self.tick_levels}, {self.spread_ticks}, {self.step_ticks}"
            )
        if not self.size_per_level_contracts > 0.0:
            raise ValueError(
                f"size_per_level_contracts must be positive; it was {self.size_per_level_contracts}"
            )

    def levels(self, mid: float, tick: float) -> tuple[dict[int, float], dict[int, float]]:
        """Bids and asks around `mid` (USDT) as {price in ticks: contracts}, all above 0."""
        half = self.spread_ticks / 2.0
        # The 1e-9 keeps a mid that sits on the grid (up to float noise) on its own tick.
        best_bid = math.floor(mid / tick - half + 1e-9)
        best_ask = math.ceil(mid / tick + half - 1e-9)
        size = self.size_per_level_contracts
        bids = {best_bid - i * self.step_ticks: size for i in range(self.tick_levels)}
        asks = {best_ask + i * self.step_ticks: size for i in range(self.tick_levels)}
        return {p: q for p, q in bids.items() if p > 0}, asks


class OrderBook(Generic[OrderT]):
    """One symbol's book: user orders in price-time priority beside synthetic levels."""

    def __init__(self) -> None:
        self._orders: dict[int, dict[int, list[OrderT]]] = {BUY: {}, SELL: {}}
        self._order_prices: dict[int, list[int]] = {BUY: [], SELL: []}
        self._synthetic: dict[int, dict[int, float]] = {BUY: {}, SELL: {}}
        self._synthetic_prices: dict[int, list[int]] = {BUY: [], SELL: []}

    # ------------------------------------------------------------ user orders
    def add(self, order: OrderT) -> None:
        """Rest `order` at the back of its price level (orders arrive in time order)."""
        level = self._orders[order.side].get(order.price_ticks)
        if level is None:
            self._orders[order.side][order.price_ticks] = [order]
            bisect.insort(self._order_prices[order.side], order.price_ticks)
        else:
            level.append(order)

    def remove(self, order: OrderT) -> None:
        """Take `order` out of the book (filled or cancelled); a no-op when it is not in it."""
        level = self._orders[order.side].get(order.price_ticks)
        if level is None or order not in level:
            return
        level.remove(order)
        if not level:
            del self._orders[order.side][order.price_ticks]
            prices = self._order_prices[order.side]
            del prices[bisect.bisect_left(prices, order.price_ticks)]

    def best_order(self, side: int) -> OrderT | None:
        """The user order of `side` first in priority, or None."""
        prices = self._order_prices[side]
        if not prices:
            return None
        return self._orders[side][prices[-1] if side == BUY else prices[0]][0]

    def orders(self, side: int) -> Iterator[OrderT]:
        """User orders of `side` in priority order (best price first, then arrival)."""
        prices = self._order_prices[side]
        for price in reversed(prices) if side == BUY else prices:
            yield from list(self._orders[side][price])

    # ------------------------------------------------------------ synthetic levels
    def set_synthetic(self, bids: Mapping[int, float], asks: Mapping[int, float]) -> None:
        """Replace the synthetic levels ({price in ticks: contracts}; empty levels dropped)."""
        for side, levels in ((BUY, bids), (SELL, asks)):
            kept = {price: qty for price, qty in levels.items() if qty > DUST}
            self._synthetic[side] = kept
            self._synthetic_prices[side] = sorted(kept)

    def best_synthetic(self, side: int) -> tuple[int, float] | None:
        """The best synthetic level of `side` as (price in ticks, contracts), or None."""
        prices = self._synthetic_prices[side]
        if not prices:
            return None
        price = prices[-1] if side == BUY else prices[0]
        return price, self._synthetic[side][price]

    def take_synthetic(self, side: int, price_ticks: int, qty: float) -> None:
        """Consume `qty` contracts of the synthetic level at `price_ticks` on `side`."""
        left = self._synthetic[side][price_ticks] - qty
        if left > DUST:
            self._synthetic[side][price_ticks] = left
            return
        del self._synthetic[side][price_ticks]
        prices = self._synthetic_prices[side]
        del prices[bisect.bisect_left(prices, price_ticks)]

    # ------------------------------------------------------------ both kinds
    def best_maker(self, side: int) -> tuple[int, OrderT | None] | None:
        """The next liquidity of `side` a taker meets: (price in ticks, order or None).

        None as the order means the synthetic level at that price. At one price the user
        orders come first (see the module docstring).
        """
        order = self.best_order(side)
        synthetic = self.best_synthetic(side)
        if order is None:
            return None if synthetic is None else (synthetic[0], None)
        if synthetic is None or side * order.price_ticks >= side * synthetic[0]:
            return order.price_ticks, order
        return synthetic[0], None

    def makers(self, side: int) -> Iterator[tuple[int, OrderT | None, float]]:
        """All liquidity of `side` in the order a taker meets it, without consuming it.

        Yields (price in ticks, user order or None for synthetic, contracts).
        """
        prices = set(self._order_prices[side]) | set(self._synthetic_prices[side])
        for price in sorted(prices, reverse=side == BUY):
            for order in self._orders[side].get(price, ()):
                yield price, order, order.remaining
            qty = self._synthetic[side].get(price)
            if qty is not None:
                yield price, None, qty

    def depth(self, side: int, levels: int) -> list[tuple[int, float]]:
        """The best `levels` price levels of `side`, user and synthetic contracts summed."""
        prices = set(self._order_prices[side]) | set(self._synthetic_prices[side])
        out: list[tuple[int, float]] = []
        for price in sorted(prices, reverse=side == BUY)[:levels]:
            qty = sum(order.remaining for order in self._orders[side].get(price, ()))
            qty += self._synthetic[side].get(price, 0.0)
            out.append((price, qty))
        return out
