"""Download Poloniex perpetual market data into the catalog: candles, mark price, funding, trades.

`download` pages through the venue's public REST endpoints with the real ccxt client
(`connection.open_client`) and merges every page into a `Catalog` as soon as it arrives
(`Catalog.import_frame`: validated, merged, each month replaced atomically under the catalog's
lock), so a run killed at any moment loses at most the page in flight. It then reports what the
catalog holds for the requested range: rows fetched and new, the range covered, every run of
missing bars, pages refused for inconsistent data, funding intervals that broke the usual
rhythm, requests made and the time taken. Nothing is invented: a bar the venue does not serve
is listed as missing, never filled.

What each kind is, on the catalog's units (reference/poloniex.md §2, §5, §8):

- ``ohlcv`` -> ``ohlcv_1m``: ``fetch_ohlcv(symbol, '1m', since, 500, {'until': ...})``
  (``GET /v3/market/candles``). ccxt's volume is the ``qty`` field in contracts; the catalog
  stores coins, so volume = contracts x the market's contract size (``ctVal``), computed in
  decimal and rounded once.
- ``mark`` -> ``mark_1m``: ``GET /v3/market/markPriceCandlesticks`` (``MINUTE_1``), rows
  ``[l, h, o, c, sT, cT]`` without volume (stored as 0).
- ``funding`` -> ``funding``: ``GET /v3/market/fundingRate/history``, newest first; the rate
  is a fraction per interval at the settlement time ``fT``.
- ``trades`` -> ``trades``: ``fetch_trades`` (``GET /v3/market/trades``). Poloniex serves
  only its latest 1,000 trades and no older history: the downloader stores those that fall in
  the requested range and says how far back the venue's list reached.

Paging. Candle requests ask for windows of exactly 500 one-minute bars (``sTime`` to
``eTime``), so a full answer is the whole window whether the venue returns the oldest or the
newest bars of a wider one. Funding windows span 100 hours (100 settlements at the shortest
interval, one hour); a window answered with a full page is paged further back within itself.
The range ends at the last closed minute: the running bar is never stored, because its
final values would later conflict with what was stored.

Resume and idempotence: the catalog is the progress record (no state file).

- Candles: a window the catalog already holds completely (one bar per minute) is skipped; any
  other window is fetched again, so an interrupted run continues at the first incomplete
  window, and a window with a hole in the venue's data is asked again on every run (a hole the
  venue later fills is picked up; one request per such window).
- Funding: the download resumes at the last settlement before the first stretch of more than
  8 h (the longest interval) without one in the range, counted from its start (that window is
  fetched again); with no such stretch, at the last settlement stored.
- Trades: the venue's latest trades are fetched every run.

Rows already stored are counted as present, not written again, and a month file is rewritten
only when a row was added: a second run over the same range changes no file.

Checks. Before a candle page is imported its bars must be consistent: every price positive,
``low <= min(open, close)``, ``high >= max(open, close)``, volume not negative (the rules of
`quality.validate_candles`, located here by bar time for the report). A page that breaks them,
or that the catalog refuses (off-grid or duplicate times, a bar that conflicts with a stored
one), is refused as a whole: none of its rows are stored, it is listed with the bars at fault,
and the rest of the download goes on. Gaps are runs of one-minute bars missing from the
catalog within the range covered (the windows of refused pages are listed as refused, not as
gaps); funding steps that differ from the usual interval are listed as irregular.

Requests. Candles and mark candles share Poloniex's candles quota (20 requests/s): they are
paced at 18/s; the other endpoints at 100/s. A 429, a 5xx, a maintenance answer, a timeout, a
refused connection or an unreadable body is retried with exponential backoff (these reads are
idempotent); after the last attempt the download stops with `VenueUnavailableError` and what
was stored so far stays stored.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from dataclasses import dataclass, field
from decimal import Decimal
from functools import partial
from typing import TYPE_CHECKING, Any, Final, Protocol

import numpy as np
import polars as pl

from polytrade.data.catalog import to_ms
from polytrade.data.quality import (
    CANDLE_SCHEMA,
    FUNDING_SCHEMA,
    TRADES_SCHEMA,
    TS,
    Gap,
    funding_interval_ms,
    iso_utc,
    utc_text,
)
from polytrade.errors import DataError, ExitCode, PolytradeError, UsageError

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence

    from polytrade.data.catalog import Catalog, TimeBound

VENUE: Final = "poloniex"
"""The venue the downloader speaks to, and the catalog's venue folder for its data."""

KINDS: Final = ("ohlcv", "funding", "mark", "trades")
"""The kinds of data `download` fetches, by their command-line names."""

CATALOG_KINDS: Final = {
    "ohlcv": "ohlcv_1m",
    "funding": "funding",
    "mark": "mark_1m",
    "trades": "trades",
}
"""The catalog kind each downloaded kind is stored as."""

