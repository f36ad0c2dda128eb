"""Backtest runs in a SQLite store: round trip, all-or-nothing saves, ids, the run list."""

from __future__ import annotations

import dataclasses
import json
import math
import sqlite3
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import numpy as np
import pytest
from sqlalchemy import func, insert, select, text
from sqlalchemy.exc import IntegrityError

from polytrade.errors import UsageError
from polytrade.store import StoreUnavailableError, list_runs, load_run, open_store, save_backtest
from polytrade.store.models import decode_ts, decode_values, encode_ts, encode_values, metadata
from polytrade.store.runs import RUN
from tests.unit.store.backtests import assert_same_run
from tests.unit.store.conftest import STAMPS

if TYPE_CHECKING:
    from pathlib import Path

    from sqlalchemy.engine import Engine

    from polytrade.engine.backtest import BacktestResult

PARAMS = {"channel": 40, "stop_atr": 2.5}
RUN_TABLES = {name: t for name, t in metadata.tables.items() if name.split("_")[0] == "run"}
"""The run and its children (the store's other tables have no run_id)."""


def save(engine: Engine, result: BacktestResult, profile: str = "backtest") -> str:
    return save_backtest(
        engine, result, profile=profile, mode="backtest", stamps=STAMPS, params=PARAMS
    )


def rows_of(engine: Engine, run_id: str) -> dict[str, int]:
    """How many rows each table holds for `run_id`."""
    counts = {}
    with engine.connect() as connection:
        for name, table in RUN_TABLES.items():
            key = table.c.id if name == "run" else table.c.run_id
            query = select(func.count()).select_from(table).where(key == run_id)
            counts[name] = connection.execute(query).scalar_one()
    return counts


def add_bare_run(engine: Engine, run_id: str, created_at: datetime) -> None:
    """A run row alone (no sleeves): enough for id lookups and the list."""
    with engine.begin() as connection:
        connection.execute(
            insert(RUN),
            [
                {
                    "id": run_id,
                    "created_at": created_at,
                    "kind": "backtest",
                    "profile": "bare",
                    "mode": "backtest",
                    "data_label": "none",
                    "spec_hash": "sha256:0",
                    "data_fingerprint": "sha256:0",
                    "code_version": "0",
                    "params": {},
                    "metrics": {},
                    "costs": {},
                    "trade_count": 0,
                    "bars": 0,
                }
            ],
        )


# ---------------------------------------------------------------------- round trip


def test_a_saved_backtest_reads_back_equal(engine: Engine, backtest: BacktestResult) -> None:
    assert sum(s.fills.shape[0] for s in backtest.sleeves) > 20  # the test has fills to compare
    reasons = {int(code) for s in backtest.sleeves for code in s.fills[:, 5]}
    assert len(reasons) > 1  # signals and stops at least
    before = datetime.now(UTC)
    run_id = save(engine, backtest)
    stored = load_run(engine, run_id)
    assert_same_run(stored, backtest)
    assert stored.id == run_id
    assert len(run_id) == 32
    assert int(run_id, 16) >= 0
    assert before <= stored.created_at <= datetime.now(UTC)
    assert stored.created_at.tzinfo is UTC
    assert (stored.kind, stored.profile, stored.mode) == ("backtest", "backtest", "backtest")
    assert (stored.spec_hash, stored.data_fingerprint) == (
        STAMPS.spec_hash,
        STAMPS.data_fingerprint,
    )
    assert (stored.code_version, stored.seed) == (STAMPS.code_version, 42)
    assert stored.params == PARAMS


def test_curves_are_blobs_not_rows_per_bar(engine: Engine, backtest: BacktestResult) -> None:
    run_id = save(engine, backtest)
    counts = rows_of(engine, run_id)
    sleeves = len(backtest.sleeves)
    assert counts == {
        "run": 1,
        "run_sleeve": sleeves,
        "run_fill": sum(s.fills.shape[0] for s in backtest.sleeves),
        "run_trade": backtest.trade_count,
        "run_series": 1 + 2 * sleeves,  # the profile's equity; each sleeve's equity, position
    }
    assert set(load_run(engine, run_id).series) == {
        "equity",
        *(f"{kind}:{i}" for kind in ("equity", "position") for i in range(sleeves)),
    }


def test_deleting_a_run_deletes_its_rows(engine: Engine, backtest: BacktestResult) -> None:
    kept, deleted = save(engine, backtest), save(engine, backtest)
    with engine.begin() as connection:
        connection.execute(RUN.delete().where(RUN.c.id == deleted))
    assert set(rows_of(engine, deleted).values()) == {0}
    assert rows_of(engine, kept)["run_fill"] > 0


def test_non_finite_metrics_round_trip_and_are_stored_as_strict_json(
    engine: Engine, backtest: BacktestResult
) -> None:
    metrics = dataclasses.replace(
        backtest.metrics, sharpe=math.inf, sortino=-math.inf, calmar=math.nan
    )
    run_id = save(engine, dataclasses.replace(backtest, metrics=metrics))
    stored = load_run(engine, run_id).metrics
    assert stored["sharpe"] == math.inf
    assert stored["sortino"] == -math.inf
    assert math.isnan(stored["calmar"])
    assert stored["trades"] == backtest.metrics.trades
    assert isinstance(stored["trades"], int)
    with engine.connect() as connection:
        raw = connection.execute(text("SELECT metrics FROM run WHERE id = :id"), {"id": run_id})
        document = raw.scalar_one()
    parsed = json.loads(document, parse_constant=lambda name: pytest.fail(f"{name} in JSON"))
    assert parsed["calmar"] is None
    assert (parsed["sharpe"], parsed["sortino"]) == ("Infinity", "-Infinity")


