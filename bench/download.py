"""Benchmark: how fast `polytrade data download` fills the catalog from the loopback emulator.

Serves 7 days of the seeded synthetic market (10,080 one-minute bars) from the emulator on
127.0.0.1 and downloads the 1m candles with the real ccxt client into a fresh catalog, then
once more over the same range (nothing new: the catalog is only read). Two settings:

- paced: the emulator enforces Poloniex's candles quota (20 requests/s) and the downloader
  keeps its default pace of 18 requests/s, as against the venue;
- unpaced: quotas lifted and no pacing, which measures the client itself (ccxt parsing,
  checks, catalog merges and atomic writes of each page).

Figures are printed, not asserted: the host is noisy.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from datetime import date
from pathlib import Path

from polytrade.data.catalog import Catalog
from polytrade.data.synthetic import generate
from polytrade.exchange.poloniex.download import download
from polytrade.exchange.sim.history import MarketHistory
from polytrade.exchange.sim.matching import MatchingEngine
from polytrade.exchange.sim.server import QUOTAS_PER_SECOND, build_app, serve, wall_clock_ms
from polytrade.exchange.sim.venue import EngineBackend

SYMBOL = "BTC_USDT_PERP"
DAYS = 7
START = date(2024, 1, 1)
UNTIL = "2024-01-08"


def history() -> MarketHistory:
    """The synthetic market's 1m bars with whole-contract volumes (0.001 BTC a contract)."""
    market = generate(11, DAYS, START)
    filled = MarketHistory()
    for row in market.bars.iter_rows(named=True):
        filled.add_bar(
            SYMBOL,
            int(row["ts"].timestamp() * 1000),
            row["open"],
            row["high"],
            row["low"],
            row["close"],
            amount=row["volume"] * row["close"],
            contracts=max(round(row["volume"] * 1000), 1),
            count=1,
        )
    return filled


async def measure(filled: MarketHistory, *, paced: bool) -> None:
    """Download the week twice into a fresh catalog and print rows/s and pages/s of each run."""
    quotas = QUOTAS_PER_SECOND if paced else dict.fromkeys(QUOTAS_PER_SECOND, 1_000_000)
    app = build_app(
        EngineBackend(MatchingEngine(wall_clock_ms), "bench", history=filled),
        api_key="bench",
        api_secret="bench-secret",  # noqa: S106 - a throwaway emulator secret
        quotas=quotas,
    )
    server = await serve(app)
    pace = 18.0 if paced else 1_000_000.0
    try:
        with tempfile.TemporaryDirectory() as folder:
            catalog = Catalog(Path(folder))
            for label in ("first run", "second run"):
                began = time.perf_counter()
                report = await download(
                    catalog,
                    SYMBOL,
                    since=START,
                    until=UNTIL,
                    kinds=("ohlcv",),
                    rest_url=server.rest_url,
                    candles_per_second=pace,
                )
                wall = time.perf_counter() - began
                ohlcv = report.kinds[0]
                print(
                    f"{'paced' if paced else 'unpaced':8} {label:10}  {ohlcv.fetched:6,} rows "
                    f"{ohlcv.added:6,} new  {ohlcv.pages:3} pages  {ohlcv.elapsed_s:6.2f} s  "
                    f"{ohlcv.fetched / ohlcv.elapsed_s:8,.0f} rows/s  "
                    f"{ohlcv.pages / ohlcv.elapsed_s:6.1f} pages/s  {ohlcv.retries} retried  "
                    f"(whole call {wall:.2f} s)"
                )
    finally:
        await server.close()


def main() -> None:
    """Both settings, paced first."""
    filled = history()
    print(f"{DAYS} days of 1m candles ({DAYS * 1440:,} bars), BTC_USDT_PERP, loopback emulator")
    asyncio.run(measure(filled, paced=True))
    asyncio.run(measure(filled, paced=False))


if __name__ == "__main__":
    main()
