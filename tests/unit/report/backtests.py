"""Short real backtests of the example profile, for the report's tests (unit and browser)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import yaml

from polytrade.cli.loading import spec_loader
from polytrade.cli.run_profile import backtest_profile

if TYPE_CHECKING:
    from pathlib import Path

    from polytrade.engine.backtest import BacktestResult

START = "2024-10-01"
"""With 120 days the run spans two calendar years (October 2024 to January 2025)."""


def short_profile(repo: Path, folder: Path, *, days: int = 120, start: str = START) -> Path:
    """A copy of profiles/backtest.yaml over `days` days, its references made absolute."""
    document = yaml.safe_load((repo / "profiles" / "backtest.yaml").read_text(encoding="utf-8"))
    spec = document["spec"]
    for strategy in spec["strategies"]:
        strategy["ref"] = str((repo / "profiles" / strategy["ref"]).resolve())
    spec["risk"] = str((repo / "profiles" / spec["risk"]).resolve())
    spec["data"].update(days=days, start=start)
    path = folder / "backtest-short.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


def short_backtest(repo: Path, folder: Path, *, days: int = 120) -> BacktestResult:
    """The example profile's backtest on the seeded synthetic market, `days` days long."""
    return backtest_profile(spec_loader().load(short_profile(repo, folder, days=days)))
