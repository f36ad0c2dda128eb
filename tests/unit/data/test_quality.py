"""Checks on market data before it enters the catalog: every problem named by row and field."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from polytrade.data.quality import (
    BOOK_SCHEMA,
    CANDLE_SCHEMA,
    FUNDING_SCHEMA,
    SHOWN_ISSUES,
    TRADES_SCHEMA,
    Gap,
    find_gaps,
    funding_interval_ms,
    utc_text,
    validate_book,
    validate_candles,
    validate_funding,
    validate_trades,
)
from polytrade.errors import DataError

HOUR = 3_600_000
T0 = int(dt.datetime(2024, 3, 1, tzinfo=dt.UTC).timestamp() * 1000)
SOURCE = "data/BTC_USDT_PERP-1h.parquet"


def candles(n: int = 6, *, start: int = T0, step: int = HOUR) -> pl.DataFrame:
    """n consistent hourly bars as a data file holds them."""
    close = 100.0 + np.arange(n, dtype=float)
    opens = close - 0.5
    return pl.DataFrame(
        {
            "ts": pl.Series([start + i * step for i in range(n)]).cast(pl.Datetime("ms", "UTC")),
            "open": opens,
            "high": close + 1.0,
            "low": opens - 1.0,
            "close": close,
            "volume": np.full(n, 2.5),
        }
    )


def set_value(frame: pl.DataFrame, row: int, name: str, value: object) -> pl.DataFrame:
    """The frame with `name` at 1-based `row` replaced."""
    return frame.with_columns(
        pl.when(pl.int_range(pl.len()) == row - 1)
        .then(pl.lit(value, dtype=frame.schema[name]))
        .otherwise(pl.col(name))
        .alias(name)
    )


def refusal(call, *args, **kwargs) -> str:
    with pytest.raises(DataError) as caught:
        call(*args, **kwargs)
    return str(caught.value)


# ---------------------------------------------------------------------- candles


def test_valid_candles_come_back_in_the_canonical_layout_unchanged() -> None:
    frame = candles()
    out = validate_candles(frame, SOURCE, "1h")
    assert dict(out.schema) == dict(CANDLE_SCHEMA)
    assert out.equals(frame)


def test_integer_milliseconds_text_and_naive_datetimes_all_become_utc_datetimes() -> None:
    frame = candles()
    expected = validate_candles(frame, SOURCE, "1h")
    as_ms = frame.with_columns(pl.col("ts").dt.epoch("ms"))
    as_text = frame.with_columns(pl.col("ts").dt.strftime("%Y-%m-%dT%H:%M:%SZ"))
    naive = frame.with_columns(pl.col("ts").dt.replace_time_zone(None).dt.cast_time_unit("us"))
    aliased = frame.rename({"ts": "date"})
    for variant in (as_ms, as_text, naive, aliased):
        assert validate_candles(variant, SOURCE, "1h").equals(expected)


def test_an_unsorted_file_is_refused_at_its_first_offending_row_with_how_to_fix() -> None:
    frame = candles(6)
    swapped = pl.concat([frame[:3], frame[4:5], frame[3:4], frame[5:]])
    message = refusal(validate_candles, swapped, SOURCE, "1h")
    assert message.startswith(f"{SOURCE}: row 5, field ts: 2024-03-01 03:00 is earlier than row 4")
    assert "not in time order" in message
    assert "sort the file by ts" in message


def test_an_exact_duplicate_is_named_with_both_rows() -> None:
    frame = candles(5)
    doubled = pl.concat([frame[:3], frame[2:3], frame[3:]])
    message = refusal(validate_candles, doubled, SOURCE, "1h")
    assert f"{SOURCE}: row 4, field ts: repeats row 3 exactly (ts 2024-03-01 02:00)" in message


def test_a_conflicting_duplicate_names_both_rows_and_the_differing_values() -> None:
    frame = candles(5)
    clash = set_value(frame[2:3], 1, "close", 101.75)
    message = refusal(validate_candles, pl.concat([frame[:3], clash, frame[3:]]), SOURCE, "1h")
    assert (
        f"{SOURCE}: row 4, field ts: repeats ts 2024-03-01 02:00 of row 3 with different "
        "values (close 101.75 here, 102.0 at row 3)"
    ) in message


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("high", 100.0, "row 3, field high: 100.0 is below max(open, close) = 102.0"),
        ("low", 101.9, "row 3, field low: 101.9 is above min(open, close) = 101.5"),
        ("volume", -1.0, "row 3, field volume: -1.0 is below 0.0"),
        ("close", float("nan"), "row 3, field close: is NaN, not a finite number"),
        ("open", float("inf"), "row 3, field open: is inf, not a finite number"),
        ("close", None, "row 3, field close: is missing (null)"),
    ],
)
def test_inconsistent_or_missing_values_are_named_by_row_and_field(
    name: str, value: object, expected: str
) -> None:
    message = refusal(validate_candles, set_value(candles(), 3, name, value), SOURCE, "1h")
    assert message.startswith(f"{SOURCE}: {expected}")


def test_a_non_positive_low_is_refused() -> None:
    frame = set_value(set_value(candles(), 2, "low", 0.0), 2, "open", 0.0)
    message = refusal(validate_candles, frame, SOURCE, "1h")
    assert "row 2, field low: 0.0 is not above 0.0: prices must be positive" in message


def test_a_bar_off_the_timeframe_grid_is_refused() -> None:
    frame = candles(4, step=HOUR).with_columns(
        pl.col("ts") + pl.duration(minutes=pl.int_range(pl.len()) * 0)  # keep the dtype
    )
    shifted = set_value(frame, 2, "ts", dt.datetime(2024, 3, 1, 1, 30, tzinfo=dt.UTC))
    message = refusal(validate_candles, shifted, SOURCE, "1h")
    assert "row 2, field ts: 2024-03-01 01:30 is not on the 1h grid" in message


def test_weekly_bars_sit_on_mondays() -> None:
    monday = int(dt.datetime(2024, 3, 4, tzinfo=dt.UTC).timestamp() * 1000)
    week = 7 * 24 * HOUR
    validate_candles(candles(3, start=monday, step=week), SOURCE, "1w")
    thursday = monday + 3 * 24 * HOUR
    assert "on Mondays" in refusal(
        validate_candles, candles(3, start=thursday, step=week), SOURCE, "1w"
    )


def test_text_that_is_not_a_number_is_named() -> None:
    frame = candles(3).with_columns(pl.col("close").cast(pl.String))
    frame = set_value(frame, 2, "close", "1O1.5")
    message = refusal(validate_candles, frame, SOURCE, "1h")
    assert message.startswith(f"{SOURCE}: row 2, field close: '1O1.5' is not a number")


def test_integer_seconds_are_refused_as_seconds() -> None:
    frame = candles(3).with_columns(pl.col("ts").dt.epoch("s"))
    message = refusal(validate_candles, frame, SOURCE, "1h")
    assert "look like seconds" in message
    assert "multiply them by 1000" in message


def test_missing_columns_are_listed_with_what_the_kind_needs() -> None:
    message = refusal(validate_candles, candles().drop("volume", "low"), SOURCE, "1h")
    assert message.startswith(f"{SOURCE}: missing columns low, volume")
    assert "ts, open, high, low, close, volume" in message


def test_price_candles_may_lack_volume() -> None:
    out = validate_candles(candles().drop("volume"), SOURCE, "1h", price_only=True)
    assert out["volume"].to_list() == [0.0] * 6


def test_every_problem_is_reported_at_once_and_long_lists_are_cut() -> None:
    many = 2 * SHOWN_ISSUES + 5
    frame = candles(many).with_columns(pl.col("volume") * -1)
    message = refusal(validate_candles, frame, SOURCE, "1h")
    lines = message.splitlines()
    assert lines[0] == f"{many} problems in {SOURCE}:"
    assert sum(line.startswith(f"  {SOURCE}: row") for line in lines) == SHOWN_ISSUES
    assert f"  ... and {many - SHOWN_ISSUES} more" in lines


# ---------------------------------------------------------------------- funding


def funding(rates: list[float], start: int = T0, step: int = 8 * HOUR) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "ts": pl.Series([start + i * step for i in range(len(rates))]).cast(
                pl.Datetime("ms", "UTC")
            ),
            "rate": rates,
        }
    )


def test_valid_funding_passes_in_the_canonical_layout() -> None:
    out = validate_funding(funding([0.0001, -0.0003, 0.049]), "f.parquet")
    assert dict(out.schema) == dict(FUNDING_SCHEMA)


@pytest.mark.parametrize(
    ("rate", "expected"),
    [
        (0.05, "row 2, field rate: 0.05 is not a plausible funding rate per interval"),
        (-0.3, "row 2, field rate: -0.3 is not a plausible funding rate per interval"),
        (float("inf"), "row 2, field rate: is inf, not a finite number"),
        (float("nan"), "row 2, field rate: is NaN, not a finite number"),
    ],
)
def test_absurd_or_missing_funding_rates_are_refused(rate: float, expected: str) -> None:
    message = refusal(validate_funding, funding([0.0001, rate, 0.0002]), "f.parquet")
    assert message.startswith(f"f.parquet: {expected}")


def test_a_funding_rate_in_percent_gets_a_hint_about_fractions() -> None:
    message = refusal(validate_funding, funding([0.01, 7.5]), "f.parquet")
    assert "divide percents by 100" in message


def test_funding_settlements_must_increase_strictly() -> None:
    frame = funding([0.0001, 0.0002, 0.0003])
    message = refusal(validate_funding, pl.concat([frame[1:2], frame[0:1], frame[2:]]), "f")
    assert message.startswith("f: row 2, field ts: 2024-03-01 00:00 is earlier than row 1")


def test_the_funding_interval_is_the_usual_step() -> None:
    ts = np.array([0, 8, 16, 24, 40, 48]) * HOUR
    assert funding_interval_ms(ts) == 8 * HOUR
    assert funding_interval_ms(ts[:1]) is None


# ---------------------------------------------------------------------- trades and book


def trades() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "ts": pl.Series([T0, T0, T0 + 5, T0 + 9]).cast(pl.Datetime("ms", "UTC")),
            "id": [10, 11, 12, 13],
            "side": ["buy", "sell", "BUY", "sell"],
            "price": [100.0, 100.5, 100.0, 99.5],
            "amount": [0.1, 0.2, 0.3, 0.4],
        }
    )


def test_trades_may_share_a_millisecond_and_sides_are_normalized() -> None:
    out = validate_trades(trades(), "t")
    assert dict(out.schema) == dict(TRADES_SCHEMA)
    assert out["side"].to_list() == ["buy", "sell", "buy", "sell"]


def test_a_buyer_maker_flag_is_read_as_the_opposite_aggressor_side() -> None:
    frame = (
        trades()
        .drop("side")
        .with_columns(pl.Series("buyer_maker", ["True", "False", "True", "false"]))
    )
    assert validate_trades(frame, "t")["side"].to_list() == ["sell", "buy", "sell", "buy"]


def test_a_repeated_trade_id_and_a_bad_side_are_named() -> None:
    frame = set_value(set_value(trades(), 3, "id", 11), 4, "side", "hold")
    message = refusal(validate_trades, frame, "t")
    assert "row 4, field side: 'hold' is not one of buy, sell" in message
    frame = set_value(trades(), 3, "id", 11)
    message = refusal(validate_trades, frame, "t")
    assert "t: row 3, field id: repeats id 11 of row 2 with different values" in message


def test_trades_going_back_in_time_are_refused() -> None:
    frame = set_value(trades(), 4, "ts", dt.datetime(2024, 2, 1, tzinfo=dt.UTC))
    assert "t: row 4, field ts: 2024-02-01 00:00 is earlier than row 3" in refusal(
        validate_trades, frame, "t"
    )


def test_book_levels_are_derived_from_prices_when_the_file_has_none() -> None:
    frame = pl.DataFrame(
        {
            "ts": pl.Series([T0] * 4).cast(pl.Datetime("ms", "UTC")),
            "side": ["b", "b", "a", "a"],
            "price": [99.0, 99.5, 100.5, 100.0],
            "qty": [1.0, 2.0, 3.0, 4.0],
        }
    )
    out = validate_book(frame, "book")
    assert dict(out.schema) == dict(BOOK_SCHEMA)
    assert out.select("side", "level", "price").rows() == [
        ("bid", 1, 99.0),
        ("bid", 0, 99.5),
        ("ask", 1, 100.5),
        ("ask", 0, 100.0),
    ]


def test_a_book_level_given_twice_in_one_snapshot_is_refused() -> None:
    frame = pl.DataFrame(
        {
            "ts": pl.Series([T0] * 3).cast(pl.Datetime("ms", "UTC")),
            "side": ["bid", "bid", "ask"],
            "level": [0, 0, 0],
            "price": [99.0, 98.0, 100.0],
            "qty": [1.0, 2.0, 3.0],
        }
    )
    message = refusal(validate_book, frame, "book")
    assert "book: row 2, field ts: repeats ts 2024-03-01 00:00, side 'bid', level 0 of row 1" in (
        message
    )


# ---------------------------------------------------------------------- gaps


def test_gaps_are_counted_with_the_largest_one_located() -> None:
    ts = np.array([0, 1, 2, 5, 6, 10, 11, 15]) * HOUR
    report = find_gaps(ts, HOUR)
    assert (report.gaps, report.missing_bars) == (3, 2 + 3 + 3)
    # 7..9 and 12..14 are equally long: the earlier one is the largest.
    assert report.largest == Gap(7 * HOUR, 10 * HOUR, 3)
    assert report.describe() == (
        f"3 gaps, 8 bars missing, largest {utc_text(7 * HOUR)} to {utc_text(10 * HOUR)} (3 bars)"
    )
    assert find_gaps(ts[:3], HOUR).describe() == "no gaps"


@settings(max_examples=60, deadline=None)
@given(st.sets(st.integers(0, 400), min_size=2))
def test_missing_bars_are_the_grid_points_absent_between_first_and_last(kept: set[int]) -> None:
    ts = np.array(sorted(kept), dtype=np.int64) * 5 * 60_000
    report = find_gaps(ts, 5 * 60_000)
    span = max(kept) - min(kept) + 1
    assert report.missing_bars == span - len(kept)
    if report.largest is not None:
        largest = report.largest
        assert (largest.end_ms - largest.start_ms) // (5 * 60_000) == largest.missing
        assert largest.start_ms // (5 * 60_000) - 1 in kept
        assert largest.end_ms // (5 * 60_000) in kept
