"""Orders and fills as every venue sees them: one state machine, deterministic client ids.

One order state machine serves every venue (the simulated one in paper mode, Poloniex live).
An order is an *intent* first, written to the store before anything is sent, under a client
order id derived from what decided it, so a node that crashes and decides the same thing again
derives the same id and finds the order instead of sending a second one.

States and transitions (every transition is persisted before the node acts on it)::

    PENDING_SUBMIT ──send──▶ SUBMITTED ──ack──▶ ACCEPTED ──fill──▶ PARTIALLY_FILLED ──▶ FILLED
          │                     │  │                │  │                 │
          │ never sent          │  └─ refused ─▶ REJECTED                │
          ▼                     ▼                   ▼                    ▼
       NEVER_SENT            UNKNOWN ◀── reply lost (resolved by lookup, never by resending)
                                                PENDING_CANCEL ──▶ CANCELLED

- PENDING_SUBMIT: the intent is durable, nothing has gone out yet.
- SUBMITTED: the request went out; no answer yet.
- UNKNOWN: the request went out and the answer was lost (timeout, disconnect, 5xx, a reply
  that could not be read). Only a lookup by client order id leaves this state.
- NEVER_SENT: an intent found after a crash whose lookup says the venue never had it, once the
  venue can no longer accept it (its signature window has passed).
- ACCEPTED, PARTIALLY_FILLED: working on the venue.
- PENDING_CANCEL: a cancel was sent; fills may still arrive.
- FILLED, CANCELLED (possibly after partial fills), REJECTED, NEVER_SENT: terminal.

Fills are keyed by the venue's trade id and applied exactly once.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Final, Literal


class OrderStatus(StrEnum):
    """Where an order stands; the values are what the store keeps."""

    PENDING_SUBMIT = "pending_submit"
    SUBMITTED = "submitted"
    UNKNOWN = "unknown"
    ACCEPTED = "accepted"
    PARTIALLY_FILLED = "partially_filled"
    PENDING_CANCEL = "pending_cancel"
    FILLED = "filled"
    CANCELLED = "cancelled"
    REJECTED = "rejected"
    NEVER_SENT = "never_sent"

    @property
    def terminal(self) -> bool:
        """No transition leaves this state."""
        return self in TERMINAL

    @property
    def working(self) -> bool:
        """The venue may hold this order or fill it (including states still being resolved)."""
        return not self.terminal and self is not OrderStatus.PENDING_SUBMIT


TERMINAL: Final = frozenset(
    {OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.REJECTED, OrderStatus.NEVER_SENT}
)

_S = OrderStatus
TRANSITIONS: Final[dict[OrderStatus, frozenset[OrderStatus]]] = {
    _S.PENDING_SUBMIT: frozenset({_S.SUBMITTED, _S.NEVER_SENT, _S.UNKNOWN}),
    _S.SUBMITTED: frozenset(
        {_S.ACCEPTED, _S.PARTIALLY_FILLED, _S.FILLED, _S.CANCELLED, _S.REJECTED, _S.UNKNOWN}
    ),
    _S.UNKNOWN: frozenset(
        {_S.ACCEPTED, _S.PARTIALLY_FILLED, _S.FILLED, _S.CANCELLED, _S.NEVER_SENT}
    ),
    _S.ACCEPTED: frozenset({_S.PARTIALLY_FILLED, _S.FILLED, _S.PENDING_CANCEL, _S.CANCELLED}),
    _S.PARTIALLY_FILLED: frozenset(
        {_S.PARTIALLY_FILLED, _S.FILLED, _S.PENDING_CANCEL, _S.CANCELLED}
    ),
    _S.PENDING_CANCEL: frozenset({_S.PARTIALLY_FILLED, _S.FILLED, _S.CANCELLED, _S.UNKNOWN}),
    _S.FILLED: frozenset(),
    _S.CANCELLED: frozenset(),
    _S.REJECTED: frozenset(),
    _S.NEVER_SENT: frozenset(),
}
"""Allowed moves. PENDING_SUBMIT -> UNKNOWN: a crash after the intent, outcome not yet known
(the send may have happened); PARTIALLY_FILLED -> PARTIALLY_FILLED: one more partial fill."""


class TransitionError(ValueError):
    """A move the state machine does not allow (a bug, or a venue report out of order)."""


def check_transition(old: OrderStatus, new: OrderStatus) -> None:
    """Raise `TransitionError` unless `old` -> `new` is allowed (staying put always is)."""
    if old is not new and new not in TRANSITIONS[old]:
        raise TransitionError(f"an order cannot go from {old.value} to {new.value}")


Side = Literal["buy", "sell"]
OrderKind = Literal["market", "limit"]

CLIENT_ID_MAX: Final = 32
"""Longest client order id Polytrade generates (Poloniex accepts letters, digits, _ and -)."""
_CLIENT_ID: Final = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


def client_order_id(deployment: str, decided_at_ms: int, purpose: str, slice_index: int = 0) -> str:
    """The deterministic client order id of one order of a decision.

    Args:
        deployment: what trades (profile name and its spec hash, for example); only its hash
            is used, so any text will do.
        decided_at_ms: the close time (ms) of the bar whose decision the order carries out.
        purpose: what the order is for within that decision (``"entry"``, ``"kill"``, an
            execution algorithm's name).
        slice_index: the child order's number within the decision (0 for a single order).

    The same arguments always give the same id, so a node that crashes after writing an
    intent and decides again finds the intent (and the venue's order) under the same id.
    """
    digest = hashlib.sha256(f"{deployment}|{purpose}".encode()).hexdigest()[:8]
    text = f"pt{digest}{_base36(decided_at_ms)}{_base36(slice_index)}"
    return text[:CLIENT_ID_MAX]


def is_client_order_id(text: str) -> bool:
    """Whether `text` has the shape of a client order id the venue accepts."""
    return bool(_CLIENT_ID.match(text))


def _base36(value: int) -> str:
    if value < 0:
        raise ValueError(f"ids are built from non-negative numbers; got {value}")
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        value, rest = divmod(value, 36)
        out = digits[rest] + out
        if value == 0:
            return out


@dataclass(frozen=True, slots=True)
class OrderIntent:
    """What the node wants sent: written to the store before the venue hears of it.

    Attributes:
        client_order_id: the deterministic id (`client_order_id`).
        symbol: the venue's symbol, e.g. ``BTC_USDT_PERP``.
        side: "buy" or "sell".
        kind: "market" or "limit".
        contracts: size in whole contracts (positive).
        price: the limit price in USDT (None for a market order).
        post_only: the limit must rest (never take).
        reduce_only: the order may only shrink the position.
        purpose: why it exists (``"rebalance"``, ``"kill"``, an algorithm's name).
        decided_at_ms: the bar close (ms) of the decision it carries out.
    """

    client_order_id: str
    symbol: str
    side: Side
    kind: OrderKind
    contracts: float
    price: float | None = None
    post_only: bool = False
    reduce_only: bool = False
    purpose: str = "rebalance"
    decided_at_ms: int = 0

    def __post_init__(self) -> None:
        if not is_client_order_id(self.client_order_id):
            raise ValueError(f"{self.client_order_id!r} is not a valid client order id")
        if not self.contracts > 0.0:
            raise ValueError(f"an order needs a positive size; it was {self.contracts}")
        if self.kind == "limit" and not (self.price is not None and self.price > 0.0):
            raise ValueError(f"a limit order needs a positive price; it was {self.price}")
        if self.kind == "market" and (self.price is not None or self.post_only):
            raise ValueError("a market order has no price and cannot be post-only")

    @property
    def signed_contracts(self) -> float:
        """Contracts with the sign of the side (buy positive)."""
        return self.contracts if self.side == "buy" else -self.contracts


@dataclass(frozen=True, slots=True)
class Execution:
    """One fill of one order, as the venue reported it; applied once, keyed by `trade_id`.

    Attributes:
        trade_id: the venue's trade id (unique per venue).
        client_order_id: the order it filled.
        order_id: the venue's order id.
        symbol, side: what was traded.
        contracts: size filled (positive).
        price: fill price in USDT.
        fee: fee paid in USDT (negative: a rebate).
        liquidity: "maker" or "taker".
        ts_ms: when the venue made it.
    """

    trade_id: str
    client_order_id: str
    order_id: str
    symbol: str
    side: Side
    contracts: float
    price: float
    fee: float
    liquidity: Literal["maker", "taker"]
    ts_ms: int

    @property
    def signed_contracts(self) -> float:
        """Contracts with the sign of the side (buy positive)."""
        return self.contracts if self.side == "buy" else -self.contracts
