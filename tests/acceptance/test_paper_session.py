"""A paper session on the emulator for a simulated week, then its parity replay: zero difference.

Real processes: `polytrade exchange-sim` replays the seeded synthetic market at 40,000 x real
time; `polytrade run` trades the paper profile on it (warm-up from the venue's history, closed
minutes from the websocket, simulated fills journaled) for 2,016 five-minute bars, one week;
`polytrade parity` replays the journaled bars through the backtest engine and must find the
same fills (bar, size, price, fee) and the same equity, to 1e-9.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from tests.acceptance.node_harness import Emulator, cli, node_profiles, run_node

if TYPE_CHECKING:
    from pathlib import Path

WEEK_OF_5M_BARS = 7 * 24 * 12


def test_a_simulated_week_of_paper_trading_replays_to_zero_difference(tmp_path: Path) -> None:
    emulator = Emulator("--speed", "40000", "--seed", "4", "--days", "12", "--warmup-bars", "1440")
    try:
        profiles = node_profiles(tmp_path, emulator.rest_url)
        store = f"sqlite:///{tmp_path / 'paper.db'}"
        done = run_node(profiles["paper"], store, max_bars=WEEK_OF_5M_BARS, timeout=500)
        assert done.returncode == 0, done.stderr[-3000:]
        session = json.loads(done.stdout)
        assert (session["mode"], session["bars"], session["stopped_by"]) == (
            "paper",
            WEEK_OF_5M_BARS,
            "max_bars",
        )
        assert session["fills"] > 50  # the busy test strategy trades through the week
        parity = cli("parity", str(session["session"]), "--store", store, "--json")
        assert parity.returncode == 0, parity.stderr[-2000:]
        report = json.loads(parity.stdout)
        [sleeve] = report["sleeves"]
        assert report["ok"] is True
        assert sleeve["live_bars"] == WEEK_OF_5M_BARS
        assert sleeve["session_fills"] == sleeve["replay_fills"] == session["fills"]
        assert sleeve["max_price_diff"] == sleeve["max_size_diff"] == sleeve["max_fee_diff"] == 0
        assert sleeve["equity_diff"] == 0
        assert sleeve["equity_session"] == session["equity"]["fast-trend"]
    finally:
        emulator.close()
