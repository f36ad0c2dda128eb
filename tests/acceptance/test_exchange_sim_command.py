"""`polytrade exchange-sim` as a user runs it: a real process, the real ccxt client, real HTTP.

The service replays the seeded synthetic market at 6,000 x real time (a minute per 10 ms, so
an eight-hour funding interval passes in under five seconds). The unmodified
`ccxt.async_support.poloniex`, pointed at it exactly as the README says, runs the whole
lifecycle: markets, candles, book, balance, leverage, a post-only order with a client id, open
orders, cancel, a market buy, fills, positions, a funding settlement of the replayed schedule
in the balance, and a reduce-only close. The account's final equity is then accounted for to
the cent from what the client saw: fees, realised PnL and funding at the mark of the mark-price
candles.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ccxt.async_support as ccxt_async  # type: ignore[import-untyped]
import pytest
import yaml

from polytrade.exchange.sim.faults import Faults

if TYPE_CHECKING:
    from collections.abc import Iterator

KEY = "rehearsal-key"
SECRET = "rehearsal-secret"  # noqa: S105 - a throwaway test secret
UNIFIED = "BTC/USDT:USDT"
SYMBOL = "BTC_USDT_PERP"
CONTRACT = 0.001


ENV = {**os.environ, "POLYTRADE_SIM_API_KEY": KEY, "POLYTRADE_SIM_API_SECRET": SECRET}
README = Path(__file__).parents[2] / "README.md"
EMULATOR_DOC = Path(__file__).parents[2] / "docs" / "emulator.md"


@pytest.fixture
def service() -> Iterator[dict[str, Any]]:
    """`polytrade exchange-sim --port 0 --json` with credentials from the environment."""
    options = ["--port", "0", "--seed", "3", "--speed", "6000", "--days", "10", "--json"]
    process = subprocess.Popen(
        [sys.executable, "-m", "polytrade", "exchange-sim", *options, "--warmup-bars", "2880"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=ENV,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line:
            pytest.fail(f"exchange-sim did not start: {process.communicate(timeout=10)[1]}")
        yield json.loads(line)
    finally:
        process.send_signal(signal.SIGTERM)
        _out, err = process.communicate(timeout=20)
        assert process.returncode == 0, err
        assert SECRET not in err


async def poll(check: Any, timeout_s: float = 10.0) -> Any:
    """Await `check()` until it returns something truthy."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if result := await check():
            return result
        await asyncio.sleep(0.02)
    pytest.fail("the condition did not come true in time")


def test_a_ccxt_program_trades_on_the_standalone_emulator(service: dict[str, Any]) -> None:
    assert service["symbol"] == SYMBOL
    assert service["market"].startswith("synthetic (seed=3")
    assert service["history_bars"] == 2880
    asyncio.run(lifecycle(service["rest_url"]))


