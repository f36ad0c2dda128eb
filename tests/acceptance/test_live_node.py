"""Live trading on the emulator with real processes: crashes, restarts, the kill switch, secrets.

Each test starts its own `polytrade exchange-sim` (the seeded synthetic market at 600 x real
time: a five-minute bar every half second) and runs `polytrade run` on the live test profile
(tests/node_specs/live.yaml; credentials from the environment) as a child process. The checks
read the venue through the real ccxt client and the journal through the store, and hold the
reliability reference's scenarios (reference/reliability.md §6) by name:

- 1-4: SIGKILL at each point of an order's life (after the intent, after SUBMITTED, after the
  request went out, before the fills are journaled, between two fills of one order); after a
  restart no client order id has two orders on the venue, every fill of the node's orders is
  journaled exactly once, and the journal's position is the venue's;
- 5, 6: a venue position the journal does not know puts the deployment in REDUCING with an
  audit row, and `polytrade resume --accept-positions` clears it;
- 26: `polytrade kill` cancels, flattens, verifies flat and leaves HALTED, which a restarted
  node obeys (exit 5) until `polytrade resume`;
- 28: the API secret appears in no output of a live run: stdout, stderr, the store's files.
"""

from __future__ import annotations

import json
import subprocess
import time
from typing import TYPE_CHECKING, Any

import pytest

from polytrade.core.orders import OrderStatus
from polytrade.store import trading
from polytrade.store.database import open_store
from tests.acceptance.node_harness import (
    ENV,
    SECRET,
    SYMBOL,
    Emulator,
    Venue,
    cli,
    command,
    node_profiles,
    run_node,
)

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

DEPLOYMENT = "emulator-live"
MAX_EXPECTED_CONTRACTS = 160


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    running = Emulator("--speed", "600", "--seed", "9", "--days", "6", "--warmup-bars", "1440")
    try:
        yield running
    finally:
        running.close()


def journal(store: str) -> Any:
    """The store's engine (dispose it when done)."""
    return open_store(store)


def check_consistent(store: str, venue: Venue) -> dict[str, Any]:
    """No duplicate order, fills once, positions equal; returns what was compared."""
    engine = journal(store)
    try:
        orders = trading.orders(engine, DEPLOYMENT)
        executions = [e for e in trading.executions(engine, DEPLOYMENT) if e.venue == "poloniex"]
        position = trading.position(engine, DEPLOYMENT, SYMBOL)
        unresolved = trading.unresolved_orders(engine, DEPLOYMENT)
    finally:
        engine.dispose()
    on_venue = venue.orders_by_client_id()
    sent = [o for o in orders if o.venue_order_id is not None]
    assert sent, "the node sent no order"
    for order in orders:
        assert on_venue.get(order.client_order_id, 0) <= 1, order.client_order_id
        if order.status is OrderStatus.NEVER_SENT:
            assert order.client_order_id not in on_venue
    ours = {o.client_order_id for o in orders}
    venue_fills = [f for f in venue.fills() if f.get("clOrdId") in ours]
    journaled = sorted(e.trade_id for e in executions)
    assert journaled == sorted(str(f["trdId"]) for f in venue_fills)  # each fill exactly once
    assert len(set(journaled)) == len(journaled)
    held = venue.position()
    assert position == pytest.approx(held, abs=1e-9)
    # Never a second order beside one that might exist: the test strategy holds about 125
    # contracts (half of 10,000 USDT at ~40,000 USDT per coin, 0.001 coin a contract), so an
    # order sent twice would show as about 250.
    assert abs(held) <= MAX_EXPECTED_CONTRACTS
    return {"orders": len(orders), "fills": len(journaled), "unresolved": len(unresolved)}


@pytest.mark.parametrize(
    ("crash_at", "scenario"),
    [
        ("after_intent", 1),
        ("after_submitted", 1),
        ("after_send", 2),
        ("before_fill", 3),
        ("applying_fill:2", 4),
    ],
)
def test_reliability_1_to_4_sigkill_at_each_point_of_an_order(
    emulator: Emulator, tmp_path: Path, crash_at: str, scenario: int
) -> None:
    del scenario  # named in the id: which reliability scenario the point exercises
    profiles = node_profiles(tmp_path, emulator.rest_url)
    store = f"sqlite:///{tmp_path / 'live.db'}"
    crashed = run_node(profiles["live"], store, max_bars=60, crash_at=crash_at)
    assert crashed.returncode == -9, crashed.stderr[-2000:]  # it killed itself at the point
    for _restart in range(2):
        done = run_node(profiles["live"], store, max_bars=8)
        assert done.returncode == 0, done.stderr[-3000:]
    compared = check_consistent(store, Venue(emulator.rest_url))
    assert compared["fills"] >= 1


