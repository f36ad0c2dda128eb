"""Signal-graph throughput: Polytrade's compiled plans and operators against TA-Lib and vectorbt.

    uv run --group bench python bench/signals.py            # full: 1M and 10M bars (~15 min)
    uv run --group bench python bench/signals.py --quick    # 1M bars, fewer repeats (~2 min)
    uv run --group bench python bench/signals.py --json a.json          # also keep the figures
    uv run --group bench python bench/signals.py --merge a.json b.json  # best of each figure

Tables:

1. per indicator that TA-Lib also has: `polytrade.signals.evaluate.evaluate` against TA-Lib and
   vectorbt, in M bars/s (best of N after a warm-up call, so compilation is excluded);
2. per example strategy (strategies/*.yaml) and an inline EMA-cross graph: the plan's kernel with
   a preallocated output, `plan.run`, and a 100-parameter-set `digest_many` batch at 1 and 2
   threads; beside them the same graph evaluated node by node with TA-Lib (+ numpy for the
   arithmetic, comparisons and logic) and with vectorbt's indicators;
3. cold and warm compile times in fresh processes;
4. a hand-written numba EMA cross as the physical reference for the EMA-cross graph.

The `bench` dependency group brings vectorbt; without it the vectorbt columns read n/a. The script
reports and never asserts: targets met or missed are for the reader.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import operator
import os
import platform
import subprocess
import sys
import tempfile
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numba
import numpy as np
import talib
from numba import njit, prange

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import ModuleType

warnings.filterwarnings("ignore")

REPO = Path(__file__).resolve().parents[1]
ORIGIN_MS = 1_704_067_200_000
"""2024-01-01 00:00 UTC, a Monday: every higher timeframe up to a week starts aligned."""
MILLION = 1_000_000
BATCH_SETS = 100
THREADS = (1, 2)
EMA_CROSS_YAML = """\
apiVersion: polytrade/v1
kind: Strategy
metadata:
  name: ema-cross
  description: EMA cross on 1m bars, the benchmark's reference graph.
spec:
  instruments: [BTC_USDT_PERP]
  timeframe: 1m
  params:
    fast: {type: int, default: 12, min: 2, max: 100, description: fast EMA, unit: bars}
    slow: {type: int, default: 48, min: 5, max: 400, description: slow EMA, unit: bars}
  signals:
    trend: ema(close, fast) - ema(close, slow)
  entry_long: cross_above(trend, 0)
  exit_long: cross_below(trend, 0)
  sizing: {method: fixed_fraction, fraction: 1.0}
