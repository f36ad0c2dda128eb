"""The engine kernel on cases worked out by hand: every number is derived in a comment.

Each case drives `kernel.step` one hourly bar at a time, as the node does, on BTC_USDT_PERP
(0.001 BTC a contract, whole contracts), with no slippage, no latency and flat maintenance
margin (no tiers) unless a case says otherwise.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import pytest

from polytrade.engine import kernel as k

if TYPE_CHECKING:
    from collections.abc import Mapping

HOUR_MS = 3_600_000
DAY_MS = 86_400_000
DAY0 = 19_700 * DAY_MS  # a UTC midnight
# The columns of a fill row, in the order `kernel.FILL_COLUMNS` documents.
F_BAR, F_QTY, F_PRICE, F_FEE, F_SLIPPAGE, F_REASON, F_REALIZED = range(k.FILL_COLUMNS)


def _config(slots: Mapping[int, float]) -> np.ndarray:
    config = np.zeros(k.CONFIG_SIZE)
    defaults = {
        k.C_CAPITAL: 10_000.0,
        k.C_CONTRACT_SIZE: 0.001,
        k.C_LOT: 1.0,
        k.C_MIN_QTY: 1.0,
        k.C_MMR: 0.006,
        k.C_LIQ_FEE: 0.006,
        k.C_LEVERAGE: 75.0,
        k.C_TAKER_BPS: 5.0,
        k.C_MAKER_BPS: 2.0,
        k.C_SLIP_MODEL: k.SLIP_NONE,
        k.C_SIZING: k.SIZE_FIXED_NOTIONAL,
        k.C_MAX_POSITION_NOTIONAL: 1e9,
        k.C_MAX_ORDER_NOTIONAL: 1e9,
        k.C_MAX_LEVERAGE: 100.0,
        k.C_BAR_MS: HOUR_MS,
        k.C_PERIODS_PER_YEAR: 8_760.0,
        k.C_EXEC_SLICES: 1.0,
    }
    for slot, value in {**defaults, **slots}.items():
        config[slot] = value
    return config


class Desk:
    """One strategy's engine, fed one hourly bar at a time."""

    def __init__(self, slots: Mapping[int, float], start_ms: int = DAY0) -> None:
        self.config = _config(slots)
        self.state = k.new_state(self.config)
        self.fills = np.zeros((64, k.FILL_COLUMNS))
        self.risk_counts = np.zeros(len(k.RISK_CODES), dtype=np.int64)
        self.start_ms = start_ms
        self.bar = 0

    def step(
        self,
        o: float,
        h: float,
        lo: float,
        c: float,
        *,
        funding: float = math.nan,
        signals: Mapping[int, float] | None = None,
    ) -> np.ndarray:
        """Run one bar; the fills it made. (Floats always: numba compiles one signature.)"""
        column = np.full((k.SIGNAL_ROWS, 1), np.nan)  # the node's one-bar signal matrix
        column[k.SIG_REGIME, 0] = 1.0
        for signal, value in (signals or {}).items():
            column[signal, 0] = value
        first = int(self.state[k.S_FILLS])
        k.step(
            self.state, self.config, self.bar, self.start_ms + self.bar * HOUR_MS, float(o),
            float(h), float(lo), float(c), 1e9, math.nan, float(funding), column, 0, self.fills,
            self.risk_counts,
        )  # fmt: skip
        self.bar += 1
        return self.fills[first : int(self.state[k.S_FILLS])].copy()

    def flat_bar(self, price: float, **kwargs: float | Mapping[int, float]) -> np.ndarray:
        """A bar that trades at one price only."""
        return self.step(price, price, price, price, **kwargs)  # type: ignore[arg-type]

    def risk(self, code: str) -> int:
        return int(self.risk_counts[k.RISK_CODES.index(code)])


