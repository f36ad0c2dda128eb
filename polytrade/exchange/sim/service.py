"""The emulator as one service: matching engine, market history, replayer and transport wired.

`start` builds everything `polytrade exchange-sim` runs, in-process, so a test or a benchmark
gets exactly the standalone service (the same tape, the same clock, the same endpoints) on a
free loopback port::

    sim = await start(SimSettings(api_key="k", api_secret="s", speed=6_000.0))
    try:
        replay = asyncio.create_task(sim.replay())        # the market runs
        ...                                               # ccxt at sim.rest_url
    finally:
        await sim.close()

The account of the API key starts with `SimSettings.balance` USDT. The first
`SimSettings.warmup_bars` bars of the tape are history at once (what a strategy warms up on);
the rest are replayed at `SimSettings.speed` times real time. With `start_now` (the default)
the tape is shifted by whole minutes so that the first replayed bar opens at the next minute
of the machine's clock: at speed 1 the emulator's market time is the wall time, as on the live
venue. REST signatures are checked against the machine's clock whatever the speed, because
clients sign with theirs.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import numpy as np

from polytrade.exchange.sim.history import MINUTE_MS, MarketHistory
from polytrade.exchange.sim.matching import MatchingEngine
from polytrade.exchange.sim.replay import MarketClock, Replayer, Tape
from polytrade.exchange.sim.server import RunningEmulator, build_app, publish, serve
from polytrade.exchange.sim.venue import EngineBackend

if TYPE_CHECKING:
    from pathlib import Path

    from polytrade.exchange.sim.book import DepthProfile
    from polytrade.exchange.sim.faults import Faults

DEFAULT_SYMBOL: Final = "BTC_USDT_PERP"
DEFAULT_SYNTHETIC_DAYS: Final = 30
DEFAULT_WARMUP_BARS: Final = 3 * 1_440
SYNTHETIC_START: Final = dt.date(2024, 1, 1)
EIGHT_HOURS_MS: Final = 8 * 3_600_000


@dataclass(frozen=True, slots=True)
class SimSettings:
    """What the emulator serves and how (the options of ``polytrade exchange-sim``).

    Attributes:
        api_key, api_secret: the one account's credentials (requests are signed with them).
        host, port: where to listen (port 0: a free port).
        seed: the synthetic market's seed and the engine's id offset.
        data: a one-minute bars file to replay (None: the synthetic market).
        funding: a funding file for `data` (None with `data`: no settlements).
        symbol: the symbol the tape trades as.
        speed: replay speed as a multiple of real time (6,000: a minute of market per 10 ms).
        balance: USDT deposited in the account at start.
        days: days of synthetic market (ignored with `data`).
        warmup_bars: bars of the tape that are history before the replay starts.
        start_now: shift the tape so the replay starts at the next minute of the wall clock.
        faults: what to inject (None: nothing).
        maker_bps, taker_bps: fees in basis points of the notional.
        depth: the synthetic book around each replayed price (None: the engine's default,
            20 levels a side of 100 contracts, 10 ticks apart, a 2-tick spread).
        enforce_quotas: answer requests above the venue's per-second quotas with 429 (off
            for load tests of a client).
    """

    api_key: str
    api_secret: str
    host: str = "127.0.0.1"
    port: int = 0
    seed: int = 0
    data: Path | None = None
    funding: Path | None = None
    symbol: str = DEFAULT_SYMBOL
    speed: float = 1.0
    balance: float = 10_000.0
    days: int = DEFAULT_SYNTHETIC_DAYS
    warmup_bars: int = DEFAULT_WARMUP_BARS
    start_now: bool = True
    faults: Faults | None = None
    maker_bps: float = 1.0
    taker_bps: float = 7.5
    enforce_quotas: bool = True
    depth: DepthProfile | None = None

    def tape(self) -> Tape:
        """The market these settings replay, before any shift."""
        if self.data is not None:
            return Tape.from_files(self.symbol, self.data, self.funding)
        return Tape.synthetic(self.symbol, self.seed, self.days, SYNTHETIC_START)


@dataclass(slots=True)
class RunningSim:
    """A started emulator: its parts and its addresses."""

    settings: SimSettings
    server: RunningEmulator
    engine: MatchingEngine
    history: MarketHistory
    replayer: Replayer
    clock: MarketClock

    @property
    def rest_url(self) -> str:
        """Base URL for ccxt's ``urls['api']['spot']`` and ``['swap']``."""
        return self.server.rest_url

    @property
    def public_ws_url(self) -> str:
        """The public v3 futures websocket."""
        return self.server.public_ws_url

    @property
    def private_ws_url(self) -> str:
        """The private v3 futures websocket."""
        return self.server.private_ws_url

    def describe(self) -> dict[str, object]:
        """What a client needs to connect, and what market it will see (no secret)."""
        tape = self.replayer.tape
        position = self.replayer.position
        return {
            "rest_url": self.rest_url,
            "public_ws_url": self.public_ws_url,
            "private_ws_url": self.private_ws_url,
            "symbol": tape.symbol,
            "market": tape.label,
            "speed": self.settings.speed,
            "bars": len(tape),
            "history_bars": position,
            "replay_starts": _iso(int(tape.start_ms[position])) if position < len(tape) else None,
            "replay_ends": _iso(int(tape.start_ms[-1]) + MINUTE_MS),
        }

    async def replay(self, stop: asyncio.Event | None = None) -> None:
        """Replay the rest of the tape at the settings' speed (returns at its end or `stop`)."""
        anchor = time.time_ns() // 1_000_000 if self.settings.start_now else None
        await self.replayer.run(self.settings.speed, stop=stop, anchor_ms=anchor)

    async def close(self) -> None:
        """Stop listening and close every connection."""
        await self.server.close()