"""


@dataclass(frozen=True)
class Settings:
    """What one run measures."""

    sizes: tuple[int, ...]
    indicator_repeats: dict[int, int]
    kernel_repeats: dict[int, int]
    batch_repeats: dict[int, int]
    reference_sets: dict[int, int]
    """Parameter sets the TA-Lib / vectorbt batches evaluate (throughput is per set)."""
    compile_all: bool
    indicators: tuple[str, ...] = ()
    """Only these indicators in table 1 (empty: every one)."""
    operator_costs: bool = True
    """Time each operator of each strategy alone (explains a slow graph)."""


FULL = Settings(
    sizes=(MILLION, 10 * MILLION),
    indicator_repeats={MILLION: 4, 10 * MILLION: 2},
    kernel_repeats={MILLION: 4, 10 * MILLION: 2},
    batch_repeats={MILLION: 2, 10 * MILLION: 1},
    reference_sets={MILLION: 10, 10 * MILLION: 2},
    compile_all=True,
)
QUICK = Settings(
    sizes=(MILLION,),
    indicator_repeats={MILLION: 2},
    kernel_repeats={MILLION: 2},
    batch_repeats={MILLION: 1},
    reference_sets={MILLION: 4},
    compile_all=False,
    operator_costs=False,
    indicators=(
        "sma",
        "ema",
        "wma",
        "kama",
        "rsi",
        "macd",
        "atr",
        "adx",
        "cci",
        "williams_r",
        "stoch",
        "stoch_k",
        "bb_upper",
        "rolling_max",
        "rolling_std",
        "linreg_slope",
        "obv",
        "mfi",
    ),
)


# ================================================================== tables


@dataclass
class Table:
    """A printed table whose numeric cells can be merged across runs (best of each)."""

    title: str
    headers: list[str]
    key_columns: int = 1
    rows: list[list[Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _rate(value: float | None) -> dict[str, Any]:
    """A throughput cell (higher is better)."""
    return {"v": value, "k": "rate"}


def _seconds(value: float | None) -> dict[str, Any]:
    """A duration cell (lower is better)."""
    return {"v": value, "k": "time"}


def _ratio(numerator: int, denominator: int) -> dict[str, Any]:
    """A cell computed at print time from two columns of its row."""
    return {"r": [numerator, denominator], "k": "ratio"}


def _cell_value(row: list[Any], cell: object) -> float | None:
    if isinstance(cell, dict) and cell["k"] == "ratio":
        top, bottom = (_cell_value(row, row[i]) for i in cell["r"])
        if top is None or bottom is None or bottom == 0:
            return None
        return top / bottom
    if isinstance(cell, dict):
        value = cell["v"]
        return None if value is None else float(value)
    return None


def _format(row: list[Any], cell: object) -> str:
    if not isinstance(cell, dict):
        return str(cell)
    value = _cell_value(row, cell)
    if value is None:
        return "n/a"
    if cell["k"] == "ratio":
        return f"{value:.2f}x"
    if cell["k"] == "time":
        return f"{value:.2f}"
    return f"{value:.0f}" if value >= 100 else f"{value:.1f}"  # noqa: PLR2004 - display precision


def render(table: Table) -> str:
    """The table as aligned text, with its notes below."""
    body = [[_format(row, cell) for cell in row] for row in table.rows]
    widths = [
        max([len(header)] + [len(line[i]) for line in body])
        for i, header in enumerate(table.headers)
    ]

    def line(cells: list[str]) -> str:
        parts = [
            cell.ljust(widths[i]) if i < table.key_columns else cell.rjust(widths[i])
            for i, cell in enumerate(cells)
        ]
        return "  ".join(parts).rstrip()

    out = [table.title, "=" * len(table.title), line(table.headers)]
    out.append("  ".join("-" * w for w in widths))
    out.extend(line(cells) for cells in body)
    out.extend(f"  {note}" for note in table.notes)
    return "\n".join(out) + "\n"


def emit(table: Table, tables: list[Table]) -> None:
    """Print a finished table now and keep it for --json."""
    tables.append(table)
    print(render(table), flush=True)


def merge(runs: list[dict[str, Any]]) -> list[Table]:
    """Tables of the first run with every number replaced by the best over all runs."""
    first = [Table(**t) for t in runs[0]["tables"]]
    for other in runs[1:]:
        by_title = {t["title"]: t for t in other["tables"]}
        for table in first:
            match = by_title.get(table.title)
            if match is None:
                continue
            rows = {tuple(map(str, r[: table.key_columns])): r for r in match["rows"]}
            for row in table.rows:
                twin = rows.pop(tuple(map(str, row[: table.key_columns])), None)
                if twin is not None:
                    _merge_row(row, twin)
            table.rows += list(rows.values())  # rows only a later run had
    return first


def _merge_row(row: list[Any], twin: list[Any]) -> None:
    for i, (cell, other) in enumerate(zip(row, twin, strict=False)):
        if not (isinstance(cell, dict) and isinstance(other, dict)) or cell["k"] == "ratio":
            continue
        values = [v for v in (cell.get("v"), other.get("v")) if v is not None]
        if values:
            best = max(values) if cell["k"] == "rate" else min(values)
            row[i] = {**cell, "v": best}


# ================================================================== machine and data


def machine_lines(vbt: ModuleType | None, vbt_problem: str) -> list[str]:
    """CPU, cores and library versions."""
    model = "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for text in cpuinfo.read_text().splitlines():
            if text.startswith("model name"):
                model = text.split(":", 1)[1].strip()
                break
    _warm_threads()
    try:
        from threadpoolctl import threadpool_info

        blas = ", ".join(
            f"{i.get('internal_api')} {i.get('version')} ({i.get('architecture')})"
            for i in threadpool_info()
        )
    except ImportError:
        blas = "threadpoolctl not installed"
    openblas = {k: v for k, v in os.environ.items() if k.startswith("OPENBLAS_")}
    return [
        f"CPU: {model}, {os.cpu_count()} logical cores, {len(os.sched_getaffinity(0))} usable",
        f"machine at start: {busy()}",
        (
            f"Python {platform.python_version()}, numpy {np.__version__}, numba {numba.__version__}"
            f" (threading layer {numba.threading_layer()}, {numba.config.NUMBA_NUM_THREADS} "
            f"threads), TA-Lib {talib.__version__} (C library {_ta_c_version()})"
        ),
        f"vectorbt {vbt.__version__ if vbt else 'n/a: ' + vbt_problem}",
        f"polytrade tree: {_tree_state()}",
        f"BLAS: {blas}; OPENBLAS_* set: {openblas or 'none'} (numpy BLAS is not on these paths)",
    ]


def _tree_state() -> str:
    def git(*words: str) -> str:
        try:
            done = subprocess.run(
                ["git", "-C", str(REPO), *words],  # noqa: S607 - git from PATH
                capture_output=True,
                text=True,
                check=False,
                timeout=30,
            )
        except (OSError, subprocess.SubprocessError):
            return ""
        return done.stdout.strip()

    head = git("log", "-1", "--format=%h %cd", "--date=format:%Y-%m-%d %H:%M") or "unknown"
    changed = [line for line in git("status", "--porcelain", "polytrade").splitlines() if line]
    return f"commit {head}, {len(changed)} uncommitted change(s) under polytrade/"


def _ta_c_version() -> str:
    version = talib.__ta_version__
    text = version.decode() if isinstance(version, bytes) else str(version)
    return text.split()[0]


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _cpu_times() -> dict[int, tuple[str, int]]:
    times: dict[int, tuple[str, int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            text = (entry / "stat").read_text()
        except OSError:
            continue
        name = text[text.index("(") + 1 : text.rindex(")")]
        fields = text[text.rindex(")") + 2 :].split()
        times[int(entry.name)] = (name, int(fields[11]) + int(fields[12]))
    return times


def _command(pid: int, name: str) -> str:
    try:
        words = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return name
    text = " ".join(
        Path(w.decode(errors="replace")).name if i == 0 else w.decode(errors="replace")
        for i, w in enumerate(words[:4])
        if w
    )
    return f"[{pid}] {text[:60] or name}"


def busy(seconds: float = 1.0) -> str:
    """Other processes using a noticeable share of a core right now (noise for the figures)."""
    if not Path("/proc/self/stat").exists():
        return "unknown"
    before = _cpu_times()
    time.sleep(seconds)
    after = _cpu_times()
    ticks = os.sysconf("SC_CLK_TCK") * seconds
    mine = os.getpid()
    shares = [
        (100.0 * (t - before[pid][1]) / ticks, name, pid)
        for pid, (name, t) in after.items()
        if pid in before and pid != mine
    ]
    heavy = sorted((x for x in shares if x[0] >= 10), reverse=True)  # noqa: PLR2004 - percent
    load = ", ".join(f"{_command(pid, name)} {share:.0f}%" for share, name, pid in heavy)
    return f"load average {_load()}; other processes now: {load or 'none above 10% of a core'}"


@njit(parallel=True)
def _parallel_sum(x: np.ndarray) -> float:
    total = 0.0
    for i in prange(x.shape[0]):
        total += x[i]
    return total


def _warm_threads() -> None:
    _parallel_sum(np.ones(1000))


@njit
def _ar1(noise: np.ndarray, phi: float) -> np.ndarray:
    out = np.empty_like(noise)
    x = 0.0
    for i in range(noise.shape[0]):
        x = phi * x + noise[i]
        out[i] = x
    return out


def synthetic_market(n: int, seed: int = 7) -> dict[str, np.ndarray]:
    """A random walk with volatility clustering, fat tails, wicks, volume and funding."""
    rng = np.random.default_rng(seed)
    sigma = 0.0012 * np.exp(_ar1(rng.standard_normal(n) * 0.03, 0.999))
    returns = sigma * rng.standard_t(5, n) * math.sqrt(3 / 5)
    close = 30_000.0 * np.exp(np.cumsum(returns))
    open_ = np.empty(n)
    open_[0] = 30_000.0
    open_[1:] = close[:-1]
    high = np.maximum(open_, close) * np.exp(0.6 * sigma * np.abs(rng.standard_normal(n)))
    low = np.minimum(open_, close) * np.exp(-0.6 * sigma * np.abs(rng.standard_normal(n)))
    volume = rng.lognormal(3.0, 0.8, n) * (1.0 + 300.0 * np.abs(returns))
    funding = 1e-4 + _ar1(rng.standard_normal(n) * 2e-6, 0.9995)
    mark = close * (1.0 + 3e-4 * _ar1(rng.standard_normal(n) * 0.1, 0.99))
    return {
        "open": open_,
        "high": high,
        "low": low,
        "close": close,
        "volume": volume,
        "funding_rate": funding,
        "mark_price": mark,
    }


class Bars:
    """Views of the first n bars of the market, with `ts` spaced at a timeframe."""

    def __init__(self, market: dict[str, np.ndarray]) -> None:
        self.market = market
        self._ts: dict[int, np.ndarray] = {}

    def get(self, n: int, step_seconds: int) -> dict[str, np.ndarray]:
        """A bars mapping as `Plan.run` takes it."""
        if step_seconds not in self._ts:
            count = len(self.market["close"])
            self._ts[step_seconds] = ORIGIN_MS + np.arange(count, dtype=np.int64) * (
                step_seconds * 1000
            )
        bars = {name: column[:n] for name, column in self.market.items()}
        bars["ts"] = self._ts[step_seconds][:n]
        return bars


def best_time(
    call: Callable[[], object],
    repeats: int,
    *,
    setup: Callable[[], None] | None = None,
    warmup: bool = True,
) -> float:
    """Best wall time of `repeats` calls, after one untimed call when `warmup`."""
    if warmup:
        if setup:
            setup()
        call()
    best = math.inf
    for _ in range(repeats):
        if setup:
            setup()
        gc.collect()
        start = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - start)
    return best


def _mbars(count: float, seconds: float | None) -> float | None:
    return None if seconds is None or seconds <= 0 else count / seconds / MILLION


def _short(exc: BaseException) -> str:
    lines = [x.strip() for x in str(exc).strip().splitlines() if x.strip()]
    text = lines[0] if lines else ""
    return f"{type(exc).__name__}: {text[:160]}"


# ================================================================== reference implementations


def _lag(x: np.ndarray, k: int) -> np.ndarray:
    out = np.full_like(x, np.nan)
    if 0 < k < x.shape[0]:
        out[k:] = x[:-k]
    elif k == 0:
        out[:] = x
    return out


def _bbands(x: np.ndarray, n: int, w: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return talib.BBANDS(x, int(n), float(w), float(w), 0)


def _pctb(x: np.ndarray, n: int, w: float) -> np.ndarray:
    upper, _, lower = _bbands(x, n, w)
    with np.errstate(all="ignore"):
        return (x - lower) / (upper - lower)


def _bwidth(x: np.ndarray, n: int, w: float) -> np.ndarray:
    upper, mid, lower = _bbands(x, n, w)
    with np.errstate(all="ignore"):
        return (upper - lower) / mid


def _zscore(x: np.ndarray, n: int) -> np.ndarray:
    with np.errstate(all="ignore"):
        return (x - talib.SMA(x, int(n))) / talib.STDDEV(x, int(n), 1.0)


def _keltner(sign: float) -> Callable[..., np.ndarray]:
    def band(h: np.ndarray, lo: np.ndarray, c: np.ndarray, n: int, k: float) -> np.ndarray:
        mid = talib.EMA(c, int(n))
        if sign == 0:
            return mid
        return mid + sign * k * talib.ATR(h, lo, c, int(n))

    return band


def _hma(x: np.ndarray, n: int) -> np.ndarray:
    n = int(n)
    inner = 2 * talib.WMA(x, max(n // 2, 1)) - talib.WMA(x, n)
    return talib.WMA(inner, max(math.isqrt(n), 1))


def _vwap(h: np.ndarray, lo: np.ndarray, c: np.ndarray, v: np.ndarray, n: int) -> np.ndarray:
    with np.errstate(all="ignore"):
        return talib.SUM((h + lo + c) / 3 * v, int(n)) / talib.SUM(v, int(n))


def _realized_vol(x: np.ndarray, n: int) -> np.ndarray:
    with np.errstate(all="ignore"):
        return talib.STDDEV(np.log(x / _lag(x, 1)), int(n), 1.0)


def _log_return(x: np.ndarray, n: int) -> np.ndarray:
    with np.errstate(all="ignore"):
        return np.log(x / _lag(x, int(n)))


def _now_prev(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return (x[:, 1:], x[:, :-1]) if x.shape[1] > 1 else (x, x)


def _cross(above: bool) -> Callable[[list[np.ndarray], list[np.ndarray]], np.ndarray]:  # noqa: FBT001
    def cross(series: list[np.ndarray], _: list[np.ndarray]) -> np.ndarray:
        a, b = series
        shape = np.broadcast_shapes(a.shape, b.shape)
        out = np.zeros(shape, dtype=bool)
        (a1, a0), (b1, b0) = _now_prev(a), _now_prev(b)
        if above:
            np.logical_and(a1 > b1, a0 <= b0, out=out[:, 1:])
        else:
            np.logical_and(a1 < b1, a0 >= b0, out=out[:, 1:])
        return out

    return cross


def _elementwise(function: Callable[..., np.ndarray]) -> Callable[..., np.ndarray]:
    def apply(series: list[np.ndarray], _: list[np.ndarray]) -> np.ndarray:
        with np.errstate(all="ignore"):
            return function(*series)

    return apply


def _where(series: list[np.ndarray], _: list[np.ndarray]) -> np.ndarray:
    return np.where(*series)


# vectorbt: each function takes (vbt, series as (rows, n) arrays, scalars as (rows, 1) arrays)
# and returns (rows, n). Series shared by every parameter set have one row.

_FACTORY_CACHE: dict[str, Any] = {}


def _vbt_class(vbt: ModuleType, name: str) -> Any:  # noqa: ANN401 - vectorbt builds classes
    if name in {"RollMax", "RollMin"}:
        if name not in _FACTORY_CACHE:
            kernel = (
                vbt.generic.nb.rolling_max_nb
                if name == "RollMax"
                else vbt.generic.nb.rolling_min_nb
            )
            factory = vbt.IndicatorFactory(
                class_name=name, input_names=["x"], param_names=["window"], output_names=["out"]
            )
            _FACTORY_CACHE[name] = factory.from_apply_func(kernel)
        return _FACTORY_CACHE[name]
    return getattr(vbt, name)


def _vbt_call(
    indicator: str,
    attr: str,
    params: tuple[str, ...] = (),
    fixed: dict[str, Any] | None = None,
    post: Callable[[np.ndarray, list[np.ndarray]], np.ndarray] | None = None,
) -> Callable[[ModuleType, list[np.ndarray], list[np.ndarray]], np.ndarray]:
    def run(vbt: ModuleType, series: list[np.ndarray], scalars: list[np.ndarray]) -> np.ndarray:
        n = series[0].shape[1]
        rows = max([s.shape[0] for s in series] + [c.shape[0] for c in scalars])
        kwargs: dict[str, Any] = dict(fixed or {})
        convert = [int if "window" in p else float for p in params]
        if rows == 1:
            inputs = [s[0] for s in series]
            kwargs |= {p: f(c[0, 0]) for p, f, c in zip(params, convert, scalars, strict=True)}
        else:
            kwargs |= {
                p: [f(c[min(i, c.shape[0] - 1), 0]) for i in range(rows)]
                for p, f, c in zip(params, convert, scalars, strict=True)
            }
            if all(s.shape[0] == 1 for s in series):
                inputs = [s[0] for s in series]
            else:
                inputs = [np.broadcast_to(s, (rows, n)).T for s in series]
                kwargs["per_column"] = True
        result = getattr(_vbt_class(vbt, indicator).run(*inputs, **kwargs), attr).to_numpy()
        out = result.reshape(n, -1).T
        return post(out, series) if post else out

    return run


def _vbt_zscore(vbt: ModuleType, series: list[np.ndarray], scalars: list[np.ndarray]) -> np.ndarray:
    mean = _vbt_call("MA", "ma", ("window",))(vbt, series, scalars)
    std = _vbt_call("MSTD", "mstd", ("window",))(vbt, series, scalars)
    with np.errstate(all="ignore"):
        return (series[0] - mean) / std


def _per_close(out: np.ndarray, series: list[np.ndarray]) -> np.ndarray:
    return out / series[2]


@dataclass(frozen=True)
class Ref:
    """How TA-Lib (+ numpy) and vectorbt compute one Polytrade operator."""

    args: tuple[str, ...]
    """Polytrade's argument names the mapping assumes (a different signature is skipped)."""
    label: str
    """What computes it: a TA-Lib function, TA-Lib functions plus numpy, or numpy."""
    kind: str
    """`talib` (one TA-Lib call), `talib+` (TA-Lib with numpy around it) or `numpy`."""
    fn: Callable[..., np.ndarray] | None = None
    """1-D form: fn(*series, *scalars) -> array; evaluated per parameter set."""
    vec: Callable[[list[np.ndarray], list[np.ndarray]], np.ndarray] | None = None
    """2-D form over (sets, bars) arrays, for elementwise and event operators."""
    vbt: Callable[[ModuleType, list[np.ndarray], list[np.ndarray]], np.ndarray] | None = None
    vbt_label: str = ""


