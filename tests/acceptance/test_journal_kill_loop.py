"""SIGKILL in the middle of journal writes, again and again (reliability §6, test 8).

A writer process journals orders through their lives (intent, send, ack, partial fills,
cancels, refusals, audit rows, risk counters, trading state, recorded bars) as fast as it can,
and is killed with SIGKILL after a random delay, N times over one store. After each kill:

- `PRAGMA integrity_check` says ok and no foreign key is broken;
- every intent the writer reported as committed is in the store (it reports a client order id
  on a pipe only after `record_intent` returned);
- no order has an unlawful history: its events chain from PENDING_SUBMIT to its status by
  moves the state machine allows, its fill totals are the sums of its executions, and its
  intent has its audit row.

Writers are forked from one prepared process (a "zygote" that has imported everything), so a
kill costs milliseconds instead of a Python start-up; each writer opens the store itself, as
a restarted node would. `bench/journal_kill.py` runs the same loop 1,000 times.
"""

from __future__ import annotations

import itertools
import math
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, NoReturn

from polytrade.core.orders import (
    TRANSITIONS,
    Execution,
    OrderIntent,
    OrderStatus,
    client_order_id,
)
from polytrade.store import open_store
from polytrade.store import trading as journal

if TYPE_CHECKING:
    from pathlib import Path

    from sqlalchemy.engine import Engine

DEPLOYMENT = "kill-loop"
SYMBOL = "BTC_USDT_PERP"
KILLS = 25
MAX_DELAY_S = 0.06
"""Kills land uniformly within this long after the fork: some while the writer is opening the
store, most in the middle of its transactions."""
WRITER_LIFETIME_S = 30.0
"""A writer that was somehow not killed stops by itself after this long (and is reported)."""

_ZYGOTE = (
    "import sys; from tests.acceptance.test_journal_kill_loop import zygote; zygote(sys.argv[1])"
)


# ---------------------------------------------------------------------- the writer


def write_until_killed(url: str, seed: int, out: int) -> NoReturn:
    """Journal orders through random lives until killed; report each committed intent on `out`.

    Each order: intent; then never sent, or sent and refused, or sent, accepted (with its venue
    order id) and filled in random parts (each fill applied twice, as a replayed stream would),
    possibly cancelled part way. Between orders: audit rows, risk counters, a trading state, a
    recorded bar.
    """
    rng = random.Random(seed)  # noqa: S311 - a seeded test stream, not a secret
    engine = open_store(url)
    clock = itertools.count(seed * 1_000_000)
    session_id = journal.start_session(engine, DEPLOYMENT, "paper", "sha256:kill", next(clock))
    deadline = time.monotonic() + WRITER_LIFETIME_S
    for n in itertools.count():
        if time.monotonic() > deadline:
            os._exit(71)
        cid = client_order_id(DEPLOYMENT, seed * 100_000 + n, "kill-loop")
        contracts = float(rng.randint(1, 6))
        intent = OrderIntent(cid, SYMBOL, rng.choice(("buy", "sell")), "limit", contracts, 100.0)
        journal.record_intent(engine, session_id, DEPLOYMENT, intent, next(clock))
        os.write(out, f"committed {cid}\n".encode())
        _live(engine, rng, intent, clock)
        _aside(engine, rng, session_id, n, clock)


def _live(
    engine: Engine, rng: random.Random, intent: OrderIntent, clock: itertools.count[int]
) -> None:
    cid = intent.client_order_id
    path = rng.random()
    if path < 0.1:
        journal.transition(engine, cid, OrderStatus.NEVER_SENT, next(clock))
        return
    journal.transition(engine, cid, OrderStatus.SUBMITTED, next(clock))
    if path < 0.2:
        journal.transition(engine, cid, OrderStatus.REJECTED, next(clock), error="price limit")
        return
    journal.transition(engine, cid, OrderStatus.ACCEPTED, next(clock), venue_order_id="v" + cid)
    left, trade = intent.contracts, 0
    cancel_after = rng.randint(0, 3) if path < 0.5 else None
    while left > 0:
        if cancel_after is not None and trade == cancel_after:
            journal.transition(engine, cid, OrderStatus.PENDING_CANCEL, next(clock))
            journal.transition(engine, cid, OrderStatus.CANCELLED, next(clock))
            return
        size = float(rng.randint(1, int(left)))
        price = 100.0 + rng.random()
        execution = Execution(
            f"{cid}-{trade}", cid, "v" + cid, SYMBOL, intent.side, size, price, 0.01, "maker", 1
        )
        for _ in range(2):
            journal.apply_execution(engine, "paper", execution, next(clock))
        left -= size
        trade += 1


