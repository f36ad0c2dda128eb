"""Benchmark: how long validating 100 spec files takes (target: under one second).

Builds 100 specs from the examples (60 strategies, 20 risk budgets, 20 profiles that each
refer to three strategies and a risk budget), then measures
- in-process `SpecLoader().check` on a fresh loader (YAML, models, expressions, references);
- the whole `polytrade validate DIR` command in a new process (interpreter start and imports
  included), which is what a user or a pre-commit hook waits for.
Figures are printed, not asserted: the host is noisy.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
STRATEGIES = sorted((REPO / "strategies").glob("*.yaml"))
RUNS = 7


def build_corpus(root: Path) -> int:
    """Write 100 valid specs under `root`; returns how many were written."""
    (root / "strategies").mkdir()
    (root / "risk").mkdir()
    (root / "profiles").mkdir()
    risk_text = (REPO / "profiles/risk/default.yaml").read_text(encoding="utf-8")
    written = 0
    for index in range(60):
        source = STRATEGIES[index % len(STRATEGIES)].read_text(encoding="utf-8")
        name = source.split("name: ", 1)[1].split("\n", 1)[0]
        text = source.replace(f"name: {name}", f"name: {name}-{index}", 1)
        (root / "strategies" / f"s{index:02d}.yaml").write_text(text, encoding="utf-8")
        written += 1
    for index in range(20):
        text = risk_text.replace("name: default", f"name: risk-{index}", 1)
        (root / "risk" / f"r{index:02d}.yaml").write_text(text, encoding="utf-8")
        written += 1
    for index in range(20):
        refs = "\n".join(
            f"    - ref: ../strategies/s{(index * 3 + k) % 60:02d}.yaml\n      allocation: 0.3"
            for k in range(3)
        )
        text = (
            "apiVersion: polytrade/v1\nkind: Profile\n"
            f"metadata: {{name: profile-{index}}}\n"
            "spec:\n  mode: backtest\n  venue: {name: poloniex}\n"
            f"  strategies:\n{refs}\n"
            f"  risk: ../risk/r{index:02d}.yaml\n"
            "  data: {source: synthetic, seed: 1}\n"
        )
        (root / "profiles" / f"p{index:02d}.yaml").write_text(text, encoding="utf-8")
        written += 1
    return written


def main() -> None:
    """Print the benchmark table."""
    from polytrade.cli.loading import spec_loader

    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        count = build_corpus(root)
        in_process = []
        for _ in range(RUNS):
            start = time.perf_counter()
            checked, issues = spec_loader().check([root])
            in_process.append(time.perf_counter() - start)
            if issues or checked != count:
                raise SystemExit(f"corpus invalid: {issues[:3]}")
        command = [sys.executable, "-m", "polytrade", "validate", str(root)]
        cold = []
        for _ in range(RUNS):
            start = time.perf_counter()
            subprocess.run(command, check=True, capture_output=True)
            cold.append(time.perf_counter() - start)

    warm, whole = statistics.median(in_process), statistics.median(cold)
    print(f"validate {count} specs (median of {RUNS} runs; min in brackets)")
    print(
        f"  in-process check (+types)   : {warm * 1e3:7.1f} ms  [{min(in_process) * 1e3:.1f}]"
        f"  = {warm / count * 1e3:.2f} ms/spec"
    )
    print(
        f"  polytrade validate (process): {whole * 1e3:7.1f} ms  [{min(cold) * 1e3:.1f}]"
        "  target < 1000 ms"
    )


if __name__ == "__main__":
    main()