def _t(name: str, *pick: int) -> Callable[..., np.ndarray]:
    """A TA-Lib function with int periods; `pick` selects one output of several."""
    function = getattr(talib, name)

    def call(*args: Any) -> np.ndarray:  # noqa: ANN401 - arrays and numbers
        values = [int(a) if isinstance(a, float) and a.is_integer() else a for a in args]
        result = function(*values)
        return result[pick[0]] if pick else result

    return call


_X, _HLC, _HLCN = ("x", "length"), ("high", "low", "close", "length"), ("high", "low", "close")
_MA, _W, _KC = "MA", ("window",), ("high", "low", "close", "length", "multiplier")
_MACD = ("fast_window", "slow_window", "signal_window")
_EWM = {"macd_ewm": True, "signal_ewm": True}
REFS: dict[str, Ref] = {
    "sma": Ref(_X, "SMA", "talib", _t("SMA"), vbt=_vbt_call(_MA, "ma", _W), vbt_label="MA"),
    "rolling_mean": Ref(
        _X, "SMA", "talib", _t("SMA"), vbt=_vbt_call(_MA, "ma", _W), vbt_label="MA"
    ),
    "ema": Ref(
        _X, "EMA", "talib", _t("EMA"),
        vbt=_vbt_call(_MA, "ma", ("window",), {"ewm": True}), vbt_label="MA(ewm)",
    ),
    "wma": Ref(_X, "WMA", "talib", _t("WMA")),
    "dema": Ref(_X, "DEMA", "talib", _t("DEMA")),
    "tema": Ref(_X, "TEMA", "talib", _t("TEMA")),
    "kama": Ref(_X, "KAMA", "talib", _t("KAMA")),
    "trix": Ref(_X, "TRIX", "talib", _t("TRIX")),
    "hma": Ref(_X, "WMA x3+numpy", "talib+", _hma),
    "rsi": Ref(_X, "RSI", "talib", _t("RSI"), vbt=_vbt_call("RSI", "rsi", _W), vbt_label="RSI"),
    "cmo": Ref(_X, "CMO", "talib", _t("CMO")),
    "roc": Ref(_X, "ROC", "talib", _t("ROC")),
    "mom": Ref(_X, "MOM", "talib", _t("MOM")),
    "momentum": Ref(_X, "MOM", "talib", _t("MOM")),
    "diff": Ref(_X, "MOM", "talib", _t("MOM")),
    "pct_change": Ref(_X, "ROCP", "talib", _t("ROCP")),
    "linreg_slope": Ref(_X, "LINEARREG_SLOPE", "talib", _t("LINEARREG_SLOPE")),
    "rolling_sum": Ref(_X, "SUM", "talib", _t("SUM")),
    "rolling_max": Ref(
        _X, "MAX", "talib", _t("MAX"), vbt=_vbt_call("RollMax", "out", ("window",)),
        vbt_label="factory(rolling_max_nb)",
    ),
    "rolling_min": Ref(
        _X, "MIN", "talib", _t("MIN"), vbt=_vbt_call("RollMin", "out", ("window",)),
        vbt_label="factory(rolling_min_nb)",
    ),
    "donchian_upper": Ref(
        ("high", "length"), "MAX", "talib", _t("MAX"),
        vbt=_vbt_call("RollMax", "out", ("window",)), vbt_label="factory(rolling_max_nb)",
    ),
    "donchian_lower": Ref(
        ("low", "length"), "MIN", "talib", _t("MIN"),
        vbt=_vbt_call("RollMin", "out", ("window",)), vbt_label="factory(rolling_min_nb)",
    ),
    "rolling_std": Ref(
        _X, "STDDEV", "talib", lambda x, n: talib.STDDEV(x, int(n), 1.0),
        vbt=_vbt_call("MSTD", "mstd", ("window",)), vbt_label="MSTD",
    ),
    "zscore": Ref(_X, "SMA+STDDEV", "talib+", _zscore, vbt=_vbt_zscore, vbt_label="MA+MSTD"),
    "funding_zscore": Ref(
        ("rate", "length"), "SMA+STDDEV", "talib+", _zscore, vbt=_vbt_zscore, vbt_label="MA+MSTD"
    ),
    "realized_vol": Ref(_X, "STDDEV(log ret)", "talib+", _realized_vol),
    "atr": Ref(_HLC, "ATR", "talib", _t("ATR"), vbt=_vbt_call("ATR", "atr", _W), vbt_label="ATR"),
    "natr": Ref(
        _HLC, "NATR/100", "talib", lambda h, lo, c, n: talib.NATR(h, lo, c, int(n)) / 100.0,
        vbt=_vbt_call("ATR", "atr", ("window",), post=_per_close), vbt_label="ATR/close",
    ),
    "true_range": Ref(
        _HLCN, "TRANGE", "talib", _t("TRANGE"),
        vbt=_vbt_call("ATR", "tr", (), {"window": 1}), vbt_label="ATR.tr",
    ),
    "adx": Ref(_HLC, "ADX", "talib", _t("ADX")),
    "adxr": Ref(_HLC, "ADXR", "talib", _t("ADXR")),
    "plus_di": Ref(_HLC, "PLUS_DI", "talib", _t("PLUS_DI")),
    "minus_di": Ref(_HLC, "MINUS_DI", "talib", _t("MINUS_DI")),
    "cci": Ref(_HLC, "CCI", "talib", _t("CCI")),
    "williams_r": Ref(_HLC, "WILLR", "talib", _t("WILLR")),
    "mfi": Ref(("high", "low", "close", "volume", "length"), "MFI", "talib", _t("MFI")),
    "obv": Ref(
        ("close", "volume"), "OBV", "talib", _t("OBV"), vbt=_vbt_call("OBV", "obv"), vbt_label="OBV"
    ),
    "aroon_up": Ref(("high", "low", "length"), "AROON[up]", "talib", _t("AROON", 1)),
    "aroon_down": Ref(("high", "low", "length"), "AROON[down]", "talib", _t("AROON", 0)),
    "aroon_osc": Ref(("high", "low", "length"), "AROONOSC", "talib", _t("AROONOSC")),
    "macd": Ref(
        ("x", "fast", "slow"), "MACD[macd]", "talib",
        lambda x, f, sl: talib.MACD(x, int(f), int(sl), 1)[0],
        vbt=_vbt_call("MACD", "macd", _MACD[:2], {**_EWM, "signal_window": 1}),
        vbt_label="MACD(ewm)",
    ),
    "macd_signal": Ref(
        ("x", "fast", "slow", "signal"), "MACD[signal]", "talib", _t("MACD", 1),
        vbt=_vbt_call("MACD", "signal", _MACD, _EWM), vbt_label="MACD(ewm)",
    ),
    "macd_hist": Ref(
        ("x", "fast", "slow", "signal"), "MACD[hist]", "talib", _t("MACD", 2),
        vbt=_vbt_call("MACD", "hist", _MACD, _EWM), vbt_label="MACD(ewm)",
    ),
    "stoch_k": Ref(
        ("high", "low", "close", "k_length", "k_smooth"), "STOCH[slowk]", "talib",
        lambda h, lo, c, k, ks: talib.STOCH(h, lo, c, int(k), int(ks), 0, 1, 0)[0],
        vbt=_vbt_call("STOCH", "percent_d", ("k_window", "d_window")),
        vbt_label="STOCH(%D=slow %K)",
    ),
    "stoch_d": Ref(
        ("high", "low", "close", "k_length", "k_smooth", "d_length"), "STOCH[slowd]", "talib",
        lambda h, lo, c, k, ks, d: talib.STOCH(h, lo, c, int(k), int(ks), 0, int(d), 0)[1],
    ),
    "bb_upper": Ref(
        ("x", "length", "width"), "BBANDS[upper]", "talib", lambda x, n, w: _bbands(x, n, w)[0],
        vbt=_vbt_call("BBANDS", "upper", ("window", "alpha")), vbt_label="BBANDS",
    ),
    "bb_mid": Ref(
        ("x", "length", "width"), "BBANDS[middle]", "talib", lambda x, n, w: _bbands(x, n, w)[1],
        vbt=_vbt_call("BBANDS", "middle", ("window", "alpha")), vbt_label="BBANDS",
    ),
    "bb_lower": Ref(
        ("x", "length", "width"), "BBANDS[lower]", "talib", lambda x, n, w: _bbands(x, n, w)[2],
        vbt=_vbt_call("BBANDS", "lower", ("window", "alpha")), vbt_label="BBANDS",
    ),
    "bb_pctb": Ref(
        ("x", "length", "width"), "BBANDS+numpy", "talib+", _pctb,
        vbt=_vbt_call("BBANDS", "percent_b", ("window", "alpha")), vbt_label="BBANDS",
    ),
    "bb_width": Ref(
        ("x", "length", "width"), "BBANDS+numpy", "talib+", _bwidth,
        vbt=_vbt_call("BBANDS", "bandwidth", ("window", "alpha")), vbt_label="BBANDS",
    ),
    "keltner_mid": Ref(_KC, "EMA", "talib+", _keltner(0)),
    "keltner_upper": Ref(_KC, "EMA+ATR", "talib+", _keltner(1)),
    "keltner_lower": Ref(_KC, "EMA+ATR", "talib+", _keltner(-1)),
    "vwap": Ref(("high", "low", "close", "volume", "length"), "SUM x2+numpy", "talib+", _vwap),
    "lag": Ref(_X, "numpy", "numpy", lambda x, n: _lag(x, int(n))),
    "log_return": Ref(_X, "numpy", "numpy", _log_return),
    "abs": Ref(("x",), "numpy", "numpy", vec=_elementwise(np.abs)),
    "sign": Ref(("x",), "numpy", "numpy", vec=_elementwise(np.sign)),
    "min": Ref(("a", "b"), "numpy", "numpy", vec=_elementwise(np.minimum)),
    "max": Ref(("a", "b"), "numpy", "numpy", vec=_elementwise(np.maximum)),
    "basis": Ref(("close", "mark"), "numpy", "numpy", vec=_elementwise(lambda c, m: (c - m) / m)),
    "where": Ref(("cond", "a", "b"), "numpy", "numpy", vec=_where),
    "cross_above": Ref(("a", "b"), "numpy", "numpy", vec=_cross(above=True)),
    "cross_below": Ref(("a", "b"), "numpy", "numpy", vec=_cross(above=False)),
}  # fmt: skip
SERIES_FIELDS = {
    "x": "close",
    "close": "close",
    "high": "high",
    "low": "low",
    "open": "open",
    "volume": "volume",
    "rate": "funding_rate",
    "mark": "mark_price",
}


