"""Engine throughput: Polytrade's backtest against vectorbt, backtesting.py and a numba loop.

    .ci/uv run --locked --group bench python bench/engine.py            # full, 1,000 sets
    .ci/uv run --locked --group bench python bench/engine.py --sets 100 # full, a shorter sweep
    .ci/uv run --locked --group bench python bench/engine.py --quick    # 100k bars, 20 sets

The full run writes its figures to bench/results/engine-<date>.json; --quick (a smoke test)
writes them to the temporary folder.

Sections, all on the same bars and the same strategy (bench/strategies/ema_cross.yaml: always
in the market, long while EMA(50) > EMA(200), short otherwise, all of the equity each side):

1. agreement, same-bar-close variant (fills at the signal bar's close, no slippage, no
   funding, taker fee only, fixed_fraction 1.0, a risk budget that never clips): Polytrade
   (`run_sleeve`) against a hand-written numba loop that mirrors the engine's arithmetic (EMA
   recursions with TA-Lib seeding, whole-contract sizing, the fee). Entry counts and the final
   log-equity must agree to 1e-9, or the script stops. vectorbt (`Portfolio.from_signals`) and
   backtesting.py are compared too; they size differently (see the notes they print);
2. speed, single-threaded (NUMBA_NUM_THREADS=1, BLAS at one thread), warm (after a first
   call), best of N: M bars/s and the ratio to the numba loop, at 1M and 5M bars.
   backtesting.py runs on a slice and is extrapolated (said in the table);
3. the realistic variant (next-bar-open fills, latency, square-root impact slippage,
   participation cap, funding) for Polytrade alone;
4. a 1,000-set parameter sweep over 1M bars with 1 and 2 workers, each in a fresh process so
   that its peak RSS is its own;
5. `polytrade run profiles/backtest.yaml --json` cold start with a warm compile cache.

The bars: real BTC_USDT_PERP 1m bars (../shared/data/binance/BTC_USDT_PERP-1m.parquet,
132,905 bars in three gap-free pieces), made continuous at the file's two gaps (each piece
scaled to open at the previous close), with the copy's net drift removed (a factor of about
1e-6 per bar, so that 38 copies do not compound into a 400x price), then repeated, each copy
scaled to start at the previous copy's close, on a gap-free 1-minute clock from 2024-01-01.
Volume is the real volume. The machine is named with its load beside the figures; the script
reports targets as met or missed and never rounds a miss into a pass.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import math
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numba
import numpy as np
import polars as pl
from numba import njit

from polytrade.cli.loading import spec_loader
from polytrade.compile.plan import compile_strategy
from polytrade.core.instruments import instrument
from polytrade.engine.backtest import funding_per_bar, run_sleeve, trade_table
from polytrade.engine.sweep import grid, sweep
from polytrade.signals.ops.averages import fma
from polytrade.spec.models import RiskBudgetDocument
from polytrade.spec.models.profile import ExecutionModel

if TYPE_CHECKING:
    from collections.abc import Callable

    from polytrade.compile.plan import Plan
    from polytrade.spec.models import StrategyDocument

warnings.filterwarnings("ignore")

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "binance"
BTC_1M = DATA / "BTC_USDT_PERP-1m.parquet"
BTC_FUNDING = DATA / "BTC_USDT_PERP-funding.parquet"
STRATEGY = REPO / "bench" / "strategies" / "ema_cross.yaml"
RESULTS = REPO / "bench" / "results"
ORIGIN_MS = 1_704_067_200_000
"""2024-01-01 00:00 UTC."""
MINUTE_MS = 60_000
FUNDING_MS = 8 * 3_600_000
MILLION = 1_000_000
FAST, SLOW = 50, 200
CAPITAL = 10_000.0
"""USDT: about 250 contracts (whole contracts of 0.001 BTC: the numba loop rounds the same way),
an order far below the bars' volume, so the participation cap (100% of it) never binds."""
REALISTIC_CAPITAL = 100_000.0
"""USDT: an order of about 3 BTC, within 10% of most 1m bars' volume (median 69 BTC)."""
TAKER_BPS = 1.0
"""The fee of every engine in the comparison (a VIP taker tier; 5 bps ruins a 1m EMA cross)."""
TOLERANCE = 1e-9
PYCACHE = Path(tempfile.gettempdir()) / "polytrade-bench-pycache"
NO_BYTECODE_MARK = "POLYTRADE_BENCH_CALLER_NO_BYTECODE"
TARGET_MBARS = 50.0
TARGET_SETS = 1000
TARGET_SWEEP_S = 8.0
TARGET_SCALING = 1.8
TARGET_GB = 1.0
TARGET_COLD_S = 3.0
SINGLE_THREAD = {
    "NUMBA_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "TQDM_DISABLE": "1",  # backtesting.py's progress bar: noise on the terminal and in its time
}


