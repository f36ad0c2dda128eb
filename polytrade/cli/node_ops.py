"""`polytrade kill PROFILE` and `polytrade resume PROFILE`: the operator's hands on a deployment."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from polytrade.cli.loading import spec_loader
from polytrade.cli.output import stderr
from polytrade.errors import ExitCode

if TYPE_CHECKING:
    from polytrade.exchange.poloniex.adapter import PoloniexAdapter
    from polytrade.node.app import SleeveSpec
    from polytrade.node.journal import Journal
    from polytrade.spec.models import ProfileDocument, RiskBudgetDocument

_VENUE = typer.Option(
    None,
    "--venue-url",
    help="Live: the venue host instead of the profile's, e.g. the emulator's "
    "http://127.0.0.1:8765 [default: $POLYTRADE_VENUE_URL].",
    show_default=False,
)
_STORE = typer.Option(
    None,
    "--store",
    help="Store URL (default: the profile's store, else $POLYTRADE_STORE_URL, else SQLite).",
    show_default=False,
)


def kill(
    profile: Path = typer.Argument(..., help="The deployment's profile.", show_default=False),
    store: str | None = _STORE,
    reason: str = typer.Option("operator kill switch", "--reason", help="Why (audited)."),
    deadline: float = typer.Option(
        60.0, "--deadline", help="Seconds to keep trying to cancel, flatten and verify flat."
    ),
    venue_url: str | None = _VENUE,
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document on stdout."),
) -> None:
    """Kill switch: HALTED first, then cancel all orders, flatten, verify flat.

    The deployment stays HALTED (a running node stops trading at once and keeps it so; a
    restarted node refuses to trade) until `polytrade resume`. Exit 0 when flat was verified;
    4 when the venue could not be reached or flat not verified before the deadline (HALTED
    stays either way: run it again).
    """
    asyncio.run(_kill(profile, store, reason, deadline, venue_url=venue_url, as_json=as_json))


async def _kill(
    profile: Path,
    store: str | None,
    reason: str,
    deadline: float,
    *,
    venue_url: str | None,
    as_json: bool,
) -> None:
    from polytrade.node.live import kill_switch  # noqa: PLC0415
    from polytrade.node.oms import OrderManager  # noqa: PLC0415

    document, risk, sleeves, journal = _deployment(profile, store)
    try:
        journal.set_trading_state("halted", f"kill switch: {reason}", "operator:cli")
        result: dict[str, Any] = {"deployment": journal.deployment, "halted": True}
        if document.spec.mode != "live":
            result["note"] = "not a live profile: nothing on a venue to cancel or flatten"
            _report(result, as_json=as_json)
            return
        adapter = await _venue(document, venue_url)
        try:
            session = journal.start_session("live", "kill")
            oms = OrderManager(
                adapter, journal, session, margin_mode=document.spec.venue.margin_mode
            )
            symbols = sorted({strategy.spec.instruments[0] for strategy, _a, _p in sleeves})
            report = await kill_switch(
                adapter,
                journal,
                oms,
                symbols,
                risk.spec.kill_switch,
                reason=reason,
                actor="operator:cli",
                deadline_s=deadline,
            )
            journal.end_session(session, "kill")
        finally:
            await adapter.close()
        result.update(
            flat=report.flat,
            cancelled=report.cancelled,
            flatten_orders=report.flatten_orders,
            error=report.error,
        )
        _report(result, as_json=as_json)
        if not report.flat:
            raise typer.Exit(ExitCode.UNAVAILABLE)
    finally:
        journal.close()


def resume(
    profile: Path = typer.Argument(..., help="The deployment's profile.", show_default=False),
    store: str | None = _STORE,
    accept_positions: bool = typer.Option(
        False,
        "--accept-positions",
        help="Live: take the venue's positions as the truth (after a reconciliation mismatch).",
    ),
    venue_url: str | None = _VENUE,
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document on stdout."),
) -> None:
    """Lift HALTED or REDUCING after checking the account: the deployment may trade again."""
    asyncio.run(
        _resume(
            profile,
            store,
            accept_positions=accept_positions,
            venue_url=venue_url,
            as_json=as_json,
        )
    )


async def _resume(
    profile: Path,
    store: str | None,
    *,
    accept_positions: bool,
    venue_url: str | None,
    as_json: bool,
) -> None:
    import time  # noqa: PLC0415

    from polytrade.node.live import RISK_STATE_KEY, accept_venue_positions  # noqa: PLC0415
    from polytrade.risk.live import LiveRisk  # noqa: PLC0415

    document, risk, sleeves, journal = _deployment(profile, store)
    try:
        before = journal.trading_state()
        saved = journal.state_values().get(RISK_STATE_KEY)
        if saved:
            engine = LiveRisk(risk.spec)
            now = time.time_ns() // 1_000_000
            engine.restore(saved, now_ms=now)
            for row in engine.resume(now, "operator:cli"):
                journal.audit("operator:cli", str(row.get("action")), row)
            journal.put_state(RISK_STATE_KEY, engine.state())
        if accept_positions and document.spec.mode == "live":
            adapter = await _venue(document, venue_url)
            try:
                positions: dict[str, float] = {}
                for strategy, _a, _p in sleeves:
                    symbol = strategy.spec.instruments[0]
                    held = await adapter.position(symbol)
                    positions[symbol] = float(held.contracts) if held is not None else 0.0
            finally:
                await adapter.close()
            accept_venue_positions(journal, positions)
        journal.set_trading_state("running", "operator resume", "operator:cli")
        _report(
            {"deployment": journal.deployment, "was": before.state, "now": "running"},
            as_json=as_json,
        )
    finally:
        journal.close()


def _deployment(
    profile: Path, store: str | None
) -> tuple[ProfileDocument, RiskBudgetDocument, list[SleeveSpec], Journal]:
    """The profile's document, risk budget, sleeves, and its journal (close it when done)."""
    from polytrade.cli.run_profile import profile_store_url  # noqa: PLC0415
    from polytrade.node.app import profile_parts  # noqa: PLC0415
    from polytrade.node.journal import Journal  # noqa: PLC0415

    loaded = spec_loader().load(profile)
    document, risk, sleeves = profile_parts(loaded)
    url = store if store is not None else profile_store_url(loaded)
    return document, risk, sleeves, Journal.open(url, document.metadata.name)


async def _venue(document: ProfileDocument, venue_url: str | None) -> PoloniexAdapter:
    """The live account of a profile (credentials from the environment or a 0600 file)."""
    from polytrade.exchange.poloniex.adapter import PoloniexAdapter  # noqa: PLC0415
    from polytrade.node.app import credentials_of, venue_urls  # noqa: PLC0415

    rest, _public, _private = venue_urls(document, venue_url)
    return await PoloniexAdapter.open(credentials_of(document), rest_url=rest)


def _report(result: dict[str, Any], *, as_json: bool) -> None:
    if as_json:
        sys.stdout.write(json.dumps(result) + "\n")
        return
    stderr.print(", ".join(f"{key}: {value}" for key, value in result.items()), highlight=False)