# ================================================================== 1. indicators


def section_indicators(
    market: dict[str, np.ndarray], settings: Settings, vbt: ModuleType | None
) -> Table:
    """Each operator with a TA-Lib counterpart: evaluate() vs TA-Lib vs vectorbt."""
    headers = ["operator", "TA-Lib", "vectorbt", "params"]
    for n in settings.sizes:
        tag = f"{n // MILLION}M"
        headers += [f"PT {tag}", f"TA {tag}", f"vbt {tag}", f"PT/TA {tag}"]
    headers.append("max rel diff vs TA-Lib")
    table = Table(
        "1. Indicators: M bars/s, best of N after a warm-up (PT = polytrade evaluate)",
        headers,
    )
    try:
        from polytrade.signals.evaluate import evaluate
        from polytrade.signals.registry import operators

        ops = operators()
    except Exception as exc:  # noqa: BLE001 - the package may be mid-edit; report it
        table.notes.append(f"polytrade.signals does not import: {_short(exc)}")
        return table
    table.notes.append(
        f"{len(ops)} operators registered (the full list has 58 or more)"
        + ("; --quick: a subset of the indicators" if settings.indicators else "")
    )
    skipped: list[str] = []
    for name, ref in REFS.items():
        if ref.kind == "numpy" or (settings.indicators and name not in settings.indicators):
            continue
        op = ops.get(name)
        if op is None:
            skipped.append(f"{name} (not registered)")
            continue
        names = tuple(a for a, _ in op.args)
        if names != ref.args:
            skipped.append(f"{op.signature} (the mapping expects {name}({', '.join(ref.args)}))")
            continue
        scalars = [float(v) for v in op.example]
        row: list[Any] = [name, ref.label, ref.vbt_label if vbt and ref.vbt else "-"]
        row.append(",".join(f"{v:g}" for v in scalars))
        check = "n/a"
        for n in settings.sizes:
            print(f"  [1] {name} {n:,} bars ...", file=sys.stderr, flush=True)
            series = [market[SERIES_FIELDS[a]][:n] for a in op.series_args]
            figures, outputs = _indicator_figures(
                op, ref, series, scalars, vbt, settings, n, evaluate
            )
            column = len(row)
            row += [*figures, _ratio(column, column + 1)]
            if n == settings.sizes[0] and outputs:
                check = _agreement(*outputs)
        row.append(check)
        table.rows.append(row)
    table.notes.append(
        "params: the operator's example values, passed to TA-Lib and vectorbt alike. TA-Lib "
        "and evaluate() allocate their output; vectorbt includes its pandas wrapping."
    )
    table.notes.append(
        "vectorbt's MA(ewm)/RSI/ATR use their own smoothing and seeding, so they compute a "
        "similar, not identical, indicator."
    )
    table.notes.append(
        "At 10M bars the 80 MB output's first touch weighs on the fast operators: evaluate() "
        "allocates it inside numba, TA-Lib with numpy (on this machine numpy-allocated memory "
        "was about 4x cheaper to first-touch)."
    )
    if skipped:
        table.notes.append(
            "skipped (TA-Lib has it, Polytrade not under this name or signature): "
            + "; ".join(skipped)
        )
    return table


def _indicator_figures(  # noqa: PLR0913, PLR0917 - one measurement needs all of these
    op: Any,  # noqa: ANN401 - a polytrade Operator
    ref: Ref,
    series: list[np.ndarray],
    scalars: list[float],
    vbt: ModuleType | None,
    settings: Settings,
    n: int,
    evaluate: Callable[..., np.ndarray],
) -> tuple[list[Any], tuple[np.ndarray, np.ndarray] | None]:
    repeats = settings.indicator_repeats[n]
    first = n == settings.sizes[0]  # warm-up (compilation) and the value check once
    figures: list[Any] = []
    mine = theirs = None
    try:
        if first:
            mine = evaluate(op, series, scalars)
        seconds = best_time(lambda: evaluate(op, series, scalars), repeats, warmup=False)
        figures.append(_rate(_mbars(n, seconds)))
    except Exception as exc:  # noqa: BLE001 - report and go on
        print(f"    polytrade {op.name}: {_short(exc)}", file=sys.stderr)
        figures.append(_rate(None))
    assert ref.fn is not None  # noqa: S101 - talib kinds all have a 1-D form
    if first:
        theirs = ref.fn(*series, *scalars)
    seconds = best_time(lambda: ref.fn(*series, *scalars), repeats, warmup=False)
    figures.append(_rate(_mbars(n, seconds)))
    if vbt is not None and ref.vbt is not None:
        two_d = [s[None, :] for s in series]
        consts = [np.array([[v]]) for v in scalars]
        seconds = best_time(lambda: ref.vbt(vbt, two_d, consts), repeats, warmup=first)
        figures.append(_rate(_mbars(n, seconds)))
    else:
        figures.append(_rate(None))
    return figures, (mine, theirs) if mine is not None and theirs is not None else None


def _agreement(mine: np.ndarray, theirs: np.ndarray) -> str:
    both = np.isfinite(mine) & np.isfinite(theirs)
    only = int(np.count_nonzero(np.isfinite(mine) != np.isfinite(theirs)))
    if not both.any():
        return "no overlap"
    scale = float(np.max(np.abs(theirs[both]))) or 1.0
    diff = float(np.max(np.abs(mine[both] - theirs[both]))) / scale
    text = f"{diff:.1e}"
    return text + (f" ({only} bars NaN in one only)" if only else "")


# ================================================================== 2. strategies


@dataclass
class Strategy:
    """A compiled example strategy, or why it could not be used."""

    name: str
    path: Path
    plan: Any = None
    problem: str = ""
    """Why the strategy is skipped (it did not compile or run)."""
    batch_problem: str = ""
    """Why digest_many is not measured (its parallel kernel did not compile)."""