async def start(settings: SimSettings) -> RunningSim:
    """Build the emulator of `settings` and start listening (the market waits for `replay`)."""
    tape = settings.tape()
    warmup = min(max(settings.warmup_bars, 0), len(tape) - 1)
    if settings.start_now:
        first_live = int(tape.start_ms[warmup])
        now = time.time_ns() // 1_000_000
        next_minute = (now // MINUTE_MS + 1) * MINUTE_MS
        tape = tape.shifted(next_minute - first_live)
    clock = MarketClock(int(tape.start_ms[0]))
    engine = MatchingEngine(
        clock,
        seed=settings.seed,
        maker_bps=settings.maker_bps,
        taker_bps=settings.taker_bps,
        depth=settings.depth,
    )
    engine.add_account(settings.api_key, settings.balance)
    history = MarketHistory()
    backend = EngineBackend(
        engine,
        settings.api_key,
        history=history,
        funding_interval_ms=_funding_interval_ms(tape),
    )
    app = build_app(
        backend,
        api_key=settings.api_key,
        api_secret=settings.api_secret,
        faults=settings.faults,
        quotas=None if settings.enforce_quotas else {},
    )
    replayer = Replayer(
        engine,
        history,
        tape,
        clock,
        publish=lambda channel, symbol, payload: publish(app, channel, symbol, payload),
    )
    replayer.preload(warmup)
    server = await serve(app, settings.host, settings.port, shutdown_timeout_s=0.5)
    return RunningSim(settings, server, engine, history, replayer, clock)


async def serve_forever(sim: RunningSim, stop: asyncio.Event) -> None:
    """Replay the market, then keep serving until `stop` is set; close the service either way."""
    replay = asyncio.create_task(sim.replay(stop))
    try:
        await stop.wait()
    finally:
        replay.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await replay
        await sim.close()


def _funding_interval_ms(tape: Tape) -> int:
    if tape.funding_ms.size < 2:  # noqa: PLR2004 - an interval needs two settlements
        return EIGHT_HOURS_MS
    return int(np.median(np.diff(tape.funding_ms)))


def _iso(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).isoformat().replace("+00:00", "Z")
