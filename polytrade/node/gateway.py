"""The order gateway: how the node's execution algorithms reach a venue.

An algorithm never talks to ccxt or to the store. It hands `OrderIntent`s to a gateway, which
writes each intent to the store before sending it, sends it once, resolves any lost reply by
looking the order up (never by sending again), applies fills exactly once, and answers with an
`OrderView`: the order as the node knows it now. The live node's gateway is the order manager
over `PoloniexAdapter` (`node.oms`); tests may use any object with these methods.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from polytrade.core.orders import OrderIntent, OrderStatus


@dataclass(frozen=True, slots=True)
class OrderView:
    """An order as the node knows it.

    Attributes:
        client_order_id: its deterministic id.
        status: where it stands (`OrderStatus`).
        contracts: its size.
        filled_contracts: how much of it has filled (never more than `contracts`).
        average_price: volume-weighted fill price in USDT (None before a fill).
        fees: fees paid so far in USDT.
        reason: why it was rejected or never sent, when it was (no secrets in it).
    """

    client_order_id: str
    status: OrderStatus
    contracts: float
    filled_contracts: float = 0.0
    average_price: float | None = None
    fees: float = 0.0
    reason: str = ""

    @property
    def remaining(self) -> float:
        """Contracts still to fill."""
        return max(self.contracts - self.filled_contracts, 0.0)


class OrderGateway(Protocol):
    """What an execution algorithm may ask of a venue (all amounts in contracts, USDT)."""

    async def submit(self, intent: OrderIntent) -> OrderView:
        """Persist the intent, send it once, and return the order as known after sending.

        A refusal comes back as a REJECTED view with its reason (it is not raised); a lost
        reply is resolved by lookup before returning (UNKNOWN only if the lookup failed too).
        """
        ...

    async def cancel(self, client_order_id: str) -> OrderView:
        """Cancel a working order; the answer says how much had filled (fills can race it)."""
        ...

    async def refresh(self, client_order_id: str) -> OrderView:
        """The latest state of an order (fills applied exactly once on the way)."""
        ...

    async def quote(self, symbol: str) -> tuple[float, float]:
        """The best bid and best ask of `symbol` now, in USDT."""
        ...