def load_strategies(ema_cross: Path) -> list[Strategy]:
    """strategies/*.yaml and the EMA-cross graph, compiled and run once on a few bars."""
    found = [Strategy(p.stem, p) for p in sorted((REPO / "strategies").glob("*.yaml"))]
    found.append(Strategy("ema-cross", ema_cross))
    try:
        from polytrade.compile.plan import compile_strategy
        from polytrade.spec import SpecLoader
    except Exception as exc:  # noqa: BLE001 - the package may be mid-edit; report it
        for strategy in found:
            strategy.problem = f"polytrade.compile does not import: {_short(exc)}"
        return found
    loader = SpecLoader()
    for strategy in found:
        stage = "compile_strategy"
        try:
            plan = compile_strategy(loader.load(strategy.path).document)
            stage = "plan.run"
            bars = _small_bars(plan)
            plan.run(bars)
            strategy.plan = plan
            stage = "digest_many"
            plan.digest_many(bars, np.tile(plan.param_vector(), (2, 1)))
        except Exception as exc:  # noqa: BLE001 - a strategy that cannot compile yet is skipped
            if strategy.plan is None:
                strategy.problem = f"{stage} failed: {_short(exc)}"
            else:
                strategy.batch_problem = f"{stage} failed: {_short(exc)}"
    return found


def _small_bars(plan: Any, n: int = 1000) -> dict[str, np.ndarray]:  # noqa: ANN401
    market = synthetic_market(n, seed=3)
    return Bars(market).get(n, plan.graph.base_clock)


def param_sets(plan: Any, count: int, seed: int = 11) -> np.ndarray:  # noqa: ANN401
    """`count` valid parameter vectors: the defaults first, then random draws in bounds."""
    rng = np.random.default_rng(seed)
    rows = [plan.param_vector()]
    while len(rows) < count:
        overrides: dict[str, Any] = {}
        for name in plan.param_order:
            overrides[name] = _draw(plan.graph.params[name], rng)
        try:
            rows.append(plan.param_vector(overrides))
        except ValueError:
            continue
    return np.array(rows)


def _draw(param: Any, rng: np.random.Generator) -> object:  # noqa: ANN401 - a spec param model
    kind = getattr(param, "type", "")
    if kind == "bool":
        return bool(rng.integers(0, 2))
    if kind == "choice":
        return param.choices[int(rng.integers(0, len(param.choices)))]
    low, high = float(param.min), float(param.max)
    if getattr(param, "log", False) and low > 0:
        value = math.exp(rng.uniform(math.log(low), math.log(high)))
    else:
        value = rng.uniform(low, high)
    if kind == "int":
        return int(min(max(round(value), param.min), param.max))
    step = getattr(param, "step", None)
    if step:
        value = min(low + round((value - low) / step) * step, high)
    return float(value)


# ---------------------------------------------------------------- the graph, node by node