def _aside(
    engine: Engine, rng: random.Random, session_id: int, n: int, clock: itertools.count[int]
) -> None:
    roll = rng.random()
    if roll < 0.25:
        journal.audit(engine, DEPLOYMENT, "risk", "denied", {"n": n}, next(clock))
    elif roll < 0.5:
        journal.put_risk_state(engine, DEPLOYMENT, "peak_equity", rng.random(), next(clock))
    elif roll < 0.6:
        state = rng.choice(("running", "reducing"))
        journal.set_trading_state(engine, DEPLOYMENT, state, "kill loop", "node", next(clock))
    else:
        bar = {"ts": n * 60_000, "open": 1.0, "high": 2.0, "low": 0.5, "close": 1.5, "volume": n}
        journal.record_bar(engine, session_id, SYMBOL, "1m", bar)


def zygote(url: str) -> None:
    """Fork a writer for each seed read on stdin; report `pid P`, then `exit CODE` when it ends.

    The writer shares this process's stdout: its `committed` lines come between the two.
    """
    for line in sys.stdin:
        seed = int(line)
        pid = os.fork()
        if pid == 0:
            try:
                write_until_killed(url, seed, sys.stdout.fileno())
            finally:
                os._exit(70)  # an exception: reported as exit 70 (stderr has the traceback)
        os.write(sys.stdout.fileno(), f"pid {pid}\n".encode())
        _, status = os.waitpid(pid, 0)
        os.write(sys.stdout.fileno(), f"exit {os.waitstatus_to_exitcode(status)}\n".encode())


# ---------------------------------------------------------------------- the loop


@dataclass
class KillFigures:
    """What a kill loop found (every count but `kills`, `committed` and `cut_short` must be 0)."""

    kills: int = 0
    committed: int = 0
    """Intents the writers reported as committed."""
    cut_short: int = 0
    """Orders a kill left unresolved (evidence that kills landed in the middle of lives)."""
    integrity_failures: int = 0
    lost_commits: int = 0
    unlawful_orders: int = 0
    not_killed: int = 0
    """Writers that ended by themselves (an error) instead of by SIGKILL."""
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        """No integrity failure, lost commit, unlawful order or writer error."""
        return not (
            self.integrity_failures or self.lost_commits or self.unlawful_orders or self.not_killed
        )


def kill_loop(folder: Path, kills: int, seed: int = 20_260_101) -> KillFigures:
    """Run `kills` writers over one SQLite store in `folder`, kill each, check the store."""
    database = folder / "journal.db"
    url = f"sqlite:///{database}"
    open_store(url).dispose()  # at head before the first writer: writers never migrate
    rng = random.Random(seed)  # noqa: S311 - a seeded test stream, not a secret
    figures = KillFigures()
    began = time.perf_counter()
    with (
        (folder / "writers.stderr").open("w") as stderr,
        subprocess.Popen(
            [sys.executable, "-c", _ZYGOTE, url],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            bufsize=1,
        ) as zygote_process,
    ):
        assert zygote_process.stdin is not None
        assert zygote_process.stdout is not None
        for round_ in range(kills):
            writer_seed = seed % 1_000 * 10_000 + round_
            committed, code = _one_kill(
                zygote_process.stdin, zygote_process.stdout, writer_seed, rng
            )
            figures.kills += 1
            figures.committed += len(committed)
            if code != -signal.SIGKILL:
                figures.not_killed += 1
                figures.problems.append(f"writer {writer_seed} ended with {code}, not SIGKILL")
            _check(database, writer_seed, committed, figures)
        zygote_process.stdin.close()
        zygote_process.wait(timeout=30)
    figures.seconds = time.perf_counter() - began
    if not figures.clean:
        figures.problems.append((folder / "writers.stderr").read_text()[-3000:])
    return figures