@pytest.mark.parametrize(
    ("side", "path", "liquidation", "liquidation_fee"),
    [
        # Long: margin + PnL = maintenance at 40,000 - (800 - 400) / 1 BTC = 39,600. The fee is
        # 0.6% of 1 BTC x 39,600 = 237.6, less than the 400 of margin left.
        (k.SIG_ENTRY_LONG, [(39_800, 39_601, 39_700), (39_700, 39_500, 39_550)], 39_600.0, 237.6),
        # Short: 40,000 + 400 / 1 BTC = 40,400; fee 0.6% x 40,400 = 242.4.
        (k.SIG_ENTRY_SHORT, [(40_200, 40_399, 40_300), (40_300, 40_500, 40_450)], 40_400.0, 242.4),
    ],
)
def test_a_fifty_x_isolated_position_at_40000_liquidates_where_poloniex_says(
    side: int, path: list[tuple[float, float, float]], liquidation: float, liquidation_fee: float
) -> None:
    # Poloniex's worked example: 50x isolated (2% initial margin), 1% maintenance margin.
    # 40,000 USDT of BTC at 40,000 is 1 BTC = 1,000 contracts; margin 40,000 / 50 = 800 USDT;
    # maintenance 1% x 40,000 = 400 USDT.
    desk = Desk({
        k.C_ISOLATED: 1.0, k.C_LEVERAGE: 50.0, k.C_MMR: 0.01, k.C_SIZE_A: 40_000.0,
    })  # fmt: skip
    desk.flat_bar(40_000.0, signals={side: 1.0})
    opened = desk.flat_bar(40_000.0)
    long = side == k.SIG_ENTRY_LONG
    assert opened[:, F_QTY].tolist() == [1_000.0 if long else -1_000.0]
    assert desk.state[k.S_MARGIN] == pytest.approx(800.0)
    # The first bar reaches to within 1 USDT of the liquidation price: nothing happens.
    (o, extreme, c), (o2, extreme2, c2) = path
    high, low = (o, extreme) if long else (extreme, o)
    assert desk.step(o, high, low, c).size == 0
    # The next bar trades through it: liquidated at the liquidation price, not at the extreme.
    high, low = (o2, extreme2) if long else (extreme2, o2)
    (fill,) = desk.step(o2, high, low, c2)
    assert fill[F_REASON] == k.REASON_LIQUIDATION
    assert fill[F_PRICE] == pytest.approx(liquidation, rel=1e-12)
    assert fill[F_REALIZED] == pytest.approx(-400.0)  # the margin above maintenance
    assert fill[F_FEE] == pytest.approx(liquidation_fee)
    # Cash: 10,000 - 20 (entry taker fee, 5 bps of 40,000) - 400 - the liquidation fee.
    assert desk.state[k.S_CASH] == pytest.approx(10_000.0 - 20.0 - 400.0 - liquidation_fee)
    assert desk.state[k.S_QTY] == 0.0
    assert desk.state[k.S_LIQUIDATIONS] == 1.0