class Reference:
    """A plan's graph evaluated node by node with full-length arrays.

    TA-Lib (and numpy) or vectorbt compute the operators; numpy the arithmetic, comparisons
    and logic.

    Arrays are (sets, bars); a node whose inputs and params are the same for every set keeps
    one row (what a TA-Lib or vectorbt user would do). Booleans are numpy bools.
    """

    def __init__(self, plan: Any, vbt: ModuleType | None = None) -> None:  # noqa: ANN401
        from polytrade.signals.registry import operators

        self.plan = plan
        self.graph = plan.graph
        self.vbt = vbt
        self.ops = operators()
        needed = self._needed()
        self.order = [n for n in self.graph.nodes if n.id in needed]
        self.last_use: dict[int, int] = {}
        for position, node in enumerate(self.order):
            for arg in node.args:
                self.last_use[arg] = position
        self.output_of: dict[int, list[int]] = {}
        for index, node_id in enumerate(self.graph.outputs.values()):
            self.output_of.setdefault(node_id, []).append(index)
        self.problem = ""
        self.uses: dict[str, list[str]] = {}
        for node in self.order:
            if node.op == "call":
                self._check(node.value)

    def _needed(self) -> set[int]:
        seen: set[int] = set()
        stack = list(self.graph.outputs.values())
        while stack:
            node_id = stack.pop()
            if node_id not in seen:
                seen.add(node_id)
                stack.extend(self.graph.node(node_id).args)
        return seen

    def _check(self, name: str) -> None:
        ref = REFS.get(name)
        op = self.ops[name]
        if ref is None:
            self.problem = f"no TA-Lib/numpy form of {name}"
            return
        if tuple(a for a, _ in op.args) != ref.args:
            self.problem = (
                f"{op.signature} differs from the mapping's {name}({', '.join(ref.args)})"
            )
            return
        label = ref.label
        if self.vbt is not None and ref.vbt:
            label = ref.vbt_label
        elif self.vbt is not None and ref.kind != "numpy":
            label = f"{ref.label} (TA-Lib)"
        self.uses.setdefault(f"{name}->{label}", []).append(name)

    def describe(self) -> str:
        """The operators and what computes each, e.g. `ema->EMA x2`."""
        parts = [f"{k} x{len(v)}" if len(v) > 1 else k for k, v in self.uses.items()]
        return ", ".join(parts)

    # ------------------------------------------------------------ evaluation

    def outputs(self, bars: dict[str, np.ndarray], params: np.ndarray) -> list[np.ndarray]:
        """Every output (as arrays of one row) for one parameter vector."""
        result: list[np.ndarray] = [np.empty(0)] * len(self.graph.outputs)

        def keep(index: int, value: np.ndarray) -> None:
            result[index] = value

        self._evaluate(bars, params[None, :], keep)
        return result

    def digest(
        self, bars: dict[str, np.ndarray], params: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Per set and output: the sum of non-NaN values and the count of non-zero ones."""
        sets, n = params.shape[0], len(bars["ts"])
        sums = np.zeros((sets, len(self.graph.outputs)))
        hits = np.zeros_like(sums)

        def reduce(index: int, value: np.ndarray) -> None:
            value = np.broadcast_to(value, (value.shape[0], n)) if value.shape[1] == 1 else value
            if value.dtype == bool:
                counted = np.count_nonzero(value, axis=1).astype(float)
                sums[:, index], hits[:, index] = counted, counted
            else:
                sums[:, index] = np.nansum(value, axis=1)
                hits[:, index] = np.count_nonzero(value, axis=1) - np.count_nonzero(
                    np.isnan(value), axis=1
                )

        self._evaluate(bars, params, reduce)
        return sums, hits

    def _evaluate(
        self,
        bars: dict[str, np.ndarray],
        params: np.ndarray,
        sink: Callable[[int, np.ndarray], None],
    ) -> None:
        clocks = _Clocks(self.graph, bars)
        values: dict[int, np.ndarray] = {}
        for position, node in enumerate(self.order):
            value = self._node(node, values, params, clocks)
            for index in self.output_of.get(node.id, []):
                sink(index, clocks.to_base(value, node.clock))
            values[node.id] = value
            for arg in node.args:
                if self.last_use[arg] == position:
                    values.pop(arg, None)

    def _node(  # noqa: PLR0911 - one return per node kind
        self,
        node: Any,  # noqa: ANN401 - a graph Node
        values: dict[int, np.ndarray],
        params: np.ndarray,
        clocks: _Clocks,
    ) -> np.ndarray:
        if node.op == "const":
            return np.array([[node.value if isinstance(node.value, bool) else float(node.value)]])
        if node.op == "param":
            column = params[:, self.plan.param_order.index(node.value)]
            if node.kind == "flag":
                column = column != 0.0
            return column[:1, None] if np.all(column == column[0]) else column[:, None]
        if node.op == "field":
            return clocks.field(node.value, node.clock)
        args = [clocks.at(values[a], self.graph.node(a).clock, node.clock) for a in node.args]
        with np.errstate(all="ignore"):
            if node.op == "arith":
                return _ARITH[node.value](args[0], args[1])
            if node.op == "neg":
                return -args[0]
            if node.op == "compare":
                return _COMPARE[node.value](args[0], args[1])
            if node.op in {"and", "or"}:
                return (np.logical_and if node.op == "and" else np.logical_or)(args[0], args[1])
            if node.op == "not":
                return np.logical_not(args[0])
        return self._call(node, args)

    def _call(self, node: Any, args: list[np.ndarray]) -> np.ndarray:  # noqa: ANN401
        op = self.ops[node.value]
        ref = REFS[node.value]
        count = len(op.series_args)
        series, scalars = args[:count], args[count:]
        if ref.vec is not None:
            return ref.vec(series, scalars)
        if self.vbt is not None and ref.vbt is not None:
            return ref.vbt(self.vbt, series, scalars)
        assert ref.fn is not None  # noqa: S101 - every non-vec Ref has a 1-D form
        return _rowwise(ref.fn, series, scalars)


_ARITH: dict[str, Callable[[Any, Any], Any]] = {
    "+": np.add,
    "-": np.subtract,
    "*": np.multiply,
    "/": np.true_divide,
    "%": np.mod,
    "**": np.power,
}
_COMPARE: dict[str, Callable[[Any, Any], Any]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}


def _rowwise(
    fn: Callable[..., np.ndarray], series: list[np.ndarray], scalars: list[np.ndarray]
) -> np.ndarray:
    n = max(s.shape[1] for s in series)
    rows = max([s.shape[0] for s in series] + [c.shape[0] for c in scalars])

    def argument(i: int) -> list[Any]:
        args: list[Any] = []
        for s in series:
            row = s[min(i, s.shape[0] - 1)]
            args.append(
                np.full(n, float(row[0]))
                if row.shape[0] == 1
                else np.ascontiguousarray(row, dtype=float)
            )
        args += [float(c[min(i, c.shape[0] - 1), 0]) for c in scalars]
        return args

    if rows == 1:
        return fn(*argument(0))[None, :]
    out = np.empty((rows, n))
    for i in range(rows):
        out[i] = fn(*argument(i))
    return out


class _Clocks:
    """Higher-timeframe fields and holding their values on finer clocks, vectorized."""

    def __init__(self, graph: Any, bars: dict[str, np.ndarray]) -> None:  # noqa: ANN401
        self.base = graph.base_clock
        self.bars = bars
        self.closes: dict[int, np.ndarray] = {}
        self.starts: dict[int, np.ndarray] = {}
        self.held: dict[int, np.ndarray] = {}
        self.fields: dict[tuple[str, int], np.ndarray] = {}

    def _prepare(self, clock: int) -> None:
        if clock in self.closes:
            return
        from polytrade.signals.resample import WEEK_OFFSET_MS

        ts = self.bars["ts"]
        period = clock * 1000
        offset = WEEK_OFFSET_MS if clock == 604_800 else 0  # noqa: PLR2004 - one week
        closing = (ts + self.base * 1000 + offset) % period == 0
        closes = np.flatnonzero(closing)
        self.closes[clock] = closes
        self.starts[clock] = np.concatenate(([0], closes[:-1] + 1))
        self.held[clock] = np.cumsum(closing) - 1

    def field(self, name: str, clock: int) -> np.ndarray:
        """A bar field on a clock, as one row."""
        column = self.bars[name]
        if clock == self.base:
            return column[None, :]
        key = (name, clock)
        if key not in self.fields:
            self._prepare(clock)
            closes, starts = self.closes[clock], self.starts[clock]
            if name == "high":
                values = np.maximum.reduceat(column, starts)
            elif name == "low":
                values = np.minimum.reduceat(column, starts)
            elif name == "volume":
                values = np.add.reduceat(column, starts)
            elif name == "open":
                values = column[starts]
            else:
                values = column[closes]
            self.fields[key] = values[: len(closes)][None, :]
        return self.fields[key]

    def at(self, value: np.ndarray, source: int | None, target: int | None) -> np.ndarray:
        """`value`, computed on clock `source`, as read on clock `target` (held values)."""
        if source is None or target is None or source == target:
            return value
        self._prepare(source)
        index = self.held[source]
        if target != self.base:
            self._prepare(target)
            index = index[self.closes[target]]
        taken = value[:, np.maximum(index, 0)]
        missing = index < 0
        if missing.any():
            taken[:, missing] = False if taken.dtype == bool else np.nan
        return taken

    def to_base(self, value: np.ndarray, clock: int | None) -> np.ndarray:
        """An output on the base clock."""
        return self.at(value, clock, self.base) if clock is not None else value


# ---------------------------------------------------------------- measurements


def section_strategies(
    strategies: list[Strategy],
    bars: Bars,
    settings: Settings,
    vbt: ModuleType | None,
    vbt_problem: str,
    tables: list[Table],
) -> None:
    """Tables 2a (Polytrade) and 2b (the same graphs with TA-Lib and vectorbt)."""
    mine = Table(
        "2a. Strategies, Polytrade: kernel and plan.run in M bars/s (1 thread); "
        f"{BATCH_SETS}-set digest_many in M bar-evals/s",
        ["strategy", "bars", "outputs", "kernel", "plan.run", "batch 1T", "batch 2T", "2T/1T"],
        key_columns=2,
    )
    theirs = Table(
        "2b. The same graphs node by node with TA-Lib (+numpy) and vectorbt: 1 set in M bars/s "
        "(PT = the plan's kernel), batches on 2 threads in M bar-evals/s (PT = digest_many)",
        [
            "strategy", "bars", "PT 1 set", "TA 1 set", "vbt 1 set", "PT/TA", "PT/vbt",
            "PT batch", "TA batch", "vbt batch", "PT/TA", "PT/vbt",
        ],
        key_columns=2,
    )  # fmt: skip
    for strategy in strategies:
        if strategy.plan is None:
            mine.notes.append(f"skipped {strategy.name}: {strategy.problem}")
            continue
        if strategy.batch_problem:
            mine.notes.append(f"{strategy.name}: no batch, {strategy.batch_problem}")
        plan = strategy.plan
        talib_ref, vbt_ref = Reference(plan), Reference(plan, vbt) if vbt else None
        sets = param_sets(plan, BATCH_SETS)
        for n in settings.sizes:
            data = bars.get(n, plan.graph.base_clock)
            figures = _polytrade_figures(strategy, data, sets, settings, n)
            mine.rows.append([strategy.name, f"{n // MILLION}M", str(len(plan.outputs)), *figures])
            references = _reference_figures(
                talib_ref, vbt_ref, data, sets, settings, n, strategy.name
            )
            single, batch = references[:2], references[2:]
            theirs.rows.append([
                strategy.name, f"{n // MILLION}M", figures[0], *single, _ratio(2, 3), _ratio(2, 4),
                figures[3], *batch, _ratio(7, 8), _ratio(7, 9),
            ])  # fmt: skip
            del data
            gc.collect()
        theirs.notes.append(_same_indicators(strategy.name, talib_ref, vbt_ref, plan, bars))
        if settings.operator_costs:
            mine.notes.append(f"{strategy.name}: {_operator_costs(plan, bars.market)}")
    mine.notes.append(
        "kernel: plan.module.run into a preallocated (outputs x bars) buffer; plan.run adds "
        "input checks and the output allocation; batch: digest_many (per output sum and count "
        f"of non-zero values) over {BATCH_SETS} random in-bounds sets, numba.set_num_threads."
    )
    mine.notes.append(
        "plan.run also pays its spacing check over ts (one pass) and the first touch "
        "of a fresh (outputs x bars) array each call: it varies with the machine's page-fault "
        "cost more than any other figure here."
    )
    counts = ", ".join(f"{n // MILLION}M: {settings.reference_sets[n]}" for n in settings.sizes)
    theirs.notes.append(
        f"batches evaluate {counts} of the same parameter sets (throughput is per set), in "
        "chunks on 2 threads, each chunk reduced to the same digest as digest_many. A node "
        "whose inputs and params are equal across a chunk's sets is computed once."
    )
    if vbt is None:
        theirs.notes.append(f"vectorbt: n/a ({vbt_problem})")
    emit(mine, tables)
    emit(theirs, tables)


def _operator_costs(plan: Any, market: dict[str, np.ndarray], n: int = MILLION) -> str:  # noqa: ANN401
    """Each distinct operator call of the plan alone, through evaluate() at default params."""
    from polytrade.signals.evaluate import evaluate

    ref = Reference(plan)
    params = plan.param_vector()[None, :]
    clocks = _Clocks(plan.graph, {})
    flag = (market["close"][:n] > market["open"][:n]).astype(float)
    values: dict[int, np.ndarray] = {}
    rates: dict[str, float] = {}
    weights: dict[str, float] = {}
    for node in ref.order:
        if node.clock is None:
            values[node.id] = ref._node(node, values, params, clocks)  # noqa: SLF001 - scalars
            continue
        if node.op != "call":
            continue
        op = ref.ops[node.value]
        count = len(op.series_args)
        series = []
        for arg in node.args[:count]:
            source = plan.graph.node(arg)
            if source.op == "field":
                series.append(market[source.value][:n])
            else:
                series.append(flag if source.kind in {"bool", "flag"} else market["close"][:n])
        scalars = [float(values[a].flat[0]) for a in node.args[count:]]
        label = f"{node.value}({','.join(f'{v:g}' for v in scalars)})"
        if node.clock != plan.graph.base_clock:
            label += f"@{node.clock // 60}min"
            weights[label] = plan.graph.base_clock / node.clock
        if label in rates:
            continue
        try:
            seconds = best_time(lambda o=op, a=series, c=scalars: evaluate(o, a, c), 2)
        except Exception as exc:  # noqa: BLE001 - report and go on
            return f"operator costs n/a: {_short(exc)}"
        rates[label] = n / seconds / MILLION
    if not rates:
        return "no operators"
    together = 1.0 / sum(weights.get(k, 1.0) / r for k, r in rates.items())
    slowest = sorted(rates.items(), key=lambda x: x[1])
    listed = ", ".join(f"{k} {v:.0f}" for k, v in slowest)
    return (
        f"operators alone via evaluate() at 1M bars, M bars/s: {listed}; all of them one after "
        f"another (higher-timeframe ones weighted by their share of bars): {together:.0f} M bars/s"
    )


def _polytrade_figures(
    strategy: Strategy, data: dict[str, np.ndarray], sets: np.ndarray, settings: Settings, n: int
) -> list[Any]:
    from polytrade.compile.plan import _inputs

    plan, name, batch_problem = strategy.plan, strategy.name, strategy.batch_problem

    print(f"  [2] {name} {n:,} bars: kernel, plan.run ...", file=sys.stderr, flush=True)
    repeats = settings.kernel_repeats[n]
    ts, fields = _inputs(data, plan.used_fields)
    out = np.empty((len(plan.outputs), n))
    vector = plan.param_vector()
    state: list[Any] = [None]

    def fresh() -> None:
        state[0] = plan.module.init(vector)

    warm = n == settings.sizes[0]
    kernel = best_time(
        lambda: plan.module.run(state[0], ts, fields, out), repeats, setup=fresh, warmup=warm
    )
    whole = best_time(lambda: plan.run(data), repeats, warmup=warm)
    figures: list[Any] = [_rate(_mbars(n, kernel)), _rate(_mbars(n, whole))]
    for threads in THREADS:
        if batch_problem:
            figures.append(_rate(None))
            continue
        print(
            f"  [2] {name} {n:,} bars: batch, {threads} thread(s) ...", file=sys.stderr, flush=True
        )
        numba.set_num_threads(threads)
        seconds = best_time(
            lambda: plan.digest_many(data, sets), settings.batch_repeats[n], warmup=False
        )
        figures.append(_rate(_mbars(n * len(sets), seconds)))
    numba.set_num_threads(max(THREADS))
    figures.append(_ratio(6, 5))
    return figures


def _reference_figures(
    talib_ref: Reference,
    vbt_ref: Reference | None,
    data: dict[str, np.ndarray],
    sets: np.ndarray,
    settings: Settings,
    n: int,
    name: str,
) -> list[Any]:
    repeats = settings.kernel_repeats[n]
    subset = sets[: settings.reference_sets[n]]
    figures: list[Any] = []
    for ref in (talib_ref, vbt_ref):
        if ref is None or ref.problem:
            figures.append(_rate(None))
            continue
        print(
            f"  [2] {name} {n:,} bars: reference {'vbt' if ref.vbt else 'TA-Lib'} ...",
            file=sys.stderr,
            flush=True,
        )
        warm = n == settings.sizes[0]
        seconds = best_time(lambda r=ref: r.outputs(data, sets[0]), repeats, warmup=warm)
        figures.append(_rate(_mbars(n, seconds)))
    for ref in (talib_ref, vbt_ref):
        if ref is None or ref.problem:
            figures.append(_rate(None))
            continue
        small = {k: v[:1000] for k, v in data.items()}
        _chunked(ref, small, subset[:3], 1000)  # numba specializations for 2-D inputs
        seconds = best_time(lambda r=ref: _chunked(r, data, subset, n), 1, warmup=False)
        figures.append(_rate(_mbars(n * len(subset), seconds)))
    return figures


def _chunked(ref: Reference, data: dict[str, np.ndarray], sets: np.ndarray, n: int) -> None:
    """Digest every set in chunks (one per thread at least, at most 20M values per array)."""
    chunk = max(1, min(-(-len(sets) // max(THREADS)), 20 * MILLION // n))
    pieces = [sets[i : i + chunk] for i in range(0, len(sets), chunk)]
    with ThreadPoolExecutor(max(THREADS)) as pool:
        list(pool.map(lambda p: ref.digest(data, p), pieces))


def _same_indicators(
    name: str,
    talib_ref: Reference,
    vbt_ref: Reference | None,
    plan: Any,  # noqa: ANN401
    bars: Bars,
) -> str:
    if talib_ref.problem:
        return f"{name}: no reference ({talib_ref.problem})"
    text = f"{name}: TA-Lib side {talib_ref.describe()}"
    if vbt_ref is not None:
        text += f"; vectorbt side {vbt_ref.describe()}"
    n = 200_000
    data = bars.get(n, plan.graph.base_clock)
    outputs = plan.run(data)
    theirs = talib_ref.outputs(data, plan.param_vector())
    worst, where = 0.0, ""
    for (output, value), other in zip(outputs.items(), theirs, strict=True):
        share = _mismatch(value, np.broadcast_to(other, (1, n))[0])
        if share > worst:
            worst, where = share, output
    agreement = (
        "all outputs equal to the TA-Lib side"
        if not where
        else (f"outputs agree with the TA-Lib side except {where} on {worst:.3%} of bars")
    )
    return text + f". Check on {n:,} bars: {agreement}."


def _mismatch(mine: np.ndarray, theirs: np.ndarray) -> float:
    """Share of bars where a plan output differs from the reference (NaN = no value)."""
    defined = ~np.isnan(mine)
    if theirs.dtype == bool:
        differs = defined & ((mine == 1.0) != theirs)
    else:
        with np.errstate(all="ignore"):
            close = np.isclose(mine, theirs, rtol=1e-7, atol=1e-12, equal_nan=True)
        differs = ~close & (defined | ~np.isnan(theirs))
    return float(np.count_nonzero(differs)) / max(len(mine), 1)


# ================================================================== 3. compile times

CHILD = r"""
import json, sys, time
spawned = float(sys.argv[2])
start = time.perf_counter()
import numpy as np
from polytrade.compile.plan import compile_strategy
from polytrade.spec import SpecLoader
imported = time.perf_counter()
document = SpecLoader().load(sys.argv[1]).document
plan = compile_strategy(document)
compiled = time.perf_counter()
n = 1000
step = plan.graph.base_clock * 1000
rng = np.random.default_rng(1)
close = 30000 * np.exp(np.cumsum(rng.normal(0, 0.001, n)))
bars = {"ts": 1704067200000 + np.arange(n, dtype=np.int64) * step, "open": close,
        "high": close * 1.001, "low": close * 0.999, "close": close, "volume": np.ones(n),
        "funding_rate": np.full(n, 1e-4), "mark_price": close}
plan.run(bars)
ran = time.perf_counter()
ready = time.time() - spawned
plan.digest_many(bars, np.tile(plan.param_vector(), (4, 1)))
digested = time.perf_counter()
print(json.dumps({"import": imported - start, "compile": compiled - imported,
                  "first_run": ran - compiled, "digest": digested - ran, "ready": ready}))
"""


def section_compile(strategies: list[Strategy], settings: Settings, scratch: Path) -> Table:
    """Cold and warm compile times, each in a fresh process."""
    table = Table(
        "3. Compile times in fresh processes, seconds",
        [
            "strategy", "cache", "import", "compile_strategy", "first run", "compile+run",
            "first digest_many", "start->ready",
        ],
        key_columns=2,
    )  # fmt: skip
    chosen = (
        strategies if settings.compile_all else [s for s in strategies if s.name == "ema-cross"]
    )
    for strategy in chosen:
        root = Path(tempfile.mkdtemp(prefix=f"compile-{strategy.name}-", dir=scratch))
        numba_cache, plans, plans_again = root / "numba", root / "plans", root / "plans2"
        runs = [
            ("cold: empty caches", numba_cache, plans),
            ("warm: both cached", numba_cache, plans),
            ("new plan, operators cached", numba_cache, plans_again),
            ("warm again", numba_cache, plans_again),
        ]
        for label, numba_dir, plan_dir in runs:
            print(f"  [3] {strategy.name}: {label} ...", file=sys.stderr, flush=True)
            result = _child(strategy.path, numba_dir, plan_dir)
            if isinstance(result, str):
                table.notes.append(f"{strategy.name} ({label}): {result}")
                break
            table.rows.append([
                strategy.name, label, _seconds(result["import"]), _seconds(result["compile"]),
                _seconds(result["first_run"]), _seconds(result["compile"] + result["first_run"]),
                _seconds(result["digest"]), _seconds(result["ready"]),
            ])  # fmt: skip
    table.rows += _floor_rows(scratch)
    table.notes.append(
        "cold: empty NUMBA_CACHE_DIR and POLYTRADE_CACHE_DIR (everything compiles); warm: a "
        "second process on the same caches; new plan: the operators' compiled code is cached "
        "but the plan module is new (a strategy never run before). compile_strategy builds "
        "the graph and imports the generated module; numba compiles on the first call, so "
        "'first run' (1,000 bars) holds most of the compile time. start->ready: from spawning "
        "the process to the first run's outputs. numba alone: importing numpy and numba "
        "and one cached 5-line njit call, the floor for any numba program here."
    )
    if not settings.compile_all:
        table.notes.append("--quick: the EMA-cross graph only")
    return table


FLOOR_MODULE = """\
import numba


@numba.njit(cache=True)
def total(x):
    s = 0.0
    for i in range(x.shape[0]):
        s += x[i]
    return s
"""
FLOOR_CHILD = r"""
import json, sys, time
spawned = float(sys.argv[2])
start = time.perf_counter()
import numpy as np
import numba
imported = time.perf_counter()
sys.path.insert(0, sys.argv[1])
import floor_module
floor_module.total(np.ones(1000))
ran = time.perf_counter()
print(json.dumps({"import": imported - start, "compile": 0.0, "first_run": ran - imported,
                  "digest": None, "ready": time.time() - spawned}))
"""


def _floor_rows(scratch: Path) -> list[list[Any]]:
    """Import numpy and numba and make one cached njit call: any numba program's start."""
    folder = scratch / "floor"
    folder.mkdir(exist_ok=True)
    (folder / "floor_module.py").write_text(FLOOR_MODULE)
    rows = []
    for label in ("cold: empty caches", "warm: both cached"):
        result = _child(folder, folder / "numba", folder / "plans", FLOOR_CHILD)
        if isinstance(result, str):
            break
        rows.append([
            "numba alone", label, _seconds(result["import"]), _seconds(None),
            _seconds(result["first_run"]), _seconds(result["first_run"]), _seconds(None),
            _seconds(result["ready"]),
        ])  # fmt: skip
    return rows


def _child(
    path: Path, numba_dir: Path, plan_dir: Path, code: str = CHILD
) -> dict[str, float] | str:
    env = dict(os.environ, NUMBA_CACHE_DIR=str(numba_dir), POLYTRADE_CACHE_DIR=str(plan_dir))
    spawned = time.time()
    done = subprocess.run(
        [sys.executable, "-c", code, str(path), repr(spawned)],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        check=False,
        timeout=600,
    )
    if done.returncode != 0:
        lines = [x for x in done.stderr.strip().splitlines() if x.strip()]
        return f"failed (exit {done.returncode}): {lines[-1] if lines else 'no message'}"
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


# ================================================================== 4. hand-written reference


@njit(nogil=True, error_model="numpy")
def _ema_step(seen: int, value: float, x: float, n: int, alpha: float) -> tuple[int, float, float]:
    if seen < n:
        value += x
        seen += 1
        if seen < n:
            return seen, value, np.nan
        value /= n
        return seen, value, value
    value += alpha * (x - value)
    return seen, value, value


@njit(nogil=True, error_model="numpy")
def ema_cross_loop(close: np.ndarray, fast: int, slow: int, out: np.ndarray) -> None:
    """Hand-written: trend = ema(fast) - ema(slow), cross above / below 0, as 1.0/0.0/NaN."""
    fast_seen, fast_value, slow_seen, slow_value = 0, 0.0, 0, 0.0
    fast_alpha, slow_alpha = 2.0 / (fast + 1.0), 2.0 / (slow + 1.0)
    previous = np.nan
    for t in range(close.shape[0]):
        x = close[t]
        if np.isnan(x):
            out[0, t] = np.nan
            out[1, t] = np.nan
            out[2, t] = np.nan
            continue
        fast_seen, fast_value, a = _ema_step(fast_seen, fast_value, x, fast, fast_alpha)
        slow_seen, slow_value, b = _ema_step(slow_seen, slow_value, x, slow, slow_alpha)
        trend = a - b
        out[0, t] = trend
        if np.isnan(trend) or np.isnan(previous):
            out[1, t] = np.nan
            out[2, t] = np.nan
        else:
            out[1, t] = 1.0 if previous <= 0.0 and trend > 0.0 else 0.0
            out[2, t] = 1.0 if previous >= 0.0 and trend < 0.0 else 0.0
        previous = trend


@njit(nogil=True, error_model="numpy", parallel=True)
def ema_cross_digest(close: np.ndarray, sets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The hand-written loop for every (fast, slow) row, reduced like digest_many."""
    m = sets.shape[0]
    sums = np.zeros((m, 3))
    hits = np.zeros((m, 3))
    for i in prange(m):
        fast, slow = np.int64(sets[i, 0]), np.int64(sets[i, 1])
        fast_seen, fast_value, slow_seen, slow_value = 0, 0.0, 0, 0.0
        fast_alpha, slow_alpha = 2.0 / (fast + 1.0), 2.0 / (slow + 1.0)
        previous = np.nan
        for t in range(close.shape[0]):
            x = close[t]
            if np.isnan(x):
                continue
            fast_seen, fast_value, a = _ema_step(fast_seen, fast_value, x, fast, fast_alpha)
            slow_seen, slow_value, b = _ema_step(slow_seen, slow_value, x, slow, slow_alpha)
            trend = a - b
            if not np.isnan(trend):
                sums[i, 0] += trend
                if trend != 0.0:
                    hits[i, 0] += 1.0
                if not np.isnan(previous):
                    if previous <= 0.0 and trend > 0.0:
                        sums[i, 1] += 1.0
                        hits[i, 1] += 1.0
                    if previous >= 0.0 and trend < 0.0:
                        sums[i, 2] += 1.0
                        hits[i, 2] += 1.0
            previous = trend
    return sums, hits


def section_handwritten(strategies: list[Strategy], bars: Bars, settings: Settings) -> Table:
    """The EMA-cross graph against a hand-written numba loop computing the same outputs."""
    table = Table(
        "4. EMA cross: hand-written numba loop vs the compiled graph (M bars/s; batches in "
        f"M bar-evals/s over {BATCH_SETS} sets)",
        [
            "bars", "hand kernel", "graph kernel", "graph/hand", "hand batch 1T",
            "graph batch 1T", "graph/hand", "hand batch 2T", "graph batch 2T", "graph/hand",
        ],
    )  # fmt: skip
    strategy = next((s for s in strategies if s.name == "ema-cross"), None)
    if strategy is None or strategy.plan is None:
        table.notes.append(f"skipped: {strategy.problem if strategy else 'no ema-cross'}")
        return table
    plan = strategy.plan
    sets = param_sets(plan, BATCH_SETS)
    order = [plan.param_order.index("fast"), plan.param_order.index("slow")]
    fast_slow = np.ascontiguousarray(sets[:, order])
    for n in settings.sizes:
        print(f"  [4] hand-written {n:,} bars ...", file=sys.stderr, flush=True)
        row, same = _handwritten_row(
            plan, bars.get(n, plan.graph.base_clock), sets, fast_slow, settings
        )
        table.rows.append(row)
        table.notes.append(f"{n // MILLION}M: hand-written outputs vs plan.run: {same}")
    table.notes.append(
        "Both write the same three outputs (trend, entry_long, exit_long as 1.0/0.0/NaN) with "
        "TA-Lib's EMA seeding and NaN handling; the batches reduce to the same digest."
    )
    return table


def _handwritten_row(
    plan: Any,  # noqa: ANN401
    data: dict[str, np.ndarray],
    sets: np.ndarray,
    fast_slow: np.ndarray,
    settings: Settings,
) -> tuple[list[Any], str]:
    from polytrade.compile.plan import _inputs

    n = len(data["ts"])
    close = data["close"]
    fast, slow = (int(v) for v in fast_slow[0])
    out = np.empty((3, n))
    repeats = settings.kernel_repeats[n]
    hand = best_time(lambda: ema_cross_loop(close, fast, slow, out), repeats)
    same = _same_as_graph(plan, data, out)
    ts, fields = _inputs(data, plan.used_fields)
    state: list[Any] = [None]
    vector = plan.param_vector()

    def fresh() -> None:
        state[0] = plan.module.init(vector)

    graph = best_time(lambda: plan.module.run(state[0], ts, fields, out), repeats, setup=fresh)
    row: list[Any] = [f"{n // MILLION}M", _rate(_mbars(n, hand)), _rate(_mbars(n, graph))]
    row.append(_ratio(2, 1))
    ema_cross_digest(close[:1000], fast_slow[:2])
    for threads in THREADS:
        numba.set_num_threads(threads)
        count = settings.batch_repeats[n]
        hand_batch = best_time(lambda: ema_cross_digest(close, fast_slow), count, warmup=False)
        graph_batch = best_time(lambda: plan.digest_many(data, sets), count, warmup=False)
        column = len(row)
        row += [
            _rate(_mbars(n * len(sets), hand_batch)),
            _rate(_mbars(n * len(sets), graph_batch)),
            _ratio(column + 1, column),
        ]
    numba.set_num_threads(max(THREADS))
    return row, same


def _same_as_graph(plan: Any, data: dict[str, np.ndarray], out: np.ndarray) -> str:  # noqa: ANN401
    outputs = plan.run(data)
    worst = 0.0
    for row, name in enumerate(("trend", "entry_long", "exit_long")):
        mine = outputs[name]
        with np.errstate(all="ignore"):
            same = np.isclose(mine, out[row], rtol=1e-12, atol=0.0, equal_nan=True)
        worst = max(worst, 1.0 - float(np.count_nonzero(same)) / len(mine))
    return "identical" if worst == 0 else f"differ on {worst:.4%} of bars"


# ================================================================== main


def _vectorbt() -> tuple[ModuleType | None, str]:
    try:
        import vectorbt
    except Exception as exc:  # noqa: BLE001 - report why and run without it
        return None, _short(exc) + " (install with: uv sync --group bench)"
    return vectorbt, ""


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1M bars only, fewer repeats")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--merge", type=Path, nargs="+", help="print the best of saved runs")
    parser.add_argument(
        "--sections", default="1234", help="which tables to run, e.g. 24 (default 1234)"
    )
    return parser.parse_args()


def main() -> None:
    """Run the benchmark and print its tables."""
    args = _arguments()
    if args.merge:
        runs = [json.loads(p.read_text()) for p in args.merge]
        print("\n".join(runs[0]["machine"]))
        print(f"Best of {len(runs)} runs per figure.\n")
        for table in merge(runs):
            print(render(table))
        return
    settings = QUICK if args.quick else FULL
    vbt, vbt_problem = _vectorbt()
    header = machine_lines(vbt, vbt_problem)
    sizes = ", ".join(f"{n:,}" for n in settings.sizes)
    header.append(f"mode: {'quick' if args.quick else 'full'}; sizes {sizes} bars")
    print("\n".join(header) + "\n", flush=True)
    tables: list[Table] = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="polytrade-bench-") as scratch:
        market = synthetic_market(max(settings.sizes))
        bars = Bars(market)
        ema_cross = Path(scratch) / "ema_cross.yaml"
        ema_cross.write_text(EMA_CROSS_YAML)
        clock = [time.perf_counter()]

        def done(what: str) -> None:
            took = time.perf_counter() - clock[0]
            print(f"({what}: {took:.0f} s; {busy()})\n", flush=True)
            clock[0] = time.perf_counter()

        if "1" in args.sections:
            emit(section_indicators(market, settings, vbt), tables)
            done("section 1")
        strategies = []
        if set(args.sections) & set("234"):
            strategies = load_strategies(ema_cross)
            done("plans compiled, or loaded from $POLYTRADE_CACHE_DIR (~/.cache/polytrade)")
        if "2" in args.sections:
            section_strategies(strategies, bars, settings, vbt, vbt_problem, tables)
            done("section 2")
        if "3" in args.sections:
            emit(section_compile(strategies, settings, Path(scratch)), tables)
            done("section 3")
        if "4" in args.sections:
            emit(section_handwritten(strategies, bars, settings), tables)
            done("section 4")
    print(f"total {time.perf_counter() - started:.0f} s; {busy()}")
    if args.json:
        payload = {"machine": header, "tables": [t.__dict__ for t in tables]}
        args.json.write_text(json.dumps(payload, default=str))


if __name__ == "__main__":
    main()
