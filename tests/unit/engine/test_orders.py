"""Order handling of the simulated venue, case by case on hand-made bars.

Each case builds the kernel's configuration directly (BTC_USDT_PERP-like: 0.001 BTC per
contract, whole lots), feeds a few bars whose path is chosen to trigger exactly one rule, and
checks the fills against numbers worked out in the comments.
"""

from __future__ import annotations

import numpy as np
import pytest

from polytrade.engine import kernel as k

CS = 0.001
DAY0 = 1_704_067_200_000  # 2024-01-01 00:00 UTC
HOUR = 3_600_000


def config(**slots: float) -> np.ndarray:
    """A permissive configuration: 10,000 USDT, no slippage, 2/5 bps maker/taker."""
    c = np.zeros(k.CONFIG_SIZE)
    c[k.C_CAPITAL] = 10_000.0
    c[k.C_CONTRACT_SIZE] = CS
    c[k.C_LOT] = 1.0
    c[k.C_MIN_QTY] = 1.0
    c[k.C_TICK] = 0.01
    c[k.C_MMR] = 0.006
    c[k.C_LIQ_FEE] = 0.006
    c[k.C_LEVERAGE] = 10.0
    c[k.C_MAX_LEVERAGE] = 10.0
    c[k.C_MAKER_BPS] = 2.0
    c[k.C_TAKER_BPS] = 5.0
    c[k.C_PARTICIPATION] = 1.0
    c[k.C_SIZING] = k.SIZE_FIXED_NOTIONAL
    c[k.C_SIZE_A] = 4_000.0  # 4,000 USDT at 40,000 = 100 contracts
    c[k.C_MAX_POSITION_NOTIONAL] = 1e9
    c[k.C_MAX_ORDER_NOTIONAL] = 1e9
    c[k.C_BAR_MS] = HOUR
    c[k.C_PERIODS_PER_YEAR] = 8760.0
    c[k.C_EXEC_SLICES] = 1.0
    for name, value in slots.items():
        c[getattr(k, name)] = value
    return c


def run(
    cfg: np.ndarray, path: list[tuple[float, float, float, float]], **rows: list[float]
) -> tuple[np.ndarray, np.ndarray, dict[str, int], np.ndarray]:
    """Bars (open, high, low, close) with volume 1,000 BTC; signal rows by name (NaN elsewhere)."""
    n = len(path)
    bars = np.array(path, dtype=float)
    signals = np.full((k.SIGNAL_ROWS, n), np.nan)
    signals[k.SIG_REGIME] = 1.0
    for name, values in rows.items():
        signals[getattr(k, name), : len(values)] = values
    state = k.new_state(cfg)
    fills = np.zeros((2 * n + 16, k.FILL_COLUMNS))
    counts = np.zeros(len(k.RISK_CODES), dtype=np.int64)
    equity, position = np.empty(n), np.empty(n)
    nan = np.full(n, np.nan)
    ts = DAY0 + HOUR * np.arange(n, dtype=np.int64)
    k.run(
        state, cfg, ts, bars[:, 0], bars[:, 1], bars[:, 2], bars[:, 3], np.full(n, 1_000.0),
        nan, nan, signals, fills, counts, equity, position,
    )  # fmt: skip
    used = fills[: int(state[k.S_FILLS])]
    return used, position, dict(zip(k.RISK_CODES, counts.tolist(), strict=True)), state


FLAT = (40_000.0, 40_010.0, 39_990.0, 40_000.0)


def test_post_only_buy_that_would_cross_on_arrival_is_rejected_and_cancelled() -> None:
    # Bar 0 closes at 40,000: a post-only buy at 40,000 (offset 0). Bar 1 opens at 39,950, below
    # the bid: resting at 40,000 would take the offers at 39,950, so the venue rejects it; with
    # fallback `cancel` nothing is bought, ever.
    cfg = config(C_EXEC_STYLE=k.EXEC_POST_ONLY, C_LIMIT_TIMEOUT=3)
    fills, position, counts, _ = run(
        cfg,
        [FLAT, (39_950.0, 39_960.0, 39_900.0, 39_950.0), FLAT],
        SIG_ENTRY_LONG=[1.0, 0.0, 0.0],
    )
    assert fills.shape[0] == 0
    assert counts["post_only_would_cross"] == 1
    assert position.tolist() == [0.0, 0.0, 0.0]


def test_post_only_rejected_with_market_fallback_takes_at_the_open() -> None:
    cfg = config(C_EXEC_STYLE=k.EXEC_POST_ONLY, C_LIMIT_TIMEOUT=3, C_LIMIT_FALLBACK=1.0)
    fills, _, counts, _ = run(
        cfg,
        [FLAT, (39_950.0, 39_960.0, 39_900.0, 39_950.0), FLAT],
        SIG_ENTRY_LONG=[1.0, 0.0, 0.0],
    )
    assert counts["post_only_would_cross"] == 1
    # Taker at the open: 100 contracts x 0.001 x 39,950 x 5 bps = 1.9975 USDT.
    assert (fills[0, 0], fills[0, 1], fills[0, 2]) == (1, 100.0, 39_950.0)
    assert fills[0, 3] == pytest.approx(1.9975, rel=1e-12)


