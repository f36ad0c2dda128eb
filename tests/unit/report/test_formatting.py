"""Numbers as the report prints them."""

from __future__ import annotations

import math

from polytrade.report import formatting as f

MINUS = f.MINUS


def test_units_signs_and_separators() -> None:
    assert f.number(12345.678) == "12,345.68"
    assert f.number(-3.5, 1) == f"{MINUS}3.5"
    assert f.number(2.0, signed=True) == "+2.00"
    assert f.percent(0.1234) == "12.34%"
    assert f.percent(-0.05, 1, signed=True) == f"{MINUS}5.0%"
    assert f.usdt(1234.5) == "1,234.50 USDT"
    assert f.count(70080) == "70,080"
    assert f.days(412.0) == "412 days"
    assert f.days(3.25) == "3.2 days"
    assert f.days(1.0) == "1 day"


def test_missing_and_infinite_values() -> None:
    for formatter in (f.number, f.percent, f.usdt, f.count, f.days, f.duration, f.utc):
        assert formatter(math.nan) == "—"
        assert formatter(None) == "—"
    assert f.number(math.inf) == "∞"
    assert f.percent(-math.inf) == f"{MINUS}∞"
    assert f.usdt(math.inf) == "∞ USDT"


def test_durations_and_utc_times() -> None:
    assert f.duration(15 * 60_000) == "15m"
    assert f.duration(150 * 60_000) == "2h 30m"
    assert f.duration(2 * 3_600_000) == "2h"
    assert f.duration((3 * 24 + 4) * 3_600_000) == "3d 4h"
    assert f.duration(5 * 86_400_000) == "5d"
    assert f.utc(1_704_067_200_000) == "2024-01-01 00:00"
    assert f.utc_date(1_706_745_599_000) == "2024-01-31"


def test_tones() -> None:
    assert [f.tone(v) for v in (1.0, -0.1, 0.0, math.nan, None)] == ["pos", "neg", "", "", ""]
