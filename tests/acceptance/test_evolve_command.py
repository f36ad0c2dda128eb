"""`polytrade evolve` as a user runs it: real processes, real files, a real store.

- the command runs an Evolution spec on the user's own bars file (--data) and prints one
  NDJSON event per generation, then a summary with every candidate's gate verdicts; it writes
  the passing candidates and the HTML report;
- killed with SIGKILL in the middle of a generation and started again with --resume, it ends
  with the same final population, candidates and verdicts as a run that was never killed;
- the Dask backend (a LocalCluster) gives the local evaluator's results bit for bit.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl
import pytest
import yaml

from polytrade.compile.plan import compile_strategy
from polytrade.evolve.backends import DaskEvaluator
from polytrade.evolve.fitness import Market
from polytrade.store import evolutions as records
from polytrade.store.database import open_store
from tests.unit.evolve import planted

if TYPE_CHECKING:
    from pathlib import Path

GENERATIONS = 12


def write_setup(folder: Path) -> Path:
    """Bars file, strategy, risk budget, profile and evolution spec; the spec's path."""
    bars = planted.hourly_bars(3, 0.25, seed=5)
    frame = pl.DataFrame(
        {name: bars[name] for name in ("open", "high", "low", "close", "volume")}
    ).with_columns(pl.Series("ts", bars["ts"]).cast(pl.Datetime("ms", "UTC")))
    frame.select("ts", "open", "high", "low", "close", "volume").write_parquet(
        folder / "bars.parquet"
    )

    def dump(name: str, document: Any) -> None:
        data = document.model_dump(mode="json", by_alias=True, exclude_none=True)
        (folder / name).write_text(yaml.safe_dump(data, sort_keys=False))

    dump("lagged-momentum.yaml", planted.strategy())
    dump("planted-risk.yaml", planted.risk())
    profile = {
        "apiVersion": "polytrade/v1",
        "kind": "Profile",
        "metadata": {"name": "planted"},
        "spec": {
            "mode": "backtest",
            "venue": {"name": "poloniex", "margin_mode": "cross"},
            "strategies": [{"ref": "lagged-momentum.yaml", "allocation": 1.0}],
            "risk": "planted-risk.yaml",
            "data": {"source": "file", "bars": "bars.parquet"},
            "execution": planted.execution().model_dump(mode="json", exclude_none=True),
        },
    }
    (folder / "planted.yaml").write_text(yaml.safe_dump(profile, sort_keys=False))
    dump("evolve.yaml", planted.evolution(output_dir="evolved"))
    return folder / "evolve.yaml"


def command(spec: Path, folder: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "polytrade",
        "evolve",
        str(spec),
        "--json",
        "--store",
        f"sqlite:///{folder / 'store.db'}",
        "--report",
        str(folder / "report.html"),
        *extra,
    ]


def events(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, Any]]]:
    folder = tmp_path_factory.mktemp("straight")
    spec = write_setup(folder)
    done = subprocess.run(
        command(spec, folder), capture_output=True, text=True, check=False, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return folder, events(done.stdout)


def final_population(folder: Path, evolution_id: str) -> Any:
    engine = open_store(f"sqlite:///{folder / 'store.db'}")
    try:
        checkpoint = records.latest_checkpoint(engine, evolution_id)
    finally:
        engine.dispose()
    assert checkpoint is not None
    return checkpoint[1]["population"], checkpoint[1]["values"]


def test_evolve_prints_a_generation_event_each_then_a_summary_and_writes_files(
    uninterrupted: tuple[Path, list[dict[str, Any]]],
) -> None:
    folder, stream = uninterrupted
    generations = [e for e in stream if e["event"] == "generation"]
    assert [e["generation"] for e in generations] == list(range(1, GENERATIONS + 1))
    summary = stream[-1]
    assert summary["event"] == "summary"
    assert summary["candidates"], "no candidate in the summary"
    for candidate in summary["candidates"]:
        assert candidate["verdict"] in {"pass", "fail"}
        assert {gate["name"] for gate in candidate["gates"]} >= {"lockbox_psr", "dsr", "pbo"}
    passing = [c for c in summary["candidates"] if c["verdict"] == "pass"]
    assert passing, "the planted edge should pass"
    for candidate in passing:
        assert (folder / "evolved").joinpath(candidate["strategy"]).exists()
    report = (folder / "report.html").read_text()
    assert summary["evolution_id"] in report
    assert "lockbox" in report


def test_a_run_killed_mid_generation_resumes_to_the_same_end(
    tmp_path: Path, uninterrupted: tuple[Path, list[dict[str, Any]]]
) -> None:
    straight_folder, straight = uninterrupted
    spec = write_setup(tmp_path)
    seen = 0
    with subprocess.Popen(
        command(spec, tmp_path), stdout=subprocess.PIPE, text=True, start_new_session=True
    ) as process:
        assert process.stdout is not None
        for line in process.stdout:
            if json.loads(line).get("generation") == 4:
                seen = 4
                break
        # The process is in generation 5 (evaluating or saving): killed there, without warning.
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    assert seen == 4
    assert process.returncode == -signal.SIGKILL
    resumed = subprocess.run(
        command(spec, tmp_path, "--resume"),
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    stream = events(resumed.stdout)
    first = next(e for e in stream if e["event"] == "generation")
    assert first["generation"] in {5, 6}  # where the checkpoint left it
    summary, expected = stream[-1], straight[-1]
    keys = ("key", "params", "verdict", "gates", "objectives")
    assert [{k: c[k] for k in keys} for c in summary["candidates"]] == [
        {k: c[k] for k in keys} for c in expected["candidates"]
    ]
    assert final_population(tmp_path, summary["evolution_id"]) == final_population(
        straight_folder, expected["evolution_id"]
    )


def test_resume_without_an_unfinished_evolution_is_a_usage_error(tmp_path: Path) -> None:
    spec = write_setup(tmp_path)
    done = subprocess.run(
        command(spec, tmp_path, "--resume"), capture_output=True, text=True, check=False
    )
    assert done.returncode == 2, done.stderr
    assert "--resume found no unfinished evolution" in done.stderr


def test_the_dask_backend_gives_the_local_results() -> None:
    distributed = pytest.importorskip("dask.distributed")
    bars = planted.hourly_bars(1, 0.25, seed=5)
    strategy = planted.strategy()
    market = Market(compile_strategy(strategy), strategy, planted.risk(), planted.execution(), bars)
    plan = market.plan
    vectors = np.stack(
        [plan.param_vector({"delay": d, "window": w}) for d in (2, 7, 10, 13) for w in (3, 6)]
        * 9  # 72 genomes: three Dask tasks of at most 32
    )
    local = market.run(vectors, workers=2)
    with (
        distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True) as cluster,
        distributed.Client(cluster) as client,
    ):
        remote = DaskEvaluator(client, market)(vectors, bars)
    np.testing.assert_array_equal(remote.equity, local.equity)
    np.testing.assert_array_equal(remote.summary, local.summary)
    np.testing.assert_array_equal(remote.opened, local.opened)
    np.testing.assert_array_equal(remote.risk, local.risk)