@pytest.mark.parametrize(("low", "rule", "fills_expected"), [
    (39_960.0, 0.0, 1),  # trades through 39,960.00 -> fills
    (39_960.01, 0.0, 0),  # the low is above the limit -> no fill
    (39_960.00 + 0.0, 1.0, 1),  # touch rule: a touch is enough
])  # fmt: skip
def test_resting_post_only_limit_fills_only_when_price_trades_through(
    low: float, rule: float, fills_expected: int
) -> None:
    # Offset 10 bps behind 40,000 -> a bid at 39,960.00. Bar 1 opens at 40,000 (no cross).
    cfg = config(C_EXEC_STYLE=k.EXEC_POST_ONLY, C_LIMIT_OFFSET_BPS=10.0, C_LIMIT_TIMEOUT=1)
    cfg[k.C_LIMIT_TOUCH] = rule
    bar1 = (40_000.0, 40_020.0, low, 40_000.0)
    if rule == 0.0 and fills_expected == 1:
        bar1 = (40_000.0, 40_020.0, 39_959.0, 40_000.0)  # strictly below the limit
    fills, _, counts, _ = run(cfg, [FLAT, bar1, FLAT, FLAT], SIG_ENTRY_LONG=[1.0, 1.0, 1.0])
    if fills_expected:
        # Maker at the limit: 100 x 0.001 x 39,960 x 2 bps = 0.7992 USDT.
        assert (fills[0, 0], fills[0, 1], fills[0, 2]) == (1, 100.0, 39_960.0)
        assert fills[0, 3] == pytest.approx(0.7992, rel=1e-12)
        assert fills[0, 4] == 0.0  # no slippage on a maker fill
    else:
        # Timeout after one bar: fallback cancel; the entry signal of bar 1's close places a
        # new bid for the next bar, which (bar 2: FLAT, low 39,990 above 39,960) does not fill.
        assert fills.shape[0] == 0
        assert counts["limit_timed_out"] >= 1


def test_limit_partial_fills_are_capped_by_participation_and_keep_working() -> None:
    # Participation 5% of 1,000 BTC = 50 BTC = 50,000 contracts... use a tiny volume instead:
    # 0.1% of 1,000 BTC = 1 BTC = 1,000 contracts > 100; so cap 0.00004 -> 0.04 BTC = 40 lots.
    cfg = config(C_EXEC_STYLE=k.EXEC_POST_ONLY, C_LIMIT_OFFSET_BPS=10.0, C_LIMIT_TIMEOUT=10)
    cfg[k.C_PARTICIPATION] = 0.00004
    through = (40_000.0, 40_020.0, 39_900.0, 40_000.0)
    fills, position, _, _ = run(
        cfg, [FLAT, through, through, through, FLAT], SIG_ENTRY_LONG=[1.0, 1.0, 1.0, 1.0, 1.0]
    )
    assert fills[:, 1].tolist() == [40.0, 40.0, 20.0]  # 100 contracts in three bars
    assert fills[:, 2].tolist() == [39_960.0] * 3  # the same resting price throughout
    assert position.tolist() == [0.0, 40.0, 80.0, 100.0, 100.0]


def test_market_partial_fills_keep_working_until_the_target_is_reached() -> None:
    cfg = config()
    cfg[k.C_PARTICIPATION] = 0.00004  # 40 contracts per bar
    fills, position, _, _ = run(cfg, [FLAT] * 5, SIG_ENTRY_LONG=[1.0] * 5)
    assert fills[:, 1].tolist() == [40.0, 40.0, 20.0]
    assert position[-1] == 100.0


def test_reduce_only_exit_larger_than_the_position_never_flips() -> None:
    # A long of 100 exits; the stop fills first on the same bar, so the exit order finds the
    # position flat: it is cancelled, not turned into a 100-contract short.
    cfg = config()
    path = [FLAT, FLAT, FLAT, (40_000.0, 40_010.0, 38_000.0, 39_000.0), FLAT, FLAT]
    fills, position, counts, _ = run(
        cfg,
        path,
        SIG_ENTRY_LONG=[1.0, 1.0, 0.0, 0.0, 0.0, 0.0],
        SIG_EXIT_LONG=[0.0, 0.0, 1.0, 0.0, 0.0, 0.0],
        SIG_STOP_LOSS=[500.0] * 6,
    )
    # Bar 1: buy 100 at the open. Bar 2 close: exit decided (sell 100 at bar 3's open). Bar 3:
    # the sell fills at the open 40,000; the stop at 39,500 then has nothing left to close.
    assert fills[:, 1].tolist() == [100.0, -100.0]
    assert (position >= 0.0).all()
    assert counts["reduce_only_cancelled"] == 0