@pytest.mark.parametrize(
    ("side", "rate", "cash_change"),
    [
        # 3 BTC (3,000 contracts x 0.001) at the settlement bar's open of 60,000 is 180,000 USDT
        # of notional; at 0.01% the funding is 180,000 x 0.0001 = 18 USDT.
        (k.SIG_ENTRY_LONG, 0.0001, -18.0),  # a long pays a positive rate
        (k.SIG_ENTRY_SHORT, 0.0001, 18.0),  # a short receives it
        (k.SIG_ENTRY_LONG, -0.0001, 18.0),  # a negative rate: the long receives
        (k.SIG_ENTRY_SHORT, -0.0001, -18.0),  # and the short pays
        (None, 0.0001, 0.0),  # flat: nothing
    ],
)
def test_a_known_funding_payment_of_three_btc(
    side: int | None, rate: float, cash_change: float
) -> None:
    # 180,000 USDT of fixed notional at 60,000: 180,000 / (0.001 x 60,000) = 3,000 contracts.
    desk = Desk({k.C_CAPITAL: 100_000.0, k.C_SIZE_A: 180_000.0})
    desk.flat_bar(60_000.0, signals={} if side is None else {side: 1.0})
    opened = desk.flat_bar(60_000.0)
    assert abs(opened[:, F_QTY]).tolist() == ([] if side is None else [3_000.0])
    cash = desk.state[k.S_CASH]
    assert desk.flat_bar(60_000.0, funding=rate).size == 0
    assert desk.state[k.S_CASH] - cash == pytest.approx(cash_change, rel=1e-12, abs=1e-12)
    assert desk.state[k.S_FUNDING] == pytest.approx(-cash_change, rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("isolated", [1.0, 0.0])
def test_a_one_x_long_survives_a_99_percent_crash(isolated: float) -> None:
    # 1 BTC (1,000 contracts) long at 40,000 with 40,000 USDT behind it: 1x. Isolated at 1x the
    # margin is 40,000 / 1; cross, the wallet holds 40,020 - 20 (entry fee) = 40,000. Either
    # way the liquidation price is 40,000 - (40,000 - 0.6% x 40,000) / 1 BTC = 240: a 1x long
    # is only liquidated after a 99.4% fall, so a crash to 400 (-99%) leaves it standing.
    desk = Desk({
        k.C_CAPITAL: 40_020.0, k.C_ISOLATED: isolated, k.C_LEVERAGE: 1.0, k.C_SIZE_A: 40_000.0,
    })  # fmt: skip
    desk.flat_bar(40_000.0, signals={k.SIG_ENTRY_LONG: 1.0})
    assert desk.flat_bar(40_000.0)[:, F_QTY].tolist() == [1_000.0]
    assert desk.step(40_000.0, 40_000.0, 400.0, 500.0).size == 0
    assert desk.step(500.0, 600.0, 241.0, 400.0).size == 0
    assert desk.state[k.S_QTY] == 1_000.0
    assert desk.state[k.S_LIQUIDATIONS] == 0.0
    # Equity at the 400 close: 40,000 of wallet + 1 BTC x (400 - 40,000) = 400.
    assert desk.state[k.S_EQUITY] == pytest.approx(400.0)
    # Below 240 the maintenance margin is gone: liquidated at 240.
    (fill,) = desk.step(400.0, 400.0, 200.0, 300.0)
    assert fill[F_REASON] == k.REASON_LIQUIDATION
    assert fill[F_PRICE] == pytest.approx(240.0)


@pytest.mark.parametrize(
    ("side", "bar", "price", "loss"),
    [
        # Long 250 contracts (10,000 USDT at 40,000), stop 1,000 below the 40,000 close: 39,000.
        # Opening at 38,000, the bar gapped through the stop: it fills at the open, losing
        # 0.25 BTC x 2,000 = 500 instead of 250.
        (k.SIG_ENTRY_LONG, (38_000, 38_100, 37_800, 37_900), 38_000.0, -500.0),
        # Opening above the stop and trading through it: filled at the stop, losing 250.
        (k.SIG_ENTRY_LONG, (39_600, 39_700, 38_900, 39_100), 39_000.0, -250.0),
        # Short, stop at 41,000: a gap to 42,000 fills at 42,000 and loses 0.25 x 2,000.
        (k.SIG_ENTRY_SHORT, (42_000, 42_200, 41_900, 42_100), 42_000.0, -500.0),
    ],
)
def test_a_stop_gapped_through_fills_at_the_open(
    side: int, bar: tuple[float, float, float, float], price: float, loss: float
) -> None:
    desk = Desk({k.C_SIZE_A: 10_000.0})
    desk.flat_bar(40_000.0, signals={side: 1.0, k.SIG_STOP_LOSS: 1_000.0})
    assert abs(desk.flat_bar(40_000.0)[:, F_QTY]).tolist() == [250.0]
    (fill,) = desk.step(*bar)
    assert fill[F_REASON] == k.REASON_STOP
    assert fill[F_PRICE] == price
    assert fill[F_REALIZED] == pytest.approx(loss)
    # The taker fee of the exit: 5 bps of 0.25 BTC at the fill price.
    assert fill[F_FEE] == pytest.approx(0.25 * price * 5e-4)
    assert desk.state[k.S_QTY] == 0.0


def test_a_daily_loss_halt_lifts_at_the_next_utc_midnight() -> None:
    # Hourly bars from 21:00 UTC. Daily-loss limit 5%, action halt; 40,000 USDT of notional on
    # 10,000 of capital (1 BTC = 1,000 contracts), stop-loss 1,500 below the entry close.
    desk = Desk(
        {k.C_DAILY_LIMIT: 0.05, k.C_DAILY_ACTION: k.ACT_HALT, k.C_SIZE_A: 40_000.0},
        start_ms=DAY0 + 21 * HOUR_MS,
    )
    desk.flat_bar(40_000.0, signals={k.SIG_ENTRY_LONG: 1.0, k.SIG_STOP_LOSS: 1_500.0})
    # 22:00: filled at 40,000 (fee 20); the close at 39,000 loses 1,000 + 20 = 10.2% of the
    # day's 10,000: the daily limit halts, so the exit signal at this close is denied.
    assert desk.step(40_000.0, 40_000.0, 39_000.0, 39_000.0, signals={k.SIG_EXIT_LONG: 1.0}).size
    assert desk.state[k.S_DAY_MODE] == k.ACT_HALT
    assert desk.risk("halted") == 1
    # 23:00: the stop at 38,500 still protects (it is not an order the halt denies).
    (stop,) = desk.step(39_000.0, 39_000.0, 38_400.0, 38_600.0, signals={k.SIG_ENTRY_LONG: 1.0})
    assert stop[F_REASON] == k.REASON_STOP
    assert stop[F_PRICE] == 38_500.0
    # Still the same UTC day: the new entry at that close was denied.
    assert desk.risk("halted") == 2
    # 00:00, a new UTC day: the halt lifts, and the entry at this close goes out.
    assert desk.flat_bar(38_600.0, signals={k.SIG_ENTRY_LONG: 1.0}).size == 0
    assert desk.state[k.S_DAY_MODE] == 0.0
    assert desk.risk("halted") == 2
    # 01:00: it fills at the open.
    (entry,) = desk.flat_bar(38_600.0)
    assert entry[F_REASON] == k.REASON_SIGNAL
    assert entry[F_QTY] > 0.0