@dataclass(frozen=True)
class Settings:
    """What one run measures."""

    sizes: tuple[int, ...]
    repeats: dict[int, int]
    backtesting_slice: int
    sweep_bars: int
    sweep_sets: int
    name: str


FULL = Settings(
    sizes=(MILLION, 5 * MILLION),
    repeats={MILLION: 5, 5 * MILLION: 3},
    backtesting_slice=100_000,
    sweep_bars=MILLION,
    sweep_sets=1000,
    name="full",
)
QUICK = Settings(
    sizes=(100_000,),
    repeats={100_000: 3},
    backtesting_slice=20_000,
    sweep_bars=100_000,
    sweep_sets=20,
    name="quick",
)


# ================================================================== machine and data


def load() -> str:
    """The load average (1, 5, 15 min) and the number of CPUs: noise for the figures."""
    one, five, fifteen = os.getloadavg()
    return f"load {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} CPUs"


def machine() -> dict[str, str]:
    """CPU, library versions and the state of the tree."""
    model = "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    versions = {"python": platform.python_version(), "numpy": np.__version__}
    versions["numba"] = numba.__version__
    versions["polars"] = pl.__version__
    for name in ("vectorbt", "backtesting"):
        try:
            versions[name] = __import__(name).__version__
        except ImportError:
            versions[name] = "not installed"
    head = subprocess.run(
        ["git", "-C", str(REPO), "log", "-1", "--format=%h %cd", "--date=iso"],  # noqa: S607
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    changed = subprocess.run(
        ["git", "-C", str(REPO), "status", "--porcelain", "polytrade"],  # noqa: S607
        capture_output=True,
        text=True,
        check=False,
    ).stdout.splitlines()
    return {
        "cpu": f"{model}, {os.cpu_count()} logical CPUs",
        "versions": ", ".join(f"{k} {v}" for k, v in versions.items()),
        "tree": f"commit {head or 'unknown'}, {len(changed)} uncommitted change(s) in polytrade/",
        "threads": ", ".join(f"{k}={os.environ.get(k)}" for k in SINGLE_THREAD),
        "bytecode": f"cached in {os.environ.get('PYTHONPYCACHEPREFIX')}"
        + (
            "; the caller had PYTHONDONTWRITEBYTECODE=1" if os.environ.get(NO_BYTECODE_MARK) else ""
        ),
        "uptime": subprocess.run(
            ["uptime"],  # noqa: S607 - uptime from PATH
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip(),
    }


def base_copy() -> dict[str, np.ndarray]:
    """The real 1m bars, continuous at the file's gaps and without net drift (see the top)."""
    frame = pl.read_parquet(BTC_1M)
    ts = frame["ts"].dt.epoch("ms").to_numpy()
    o, h, lo, c, v = (frame[k].to_numpy().astype(np.float64) for k in (
        "open", "high", "low", "close", "volume"
    ))  # fmt: skip
    scale = np.ones(c.shape[0])
    for start in np.flatnonzero(np.diff(ts) != MINUTE_MS) + 1:
        scale[start:] *= c[start - 1] / o[start]  # the piece opens at the previous close
    drift = math.log(c[-1] * scale[-1] / (o[0] * scale[0]))
    scale *= np.exp(-drift * np.arange(1, c.shape[0] + 1) / c.shape[0])
    return {
        "open": o * scale,
        "high": h * scale,
        "low": lo * scale,
        "close": c * scale,
        "volume": v,
    }


def stitched(base: dict[str, np.ndarray], n: int) -> dict[str, np.ndarray]:
    """`n` bars: copies of `base`, each scaled to start at the previous copy's close."""
    m = base["close"].shape[0]
    copies = -(-n // m)
    factors = np.empty(copies)
    factor = 1.0
    for k in range(copies):
        factors[k] = factor
        factor *= base["close"][-1] / base["open"][0]  # the next copy opens at this close
    per_bar = np.repeat(factors, m)[:n]
    bars = {name: (np.tile(base[name], copies)[:n] * per_bar) for name in ("open", "high", "low")}
    bars["close"] = np.tile(base["close"], copies)[:n] * per_bar
    bars["volume"] = np.tile(base["volume"], copies)[:n].copy()
    bars["ts"] = ORIGIN_MS + MINUTE_MS * np.arange(n, dtype=np.int64)
    return bars


def with_funding(bars: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The bars with `funding`: real BTC funding rates, in order and cycled, every 8 hours."""
    rates = pl.read_parquet(BTC_FUNDING)["rate"].to_numpy().astype(np.float64)
    ts = bars["ts"]
    first = -(-int(ts[0]) // FUNDING_MS) * FUNDING_MS
    settlements = np.arange(first, int(ts[-1]) + MINUTE_MS, FUNDING_MS, dtype=np.int64)
    cycled = rates[np.arange(settlements.shape[0]) % rates.shape[0]]
    return {**bars, "funding": funding_per_bar(ts, MINUTE_MS, settlements, cycled)}


# ================================================================== the reference loop


@njit(cache=True, nogil=True, error_model="numpy")
def reference_loop(  # noqa: C901, PLR0912, PLR0913, PLR0917 - one loop, kept whole on purpose
    close: np.ndarray,
    fast: int,
    slow: int,
    capital: float,
    contract_size: float,
    lot: float,
    min_qty: float,
    fee_bps: float,
    equity: np.ndarray,
) -> tuple[int, int]:
    """The physical limit: EMA recursions, the position logic and the fee, nothing else.

    Mirrors the engine's arithmetic in the same-bar-close variant: the EMAs are seeded with
    the mean of their first n values (TA-Lib) and updated with one fused multiply-add; at
    each close the equity is marked, and when the side of `fast > slow` differs from the
    position's, the position flips (or opens) to floor(equity / (contract size x close))
    whole lots, filled at the close with the taker fee. Writes the equity of every bar (before
    that bar's fill, as the engine records it) and returns (entries, fills).
    """
    alpha_fast = 2.0 / (fast + 1.0)
    alpha_slow = 2.0 / (slow + 1.0)
    ema_fast = 0.0
    ema_slow = 0.0
    cash = capital
    qty = 0.0
    entry = 0.0
    entries = 0
    fills = 0
    for t in range(close.shape[0]):
        c = close[t]
        if t < fast:
            ema_fast += c
            if t == fast - 1:
                ema_fast = ema_fast / fast
        else:
            ema_fast = fma(alpha_fast, c - ema_fast, ema_fast)
        if t < slow:
            ema_slow += c
            if t == slow - 1:
                ema_slow = ema_slow / slow
        else:
            ema_slow = fma(alpha_slow, c - ema_slow, ema_slow)
        value = cash + (qty * contract_size * (c - entry) if qty != 0.0 else 0.0)
        equity[t] = value
        if t < fast - 1 or t < slow - 1:
            continue
        side = 1.0 if ema_fast > ema_slow else -1.0
        if side == np.sign(qty):
            continue
        size = 0.0
        if c > 0.0 and value > 0.0:
            size = np.floor(value / (contract_size * c) / lot) * lot
            if size < min_qty:
                size = 0.0
        order = side * size - qty
        if order == 0.0:
            continue
        paid = abs(order) * contract_size * c * fee_bps * 1e-4
        realized = 0.0
        if qty != 0.0:
            closing = min(abs(order), abs(qty)) * np.sign(order)
            realized = -closing * contract_size * (c - entry)
        cash += realized - paid
        qty = side * size
        fills += 1
        if qty != 0.0:
            entry = c
            entries += 1
    return entries, fills


def run_reference(bars: dict[str, np.ndarray]) -> tuple[int, int, np.ndarray]:
    """The reference loop on `bars` with the benchmark's instrument: (entries, fills, equity)."""
    spec = instrument("BTC_USDT_PERP")
    equity = np.empty(bars["close"].shape[0])
    entries, fills = reference_loop(
        bars["close"], FAST, SLOW, CAPITAL, spec.contract_size, spec.lot, spec.min_qty,
        TAKER_BPS, equity,
    )  # fmt: skip
    return int(entries), int(fills), equity


# ================================================================== Polytrade


def risk_budget(capital: float = CAPITAL) -> RiskBudgetDocument:
    """A budget that never acts: no clipping, no halts (loss limits at 100%); capital USDT."""
    return RiskBudgetDocument.model_validate(
        {
            "apiVersion": "polytrade/v1",
            "kind": "RiskBudget",
            "metadata": {"name": "bench-unbounded"},
            "spec": {
                "capital_usdt": capital,
                "max_leverage": 3,
                "max_position_notional_usdt": 1e15,
                "max_order_notional_usdt": 1e15,
                "price_band_bps": 150,
                "max_daily_loss": {"limit": 1.0, "action": "halt"},
                "max_drawdown": {"limit": 1.0, "action": "flatten"},
            },
        }
    )


def same_bar_close() -> ExecutionModel:
    """Fills at the signal bar's close, taker fee only, no slippage, no latency."""
    return ExecutionModel.model_validate(
        {
            "fees": {"maker_bps": 0.0, "taker_bps": TAKER_BPS},
            "slippage": {"model": "none"},
            "latency_ms": 0,
            "fills": {"market_price": "close", "participation": 1.0},
            "funding": {"source": "none"},
        }
    )


def next_bar_open() -> ExecutionModel:
    """The realistic model: next open, 250 ms latency, square-root impact, 10% participation."""
    return ExecutionModel.model_validate(
        {
            "fees": {"maker_bps": 0.0, "taker_bps": TAKER_BPS},
            "slippage": {"model": "sqrt_impact", "coefficient": 0.7, "volume_lookback_bars": 96},
            "latency_ms": 250,
            "fills": {"market_price": "next_open", "participation": 0.1},
            "funding": {"source": "history", "interval_hours": 8},
        }
    )


@dataclass
class Engine:
    """The strategy, compiled, with the budget and the two execution models."""

    plan: Plan
    strategy: StrategyDocument
    risk: RiskBudgetDocument

    def run(self, bars: dict[str, np.ndarray], execution: ExecutionModel) -> Any:  # noqa: ANN401
        """One backtest (a Sleeve)."""
        return run_sleeve(self.plan, self.strategy, self.risk, execution, bars)


def engine() -> Engine:
    """bench/strategies/ema_cross.yaml compiled, with the benchmark's risk budget."""
    document = spec_loader().load(STRATEGY).document
    assert document.kind == "Strategy"  # noqa: S101 - the benchmark's own file
    return Engine(compile_strategy(document), document, risk_budget())  # type: ignore[arg-type]


# ================================================================== timing


def best_time(function: Callable[[], object], repeats: int) -> float:
    """Best wall time of `repeats` calls after one warm-up call (seconds)."""
    function()
    best = math.inf
    for _ in range(repeats):
        gc.collect()
        started = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - started)
    return best


def mbars(n: int, seconds: float | None) -> float | None:
    """Throughput in M bars/s."""
    return None if seconds is None else n / seconds / 1e6


# ================================================================== other engines


def vectorbt_run(
    bars: dict[str, np.ndarray], up: np.ndarray | None = None
) -> tuple[int, float, float]:
    """vectorbt: its own EMAs (or the given signal) and from_signals; (entries, final, s)."""
    import vectorbt as vbt

    close = bars["close"]
    started = time.perf_counter()
    if up is None:
        fast = vbt.MA.run(close, FAST, ewm=True).ma.to_numpy()
        slow = vbt.MA.run(close, SLOW, ewm=True).ma.to_numpy()
        valid = ~(np.isnan(fast) | np.isnan(slow))
        long = valid & (fast > slow)
        short = valid & ~(fast > slow)
    else:
        long = up == 1.0
        short = up == 0.0
    portfolio = vbt.Portfolio.from_signals(
        close,
        entries=long,
        short_entries=short,
        size=np.inf,
        fees=TAKER_BPS * 1e-4,
        init_cash=CAPITAL,
        size_granularity=instrument("BTC_USDT_PERP").contract_size,
        freq="1min",
    )
    final = float(portfolio.final_value())
    elapsed = time.perf_counter() - started
    return int(portfolio.trades.count()), final, elapsed


def backtesting_run(bars: dict[str, np.ndarray], up: np.ndarray) -> tuple[int, float, float]:
    """backtesting.py on the given signal, whole contracts: (entries, final equity, seconds)."""
    import pandas as pd
    from backtesting import Strategy
    from backtesting.lib import FractionalBacktest

    class Cross(Strategy):
        def init(self) -> None:
            self.up = self.I(lambda: up, name="up", overlay=False)

        def next(self) -> None:
            signal = self.up[-1]
            if signal == 1.0 and not self.position.is_long:
                self.buy()
            elif signal == 0.0 and not self.position.is_short:
                self.sell()

    frame = pd.DataFrame(
        {
            "Open": bars["open"],
            "High": bars["high"],
            "Low": bars["low"],
            "Close": bars["close"],
            "Volume": bars["volume"],
        },
        index=pd.to_datetime(bars["ts"], unit="ms"),
    )
    test = FractionalBacktest(
        frame,
        Cross,
        cash=CAPITAL,
        commission=TAKER_BPS * 1e-4,
        trade_on_close=True,
        exclusive_orders=True,
        fractional_unit=instrument("BTC_USDT_PERP").contract_size,
    )
    started = time.perf_counter()
    stats = test.run()
    elapsed = time.perf_counter() - started
    return int(stats["# Trades"]), float(stats["Equity Final [$]"]), elapsed


_SLICES: dict[int, tuple[int, float, float]] = {}


def backtesting_slice(
    bars: dict[str, np.ndarray], up: np.ndarray, length: int
) -> tuple[int, float, float]:
    """backtesting.py on the first `length` bars, run once: every size starts with them."""
    if length not in _SLICES:
        cut = {name: column[:length] for name, column in bars.items()}
        _SLICES[length] = backtesting_run(cut, up[:length])
    return _SLICES[length]


# ================================================================== sections


def log_diff(a: float, b: float) -> float:
    """|log a - log b| (inf when either is not positive)."""
    return abs(math.log(a) - math.log(b)) if a > 0 and b > 0 else math.inf


def agreement(eng: Engine, bars: dict[str, np.ndarray], settings: Settings) -> dict[str, Any]:
    """Section 1 at one size: Polytrade == the numba loop to 1e-9, and the others beside them."""
    n = bars["close"].shape[0]
    sleeve = eng.run(bars, same_bar_close())
    entries, fills, equity = run_reference(bars)
    mine_entries = len(sleeve.trades)
    curve = float(np.max(np.abs(np.log(sleeve.equity) - np.log(equity))))
    final = log_diff(float(sleeve.equity[-1]), float(equity[-1]))
    clipped = {code: count for code, count in sleeve.risk.items() if count}
    print(f"  {n:,} bars ({load()}):")
    print(
        f"    Polytrade   entries {mine_entries:,}, fills {len(sleeve.fills):,}, final equity "
        f"{sleeve.equity[-1]:,.6f}; liquidations {sleeve.liquidations}, risk actions {clipped}"
    )
    print(f"    numba loop  entries {entries:,}, fills {fills:,}, final equity {equity[-1]:,.6f}")
    print(f"    |log-equity difference|: final {final:.3e}, largest over every bar {curve:.3e}")
    if (
        mine_entries != entries
        or len(sleeve.fills) != fills
        or not final <= TOLERANCE
        or sleeve.liquidations
        or clipped
    ):
        raise SystemExit(
            "Polytrade and the numba loop disagree in the same-bar-close variant: fix this "
            "before reading any speed figure"
        )
    up = eng.plan.run(bars)["up"]
    own = vectorbt_run(bars)
    same = vectorbt_run(bars, up)
    print(
        f"    vectorbt    entries {own[0]:,} (own EMAs) / {same[0]:,} (Polytrade's signal); "
        f"final equity {own[1]:,.2f} / {same[1]:,.2f}; |log-equity difference| "
        f"{log_diff(own[1], equity[-1]):.3e} / {log_diff(same[1], equity[-1]):.3e}"
    )
    bt = backtesting_slice(bars, up, settings.backtesting_slice)
    cut_entries, _, cut_equity = run_reference(
        {name: column[: settings.backtesting_slice] for name, column in bars.items()}
    )
    print(
        f"    backtesting.py on the first {settings.backtesting_slice:,} bars: entries {bt[0]:,} "
        f"(numba loop {cut_entries:,}), final equity {bt[1]:,.2f} (numba loop "
        f"{cut_equity[-1]:,.2f}), |log-equity difference| {log_diff(bt[1], cut_equity[-1]):.3e}"
    )
    return {
        "bars": n,
        "load": load(),
        "polytrade": {"entries": mine_entries, "fills": len(sleeve.fills)},
        "numba_loop": {"entries": entries, "fills": fills},
        "polytrade_final_equity": float(sleeve.equity[-1]),
        "numba_loop_final_equity": float(equity[-1]),
        "log_equity_difference_final": final,
        "log_equity_difference_max": curve,
        "vectorbt_own_emas": {"entries": own[0], "final_equity": own[1]},
        "vectorbt_polytrade_signal": {"entries": same[0], "final_equity": same[1]},
        "vectorbt_log_equity_difference": log_diff(same[1], equity[-1]),
        "backtesting_slice": {
            "bars": settings.backtesting_slice,
            "entries": bt[0],
            "final_equity": bt[1],
            "numba_loop_entries": cut_entries,
            "numba_loop_final_equity": float(cut_equity[-1]),
            "log_equity_difference": log_diff(bt[1], cut_equity[-1]),
        },
    }


def speed(eng: Engine, bars: dict[str, np.ndarray], settings: Settings) -> dict[str, Any]:
    """Section 2 at one size: best-of-N wall times, M bars/s.

    Polytrade's time is split where public functions allow: `plan.run` alone (the signals
    into their own buffer; `run_sleeve` feeds them to the kernel chunk by chunk instead) and
    `trade_table` (the round trips, part of `run_sleeve`); the rest of `run_sleeve` is the
    kernel and its buffers.
    """
    n = bars["close"].shape[0]
    repeats = settings.repeats[n]
    execution = same_bar_close()
    up = eng.plan.run(bars)["up"]
    figures: dict[str, float | None] = {}
    figures["numba loop"] = best_time(lambda: run_reference(bars), repeats)
    figures["Polytrade run_sleeve"] = best_time(lambda: eng.run(bars, execution), repeats)
    figures["  of which plan.run (alone)"] = best_time(lambda: eng.plan.run(bars), repeats)
    sleeve = eng.run(bars, execution)
    figures["  of which trade_table"] = best_time(
        lambda: trade_table(sleeve.fills, sleeve.instrument.contract_size), repeats
    )
    figures["vectorbt (EMAs + from_signals)"] = min(
        vectorbt_run(bars)[2] for _ in range(max(1, repeats - 1))
    )
    seconds = backtesting_slice(bars, up, settings.backtesting_slice)[2]
    figures["backtesting.py (extrapolated)"] = seconds * n / settings.backtesting_slice
    return {
        "bars": n,
        "load": load(),
        "seconds": figures,
        "mbars_per_s": {name: mbars(n, s) for name, s in figures.items()},
    }


def realistic(eng: Engine, bars: dict[str, np.ndarray], repeats: int) -> dict[str, Any]:
    """Section 3 at one size: next-bar open, slippage, funding; Polytrade alone."""
    n = bars["close"].shape[0]
    funded = with_funding(bars)
    execution = next_bar_open()
    sleeve = eng.run(funded, execution)
    seconds = best_time(lambda: eng.run(funded, execution), repeats)
    out = {
        "bars": n,
        "load": load(),
        "seconds": seconds,
        "mbars_per_s": mbars(n, seconds),
        "final_equity": float(sleeve.equity[-1]),
        "trades": len(sleeve.trades),
        "fills": len(sleeve.fills),
        "costs": sleeve.costs,
        "risk": {code: count for code, count in sleeve.risk.items() if count},
    }
    print(
        f"  {n:,} bars: {mbars(n, seconds):.2f} M bars/s ({seconds:.3f} s; {load()}); final "
        f"equity {sleeve.equity[-1]:,.2f}, {len(sleeve.trades):,} trades, {len(sleeve.fills):,} "
        f"fills (partial fills at 10% of volume), fees {sleeve.costs['fees']:,.2f}, funding "
        f"{sleeve.costs['funding']:,.2f}, slippage {sleeve.costs['slippage']:,.2f} USDT"
    )
    return out


def sweep_grid(count: int) -> dict[str, list[int]]:
    """`count` sets: fast 10, 20, ... (10 values when count >= 100) x slow from 100 by 10."""
    fasts = list(range(10, 110, 10)) if count >= 100 else [10, 30, 50, 70]  # noqa: PLR2004
    per_fast = -(-count // len(fasts))
    return {"fast": fasts, "slow": list(range(100, 100 + 10 * per_fast, 10))}


def sweep_child(arguments: dict[str, Any]) -> None:
    """In a fresh process: one sweep, its wall time and this process's peak RSS as JSON."""
    data = np.load(arguments["bars"])
    bars = {name: data[name] for name in data.files}
    eng = engine()
    points = grid(sweep_grid(arguments["sets"]))[: arguments["sets"]]
    run_sleeve(eng.plan, eng.strategy, eng.risk, same_bar_close(), bars, params=points[0])
    # Load (or compile) the population loop before the clock starts, as run_sleeve above.
    sweep(eng.plan, eng.strategy, eng.risk, same_bar_close(), bars, points[:2], workers=1)
    before = _status("VmRSS")
    # Reset the kernel's peak-RSS mark (Linux >= 4.0): VmHWM then is the sweep's own peak.
    reset = Path("/proc/self/clear_refs")
    try:
        reset.write_text("5")
        hwm_reset = True
    except OSError:
        hwm_reset = False
    started = time.perf_counter()
    rows = sweep(
        eng.plan,
        eng.strategy,
        eng.risk,
        same_bar_close(),
        bars,
        points,
        workers=arguments["workers"],
    )
    elapsed = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(
        json.dumps(
            {
                "seconds": elapsed,
                "rss_before": before,
                "peak_rss_process": peak,
                "peak_rss": _status("VmHWM") if hwm_reset else peak,
                "peak_rss_source": "VmHWM reset before the sweep" if hwm_reset else "ru_maxrss",
                "rows": len(rows),
                "checksum": sum(row.final_equity for row in rows),
                "load": load(),
            }
        )
    )


def _status(field: str) -> int:
    """A size from /proc/self/status (VmRSS: resident now; VmHWM: its peak), bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024
    return 0


def sweeps(base: dict[str, np.ndarray], settings: Settings) -> dict[str, Any]:
    """Section 4: the sweep with 1 and 2 workers, each in a fresh process."""
    bars = stitched(base, settings.sweep_bars)
    out: dict[str, Any] = {"bars": settings.sweep_bars, "sets": settings.sweep_sets}
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bars.npz"
        np.savez(path, **bars)
        for workers in (1, 2):
            arguments = {"bars": str(path), "sets": settings.sweep_sets, "workers": workers}
            done = subprocess.run(
                [sys.executable, __file__, "--sweep-child", json.dumps(arguments)],
                capture_output=True,
                text=True,
                check=False,
                env={**os.environ, **SINGLE_THREAD},
            )
            if done.returncode != 0:
                raise SystemExit(f"the sweep child failed:\n{done.stderr[-3000:]}")
            figures = json.loads(done.stdout.strip().splitlines()[-1])
            evals = settings.sweep_sets * settings.sweep_bars
            figures["bar_evals_per_s"] = evals / figures["seconds"]
            out[f"workers_{workers}"] = figures
            print(
                f"  workers={workers}: {figures['seconds']:.2f} s, "
                f"{figures['bar_evals_per_s'] / 1e6:.1f} M bar-evals/s, peak RSS "
                f"{figures['peak_rss'] / 2**20:,.0f} MiB during the sweep "
                f"({figures['peak_rss_source']}; {figures['rss_before'] / 2**20:,.0f} MiB "
                f"before it, {figures['peak_rss_process'] / 2**20:,.0f} MiB peak of the whole "
                f"process with imports and compilation); {figures['load']}"
            )
    if out["workers_1"]["checksum"] != out["workers_2"]["checksum"]:
        raise SystemExit("the sweep with 2 workers gave other results than with 1")
    out["scaling"] = out["workers_1"]["seconds"] / out["workers_2"]["seconds"]
    print(f"  scaling 1 -> 2 workers: {out['scaling']:.2f}x (same results)")
    return out


def cold_start(*, quick: bool) -> dict[str, Any]:
    """Section 5: `polytrade run profiles/backtest.yaml --json` twice; the second counts.

    Python's bytecode cache is on for these runs (in PYCACHE, see `_environment`), as on a
    user's machine. When the calling environment had PYTHONDONTWRITEBYTECODE=1, which makes
    every start compile every imported module from source, a third run measures that too
    (not with --quick).
    """
    command = [str(Path(sys.executable).with_name("polytrade")), "run", "profiles/backtest.yaml"]

    def timed(env: dict[str, str]) -> float:
        started = time.perf_counter()
        done = subprocess.run(
            [*command, "--json"], capture_output=True, text=True, check=False, cwd=REPO, env=env
        )
        if done.returncode != 0:
            raise SystemExit(f"polytrade run failed:\n{done.stderr[-3000:]}")
        return time.perf_counter() - started

    first, second = timed(dict(os.environ)), timed(dict(os.environ))
    out: dict[str, Any] = {"first": first, "second": second, "load": load()}
    print(
        f"  first {first:.2f} s, second {second:.2f} s (compile and bytecode caches warm); {load()}"
    )
    if os.environ.get(NO_BYTECODE_MARK) and not quick:
        out["without_bytecode_cache"] = timed({**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
        print(
            f"  {out['without_bytecode_cache']:.2f} s as the calling environment runs it "
            "(PYTHONDONTWRITEBYTECODE=1: every module compiled from source on each start)"
        )
    return out


# ================================================================== report


def table(speeds: list[dict[str, Any]]) -> None:
    """M bars/s and the ratio to the numba loop, one column pair per size."""
    names = list(speeds[0]["seconds"])
    headers = ["engine"]
    for figures in speeds:
        headers += [f"{figures['bars'] / 1e6:g}M: M bars/s", "vs loop"]
    rows = []
    for name in names:
        row = [name]
        for figures in speeds:
            rate = figures["mbars_per_s"][name]
            loop = figures["mbars_per_s"]["numba loop"]
            row += [f"{rate:.2f}" if rate else "n/a", f"{rate / loop:.3f}x" if rate else "n/a"]
        rows.append(row)
    widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(len(headers))]
    for line in [headers, ["-" * w for w in widths], *rows]:
        print("  " + "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(
            zip(line, widths, strict=True)
        )))  # fmt: skip
    for figures in speeds:
        print(f"  ({figures['bars']:,} bars measured at {figures['load']})")


def targets(results: dict[str, Any], settings: Settings) -> list[dict[str, Any]]:
    """Each target as met or missed with its figure; a smaller run than the target's is not."""
    single = min(s["mbars_per_s"]["Polytrade run_sleeve"] for s in results["speed"])
    two = results["sweep"]["workers_2"]
    scaling = results["sweep"]["scaling"]
    cold = results["cold_start"]["second"]
    million = settings.sweep_bars >= MILLION
    whole = million and settings.sweep_sets >= TARGET_SETS
    measured = f"{settings.sweep_sets:,} sets x {settings.sweep_bars:,} bars"
    sweep_s, peak_gb = two["seconds"], two["peak_rss"] / 1e9
    rows = [
        ("single backtest >= 50 M bars/s (slowest size)", single, TARGET_MBARS, "M bars/s", True),
        (f"1000 x 1M bars <= 8 s, 2 workers ({measured})", sweep_s, -TARGET_SWEEP_S, "s", whole),
        (f"scaling 1 -> 2 workers >= 1.8x ({measured})", scaling, TARGET_SCALING, "x", True),
        (f"peak RSS, 2 workers <= 1 GB ({measured})", peak_gb, -TARGET_GB, "GB", million),
        ("cold start <= 3 s", cold, -TARGET_COLD_S, "s", True),
    ]
    out = []
    for label, value, bound, unit, comparable in rows:
        # A positive bound is a floor, a negative one a ceiling.
        met = value >= bound if bound > 0 else value <= -bound
        verdict = ("met" if met else "MISSED") if comparable else "not measured"
        out.append({"target": label, "figure": value, "unit": unit, "verdict": verdict})
        print(f"  {verdict:>12}  {label}: {value:.2f} {unit}")
    return out


def main() -> None:
    """Run every section and write bench/results/engine-<date>.json."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100k bars, 20 sets, < 1 min")
    parser.add_argument("--sets", type=int, help="sweep sets (default 1000; --quick 20)")
    parser.add_argument("--sweep-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sweep_child:
        sweep_child(json.loads(args.sweep_child))
        return
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[attr-defined] - a text stream
    settings = QUICK if args.quick else FULL
    if args.sets:
        settings = replace(settings, sweep_sets=args.sets)
    started = time.perf_counter()
    results: dict[str, Any] = {"settings": asdict(settings)}
    results["machine"] = machine()
    print("Engine benchmark", settings.name)
    for key, value in results["machine"].items():
        print(f"  {key}: {value}")
    base = base_copy()
    eng = engine()
    sized = {n: stitched(base, n) for n in settings.sizes}
    print(
        "\n1. Agreement, same-bar-close variant (EMA 50/200 always in the market, taker "
        f"{TAKER_BPS} bp, capital {CAPITAL:,.0f} USDT, whole contracts of 0.001 BTC)"
    )
    results["agreement"] = [agreement(eng, bars, settings) for bars in sized.values()]
    print(
        "  vectorbt sizes each entry with all the cash it has, net of the fee, in 0.001 BTC "
        "steps (size=inf), and counts the cash of a short sale as its own; Polytrade sizes "
        "floor(equity / (0.001 x close)) contracts and pays the fee from the margin. Its own "
        "EMAs (pandas-style, seeded at the first value) also cross at other bars early on."
    )
    print(
        "  backtesting.py buys 99.99% of the equity it has, net of the commission, in whole "
        "0.001 BTC units (FractionalBacktest), and runs bar by bar in Python."
    )
    print("\n2. Speed, single-threaded, warm, best of N (same-bar-close variant)")
    # Warm: section 1 ran every engine on these bars already (numba compiled, caches filled).
    results["speed"] = [speed(eng, bars, settings) for bars in sized.values()]
    table(results["speed"])
    print(
        "\n3. Realistic variant, Polytrade alone: next-bar open, 250 ms latency, square-root "
        f"impact (k 0.7), 10% participation, real funding rates; capital {REALISTIC_CAPITAL:,.0f}"
        " USDT"
    )
    realistic_engine = replace(eng, risk=risk_budget(REALISTIC_CAPITAL))
    results["realistic"] = [
        realistic(realistic_engine, bars, settings.repeats[n]) for n, bars in sized.items()
    ]
    del sized
    gc.collect()
    print(
        f"\n4. Sweep: {settings.sweep_sets} parameter sets x {settings.sweep_bars:,} bars "
        "(fresh process each)"
    )
    results["sweep"] = sweeps(base, settings)
    print("\n5. polytrade run profiles/backtest.yaml --json, cold start")
    results["cold_start"] = cold_start(quick=settings.name == "quick")
    print("\nTargets")
    results["targets"] = targets(results, settings)
    results["seconds"] = time.perf_counter() - started
    # A smoke test (--quick) writes its figures outside the repository.
    folder = RESULTS if settings.name == "full" else Path(tempfile.gettempdir())
    folder.mkdir(parents=True, exist_ok=True)
    suffix = "" if settings.name == "full" else f"-{settings.name}"
    out = folder / f"engine-{dt.datetime.now(dt.UTC).date().isoformat()}{suffix}.json"
    out.write_text(json.dumps(results, indent=2, default=str) + "\n", encoding="utf-8")
    print(f"\n{results['seconds']:.0f} s in all; figures written to {out}")


def _environment() -> None:
    """Re-run this script single-threaded (numba, BLAS) with a bytecode cache, unless it is.

    The bytecode cache lives in PYCACHE (PYTHONPYCACHEPREFIX), outside the repository, so
    imports cost what they cost on a user's machine even where PYTHONDONTWRITEBYTECODE=1
    is set; NO_BYTECODE_MARK remembers that it was.
    """
    if os.environ.get("PYTHONPYCACHEPREFIX") == str(PYCACHE) and all(
        os.environ.get(k) == v for k, v in SINGLE_THREAD.items()
    ):
        return
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env |= SINGLE_THREAD | {"PYTHONPYCACHEPREFIX": str(PYCACHE)}
    if os.environ.get("PYTHONDONTWRITEBYTECODE"):
        env[NO_BYTECODE_MARK] = "1"
    os.execve(sys.executable, [sys.executable, *sys.argv], env)  # noqa: S606


if __name__ == "__main__":
    _environment()
    main()