async def lifecycle(url: str) -> None:  # noqa: PLR0915 - one lifecycle, step by step
    client = ccxt_async.poloniex(
        {"apiKey": KEY, "secret": SECRET, "timeout": 5_000, "options": {"defaultType": "swap"}}
    )
    client.urls["api"] = {"spot": url, "swap": url}
    try:
        markets = await client.load_markets()
        market = markets[UNIFIED]
        assert (market["type"], market["contractSize"], market["linear"]) == ("swap", 0.001, True)

        # Two days of history before the replay started: hours are aggregated from minutes.
        # (The replay runs on meanwhile: the minutes are read by the window of a closed hour.)
        minutes = await client.fetch_ohlcv(UNIFIED, "1m", limit=500)
        hours = await client.fetch_ohlcv(UNIFIED, "1h", limit=48)
        assert len(minutes) == 500
        assert len(hours) == 48
        assert all(b[0] - a[0] == 60_000 for a, b in itertools.pairwise(minutes))
        hour = hours[-2]
        inside = await client.fetch_ohlcv(
            UNIFIED, "1m", hour[0], 60, {"until": hour[0] + 3_599_999}
        )
        assert len(inside) == 60
        assert hour[2] == max(m[2] for m in inside)
        assert hour[3] == min(m[3] for m in inside)
        assert hour[5] == pytest.approx(sum(m[5] for m in inside))

        book = await client.fetch_order_book(UNIFIED)
        best_bid, best_ask = book["bids"][0][0], book["asks"][0][0]
        assert best_bid < best_ask
        balance = await client.fetch_balance()
        assert balance["USDT"]["total"] == pytest.approx(10_000.0)
        await client.set_leverage(5, UNIFIED, {"marginMode": "cross"})

        # A post-only bid far below the market rests; it is listed, then cancelled.
        resting = await client.create_order(
            UNIFIED,
            "limit",
            "buy",
            2,
            round(best_bid * 0.9, 2),
            {"postOnly": True, "clientOrderId": "rehearsal-1", "marginMode": "cross"},
        )
        opens = await client.fetch_open_orders(UNIFIED)
        assert [(o["id"], o["clientOrderId"], o["postOnly"]) for o in opens] == [
            (resting["id"], "rehearsal-1", True)
        ]
        await client.cancel_order(resting["id"], UNIFIED)
        assert await client.fetch_open_orders(UNIFIED) == []

        # Market buy 3 contracts; the fill and the position come back.
        await client.create_order(UNIFIED, "market", "buy", 3, None, {"clientOrderId": "buy-1"})
        buys = await client.fetch_my_trades(UNIFIED)
        assert sum(t["amount"] for t in buys) == 3
        positions = await client.fetch_positions([UNIFIED])
        assert [(p["contracts"], p["info"]["side"]) for p in positions] == [(3, "BUY")]

        # The replayed funding schedule settles on the open position within a few seconds.
        async def settled_while_open() -> list[dict[str, Any]]:
            history = await client.swapPublicGetV3MarketFundingRateHistory(
                {"symbol": SYMBOL, "sTime": buys[0]["timestamp"]}
            )
            return history["data"]

        funding = await poll(settled_while_open)
        await client.create_order(
            UNIFIED, "market", "sell", 3, None, {"reduceOnly": True, "clientOrderId": "close-1"}
        )
        assert await client.fetch_positions([UNIFIED]) == []
        fills = await client.fetch_my_trades(UNIFIED)
        assert sorted(f["side"] for f in fills) == ["buy", "sell"]

        settled = await client.swapPublicGetV3MarketFundingRateHistory(
            {"symbol": SYMBOL, "sTime": buys[0]["timestamp"], "eTime": fills[-1]["timestamp"]}
        )
        expected_funding = 0.0
        for record in settled["data"]:
            # The settlement is made at the last mark before its time: the close of the
            # mark-price minute that ends there.
            mark_bar = await client.swapPublicGetV3MarketMarkPriceCandlesticks(
                {
                    "symbol": SYMBOL,
                    "interval": "MINUTE_1",
                    "sTime": int(record["fT"]) - 60_000,
                    "eTime": int(record["fT"]) - 60_000,
                }
            )
            mark = float(mark_bar["data"][0][3])
            expected_funding -= 3 * CONTRACT * mark * float(record["fR"])
        assert len(settled["data"]) >= len(funding) >= 1

        fees = sum(f["fee"]["cost"] for f in fills)
        buy = next(f for f in fills if f["side"] == "buy")
        sell = next(f for f in fills if f["side"] == "sell")
        realised = (sell["price"] - buy["price"]) * 3 * CONTRACT
        equity = float((await client.fetch_balance())["info"]["eq"])
        assert equity == pytest.approx(10_000.0 - fees + realised + expected_funding, abs=1e-6)
        assert expected_funding != 0.0
    finally:
        await client.close()


def fenced(text: str, after: str, language: str) -> str:
    """The first ```language block of `text` after the heading `after`."""
    section = text[text.index(after) :]
    start = section.index(f"```{language}\n") + len(language) + 4
    return section[start : section.index("```", start)]


def test_the_readme_snippet_trades_on_the_emulator(service: dict[str, Any]) -> None:
    snippet = fenced(README.read_text(encoding="utf-8"), "## Rehearse on the emulator", "python")
    assert "http://127.0.0.1:8765" in snippet
    port = service["rest_url"].rsplit(":", 1)[1]
    code = snippet.replace("127.0.0.1:8765", f"127.0.0.1:{port}")
    code += "\nprint(len(exchange.fetch_open_orders('BTC/USDT:USDT')))\n"
    done = subprocess.run(
        [sys.executable, "-c", code],
        check=False,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "1"  # the post-only bid rests on the book


def test_the_documented_faults_file_is_valid() -> None:
    text = fenced(EMULATOR_DOC.read_text(encoding="utf-8"), "## Faults", "yaml")
    faults = Faults.from_yaml(text, "docs/emulator.md")
    assert faults.websocket.drop_every_n_messages == 500
    assert faults.timeout_after_accept_action == "drop"
    assert yaml.safe_load(text)["too_many_requests"] == {"place": 0.05, "*": 0.01}
