"""`polytrade parity SESSION`: replay a recorded paper or live session and report the difference."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from polytrade.cli.loading import spec_loader
from polytrade.cli.output import stderr
from polytrade.errors import ExitCode, UsageError


def parity(
    session: int = typer.Argument(..., help="Session id (printed by `polytrade run`).", min=1),
    store: str | None = typer.Option(
        None,
        "--store",
        help="Store URL [default: $POLYTRADE_STORE_URL, else sqlite:///polytrade.db].",
        show_default=False,
    ),
    profile: Path | None = typer.Option(
        None,
        "--profile",
        help="The session's profile (its store is then the default; its spec hash must "
        "match the session's).",
        show_default=False,
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document on stdout."),
) -> None:
    """Replay a session's recorded bars through the backtest engine and compare.

    Paper: same fills, prices, fees and equity to 1e-9, or exit 1 (a difference is a defect).
    Live: slippage of each order against the model, in bps; exit 1 when the size-weighted mean
    leaves the profile's parity.slippage_bps band (an audit row records the alert).
    """
    import os  # noqa: PLC0415

    from polytrade.node.app import profile_parts  # noqa: PLC0415
    from polytrade.node.parity import compare_session, session_profile  # noqa: PLC0415
    from polytrade.store import trading  # noqa: PLC0415
    from polytrade.store.database import open_store  # noqa: PLC0415
    from polytrade.store.stamps import spec_hash  # noqa: PLC0415

    url = store
    if url is None and profile is not None:
        from polytrade.cli.run_profile import profile_store_url  # noqa: PLC0415

        url = profile_store_url(spec_loader().load(profile))
    engine = open_store(url or os.environ.get("POLYTRADE_STORE_URL"), create=False)
    try:
        try:
            record, started = session_profile(engine, session)
        except LookupError as error:
            raise UsageError(str(error)) from None
        path = profile or Path(str(started.get("profile", "")))
        if not path.is_file():
            raise UsageError(
                f"session {session} ran {path}, which is not there; pass --profile PATH"
            )
        loaded = spec_loader().load(path)
        specs, stack = {}, [loaded]
        while stack:
            spec = stack.pop(0)
            if spec.path not in specs:
                specs[spec.path] = spec
                stack.extend(spec.references[key] for key in sorted(spec.references))
        digest = spec_hash([(str(p), p.read_bytes()) for p in specs])
        if started.get("profile_hash") and digest != started["profile_hash"]:
            raise UsageError(
                f"{path} (or a spec it refers to) changed since session {session} ran; parity "
                "needs the specs the session ran with (check them out of git at that commit)"
            )
        document, risk, sleeves = profile_parts(loaded)
        report = compare_session(
            engine, session, document, risk, sleeves, dict(started.get("first_live_bar", {}))
        )
        if not report.ok and record.mode == "live":
            trading.audit(
                engine,
                record.deployment,
                "parity",
                "parity_alert",
                {"session": session, "mean_slippage_bps": report.mean_slippage_bps},
                trading_now(),
            )
    finally:
        engine.dispose()
    if as_json:
        sys.stdout.write(json.dumps(report.as_dict(), allow_nan=False, default=str) + "\n")
    else:
        _print(report)
    if not report.ok:
        raise typer.Exit(ExitCode.UNEXPECTED)


def trading_now() -> int:
    """The machine's clock in ms (audit rows are stamped with it)."""
    import time  # noqa: PLC0415

    return time.time_ns() // 1_000_000


def _print(report: object) -> None:
    from polytrade.node.parity import ParityReport  # noqa: PLC0415

    assert isinstance(report, ParityReport)  # noqa: S101 - the caller passes one
    verdict = "[green]identical[/green]" if report.ok else "[red]DIFFERENT[/red]"
    stderr.print(f"session {report.session_id} ({report.mode}): {verdict}")
    for sleeve in report.sleeves:
        stderr.print(
            f"  {sleeve.sleeve}: {sleeve.live_bars} live bars of {sleeve.bars}; fills session "
            f"{sleeve.session_fills} / replay {sleeve.replay_fills}; max |d price| "
            f"{sleeve.max_price_diff:.3g}, |d size| {sleeve.max_size_diff:.3g}, |d fee| "
            f"{sleeve.max_fee_diff:.3g}; equity diff {sleeve.equity_diff:.3g}"
        )
        for line in sleeve.mismatches[:10]:
            stderr.print(f"    {line}", highlight=False)
    if report.mode == "live":
        mean = report.mean_slippage_bps
        stderr.print(
            f"  {len(report.live)} live orders; mean slippage "
            f"{'n/a' if mean is None else f'{mean:+.2f} bps'} (band +/-{report.band_bps} bps)"
        )