def test_a_live_session_keeps_journal_and_venue_equal_and_never_shows_the_secret(
    emulator: Emulator, tmp_path: Path
) -> None:
    profiles = node_profiles(tmp_path, emulator.rest_url)
    store = f"sqlite:///{tmp_path / 'live.db'}"
    done = run_node(profiles["live"], store, max_bars=24)
    assert done.returncode == 0, done.stderr[-3000:]
    session = json.loads(done.stdout)
    assert session["mode"] == "live"
    compared = check_consistent(store, Venue(emulator.rest_url))
    assert compared["orders"] >= 2
    assert compared["unresolved"] == 0
    # Reliability 28: the secret is in no output and nowhere in the store's files.
    assert SECRET not in done.stdout + done.stderr
    for path in tmp_path.glob("live.db*"):
        assert SECRET.encode() not in path.read_bytes(), path
    parity = cli("parity", str(session["session"]), "--store", store, "--json")
    report = json.loads(parity.stdout)
    assert report["mode"] == "live"
    assert len(report["live_orders"]) >= 1
    assert SECRET not in parity.stdout + parity.stderr


def test_reliability_5_and_6_a_position_the_journal_does_not_know_means_reducing(
    emulator: Emulator, tmp_path: Path
) -> None:
    venue = Venue(emulator.rest_url)
    venue.client().create_order("BTC/USDT:USDT", "market", "buy", 5)  # the operator's, by hand
    profiles = node_profiles(tmp_path, emulator.rest_url)
    store = f"sqlite:///{tmp_path / 'live.db'}"
    done = run_node(profiles["live"], store, max_bars=6)
    assert done.returncode == 0, done.stderr[-3000:]
    engine = journal(store)
    try:
        state = trading.trading_state(engine, DEPLOYMENT)
        mismatches = [
            r for r in trading.audit_rows(engine, DEPLOYMENT) if r.action == "reconcile_mismatch"
        ]
        opened = [
            o
            for o in trading.orders(engine, DEPLOYMENT)
            if o.status is OrderStatus.FILLED and not o.reduce_only
        ]
    finally:
        engine.dispose()
    assert state.state.value == "reducing"
    assert "the venue holds +5 contracts, the journal +0" in mismatches[0].detail["problems"][0]
    assert opened == []  # never sized as if flat: no exposure was added while reducing
    resumed = cli("resume", str(profiles["live"]), "--store", store, "--accept-positions", "--json")
    assert resumed.returncode == 0, resumed.stderr
    done = run_node(profiles["live"], store, max_bars=6)
    assert done.returncode == 0, done.stderr[-3000:]
    engine = journal(store)
    try:
        assert trading.trading_state(engine, DEPLOYMENT).state.value == "running"
    finally:
        engine.dispose()


def test_reliability_26_kill_switch_flattens_verifies_and_halts_across_restarts(
    emulator: Emulator, tmp_path: Path
) -> None:
    profiles = node_profiles(tmp_path, emulator.rest_url)
    store = f"sqlite:///{tmp_path / 'live.db'}"
    venue = Venue(emulator.rest_url)
    node = subprocess.Popen(
        command("run", str(profiles["live"]), "--store", store, "--max-bars", "400", "--json"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    )
    try:
        deadline = time.monotonic() + 90
        while venue.position() == 0 and time.monotonic() < deadline:
            time.sleep(0.5)
        assert venue.position() != 0, "the node never took a position"
        killed = cli("kill", str(profiles["live"]), "--store", store, "--json", "--deadline", "30")
        assert killed.returncode == 0, killed.stderr[-2000:]
        assert json.loads(killed.stdout)["flat"] is True
        time.sleep(3)  # the running node sees HALTED within its watch interval
        assert venue.position() == 0
        assert venue.client().fetch_open_orders("BTC/USDT:USDT") == []
    finally:
        node.terminate()
        node.communicate(timeout=60)
    assert node.returncode == 0
    restarted = run_node(profiles["live"], store, max_bars=4)
    assert restarted.returncode == 5, restarted.stderr  # HALTED survives the restart
    assert "HALTED" in restarted.stderr
    resumed = cli("resume", str(profiles["live"]), "--store", store)
    assert resumed.returncode == 0, resumed.stderr
    assert run_node(profiles["live"], store, max_bars=4).returncode == 0
