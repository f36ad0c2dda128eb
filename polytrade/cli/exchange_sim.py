"""`polytrade exchange-sim`: the loopback Poloniex v3 futures emulator as a standalone service."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
from pathlib import Path

import typer

from polytrade.cli.output import stderr
from polytrade.errors import UsageError

KEY_VARIABLE = "POLYTRADE_SIM_API_KEY"
SECRET_VARIABLE = "POLYTRADE_SIM_API_SECRET"  # noqa: S105 - the name of a variable


def exchange_sim(  # noqa: PLR0917 - a command's options
    port: int = typer.Option(8765, "--port", help="TCP port to listen on (0: any free port)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    seed: int = typer.Option(0, "--seed", help="Seed of the synthetic market and the order ids."),
    data: Path | None = typer.Option(
        None,
        "--data",
        help="One-minute bars to replay (parquet or CSV: ts, open, high, low, close, volume in "
        "coins, optional mark_price); default: the seeded synthetic market.",
        show_default=False,
    ),
    funding: Path | None = typer.Option(
        None,
        "--funding",
        help="Funding settlements for --data (ts, rate); without it --data has no funding.",
        show_default=False,
    ),
    speed: float = typer.Option(
        1.0,
        "--speed",
        help="Replay speed as a multiple of real time (6000: one minute of market per 10 ms).",
    ),
    api_key: str = typer.Option(
        "",
        "--api-key",
        envvar=KEY_VARIABLE,
        help=f"The API key clients sign with (or ${KEY_VARIABLE}).",
        show_default=False,
    ),
    api_secret: str = typer.Option(
        "",
        "--api-secret",
        envvar=SECRET_VARIABLE,
        help=f"The API secret signatures are checked with (or ${SECRET_VARIABLE}; prefer the "
        "variable: a command-line argument is visible to other users of the machine).",
        show_default=False,
    ),
    symbol: str = typer.Option("BTC_USDT_PERP", "--symbol", help="Symbol the market trades as."),
    balance: float = typer.Option(10_000.0, "--balance", help="USDT in the account at start."),
    days: int = typer.Option(30, "--days", help="Days of synthetic market (without --data)."),
    warmup_bars: int = typer.Option(
        4_320, "--warmup-bars", help="Bars served as history before the replay starts."
    ),
    faults: Path | None = typer.Option(
        None,
        "--faults",
        help="YAML of faults to inject (latency, 429/5xx, timeouts after accept, maintenance, "
        "clock skew, malformed bodies, websocket drops); see docs/emulator.md.",
        show_default=False,
    ),
    depth_levels: int = typer.Option(
        20, "--depth-levels", help="Levels a side of the synthetic book around the price."
    ),
    depth_size: float = typer.Option(
        100.0, "--depth-size", help="Contracts offered at each level of the synthetic book."
    ),
    depth_step: int = typer.Option(
        10, "--depth-step", help="Ticks between neighbouring levels of the synthetic book."
    ),
    spread_ticks: int = typer.Option(2, "--spread-ticks", help="The synthetic book's spread."),
    no_quotas: bool = typer.Option(
        False,
        "--no-quotas",
        help="Do not answer requests above the venue's per-second quotas with 429 (load tests).",
    ),
    as_json: bool = typer.Option(
        False, "--json", help="Print one JSON line with the URLs when ready, nothing else."
    ),
) -> None:
    """Serve the Poloniex v3 futures API on loopback: REST, websockets, a replayed market.

    Any ccxt program trades on it after setting ``urls['api']`` to the printed REST URL
    (README, "Rehearse on the emulator"). Stops on Ctrl-C or SIGTERM.
    """
    # The emulator pulls in aiohttp, polars and numba: only this command pays for them.
    from polytrade.exchange.sim.book import DepthProfile  # noqa: PLC0415
    from polytrade.exchange.sim.faults import Faults  # noqa: PLC0415
    from polytrade.exchange.sim.service import SimSettings, serve_forever, start  # noqa: PLC0415

    if not api_key or not api_secret:
        raise UsageError(
            f"the emulator needs an API key and secret: --api-key/--api-secret or "
            f"{KEY_VARIABLE}/{SECRET_VARIABLE}"
        )
    if not speed > 0.0:
        raise UsageError(f"--speed must be positive; it was {speed}")
    try:
        depth = DepthProfile(
            tick_levels=depth_levels,
            size_per_level_contracts=depth_size,
            spread_ticks=spread_ticks,
            step_ticks=depth_step,
        )
    except ValueError as error:
        raise UsageError(f"--depth-*/--spread-ticks: {error}") from None
    fault_config = None
    if faults is not None:
        try:
            text = faults.read_text(encoding="utf-8")
        except OSError as error:
            raise UsageError(f"{faults}: cannot read the faults file ({error.strerror})") from None
        fault_config = Faults.from_yaml(text, str(faults))
    settings = SimSettings(
        api_key=api_key,
        api_secret=api_secret,
        host=host,
        port=port,
        seed=seed,
        data=data,
        funding=funding,
        symbol=symbol,
        speed=speed,
        balance=balance,
        days=days,
        warmup_bars=warmup_bars,
        faults=fault_config,
        enforce_quotas=not no_quotas,
        depth=depth,
    )

    async def main() -> None:
        try:
            sim = await start(settings)
        except OSError as error:
            raise UsageError(f"cannot listen on {host}:{port}: {error.strerror}") from None
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for number in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(number, stop.set)
        described = sim.describe()
        if as_json:
            sys.stdout.write(json.dumps(described) + "\n")
            sys.stdout.flush()
        else:
            stderr.print(
                f"[bold]Poloniex v3 emulator[/bold] listening on {sim.rest_url}\n"
                f"  websockets  {sim.public_ws_url}  {sim.private_ws_url}\n"
                f"  market      {described['symbol']}, {described['market']}, "
                f"{described['history_bars']:,} bars of history, replaying from "
                f"{described['replay_starts']} at {speed:g}x\n"
                f"  ccxt        client.urls['api'] = {{'spot': '{sim.rest_url}', "
                f"'swap': '{sim.rest_url}'}}\n"
                "Ctrl-C stops it.",
                highlight=False,
            )
        with contextlib.suppress(asyncio.CancelledError):
            await serve_forever(sim, stop)

    asyncio.run(main())