MINUTE_MS: Final = 60_000
CANDLE_PAGE: Final = 500
"""Bars per candle request: the v3 maximum."""
FUNDING_PAGE: Final = 100
"""Settlements per funding-history request."""
FUNDING_WINDOW_MS: Final = FUNDING_PAGE * 3_600_000
"""A funding window holds at most one page at the shortest interval (1 h)."""
MAX_FUNDING_INTERVAL_MS: Final = 8 * 3_600_000
"""The longest funding interval Poloniex uses (reference/poloniex.md §6)."""
TRADES_LIMIT: Final = 1_000
"""The most trades `GET /v3/market/trades` returns; Poloniex keeps no paged history."""

CANDLES_PER_SECOND: Final = 18.0
"""Pace of candle and mark-candle requests, below Poloniex's candles quota of 20/s."""
MARKET_PER_SECOND: Final = 100.0
"""Pace of the other public requests (quota 300/s)."""

SHOWN_GAPS: Final = 1_000
"""At most this many gaps (or irregular funding steps) are listed in `--json`; all counted."""


class VenueUnavailableError(PolytradeError):
    """The venue could not be reached or kept failing (exit code 4, UNAVAILABLE).

    Whatever was downloaded before the failure stays in the catalog; the same command
    continues from there.
    """

    exit_code = ExitCode.UNAVAILABLE


@dataclass(frozen=True, slots=True)
class DownloadRetry:
    """How often and how patiently a failed read is tried again.

    `attempts` counts every try (1: no retry). The wait before retry k (1-based) is
    ``min(first_delay_s * 2**(k-1), max_delay_s)`` seconds times a random factor in [0.5, 1].
    """

    attempts: int = 5
    first_delay_s: float = 0.5
    max_delay_s: float = 8.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"attempts was {self.attempts}; at least 1 is needed")
        if self.first_delay_s < 0 or self.max_delay_s < 0:
            raise ValueError("retry delays must not be negative")

    def delay_s(self, retry: int) -> float:
        """Seconds to wait before retry number `retry` (1-based), with jitter."""
        base = min(self.first_delay_s * 2.0 ** (retry - 1), self.max_delay_s)
        return base * random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not secrecy


class DownloadProgress(Protocol):
    """Where `download` tells how far it got (a progress bar, a log, nothing)."""

    def begin(self, kind: str, pages: int) -> None:
        """`kind` starts; it expects to fetch about `pages` pages."""

    def advance(self, kind: str, rows: int) -> None:
        """One page of `kind` arrived with `rows` rows."""


class _Silent:
    def begin(self, kind: str, pages: int) -> None:
        pass

    def advance(self, kind: str, rows: int) -> None:
        pass


# ---------------------------------------------------------------------- the report


@dataclass(frozen=True, slots=True)
class BarIssue:
    """One inconsistent value in a bar the venue served: bar open time (ms), field, problem."""

    ts_ms: int
    field: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        """The machine-readable form used by `--json`."""
        return {"ts": iso_utc(self.ts_ms), "field": self.field, "message": self.message}


