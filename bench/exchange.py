"""Emulator throughput on loopback: orders per second through ccxt, websocket messages per second.

    .ci/uv run --locked python bench/exchange.py            # full; writes bench/results/
    .ci/uv run --locked python bench/exchange.py --quick    # a smoke run; writes to /tmp

Each section starts `polytrade exchange-sim` as its own process (the service a user runs),
with the venue's per-second quotas off (``--no-quotas``: with them on, a client is held to
50 orders/s by design), and drives it from this process:

1. orders: the real `ccxt.async_support.poloniex` places post-only bids far below the market
   and cancels them (create + cancel = two signed requests), then market orders that fill
   (create + the fills query), one request at a time, then from 4 clients at once. Figures:
   orders/s, and the create round trip p50/p99 in ms;
2. websocket: the market replayed flat out (``--speed 1e7``), 1 and then 4 clients
   subscribed to every public channel of the symbol (candles, trades, tickers, mark price,
   book, funding) count the frames they receive in 5 s. Figures: messages/s received, in all.

The emulator and the client share the machine's two cores; the figures are the pair's.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from polytrade.exchange.poloniex.connection import Credentials, open_client

KEY = "bench-key"
SECRET = "bench-secret"  # noqa: S105 - a throwaway secret
UNIFIED = "BTC/USDT:USDT"
SYMBOL = "BTC_USDT_PERP"
CHANNELS = ["candles_minute_1", "trades", "tickers", "mark_price", "book_lv2", "funding_rate"]


class Emulator:
    """`polytrade exchange-sim` in a child process; its JSON line says where it listens."""

    def __init__(self, *options: str) -> None:
        env = {**os.environ, "POLYTRADE_SIM_API_KEY": KEY, "POLYTRADE_SIM_API_SECRET": SECRET}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "polytrade", "exchange-sim", "--port", "0", "--json", *options],
            stdout=subprocess.PIPE,
            env=env,
            text=True,
        )
        if self.process.stdout is None:  # pragma: no cover - stdout is a pipe
            raise RuntimeError("no pipe to the emulator")
        self.info: dict[str, Any] = json.loads(self.process.stdout.readline())

    def close(self) -> None:
        """Stop the emulator (SIGTERM) and wait for it."""
        self.process.terminate()
        self.process.wait(timeout=30)


def client(url: str) -> Any:  # noqa: ANN401 - ccxt is untyped
    """The real ccxt client on the emulator, as Polytrade opens it (ccxt's limiter off)."""
    return open_client(Credentials(KEY, SECRET), rest_url=url)


async def order_loop(
    url: str, count: int, *, tag: str, fill: bool, go: asyncio.Barrier
) -> tuple[list[float], float]:
    """Create round trips (ms) of `count` orders, and the loop's seconds.

    Each order is cancelled (post-only) or its fills queried (market). Markets are loaded and
    one warm-up order is sent before the barrier, so the loop times trading only.
    """
    exchange = client(url)
    try:
        await exchange.load_markets()
        bid = (await exchange.fetch_order_book(UNIFIED))["bids"][0][0]
        price = round(bid * 0.8, 2)

        async def one(n: int | str) -> float:
            started = time.perf_counter()
            if fill:
                side = "buy" if isinstance(n, int) and n % 2 else "sell"
                await exchange.create_order(
                    UNIFIED, "market", side, 1, None, {"clientOrderId": f"{tag}-{n}"}
                )
                took = time.perf_counter() - started
                await exchange.fetch_my_trades(UNIFIED, limit=1)
            else:
                order = await exchange.create_order(
                    UNIFIED,
                    "limit",
                    "buy",
                    1,
                    price,
                    {"postOnly": True, "clientOrderId": f"{tag}-{n}"},
                )
                took = time.perf_counter() - started
                await exchange.cancel_order(order["id"], UNIFIED)
            return took * 1000

        await one("warm-up")
        await go.wait()
        started = time.perf_counter()
        latencies = [await one(n) for n in range(count)]
        return latencies, time.perf_counter() - started
    finally:
        await exchange.close()


async def orders_section(url: str, count: int) -> dict[str, Any]:
    """Orders/s from one client and from four, and the create round trip quantiles."""
    figures: dict[str, Any] = {}
    for fill in (False, True):
        name = "market_fill" if fill else "post_only_cancel"
        go = asyncio.Barrier(1)
        latencies, elapsed = await order_loop(url, count, tag=f"one-{name}", fill=fill, go=go)
        go = asyncio.Barrier(4)
        runs = await asyncio.gather(
            *(
                order_loop(url, count // 4, tag=f"four{k}-{name}", fill=fill, go=go)
                for k in range(4)
            )
        )
        quantiles = statistics.quantiles(latencies, n=100)
        figures[name] = {
            "orders": count,
            "orders_per_s_one_client": round(count / elapsed, 1),
            "orders_per_s_four_clients": round(
                sum(len(r) for r, _ in runs) / max(seconds for _, seconds in runs), 1
            ),
            "create_ms_p50": round(quantiles[49], 2),
            "create_ms_p99": round(quantiles[98], 2),
        }
        print(name, figures[name], flush=True)
    return figures


async def count_frames(url: str, seconds: float) -> int:
    """Frames (other than acks and pongs) one subscriber receives in `seconds`."""
    received = 0
    async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
        await ws.send_json({"event": "subscribe", "channel": CHANNELS, "symbols": [SYMBOL]})
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                message = await ws.receive(timeout=left)
            except TimeoutError:
                break
            if message.type != aiohttp.WSMsgType.TEXT:
                break
            if '"event"' not in message.data[:20]:
                received += 1
    return received


async def websocket_section(url: str, seconds: float) -> dict[str, Any]:
    """Frames/s received by 1 and by 4 subscribers of every public channel."""
    figures: dict[str, Any] = {}
    for clients in (1, 4):
        counts = await asyncio.gather(*(count_frames(url, seconds) for _ in range(clients)))
        figures[f"{clients}_clients"] = {
            "messages_per_s_total": round(sum(counts) / seconds),
            "messages_per_s_per_client": round(sum(counts) / seconds / clients),
        }
        print(f"websocket, {clients} clients", figures[f"{clients}_clients"], flush=True)
    return figures


def main() -> None:
    """Run both sections and write the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run (fewer orders)")
    args = parser.parse_args()
    count = 80 if args.quick else 1_000
    seconds = 1.0 if args.quick else 5.0

    results: dict[str, Any] = {
        "date": dt.datetime.now(tz=dt.UTC).date().isoformat(),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_1m": os.getloadavg()[0],
        },
    }
    emulator = Emulator("--no-quotas", "--balance", "100000000", "--speed", "1", "--seed", "1")
    try:
        results["orders"] = asyncio.run(orders_section(emulator.info["rest_url"], count))
    finally:
        emulator.close()
    emulator = Emulator("--speed", "10000000", "--seed", "2", "--days", "60")
    try:
        results["websocket"] = asyncio.run(
            websocket_section(emulator.info["public_ws_url"], seconds)
        )
    finally:
        emulator.close()
    folder = Path(tempfile.gettempdir()) if args.quick else Path(__file__).parent / "results"
    out = folder / f"exchange-{results['date']}.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"written {out}")


if __name__ == "__main__":
    main()
