"""From a loaded paper or live profile to a running node: the one place a mode is chosen.

`run_profile_node` resolves the profile's strategies, risk budget and execution model into a
`Shadow`, opens the venue (public only for paper; with the credentials the profile names for
live, read from the environment or a 0600 file and never shown), opens the store, plugs in the
broker of the mode and runs the node until SIGTERM/SIGINT or `max_bars`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from polytrade.errors import ExitCode, PolytradeError, UsageError
from polytrade.spec.models import ProfileDocument, RiskBudgetDocument, StrategyDocument

if TYPE_CHECKING:
    from collections.abc import Sequence

    from polytrade.exchange.poloniex.connection import Credentials
    from polytrade.node.runner import NodeReport
    from polytrade.spec.loader import LoadedSpec

POLONIEX_REST: Final = "https://api.poloniex.com"
POLONIEX_WS_PUBLIC: Final = "wss://ws.poloniex.com/ws/v3/public"
POLONIEX_WS_PRIVATE: Final = "wss://ws.poloniex.com/ws/v3/private"
SHUTDOWN_DEADLINE_S: Final = 20.0
VENUE_URL_VARIABLE: Final = "POLYTRADE_VENUE_URL"
"""Points a profile at another venue host (the emulator) without editing it."""


class TradingHalted(PolytradeError):  # noqa: N818 - the state's name
    """The profile is HALTED (kill switch or a risk limit); only `polytrade resume` lifts it."""

    exit_code = ExitCode.RISK_HALT


SleeveSpec = tuple[StrategyDocument, float, dict[str, Any]]
"""A strategy of a profile, its allocation and its param overrides."""


def profile_parts(
    loaded: LoadedSpec,
) -> tuple[ProfileDocument, RiskBudgetDocument, list[SleeveSpec]]:
    """The profile, its risk budget and its (strategy, allocation, params) sleeves."""
    document = loaded.document
    if not isinstance(document, ProfileDocument):
        raise UsageError(f"{loaded.path} is a {loaded.kind}, not a Profile")
    risk = loaded.references["spec.risk"].document
    if not isinstance(risk, RiskBudgetDocument):  # pragma: no cover - the loader checks kinds
        raise UsageError(f"{loaded.path}: spec.risk is not a RiskBudget")
    sleeves = []
    for index, allocation in enumerate(document.spec.strategies):
        strategy = loaded.references[f"spec.strategies[{index}].ref"].document
        if not isinstance(strategy, StrategyDocument):  # pragma: no cover - the loader checks
            raise UsageError(f"{loaded.path}: spec.strategies[{index}] is not a Strategy")
        sleeves.append((strategy, allocation.allocation, dict(allocation.params)))
    return document, risk, sleeves


def venue_urls(document: ProfileDocument, override: str | None = None) -> tuple[str, str, str]:
    """REST, public websocket and private websocket URLs.

    `override` (``--venue-url``, else $POLYTRADE_VENUE_URL) points every one of them at one
    host, the emulator's (``http://127.0.0.1:8765``: websockets at ``ws://.../ws/v3/...``);
    otherwise the profile's `venue.urls`, else Poloniex.
    """
    base = override or os.environ.get(VENUE_URL_VARIABLE)
    if base:
        rest = base.rstrip("/")
        socket = rest.replace("https://", "wss://").replace("http://", "ws://")
        return rest, f"{socket}/ws/v3/public", f"{socket}/ws/v3/private"
    urls = document.spec.venue.urls
    rest = (urls.rest if urls and urls.rest else None) or POLONIEX_REST
    public = (urls.ws_public if urls and urls.ws_public else None) or POLONIEX_WS_PUBLIC
    private = (urls.ws_private if urls and urls.ws_private else None) or POLONIEX_WS_PRIVATE
    return str(rest), str(public), str(private)


def credentials_of(document: ProfileDocument) -> Credentials:
    """The live credentials the profile names (environment variables, or a 0600 file)."""
    from polytrade.exchange.poloniex.connection import Credentials  # noqa: PLC0415

    named = document.spec.venue.credentials
    if named is None:
        raise UsageError(
            "a live profile needs venue.credentials (api_key_env and api_secret_env naming "
            "environment variables, or file: a 0600 file)"
        )
    if named.file:
        return Credentials.from_file(Path(named.file).expanduser())
    return Credentials.from_environment(
        key_variable=named.api_key_env, secret_variable=named.api_secret_env
    )


def run_profile_node(
    loaded: LoadedSpec,
    *,
    store_url: str | None,
    profile_hash: str,
    max_bars: int | None = None,
    venue_url: str | None = None,
) -> NodeReport:
    """Run a paper or live profile until stopped; returns the session's report."""
    return asyncio.run(
        _run(
            loaded,
            store_url=store_url,
            profile_hash=profile_hash,
            max_bars=max_bars,
            venue_url=venue_url,
        )
    )


async def _run(
    loaded: LoadedSpec,
    *,
    store_url: str | None,
    profile_hash: str,
    max_bars: int | None,
    venue_url: str | None,
) -> NodeReport:
    from polytrade.exchange.poloniex.adapter import PoloniexAdapter  # noqa: PLC0415
    from polytrade.exchange.poloniex.stream import PublicStream  # noqa: PLC0415
    from polytrade.node.journal import Journal  # noqa: PLC0415
    from polytrade.node.runner import Node, PaperBroker  # noqa: PLC0415
    from polytrade.node.shadow import Shadow  # noqa: PLC0415

    document, risk, sleeves = profile_parts(loaded)
    spec = document.spec
    mode = spec.mode
    if mode not in {"paper", "live"}:
        raise UsageError(f"{loaded.path}: mode {mode} does not run on the trading node")
    deployment = document.metadata.name
    journal = Journal.open(store_url, deployment)
    try:
        state = journal.trading_state()
        if mode == "live" and state.state == "halted":
            raise TradingHalted(
                f"{deployment} is HALTED since {state.updated_text} ({state.reason}); "
                f"run `polytrade resume {loaded.path}` after checking the account"
            )
        rest, public, private = venue_urls(document, venue_url)
        credentials = credentials_of(document) if mode == "live" else None
        adapter = await PoloniexAdapter.open(credentials, rest_url=rest)
        try:
            shadow = Shadow(sleeves, risk, spec.execution, margin_mode=spec.venue.margin_mode)
            if mode == "paper":
                broker: Any = PaperBroker(spec.execution.fees.maker_bps)
            else:
                from polytrade.node.live import LiveBroker  # noqa: PLC0415

                broker = LiveBroker(
                    risk.spec, spec, credentials=credentials, private_ws_url=private
                )

            def stream(subscriptions: Sequence[Any]) -> PublicStream:
                return PublicStream(public, rest_url=rest, subscriptions=subscriptions)

            warmup = getattr(spec.data, "warmup_bars", 500)
            node = Node(
                deployment=deployment,
                mode=mode,
                shadow=shadow,
                adapter=adapter,
                journal=journal,
                broker=broker,
                stream_factory=stream,
                warmup_bars=warmup,
                max_bars=max_bars,
                shutdown_deadline_s=SHUTDOWN_DEADLINE_S,
                profile_hash=profile_hash,
                profile_path=str(loaded.path),
            )
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for number in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.add_signal_handler(number, stop.set)

            def kill_signal() -> None:
                journal.set_trading_state("halted", "kill switch: SIGUSR1", "operator:signal")

            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(signal.SIGUSR1, kill_signal)
            return await node.run(stop)
        finally:
            await adapter.close()
    finally:
        journal.close()