@dataclass(frozen=True, slots=True)
class RefusedPage:
    """A page that was not stored: its window ``[start_ms, end_ms)``, why, the bars at fault."""

    start_ms: int
    end_ms: int
    reason: str
    bars: tuple[BarIssue, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """The machine-readable form used by `--json`."""
        return {
            "start": iso_utc(self.start_ms),
            "end": iso_utc(self.end_ms),
            "reason": self.reason,
            "bars": [bar.as_dict() for bar in self.bars],
        }


@dataclass(frozen=True, slots=True)
class FundingStep:
    """Two consecutive settlements `step_ms` apart where the usual interval was expected."""

    previous_ms: int
    ts_ms: int

    @property
    def step_ms(self) -> int:
        """Time between the two settlements, in ms."""
        return self.ts_ms - self.previous_ms


@dataclass(frozen=True, slots=True)
class KindReport:
    """What the download did for one kind and what the catalog holds for the range after it.

    `start_ms`/`end_ms` is the range examined: the requested one (clipped to the listing time
    and to the last closed minute), or up to where the download stopped when `complete` is
    False. `fetched` counts rows the venue returned in it, `added` rows new in the catalog,
    `held` the rows the catalog holds in the range, first at `first_ms`, last at `last_ms`.
    `expected` is the number of one-minute bars in the range (candles only), `gaps` the runs
    of bars missing from it, `refused` the pages not stored. For funding, `interval_ms` is the
    usual time between settlements and `irregular` the steps that differ from it.
    """

    kind: str
    catalog_kind: str
    start_ms: int
    end_ms: int
    complete: bool
    fetched: int
    added: int
    pages: int
    requests: int
    retries: int
    elapsed_s: float
    held: int
    first_ms: int | None
    last_ms: int | None
    expected: int | None = None
    gaps: tuple[Gap, ...] = ()
    refused: tuple[RefusedPage, ...] = ()
    interval_ms: int | None = None
    irregular: tuple[FundingStep, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def missing_bars(self) -> int:
        """Bars missing in all gaps together."""
        return sum(gap.missing for gap in self.gaps)

    @property
    def rows_per_s(self) -> float:
        """Rows fetched per second of this kind's download."""
        return self.fetched / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        """The machine-readable form used by `--json` (times as ISO 8601 UTC)."""
        document: dict[str, Any] = {
            "kind": self.kind,
            "catalog_kind": self.catalog_kind,
            "complete": self.complete,
            "range": {"start": iso_utc(self.start_ms), "end": iso_utc(self.end_ms)},
            "fetched": self.fetched,
            "added": self.added,
            "pages": self.pages,
            "requests": self.requests,
            "retries": self.retries,
            "elapsed_s": round(self.elapsed_s, 3),
            "rows_per_s": round(self.rows_per_s, 1),
            "held": self.held,
            "first": None if self.first_ms is None else iso_utc(self.first_ms),
            "last": None if self.last_ms is None else iso_utc(self.last_ms),
        }
        if self.expected is not None:
            document["expected"] = self.expected
            document["missing_bars"] = self.missing_bars
            document["gap_count"] = len(self.gaps)
            document["gaps"] = [
                {"start": iso_utc(g.start_ms), "end": iso_utc(g.end_ms), "missing_bars": g.missing}
                for g in self.gaps[:SHOWN_GAPS]
            ]
        if self.kind == "funding":
            document["interval_ms"] = self.interval_ms
            document["irregular_count"] = len(self.irregular)
            document["irregular"] = [
                {
                    "previous": iso_utc(step.previous_ms),
                    "ts": iso_utc(step.ts_ms),
                    "step_ms": step.step_ms,
                }
                for step in self.irregular[:SHOWN_GAPS]
            ]
        document["refused"] = [page.as_dict() for page in self.refused]
        document["notes"] = list(self.notes)
        return document

    def describe(self, shown: int = 10) -> list[str]:
        """Lines for a terminal: a summary line, then gaps, irregular steps, refusals, notes."""
        retried = f" ({self.retries:,} retried)" if self.retries else ""
        work = (
            f"{self.catalog_kind}: {self.fetched:,} fetched, {self.added:,} new, "
            f"{_many(self.pages, 'page')}, {_many(self.requests, 'request')}{retried}, "
            f"{self.elapsed_s:.2f} s ({self.rows_per_s:,.0f} rows/s)"
        )
        parts = [work]
        held = f"holds {self.held:,}" + (
            f" of {self.expected:,} bars" if self.expected is not None else " in the range"
        )
        if self.first_ms is not None and self.last_ms is not None:
            held += f", {utc_text(self.first_ms)} to {utc_text(self.last_ms)}"
        parts.append(held)
        if self.expected is not None:
            parts.append(
                f"{_many(len(self.gaps), 'gap')}, {_many(self.missing_bars, 'bar')} missing"
                if self.gaps
                else "no gaps"
            )
        if self.interval_ms is not None:
            steps = _many(len(self.irregular), "irregular step") if self.irregular else "none"
            parts.append(f"every {_hours(self.interval_ms)}, irregular steps: {steps}")
        if self.refused:
            parts.append(f"{_many(len(self.refused), 'page')} refused")
        if not self.complete:
            parts.append("stopped early (run again to continue)")
        lines = ["; ".join(parts)]
        lines += [
            f"  gap {utc_text(g.start_ms)} to {utc_text(g.end_ms)}: "
            f"{_many(g.missing, 'bar')} missing"
            for g in self.gaps[:shown]
        ]
        if len(self.gaps) > shown:
            lines.append(f"  ... and {len(self.gaps) - shown:,} more gaps (see --json)")
        lines += [
            f"  irregular funding step {utc_text(s.previous_ms)} to {utc_text(s.ts_ms)} "
            f"({_hours(s.step_ms)} instead of {_hours(self.interval_ms or 0)})"
            for s in self.irregular[:shown]
        ]
        if len(self.irregular) > shown:
            lines.append(f"  ... and {len(self.irregular) - shown:,} more steps (see --json)")
        for page in self.refused:
            lines.append(
                f"  refused page {utc_text(page.start_ms)} to {utc_text(page.end_ms)}: "
                f"{page.reason}"
            )
            lines += [
                f"    bar {utc_text(bar.ts_ms)} {bar.field}: {bar.message}"
                for bar in page.bars[:shown]
            ]
        lines += [f"  note: {note}" for note in self.notes]
        return lines


@dataclass(frozen=True, slots=True)
class DownloadReport:
    """The whole download: where from and to, the range asked for, one `KindReport` a kind.

    `since_ms`/`until_ms` is the range requested (until: the last closed minute when none was
    given). `requests` counts the calls made to the venue, retries included; loading the
    market list counts as one (ccxt asks three endpoints for it).
    """

    venue: str
    instrument: str
    symbol: str
    catalog: str
    since_ms: int
    until_ms: int
    kinds: tuple[KindReport, ...]
    requests: int
    elapsed_s: float

    @property
    def complete(self) -> bool:
        """Every kind reached the end of the range."""
        return all(kind.complete for kind in self.kinds)

    @property
    def refused(self) -> int:
        """Pages refused over all kinds."""
        return sum(len(kind.refused) for kind in self.kinds)

    @property
    def added(self) -> int:
        """Rows new in the catalog over all kinds."""
        return sum(kind.added for kind in self.kinds)

    @property
    def exit_code(self) -> ExitCode:
        """OK, or INVALID_DATA when a page was refused (the rest is stored all the same)."""
        return ExitCode.INVALID_DATA if self.refused else ExitCode.OK

    def as_dict(self) -> dict[str, Any]:
        """The machine-readable form used by `--json`."""
        return {
            "venue": self.venue,
            "instrument": self.instrument,
            "symbol": self.symbol,
            "catalog": self.catalog,
            "since": iso_utc(self.since_ms),
            "until": iso_utc(self.until_ms),
            "complete": self.complete,
            "added": self.added,
            "refused_pages": self.refused,
            "requests": self.requests,
            "elapsed_s": round(self.elapsed_s, 3),
            "exit_code": int(self.exit_code),
            "kinds": [kind.as_dict() for kind in self.kinds],
        }

    def describe(self) -> list[str]:
        """Lines for a terminal: the request, then each kind's lines."""
        head = (
            f"{self.venue} {self.instrument} {utc_text(self.since_ms)} to "
            f"{utc_text(self.until_ms)} -> {self.catalog}"
        )
        lines = [head]
        for kind in self.kinds:
            lines += kind.describe()
        return lines


def _many(count: int, word: str) -> str:
    return f"{count:,} {word}{'s' if count != 1 else ''}"


def _hours(ms: int) -> str:
    hours = ms / 3_600_000
    return f"{hours:g} h" if hours >= 1 else f"{ms / MINUTE_MS:g} min"


# ---------------------------------------------------------------------- requests


class _Pacer:
    """At most `per_second` requests a second: each waits for its slot."""

    def __init__(self, per_second: float) -> None:
        if per_second <= 0:
            raise ValueError(f"a pace must be positive, not {per_second} requests/s")
        self._gap = 1.0 / per_second
        self._next = 0.0

    async def wait(self) -> None:
        now = time.monotonic()
        if now < self._next:
            await asyncio.sleep(self._next - now)
        self._next = max(now, self._next) + self._gap


@dataclass
class _Tally:
    requests: int = 0
    retries: int = 0
    pages: int = 0


@dataclass
class _Session:
    """The client, its pacing, retries and request counts, and the page budget."""

    client: Any
    retry: DownloadRetry
    candles: _Pacer
    market: _Pacer
    max_pages: int | None
    requests: int = 0
    pages: int = 0
    tally: _Tally = field(default_factory=_Tally)

    def can_fetch(self) -> bool:
        """Whether the page budget allows another page."""
        return self.max_pages is None or self.pages < self.max_pages

    async def call(self, pacer: _Pacer, what: str, request: Callable[[], Awaitable[Any]]) -> Any:  # noqa: ANN401 - ccxt answers are untyped
        """`request()` paced, retried on transient failures; VenueUnavailableError at the end.

        A bounded retry of idempotent reads, kept here until the adapter's retry policy
        (`poloniex.retry`) can serve public reads too.
        """
        errors = _ccxt_errors()
        # 429, 5xx, maintenance, timeouts, refused connections, unreadable bodies.
        transient = (errors.NetworkError, errors.BadResponse)
        for attempt in range(1, self.retry.attempts + 1):
            await pacer.wait()
            self.requests += 1
            self.tally.requests += 1
            try:
                return await request()
            except transient as error:
                if attempt == self.retry.attempts:
                    raise VenueUnavailableError(
                        f"{VENUE} did not answer {what} after {attempt} attempt"
                        f"{'s' if attempt != 1 else ''} ({_error_text(error)}); what was "
                        "downloaded before is in the catalog: run the same command again to "
                        "continue"
                    ) from None
                self.tally.retries += 1
                asked = getattr(error, "retry_after_s", None)  # a Retry-After header
                await asyncio.sleep(max(self.retry.delay_s(attempt), asked or 0.0))
            except errors.BadSymbol as error:
                raise UsageError(f"{VENUE} refused {what}: {_error_text(error)}") from None
            except errors.BaseError as error:
                raise VenueUnavailableError(
                    f"{VENUE} refused {what}: {_error_text(error)}"
                ) from None
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    async def page(self, pacer: _Pacer, what: str, request: Callable[[], Awaitable[Any]]) -> Any:  # noqa: ANN401
        """One page of data: counted against the page budget."""
        answer = await self.call(pacer, what, request)
        self.pages += 1
        self.tally.pages += 1
        return answer


def _ccxt_errors() -> Any:  # noqa: ANN401 - ccxt is untyped
    # ccxt takes seconds to import: bad arguments are refused before it is loaded.
    from ccxt.base import errors  # type: ignore[import-untyped]  # noqa: PLC0415

    return errors


def _error_text(error: BaseException) -> str:
    text = " ".join(str(error).split())
    text = text if len(text) <= 200 else text[:197] + "..."  # noqa: PLR2004 - a short message
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


@dataclass(frozen=True, slots=True)
class _Market:
    """The instrument as the venue describes it."""

    id: str
    symbol: str
    contract_size: Decimal
    listed_ms: int | None


@dataclass(frozen=True, slots=True)
class _Range:
    start_ms: int
    end_ms: int


# ---------------------------------------------------------------------- the entry point


async def download(  # noqa: PLR0913 - the download's settings, all keyword-only
    catalog: Catalog,
    symbol: str,
    *,
    since: TimeBound,
    until: TimeBound = None,
    kinds: Sequence[str] = KINDS,
    rest_url: str | None = None,
    progress: DownloadProgress | None = None,
    max_pages: int | None = None,
    retry: DownloadRetry | None = None,
    candles_per_second: float = CANDLES_PER_SECOND,
    market_per_second: float = MARKET_PER_SECOND,
    clock: Callable[[], int] | None = None,
) -> DownloadReport:
    """Download `kinds` of `symbol` for ``[since, until)`` into `catalog` and report on them.

    Args:
        catalog: where the data goes (venue folder ``poloniex``, instrument = the exchange id).
        symbol: the exchange id (``BTC_USDT_PERP``) or ccxt's unified symbol
            (``BTC/USDT:USDT``) of a perpetual contract.
        since: start of the range (inclusive; a date is 00:00 UTC, text is ISO 8601, an int
            is ms since the epoch); clipped to the instrument's listing time.
        until: end of the range (exclusive); None: now. Clipped to the last closed minute.
        kinds: any of `KINDS`, fetched in the order given.
        rest_url: base URL of the emulator (``http://127.0.0.1:PORT``); None: Poloniex.
        progress: told of each kind's pages as they arrive.
        max_pages: stop after this many pages (the report says the download is incomplete;
            the same call continues); None: no limit.
        retry: attempts and backoff for failed reads; None: `DownloadRetry()`.
        candles_per_second: pace of candle and mark-candle requests (quota 20/s).
        market_per_second: pace of the other requests (quota 300/s).
        clock: ms since the epoch (default: the wall clock), to know which minute is closed.

    Raises:
        UsageError: an unknown kind or symbol, an empty or inverted range.
        VenueUnavailableError: the venue did not answer after the retries, or refused a
            request; what was stored before stays stored.
    """
    chosen = parse_kinds(kinds)
    now = (clock or _wall_ms)()
    since_ms = to_ms(since, "start")
    until_ms = to_ms(until, "end")
    if since_ms is None:
        raise UsageError("the download needs a start: pass --since (e.g. 2024-03-01)")
    closed = now - now % MINUTE_MS
    end_ms = closed if until_ms is None else min(until_ms, closed)
    if since_ms >= end_ms:
        raise UsageError(
            f"the range {utc_text(since_ms)} to {utc_text(end_ms)} is empty: --since must be "
            "before --until and before the last closed minute"
        )
    from polytrade.exchange.poloniex.connection import open_client  # noqa: PLC0415 - ccxt loads slowly

    session = _Session(
        client=open_client(rest_url=rest_url),
        retry=retry or DownloadRetry(),
        candles=_Pacer(candles_per_second),
        market=_Pacer(market_per_second),
        max_pages=max_pages,
    )
    began = time.monotonic()
    try:
        market = await _load_market(session, symbol)
        reports: list[KindReport] = []
        for kind in chosen:
            session.tally = _Tally()
            reports.append(
                await _download_kind(
                    session, catalog, market, kind, since_ms, end_ms, progress or _Silent()
                )
            )
    finally:
        await session.client.close()
    return DownloadReport(
        venue=VENUE,
        instrument=market.id,
        symbol=market.symbol,
        catalog=str(catalog.root),
        since_ms=since_ms,
        until_ms=end_ms,
        kinds=tuple(reports),
        requests=session.requests,
        elapsed_s=time.monotonic() - began,
    )


def parse_kinds(kinds: Sequence[str] | str) -> tuple[str, ...]:
    """The kinds asked for (a list, or text separated by commas), each once, in order.

    Raises UsageError naming the unknown ones and the known.
    """
    names = kinds.split(",") if isinstance(kinds, str) else list(kinds)
    cleaned = [name.strip().lower() for name in names if name.strip()]
    unknown = [name for name in cleaned if name not in KINDS]
    if unknown or not cleaned:
        raise UsageError(
            f"unknown kind{'s' if len(unknown) != 1 else ''} {', '.join(map(repr, unknown))}; "
            f"use any of {', '.join(KINDS)}, separated by commas"
            if unknown
            else f"no kind of data asked for; use any of {', '.join(KINDS)}"
        )
    return tuple(dict.fromkeys(cleaned))


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


async def _load_market(session: _Session, symbol: str) -> _Market:
    client = session.client
    markets = await session.call(session.market, "the list of markets", client.load_markets)
    found = markets.get(symbol)
    if found is None:
        found = next((m for m in markets.values() if m.get("id") == symbol and m.get("swap")), None)
    if found is None or not found.get("swap"):
        known = sorted(m["id"] for m in markets.values() if m.get("swap"))
        raise UsageError(
            f"{VENUE} has no perpetual contract {symbol!r}; it lists "
            f"{', '.join(known[:20])}{' ...' if len(known) > 20 else ''}"  # noqa: PLR2004
        )
    size = found.get("contractSize")
    if not size:
        raise UsageError(f"{VENUE} gives no contract size for {symbol}; cannot convert volumes")
    created = found.get("created")
    return _Market(
        id=str(found["id"]),
        symbol=str(found["symbol"]),
        contract_size=Decimal(repr(float(size))),
        listed_ms=int(created) if created else None,
    )


async def _download_kind(
    session: _Session,
    catalog: Catalog,
    market: _Market,
    kind: str,
    since_ms: int,
    end_ms: int,
    progress: DownloadProgress,
) -> KindReport:
    run = _Run(session, catalog, market, kind, progress)
    start_ms = since_ms
    if market.listed_ms is not None and market.listed_ms > since_ms:
        start_ms = min(market.listed_ms, end_ms)
        run.notes.append(
            f"{market.id} was listed at {utc_text(market.listed_ms)}: nothing exists before"
        )
    if kind in ("ohlcv", "mark"):
        start_ms = -(-start_ms // MINUTE_MS) * MINUTE_MS  # bars open on whole minutes
        return await _candles(run, _Range(start_ms, max(start_ms, end_ms - end_ms % MINUTE_MS)))
    if kind == "funding":
        return await _funding(run, _Range(start_ms, end_ms))
    return await _trades(run, _Range(start_ms, end_ms))


@dataclass
class _Run:
    """One kind's download in progress: what arrived, was added, was refused; then its report."""

    session: _Session
    catalog: Catalog
    market: _Market
    kind: str
    progress: DownloadProgress
    notes: list[str] = field(default_factory=list)
    began: float = field(default_factory=time.monotonic)
    fetched: int = 0
    added: int = 0
    refused: list[RefusedPage] = field(default_factory=list)

    @property
    def catalog_kind(self) -> str:
        return CATALOG_KINDS[self.kind]

    async def page_through(
        self, windows: Sequence[_Range], fetch: Callable[[_Range], Awaitable[pl.DataFrame]]
    ) -> int | None:
        """Fetch and store each window in turn; where the page budget stopped it, else None."""
        self.progress.begin(self.kind, len(windows))
        for window in windows:
            if not self.session.can_fetch():
                return window.start_ms
            frame = await fetch(window)
            self.fetched += frame.height
            self.progress.advance(self.kind, frame.height)
            self.store(frame, window)
        return None

    def store(self, frame: pl.DataFrame, window: _Range) -> None:
        """Import one page into the catalog, or refuse it whole (nothing of it stored)."""
        if not frame.height:
            return
        if self.kind in ("ohlcv", "mark"):
            bars = _inconsistent_bars(frame)
            if bars:
                self.refused.append(
                    RefusedPage(
                        window.start_ms,
                        window.end_ms,
                        f"{_many(len(bars), 'inconsistent value')} in the bars the venue served",
                        tuple(bars),
                    )
                )
                return
        source = (
            f"{VENUE} {self.market.id} {self.catalog_kind} {utc_text(window.start_ms)} to "
            f"{utc_text(window.end_ms)}"
        )
        try:
            report = self.catalog.import_frame(
                frame, venue=VENUE, instrument=self.market.id, kind=self.catalog_kind, source=source
            )
        except DataError as error:  # off-grid or repeated times, a conflict with stored rows
            self.refused.append(RefusedPage(window.start_ms, window.end_ms, str(error)))
            return
        self.added += report.added

    def held(self, span: _Range) -> np.ndarray:
        """Sorted times (int64 ms) the catalog holds for this kind in `span`."""
        if span.end_ms <= span.start_ms:
            return np.empty(0, dtype=np.int64)
        try:
            scan = self.catalog.scan(VENUE, self.market.id, self.catalog_kind, *_bounds(span))
        except UsageError:  # the series is not in the catalog yet
            return np.empty(0, dtype=np.int64)
        ts = scan.select(pl.col("ts").cast(TS).dt.epoch("ms")).collect()["ts"].to_numpy()
        return np.unique(ts.astype(np.int64))

    def report(
        self,
        covered: _Range,
        held: np.ndarray,
        *,
        complete: bool,
        expected: int | None = None,
        gaps: tuple[Gap, ...] = (),
        interval_ms: int | None = None,
        irregular: tuple[FundingStep, ...] = (),
    ) -> KindReport:
        """The report over `covered`, whose stored times are `held`, with the kind's findings."""
        tally = self.session.tally
        return KindReport(
            kind=self.kind,
            catalog_kind=self.catalog_kind,
            start_ms=covered.start_ms,
            end_ms=covered.end_ms,
            complete=complete,
            fetched=self.fetched,
            added=self.added,
            pages=tally.pages,
            requests=tally.requests,
            retries=tally.retries,
            elapsed_s=time.monotonic() - self.began,
            held=int(held.size),
            first_ms=int(held[0]) if held.size else None,
            last_ms=int(held[-1]) if held.size else None,
            expected=expected,
            gaps=gaps,
            refused=tuple(self.refused),
            interval_ms=interval_ms,
            irregular=irregular,
            notes=tuple(self.notes),
        )


def _bounds(span: _Range) -> tuple[int, int]:
    return span.start_ms, span.end_ms


def _frame(rows: Sequence[tuple[Any, ...]], schema: dict[str, pl.DataType]) -> pl.DataFrame:
    """Rows as a frame of `schema` whose int `ts` (ms) becomes the catalog's UTC datetime."""
    return pl.DataFrame(rows, schema=schema, orient="row").with_columns(
        pl.col("ts").cast(pl.Datetime("ms")).dt.replace_time_zone("UTC")
    )


# ---------------------------------------------------------------------- candles


async def _candles(run: _Run, span: _Range) -> KindReport:
    """One-minute candles (traded or mark price) of `span`, in windows of 500 bars."""
    width = CANDLE_PAGE * MINUTE_MS
    stored = run.held(span)
    windows = [
        _Range(start, min(start + width, span.end_ms))
        for start in range(span.start_ms, span.end_ms, width)
    ]
    incomplete = [w for w in windows if _count(stored, w) < (w.end_ms - w.start_ms) // MINUTE_MS]
    stopped = await run.page_through(incomplete, partial(_candle_page, run))
    covered = _Range(span.start_ms, span.end_ms if stopped is None else stopped)
    held = run.held(covered)
    return run.report(
        covered,
        held,
        complete=stopped is None,
        expected=(covered.end_ms - covered.start_ms) // MINUTE_MS,
        gaps=tuple(_missing_runs(held, covered, run.refused)),
    )


async def _candle_page(run: _Run, window: _Range) -> pl.DataFrame:
    """The bars opening in `window`, in CANDLE_SCHEMA (volume in coins), sorted by time."""
    session, market = run.session, run.market
    client = session.client
    what = f"{run.kind} candles of {market.id} from {utc_text(window.start_ms)}"
    last = window.end_ms - 1
    if run.kind == "ohlcv":
        rows = await session.page(
            session.candles,
            what,
            partial(
                client.fetch_ohlcv,
                market.symbol,
                "1m",
                window.start_ms,
                CANDLE_PAGE,
                {"until": last},
            ),
        )
        # ccxt: [ts, open, high, low, close, volume in contracts].
        table = [
            (int(r[0]), r[1], r[2], r[3], r[4], _coins(r[5], market.contract_size)) for r in rows
        ]
    else:
        answer = await session.page(
            session.candles,
            what,
            partial(
                client.swapPublicGetV3MarketMarkPriceCandlesticks,
                {
                    "symbol": market.id,
                    "interval": "MINUTE_1",
                    "sTime": window.start_ms,
                    "eTime": last,
                    "limit": CANDLE_PAGE,
                },
            ),
        )
        # v3 mark-price rows: [low, high, open, close, sT, cT], all text; no volume.
        table = [
            (int(r[4]), _number(r[2]), _number(r[1]), _number(r[0]), _number(r[3]), 0.0)
            for r in _data(answer)
        ]
    inside = sorted((row for row in table if window.start_ms <= row[0] <= last), key=_first)
    return _frame(inside, dict(CANDLE_SCHEMA) | {"ts": pl.Int64()})


def _first(row: tuple[Any, ...]) -> Any:  # noqa: ANN401 - a sort key
    return row[0]


def _coins(contracts: object, contract_size: Decimal) -> float | None:
    """Contracts x contract size, computed in decimal and rounded once to the nearest float."""
    if contracts is None:
        return None
    return float(Decimal(repr(float(contracts))) * contract_size)  # type: ignore[arg-type]


def _number(text: object) -> float | None:
    if text is None or text == "":
        return None
    return float(text)  # type: ignore[arg-type]


def _data(answer: Any) -> list[Any]:  # noqa: ANN401 - ccxt answers are untyped
    data = answer.get("data") if isinstance(answer, dict) else None
    if not isinstance(data, list):
        raise VenueUnavailableError(f"{VENUE} answered without a data list: {str(answer)[:200]}")
    return data


def _inconsistent_bars(frame: pl.DataFrame) -> list[BarIssue]:
    """The bars breaking OHLC sense: positive prices, low <= open/close <= high, volume >= 0."""
    top = pl.max_horizontal("open", "close")
    bottom = pl.min_horizontal("open", "close")
    rules: list[tuple[str, pl.Expr, pl.Expr, str]] = [
        ("high", pl.col("high") < top, top, "is below max(open, close) = {}"),
        ("low", pl.col("low") > bottom, bottom, "is above min(open, close) = {}"),
        ("low", pl.col("low") <= 0, pl.lit(0.0), "is not above {}: prices must be positive"),
        ("volume", pl.col("volume") < 0, pl.lit(0.0), "is below {}"),
    ]
    issues: list[BarIssue] = []
    ms = frame.with_columns(pl.col("ts").dt.epoch("ms").alias("__ms"))
    for name, broken, bound, message in rules:
        bad = ms.with_columns(bound.alias("__bound")).filter(broken)
        issues += [
            BarIssue(int(ts), name, f"{value} {message.format(limit)}")
            for ts, value, limit in bad.select("__ms", name, "__bound").iter_rows()
        ]
    return sorted(issues, key=lambda issue: issue.ts_ms)


def _count(stored: np.ndarray, window: _Range) -> int:
    low, high = np.searchsorted(stored, [window.start_ms, window.end_ms])
    return int(high - low)


def _missing_runs(held: np.ndarray, span: _Range, refused: Sequence[RefusedPage]) -> list[Gap]:
    """Runs of one-minute bars of `span` absent from `held`, outside the refused windows."""
    if span.end_ms <= span.start_ms:
        return []
    grid = np.arange(span.start_ms, span.end_ms, MINUTE_MS, dtype=np.int64)
    at = np.searchsorted(held, grid)
    present = np.zeros(grid.size, dtype=bool)
    inside = at < held.size
    present[inside] = held[at[inside]] == grid[inside]
    missing = ~present
    for page in refused:
        missing &= ~((grid >= page.start_ms) & (grid < page.end_ms))
    edges = np.flatnonzero(np.diff(np.concatenate(([0], missing.astype(np.int8), [0]))))
    return [
        Gap(int(grid[first]), int(grid[stop - 1]) + MINUTE_MS, int(stop - first))
        for first, stop in zip(edges[::2], edges[1::2], strict=True)
    ]


# ---------------------------------------------------------------------- funding


async def _funding(run: _Run, span: _Range) -> KindReport:
    """Funding settlements of `span` in windows of 100 hours, resumed where the catalog's stop.

    The catalog's settlements are complete up to the first stretch of more than 8 hours (the
    longest interval) without one, counted from the start of the span; the download resumes
    at the settlement before that stretch (fetched again), or at the start.
    """
    stored = run.held(span)
    resume = span.start_ms
    if stored.size and int(stored[0]) - span.start_ms <= MAX_FUNDING_INTERVAL_MS:
        breaks = np.flatnonzero(np.diff(stored) > MAX_FUNDING_INTERVAL_MS)
        resume = int(stored[breaks[0]] if breaks.size else stored[-1])
    windows = [
        _Range(start, min(start + FUNDING_WINDOW_MS, span.end_ms))
        for start in range(resume, span.end_ms, FUNDING_WINDOW_MS)
    ]
    stopped = await run.page_through(windows, partial(_funding_window, run))
    covered = _Range(span.start_ms, span.end_ms if stopped is None else stopped)
    held = run.held(covered)
    interval = funding_interval_ms(held)
    irregular = tuple(
        FundingStep(int(a), int(b)) for a, b in itertools.pairwise(held) if b - a != interval
    )
    return run.report(
        covered, held, complete=stopped is None, interval_ms=interval, irregular=irregular
    )


async def _funding_window(run: _Run, window: _Range) -> pl.DataFrame:
    """Settlements with ``fT`` in `window`, ascending; a full page is paged further back."""
    session, market = run.session, run.market
    found: dict[int, float | None] = {}
    last = window.end_ms - 1
    while True:
        answer = await session.page(
            session.market,
            f"funding history of {market.id} up to {utc_text(last)}",
            partial(
                session.client.swapPublicGetV3MarketFundingRateHistory,
                {
                    "symbol": market.id,
                    "sTime": window.start_ms,
                    "eTime": last,
                    "limit": FUNDING_PAGE,
                },
            ),
        )
        rows = _data(answer)  # newest first
        times = [int(row["fT"]) for row in rows]
        for ts, row in zip(times, rows, strict=True):
            found.setdefault(ts, _number(row.get("fR")))
        if len(rows) < FUNDING_PAGE or min(times) <= window.start_ms or not session.can_fetch():
            break
        last = min(times) - 1
    chosen = sorted(ts for ts in found if window.start_ms <= ts < window.end_ms)
    return _frame([(ts, found[ts]) for ts in chosen], dict(FUNDING_SCHEMA) | {"ts": pl.Int64()})


# ---------------------------------------------------------------------- trades


async def _trades(run: _Run, span: _Range) -> KindReport:
    """The venue's latest trades (at most 1,000: Poloniex keeps no paged history) in `span`."""
    run.progress.begin(run.kind, 1)
    complete = run.session.can_fetch()
    if complete:
        session, market = run.session, run.market
        trades = await session.page(
            session.market,
            f"the latest trades of {market.id}",
            partial(session.client.fetch_trades, market.symbol, None, TRADES_LIMIT),
        )
        run.fetched = len(trades)
        run.progress.advance(run.kind, run.fetched)
        times = [int(t["timestamp"]) for t in trades]
        if times:
            run.notes.append(
                f"Poloniex serves only its latest {TRADES_LIMIT:,} trades, with no older "
                f"history: it returned {len(times):,} trades from {utc_text(min(times))} to "
                f"{utc_text(max(times))}"
            )
        else:
            run.notes.append("Poloniex returned no trades (it serves only its latest trades)")
        rows = sorted(
            (ts, int(t["id"]), t["side"], t["price"], _coins(t["amount"], market.contract_size))
            for ts, t in zip(times, trades, strict=True)
            if span.start_ms <= ts < span.end_ms
        )
        if len(rows) < len(times):
            run.notes.append(f"{len(times) - len(rows):,} of them fall outside the range")
        run.store(_frame(rows, dict(TRADES_SCHEMA) | {"ts": pl.Int64()}), span)
    return run.report(span, run.held(span), complete=complete)