def _one_kill(
    commands: IO[str], replies: IO[str], writer_seed: int, rng: random.Random
) -> tuple[list[str], int]:
    commands.write(f"{writer_seed}\n")
    commands.flush()
    first = replies.readline().split()
    assert first[0] == "pid", first
    # Kill only once the writer has committed something (on a loaded machine a fixed delay
    # can end it before its first commit, and the loop would test nothing), then at a random
    # moment of what follows.
    committed = []
    word, value = replies.readline().split()
    if word == "exit":
        return committed, int(value)
    committed.append(value)
    time.sleep(rng.uniform(0.0, MAX_DELAY_S))
    os.kill(int(first[1]), signal.SIGKILL)  # the writer this loop forked, by its pid
    for line in replies:
        word, value = line.split()
        if word == "exit":
            return committed, int(value)
        committed.append(value)
    raise AssertionError("the zygote ended before reporting the writer's exit")


def _check(database: Path, writer_seed: int, committed: list[str], figures: KillFigures) -> None:
    """Check the store after one kill; add what is wrong to `figures`."""
    with sqlite3.connect(database) as raw:  # a fresh connection: it recovers the WAL itself
        integrity = raw.execute("PRAGMA integrity_check").fetchall()
        broken_keys = raw.execute("PRAGMA foreign_key_check").fetchall()
        if integrity != [("ok",)] or broken_keys:
            figures.integrity_failures += 1
            figures.problems.append(
                f"after writer {writer_seed}: {integrity[:3]} {broken_keys[:3]}"
            )
            return
        # The writer's session is the one its clock started (none when killed before that).
        sessions = raw.execute(
            "SELECT id FROM trading_session WHERE started_ms = ?", (writer_seed * 1_000_000,)
        ).fetchall()
        session_id = sessions[0][0] if sessions else -1
        orders = {
            row[0]: row[1:]
            for row in raw.execute(
                "SELECT o.client_order_id, o.status, o.filled_contracts, o.contracts, "
                "(SELECT coalesce(sum(e.contracts), 0) FROM execution e "
                " WHERE e.client_order_id = o.client_order_id), "
                "(SELECT count(*) FROM audit_log a WHERE a.action = 'intent' "
                " AND a.detail LIKE '%' || o.client_order_id || '%') "
                "FROM order_record o WHERE o.session_id = ?",
                (session_id,),
            )
        }
        events: dict[str, list[tuple[str | None, str]]] = {}
        for cid, old, new in raw.execute(
            "SELECT e.client_order_id, e.old_status, e.new_status FROM order_event e "
            "JOIN order_record o ON o.client_order_id = e.client_order_id "
            "WHERE o.session_id = ? ORDER BY e.id",
            (session_id,),
        ):
            events.setdefault(cid, []).append((old, new))
    lost = [cid for cid in committed if cid not in orders]
    figures.lost_commits += len(lost)
    if lost:
        figures.problems.append(f"writer {writer_seed}: committed but missing: {lost[:5]}")
    for cid, (status, filled, contracts, executed, audited) in orders.items():
        reason = _unlawful(events.get(cid, []), status, filled, contracts, executed, audited)
        if reason:
            figures.unlawful_orders += 1
            figures.problems.append(f"{cid}: {reason}")
        elif not OrderStatus(status).terminal:
            figures.cut_short += 1


def _unlawful(
    history: list[tuple[str | None, str]],
    status: str,
    filled: float,
    contracts: float,
    executed: float,
    audited: int,
) -> str:
    """Why an order's record is unlawful, or "" when it is lawful."""
    if not history or history[0] != (None, OrderStatus.PENDING_SUBMIT.value):
        return f"its history does not start with the intent: {history[:2]}"
    for (_, before), (old, new) in itertools.pairwise(history):
        if old != before:
            return f"an event from {old} follows one to {before}"
        if new != old and OrderStatus(new) not in TRANSITIONS[OrderStatus(old)]:
            return f"an unlawful move from {old} to {new}"
    if history[-1][1] != status:
        return f"its status {status} is not its last event's {history[-1][1]}"
    if not math.isclose(filled, executed, abs_tol=1e-9) or filled > contracts + 1e-9:
        return f"{filled} filled by the record, {executed} by its executions, size {contracts}"
    if audited != 1:
        return f"{audited} intent audit rows"
    return ""


def test_writers_killed_mid_write_leave_a_whole_journal_and_lose_no_commit(tmp_path: Path) -> None:
    figures = kill_loop(tmp_path, KILLS)
    assert figures.kills == KILLS
    assert figures.clean, "\n".join(figures.problems)
    # The kills landed where it matters: writers had committed intents and were cut short in
    # the middle of orders' lives.
    assert figures.committed >= KILLS
    assert figures.cut_short > 0