def test_reduce_only_order_is_cancelled_when_a_stop_already_closed_the_position() -> None:
    cfg = config()
    # Bar 2: the stop (39,500) is hit; at bar 2's close the exit signal fires too but the
    # position is already flat, so no order is decided and nothing opens short.
    path = [FLAT, FLAT, (40_000.0, 40_010.0, 39_000.0, 39_200.0), FLAT, FLAT]
    fills, position, _, _ = run(
        cfg,
        path,
        SIG_ENTRY_LONG=[1.0, 0.0, 0.0, 0.0, 0.0],
        SIG_EXIT_LONG=[0.0, 0.0, 1.0, 0.0, 0.0],
        SIG_STOP_LOSS=[500.0] * 5,
    )
    assert fills[:, 1].tolist() == [100.0, -100.0]
    assert fills[1, 5] == k.REASON_STOP
    assert (position >= 0.0).all()


def test_reduce_only_clips_a_pending_exit_to_what_is_left() -> None:
    # Direct check of the venue rule: a reduce-only sell of 150 against a long of 100 fills 100.
    cfg = config()
    state = k.new_state(cfg)
    fills = np.zeros((8, k.FILL_COLUMNS))
    counts = np.zeros(len(k.RISK_CODES), dtype=np.int64)
    state[k.S_QTY], state[k.S_ENTRY] = 100.0, 40_000.0
    state[k.S_PENDING], state[k.S_TARGET], state[k.S_REDUCE_ONLY] = -150.0, -50.0, 1.0
    state[k.S_PENDING_REASON] = k.REASON_SIGNAL
    signals = np.full((k.SIGNAL_ROWS, 1), np.nan)
    signals[k.SIG_REGIME, 0] = 1.0
    k.step(state, cfg, 0, DAY0, *FLAT, 1_000.0, np.nan, np.nan, signals, 0, fills, counts)
    assert fills[0, 1] == -100.0
    assert state[k.S_QTY] == 0.0


def test_twap_fills_at_the_middle_of_its_window_with_slice_sized_slippage() -> None:
    # A 30-minute TWAP in 6 slices on 1h bars, no latency: the window's middle is 1/4 of the
    # bar, so the fill is at open + (close - open) / 4 = 40,000 + 400 / 4 = 40,100.
    cfg = config(C_EXEC_WINDOW=0.5, C_EXEC_SLICES=6.0)
    fills, _, _, _ = run(
        cfg, [FLAT, (40_000.0, 40_500.0, 39_990.0, 40_400.0), FLAT], SIG_ENTRY_LONG=[1.0] * 3
    )
    assert fills[0, 2] == pytest.approx(40_100.0, rel=1e-12)


def test_risk_limit_tier_caps_leverage_and_sets_the_maintenance_rate() -> None:
    # Tiers: up to 250 contracts 0.6% MM / 75x; up to 1,000 1% / 50x; beyond 2% / 25x.
    cfg = config(C_TIER_COUNT=3.0, C_MAX_LEVERAGE=100.0)
    cfg[k.C_TIERS : k.C_TIERS + 9] = [250, 0.006, 75, 1_000, 0.01, 50, np.inf, 0.02, 25]
    assert k.maintenance_rate(cfg, 250.0) == 0.006
    assert k.maintenance_rate(cfg, -251.0) == 0.01
    assert k.maintenance_rate(cfg, 5_000.0) == 0.02
    # With 10,000 USDT at 40,000: tier 1 allows 250 x 40 = 10,000; tier 2 min(40,000, 500,000);
    # tier 3 min(inf, 25 x 10,000 = 250,000) -> 250,000 USDT.
    assert k.tier_notional_cap(cfg, 40_000.0, 10_000.0) == 250_000.0
    cfg[k.C_SIZE_A] = 1e9  # wants far more than any tier allows
    fills, _, counts, _ = run(cfg, [FLAT, FLAT], SIG_ENTRY_LONG=[1.0, 1.0])
    assert fills[0, 1] == 6_250.0  # 250,000 / 40
    assert counts["clipped_risk_limit_tier"] == 1


def test_depth_slippage_walks_the_calibrated_book() -> None:
    # A flat curve vector: 2 grid sizes (1 and 4 BTC), buy costs 1 and 3 bps, sell 2 and 6 bps.
    # A 100-contract buy is 0.1 BTC, below the first grid size: it pays the first value, 1 bp,
    # so it fills at 40,000 x (1 + 1e-4) = 40,004.
    curve = np.array([2.0, 1.0, 4.0, 1.0, 3.0, 2.0, 6.0])
    cfg = np.concatenate([config(C_SLIP_MODEL=k.SLIP_DEPTH), curve])
    fills, _, _, _ = run(cfg, [FLAT, FLAT], SIG_ENTRY_LONG=[1.0, 1.0])
    assert fills[0, 2] == pytest.approx(40_004.0, rel=1e-12)
    assert fills[0, 4] == pytest.approx(100 * CS * 4.0, rel=1e-9)  # slippage cost, USDT
