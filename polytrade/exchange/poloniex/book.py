"""The L2 order book a ``book_lv2`` subscription keeps: a snapshot, then numbered updates.

Poloniex v3 numbers every ``book_lv2`` frame: ``id`` is the frame's sequence number and
``lid`` the number of the frame before it (reference/poloniex.md §2). A snapshot
(``action: snapshot``) replaces the book; an update whose ``lid`` is the book's ``id`` applies
on top of it, each ``[price, size]`` replacing that level (size 0 removes it). Every other
update is one of

- **stale**: its ``id`` is at or below the book's (a repeated frame, or one that arrived after
  a newer snapshot): dropped and counted;
- **early**: its ``lid`` is above the book's ``id``: held, because a frame overtaken in flight
  by the next one fills the hole when it arrives and both then apply in order;
- **a gap**: more early frames are held than the reorder window allows, or the frame overlaps
  the book (``lid`` below the book's ``id`` but ``id`` above it), or the owner gives up on
  held frames that waited too long (`OrderBookL2.abandon`): the book is unusable until the
  next snapshot, and `OrderBookL2.apply` says so (the stream then resubscribes, which makes
  the venue send one).

Until its first snapshot, and after a gap, the book is not `synced`: updates are held (the
newest `MAX_HELD` of them) so that those numbered after the coming snapshot still apply.

Prices and sizes are floats parsed from the venue's decimal text (the same text always gives
the same float, so levels compare exactly); sizes are contracts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

MAX_HELD: Final = 1_000
"""Updates held while the book waits for a snapshot; older ones are dropped first."""

Level = tuple[float, float]
"""One price level: (price in quote currency, size in contracts)."""


@dataclass(frozen=True, slots=True)
class BookUpdate:
    """One ``book_lv2`` frame item, as the stream delivers it once it applied in sequence.

    A snapshot lists every level of each side; an update lists the levels that changed (size
    0: the level is gone). Times are ms since the epoch.
    """

    symbol: str
    snapshot: bool
    bids: tuple[Level, ...]
    asks: tuple[Level, ...]
    prev_id: int
    """``lid``: the sequence number of the frame this one follows."""
    id: int
    """The frame's own sequence number."""
    ts_ms: int


BookStatus = Literal["applied", "stale", "held", "waiting", "gap"]
"""What `OrderBookL2.apply` did with a frame.

- applied: the frame (and any held frames it unblocked) changed the book;
- stale: a repeat or a late frame, dropped;
- held: early, kept until the frame before it arrives;
- waiting: the book awaits a snapshot; the frame is kept for after it;
- gap: a frame is missing for good; the book awaits a snapshot.
"""


@dataclass(frozen=True, slots=True)
class BookResult:
    """The outcome of one `OrderBookL2.apply`: its status and the frames applied, in order."""

    status: BookStatus
    applied: tuple[BookUpdate, ...] = ()


class OrderBookL2:
    """The order book of one symbol, rebuilt from ``book_lv2`` frames with sequence checks.

    Args:
        symbol: the exchange id, e.g. ``BTC_USDT_PERP``.
        reorder_window: early frames held before a missing one counts as lost (0: every
            frame out of sequence is a gap at once).

    Counters: `gaps` (sequence gaps found), `stale` (repeated or late frames dropped),
    `reordered` (frames that arrived early and were held).
    """

    def __init__(self, symbol: str, *, reorder_window: int = 4) -> None:
        if reorder_window < 0:
            raise ValueError(f"reorder_window was {reorder_window}; it must be 0 or more")
        self.symbol = symbol
        self.reorder_window = reorder_window
        self.gaps = 0
        self.stale = 0
        self.reordered = 0
        self._bids: dict[float, float] = {}
        self._asks: dict[float, float] = {}
        self._id: int | None = None
        self._synced = False
        self._held: dict[int, BookUpdate] = {}
        """Early frames by their ``lid``."""

    # ------------------------------------------------------------ state
    @property
    def synced(self) -> bool:
        """Whether the book follows the venue's (a snapshot, and no gap since)."""
        return self._synced

    @property
    def held(self) -> int:
        """Frames held: early ones (synced), or those awaiting the snapshot (not synced)."""
        return len(self._held)

    @property
    def last_id(self) -> int | None:
        """Sequence number of the last frame applied; None before the first snapshot."""
        return self._id

    def bids(self, depth: int | None = None) -> list[Level]:
        """Bid levels, best (highest) first; `depth` levels at most (None: all)."""
        return sorted(self._bids.items(), key=lambda level: -level[0])[:depth]

    def asks(self, depth: int | None = None) -> list[Level]:
        """Ask levels, best (lowest) first; `depth` levels at most (None: all)."""
        return sorted(self._asks.items())[:depth]

    def best_bid(self) -> Level | None:
        """The highest bid, or None when the side is empty."""
        return max(self._bids.items(), default=None)

    def best_ask(self) -> Level | None:
        """The lowest ask, or None when the side is empty."""
        return min(self._asks.items(), default=None)

    # ------------------------------------------------------------ frames
    def invalidate(self) -> None:
        """Forget the sequence (a new connection): wait for the next snapshot, hold nothing."""
        self._synced = False
        self._held.clear()

    def abandon(self) -> BookResult:
        """The frame the held ones wait for is lost: count a gap and await a snapshot."""
        return self._gap()

    def apply(self, frame: BookUpdate) -> BookResult:
        """Take one frame; see the module docstring for what happens to each kind."""
        if frame.snapshot:
            return self._snapshot(frame)
        if not self._synced:
            self._hold(frame)
            return BookResult("waiting")
        assert self._id is not None  # noqa: S101 - synced implies a snapshot was applied
        if frame.id <= self._id:
            self.stale += 1
            return BookResult("stale")
        if frame.prev_id == self._id:
            return BookResult("applied", (self._update(frame), *self._drain()))
        if frame.prev_id < self._id:
            return self._gap()
        self.reordered += 1
        self._hold(frame)
        if len(self._held) > self.reorder_window:
            return self._gap()
        return BookResult("held")

    def _snapshot(self, frame: BookUpdate) -> BookResult:
        if self._synced and self._id is not None and frame.id <= self._id:
            self.stale += 1
            return BookResult("stale")
        self._bids = {price: size for price, size in frame.bids if size > 0.0}
        self._asks = {price: size for price, size in frame.asks if size > 0.0}
        self._id = frame.id
        self._synced = True
        return BookResult("applied", (frame, *self._drain()))

    def _update(self, frame: BookUpdate) -> BookUpdate:
        for side, levels in ((self._bids, frame.bids), (self._asks, frame.asks)):
            for price, size in levels:
                if size > 0.0:
                    side[price] = size
                else:
                    side.pop(price, None)
        self._id = frame.id
        return frame

    def _drain(self) -> list[BookUpdate]:
        """Apply the held frames that now follow the book; drop those it has passed."""
        assert self._id is not None  # noqa: S101 - called after a snapshot or an update
        for lid in [lid for lid, frame in self._held.items() if frame.id <= self._id]:
            del self._held[lid]
        applied = []
        while (frame := self._held.pop(self._id, None)) is not None:
            applied.append(self._update(frame))
        return applied

    def _hold(self, frame: BookUpdate) -> None:
        self._held[frame.prev_id] = frame
        if len(self._held) > MAX_HELD:
            del self._held[min(self._held)]

    def _gap(self) -> BookResult:
        self.gaps += 1
        self._synced = False
        return BookResult("gap")
