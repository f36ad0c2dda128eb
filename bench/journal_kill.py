"""Benchmark: 1,000 SIGKILLs in the middle of journal writes (reliability §6, test 8).

Runs the loop of `tests/acceptance/test_journal_kill_loop.py` (25 kills there) 1,000 times over
one SQLite store: a writer forked from a prepared process journals orders through their lives
(intents, transitions, fills applied twice, audit rows, risk counters, trading state, recorded
bars) and is killed with SIGKILL after a random delay of up to 60 ms; after each kill the store
is checked with `PRAGMA integrity_check` and `foreign_key_check`, every intent the writer
reported as committed is looked up, and every order of that writer must have a lawful history
(events chained from PENDING_SUBMIT by allowed moves, fill totals equal to its executions, one
intent audit row).

Figures are printed: kills, intents reported committed, orders cut short by a kill, integrity
failures, lost commits, unlawful orders, writers that died otherwise, time. The first four
failure counts must be 0.

    .ci/uv run --locked python bench/journal_kill.py [--kills N] [--seed S]
"""

from __future__ import annotations

import argparse
import platform
import sqlite3
import tempfile
from pathlib import Path

from tests.acceptance.test_journal_kill_loop import MAX_DELAY_S, kill_loop


def main() -> None:
    """Run the loop and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=1_000, help="writers to kill (1,000)")
    parser.add_argument("--seed", type=int, default=20_260_101, help="the delays' seed")
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        figures = kill_loop(Path(folder), arguments.kills, seed=arguments.seed)
        size = (Path(folder) / "journal.db").stat().st_size
    print(
        f"journal kill loop: SQLite {sqlite3.sqlite_version} (WAL, synchronous=FULL), "
        f"Python {platform.python_version()}, kills after 0-{MAX_DELAY_S * 1000:.0f} ms"
    )
    print(f"  kills                  {figures.kills:>8,}")
    print(f"  intents committed      {figures.committed:>8,}  (reported by the writers)")
    print(f"  orders cut short       {figures.cut_short:>8,}  (left unresolved by a kill)")
    print(f"  integrity failures     {figures.integrity_failures:>8,}")
    print(f"  lost commits           {figures.lost_commits:>8,}")
    print(f"  unlawful orders        {figures.unlawful_orders:>8,}")
    print(f"  writers not killed     {figures.not_killed:>8,}")
    print(
        f"  time                   {figures.seconds:>8.1f} s  "
        f"({figures.seconds / max(figures.kills, 1) * 1000:.0f} ms a kill, check included; "
        f"store {size / 1e6:.1f} MB)"
    )
    for problem in figures.problems[:20]:
        print(f"  ! {problem}")


if __name__ == "__main__":
    main()