def test_a_failure_in_the_middle_of_a_save_leaves_nothing(
    engine: Engine, backtest: BacktestResult
) -> None:
    kept = save(engine, backtest)
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "CREATE TRIGGER refuse_trades BEFORE INSERT ON run_trade "
            "BEGIN SELECT RAISE(ABORT, 'trades refused by the test'); END"
        )
    with pytest.raises(IntegrityError, match="trades refused by the test"):
        save(engine, backtest)
    # The run, its sleeves and its fills were inserted before the trades failed: all gone.
    with engine.connect() as connection:
        for name, table in RUN_TABLES.items():
            key = table.c.id if name == "run" else table.c.run_id
            others = connection.execute(select(key).where(key != kept)).all()
            assert others == [], name
    assert rows_of(engine, kept)["run_fill"] > 0  # the earlier run is untouched
    assert [run.id for run in list_runs(engine)] == [kept]


def test_saving_into_a_store_locked_by_another_writer_is_unavailable(
    tmp_path: Path, backtest: BacktestResult
) -> None:
    path = tmp_path / "runs.db"
    engine = open_store(f"sqlite:///{path}?timeout=0.2")  # seconds to wait for the lock
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")  # another writer holds the write lock
        with pytest.raises(StoreUnavailableError, match="database is locked"):
            save(engine, backtest)
        holder.execute("ROLLBACK")
        assert list_runs(engine) == []
        save(engine, backtest)  # the lock is gone: the same save goes through
        assert len(list_runs(engine)) == 1
    finally:
        holder.close()
        engine.dispose()


def test_an_empty_sleeve_without_fills_or_trades_round_trips(
    engine: Engine, backtest: BacktestResult
) -> None:
    sleeve = backtest.sleeves[0]
    quiet = dataclasses.replace(sleeve, fills=np.zeros((0, 7)), trades=[], risk={})
    result = dataclasses.replace(backtest, sleeves=[quiet])
    stored = load_run(engine, save(engine, result)).sleeves[0]
    assert stored.fills.shape == (0,)
    assert stored.trades == []
    assert stored.risk_denials == {}
    assert np.array_equal(stored.equity, sleeve.equity)


# ---------------------------------------------------------------------- ids


def test_a_run_is_found_by_a_prefix_of_its_id_in_any_case(
    engine: Engine, backtest: BacktestResult
) -> None:
    run_id = save(engine, backtest)
    assert load_run(engine, run_id[:6]).id == run_id
    assert load_run(engine, f" {run_id[:10].upper()} ").id == run_id


@pytest.mark.parametrize("asked", ["abcde", "abcdefg-", "zzzzzzzz", "%%%%%%", "a" * 33, ""])
def test_a_malformed_id_is_a_usage_error(engine: Engine, asked: str) -> None:
    with pytest.raises(UsageError, match="not a run id or a prefix of one"):
        load_run(engine, asked)


def test_an_unknown_id_is_a_usage_error_naming_it(engine: Engine) -> None:
    with pytest.raises(UsageError, match="no run has the id 'deadbeef'"):
        load_run(engine, "deadbeef")


def test_an_ambiguous_prefix_is_a_usage_error(engine: Engine) -> None:
    now = datetime.now(UTC)
    add_bare_run(engine, "abcdef01" + "0" * 24, now)
    add_bare_run(engine, "abcdef02" + "0" * 24, now)
    with pytest.raises(UsageError, match="more than one run starts with 'abcdef'"):
        load_run(engine, "abcdef")
    assert load_run(engine, "abcdef02").id == "abcdef02" + "0" * 24


# ---------------------------------------------------------------------- list


def test_the_list_is_newest_first_and_limited(engine: Engine, backtest: BacktestResult) -> None:
    start = datetime(2025, 1, 1, tzinfo=UTC)
    for day in range(3):
        add_bare_run(engine, f"{day:032x}", start + timedelta(days=day))
    newest = save(engine, backtest)
    runs = list_runs(engine, limit=3)
    assert [run.id for run in runs] == [newest, f"{2:032x}", f"{1:032x}"]
    top = runs[0]
    assert top.sharpe == backtest.metrics.sharpe
    assert top.max_drawdown == backtest.metrics.max_drawdown
    assert top.final_equity == backtest.final_equity
    assert top.trade_count == backtest.trade_count
    assert math.isnan(runs[1].sharpe)  # a run without metrics
    assert runs[1].created_at == start + timedelta(days=2)
    assert len(list_runs(engine)) == 4
    with pytest.raises(UsageError, match="limit was 0"):
        list_runs(engine, limit=0)


# ---------------------------------------------------------------------- series blobs


def test_a_year_of_minute_bars_is_a_small_blob() -> None:
    ts = np.arange(525_600, dtype=np.int64) * 60_000 + 1_704_067_200_000
    values = np.full(525_600, 10_000.0)
    values[::1000] = np.nan
    values[1] = np.inf
    blob = encode_ts(ts)
    assert len(blob) < 10_000  # 4.2 MB raw: regular steps compress to almost nothing
    assert np.array_equal(decode_ts(blob, ts.size), ts)
    assert np.array_equal(decode_values(encode_values(values), 525_600), values, equal_nan=True)
    with pytest.raises(ValueError, match="holds 525600 points where 3 were recorded"):
        decode_ts(blob, 3)
    assert decode_ts(encode_ts([]), 0).size == 0
