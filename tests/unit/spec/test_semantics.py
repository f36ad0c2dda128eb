"""Checks that span fields: names, timeframes, cycles, rules, profile coherence and secrets."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from polytrade.spec.models import BoolParam, ChoiceParam, FloatParam, IntParam, ProfileSpec
from polytrade.spec.secrets_scan import find_secrets
from polytrade.spec.semantics import (
    Finding,
    check_param_value,
    check_profile,
    check_strategy,
    did_you_mean,
)
from polytrade.spec.yaml_source import parse_yaml

if TYPE_CHECKING:
    from pathlib import Path

FAST = {"type": "int", "default": 12, "min": 3, "max": 60}


def strategy(**spec: Any) -> dict[str, Any]:
    """A raw Strategy document; keyword arguments replace (or, with None, remove) spec keys."""
    body: dict[str, Any] = {
        "instruments": ["BTC_USDT_PERP"],
        "timeframe": "15m",
        "params": {"fast": dict(FAST)},
        "signals": {},
        "entry_long": "close > 0",
        "sizing": {"method": "fixed_fraction", "fraction": 1.0},
    }
    body.update(spec)
    body = {key: value for key, value in body.items() if value is not None}
    return {
        "apiVersion": "polytrade/v1",
        "kind": "Strategy",
        "metadata": {"name": "s"},
        "spec": body,
    }


def findings(**spec: Any) -> list[Finding]:
    return check_strategy(strategy(**spec))


def codes(found: list[Finding]) -> list[str]:
    return [finding.code for finding in found]


# ---------------------------------------------------------------------- names


def test_a_coherent_strategy_has_no_findings() -> None:
    assert findings(signals={"trend": "ema(close, fast) - ema(close, 48)"}) == []


@pytest.mark.parametrize("name", ["breakout_atr", "funding_carry", "mean_reversion", "trend_htf"])
def test_example_strategies_have_no_findings(repo: Path, name: str) -> None:
    path = repo / "strategies" / f"{name}.yaml"
    data = parse_yaml(path.read_text(encoding="utf-8"), str(path)).data
    assert check_strategy(data) == []


def test_unknown_names_are_reported_with_did_you_mean_hints_and_offsets() -> None:
    found = findings(signals={"trend": "ema(clse, fst) - ema(close, fast)"})
    assert found == [
        Finding(
            ("spec", "signals", "trend"),
            "unknown name 'clse'",
            "did you mean 'close'?",
            4,
            "unknown_name",
        ),
        Finding(
            ("spec", "signals", "trend"),
            "unknown name 'fst'",
            "did you mean 'fast'?",
            10,
            "unknown_name",
        ),
    ]


def test_an_unknown_name_without_a_close_match_lists_what_names_may_be() -> None:
    [finding] = findings(entry_long="zzzqqq > 0")
    assert finding.message == "unknown name 'zzzqqq'"
    assert "bar fields (open, high, low, close" in finding.hint
    assert "params or signals" in finding.hint


def test_a_signal_may_use_params_bar_fields_and_other_signals_in_any_order() -> None:
    signals = {
        "spread": "trend - basis",
        "trend": "ema(close, fast)",
        "basis": "mark_price - index_price + funding_rate * volume",
    }
    assert findings(signals=signals) == []


@pytest.mark.parametrize(
    ("spec", "path"),
    [
        ({"entry_long": "nope > 0"}, ("spec", "entry_long")),
        ({"exit_long": "nope > 0"}, ("spec", "exit_long")),
        ({"entry_short": "nope > 0", "exit_short": "close > 0"}, ("spec", "entry_short")),
        ({"entry_short": "close > 0", "exit_short": "nope > 0"}, ("spec", "exit_short")),
        ({"stops": {"stop_loss": "2 * nope"}}, ("spec", "stops", "stop_loss")),
        ({"stops": {"take_profit": "2 * nope"}}, ("spec", "stops", "take_profit")),
        ({"stops": {"trailing": "2 * nope"}}, ("spec", "stops", "trailing")),
        ({"regime": {"when": "nope > 0"}}, ("spec", "regime", "when")),
    ],
)
def test_names_are_checked_in_rules_stops_and_the_regime_gate(
    spec: dict[str, Any], path: tuple[str, ...]
) -> None:
    found = findings(**spec)
    assert [(finding.path, finding.code) for finding in found] == [(path, "unknown_name")]


def test_a_number_is_a_valid_stop_expression() -> None:
    assert findings(stops={"stop_loss": 150, "trailing": 2.5, "take_profit": "300"}) == []


def test_an_expression_syntax_error_becomes_a_finding_with_its_offset() -> None:
    [finding] = findings(signals={"bad": "close + x[1]"})
    assert finding.path == ("spec", "signals", "bad")
    assert finding.message == "indexing is not allowed"
    assert finding.offset == 8
    assert finding.code == "expression"


@pytest.mark.parametrize(
    ("expression", "message", "offset"),
    [
        ("fast(close)", "'fast' is a param, not an operator", 0),
        ("close + trend(1)", "'trend' is a signal, not an operator", 8),
        ("close(1)", "'close' is a bar field, not an operator", 0),
    ],
)
def test_calling_a_param_signal_or_bar_field_is_reported(
    expression: str, message: str, offset: int
) -> None:
    found = findings(signals={"trend": "close", "use": expression})
    assert [(f.path, f.message, f.offset, f.code) for f in found] == [
        (("spec", "signals", "use"), message, offset, "not_callable")
    ]


def test_a_param_named_like_a_bar_field_is_reported_at_its_key() -> None:
    params = {"fast": dict(FAST), "close": dict(FAST)}
    [finding] = findings(params=params)
    assert finding.path == ("spec", "params", "close")
    assert finding.at_key
    assert "bar field" in finding.message


@pytest.mark.parametrize(("name", "what"), [("volume", "a bar field"), ("fast", "a param")])
def test_a_signal_named_like_a_bar_field_or_param_is_reported_at_its_key(
    name: str, what: str
) -> None:
    [finding] = findings(signals={name: "close"})
    assert finding.path == ("spec", "signals", name)
    assert finding.at_key
    assert finding.message == f"{name!r} is already {what}; give the signal another name"


# ---------------------------------------------------------------------- timeframes


@pytest.mark.parametrize(
    ("base", "expression"),
    [
        ("15m", "close@4h"),
        ("15m", "high@1h - low@30m"),
        ("15m", "volume@1d"),
        ("1h", "close@1w"),
        ("2h", "close@3d"),
        ("1m", "close@3m"),
    ],
)
def test_a_higher_timeframe_that_is_a_whole_multiple_is_accepted(
    base: str, expression: str
) -> None:
    assert findings(timeframe=base, signals={"htf": expression}) == []


@pytest.mark.parametrize(
    ("base", "expression"),
    [
        ("15m", "close@15m"),  # the same timeframe
        ("15m", "close@5m"),  # lower
        ("4h", "close@6h"),  # higher but not a multiple
        ("3d", "close@1w"),
    ],
)
def test_a_timeframe_that_is_not_a_higher_whole_multiple_is_refused(
    base: str, expression: str
) -> None:
    [finding] = findings(timeframe=base, signals={"htf": expression})
    assert finding.code == "timeframe"
    assert finding.offset == 0
    assert expression in finding.message
    assert f"strategy's {base}" in finding.message


def test_an_unknown_timeframe_gets_a_did_you_mean_hint() -> None:
    [finding] = findings(signals={"htf": "close + close@4hr"})
    assert finding.message == "unknown timeframe '4hr' in close@4hr"
    assert finding.hint == "did you mean '4h'?"
    assert finding.offset == 8


def test_an_unknown_timeframe_without_a_close_match_lists_the_timeframes() -> None:
    [finding] = findings(signals={"htf": "close@7q"})
    assert finding.hint.startswith("use one of 1m, 3m, 5m")


@pytest.mark.parametrize("expression", ["fast@4h", "trend@4h", "nope@4h"])
def test_only_bar_fields_take_a_timeframe(expression: str) -> None:
    found = findings(signals={"trend": "close", "htf": expression})
    assert [(f.path, f.code, f.offset) for f in found] == [
        (("spec", "signals", "htf"), "timeframe", 0)
    ]
    assert "only bar fields take a timeframe" in found[0].message


def test_the_multiple_rule_is_skipped_when_the_base_timeframe_is_itself_invalid() -> None:
    assert findings(timeframe="7m", signals={"htf": "close@4h"}) == []


# ---------------------------------------------------------------------- cycles


def cycle_messages(signals: dict[str, str]) -> list[tuple[tuple[str | int, ...], str]]:
    return [(f.path, f.message) for f in findings(signals=signals) if f.code == "cycle"]


def test_a_signal_that_uses_itself_is_a_self_cycle() -> None:
    assert cycle_messages({"a": "a + 1"}) == [
        (("spec", "signals", "a"), "signal 'a' refers to itself")
    ]


def test_a_three_cycle_is_reported_once_with_names_in_order() -> None:
    signals = {"x": "close", "a": "b + 1", "b": "c * 2", "c": "a - x"}
    assert cycle_messages(signals) == [
        (("spec", "signals", "a"), "signals form a cycle: a -> b -> c -> a")
    ]


@pytest.mark.parametrize(
    ("signals", "message"),
    [
        ({"b": "c", "c": "a", "a": "b"}, "signals form a cycle: b -> c -> a -> b"),
        ({"c": "a", "a": "b", "b": "c"}, "signals form a cycle: c -> a -> b -> c"),
        ({"x": "a", "a": "b", "b": "c", "c": "a"}, "signals form a cycle: a -> b -> c -> a"),
    ],
)
def test_a_cycle_starts_at_its_first_signal_in_the_document(
    signals: dict[str, str], message: str
) -> None:
    assert [text for _, text in cycle_messages(signals)] == [message]


def test_a_cycle_through_a_signal_used_twice_is_reported_once() -> None:
    assert len(cycle_messages({"a": "b + b * b", "b": "a - a"})) == 1


def test_two_cycles_through_one_signal_are_both_reported() -> None:
    assert [text for _, text in cycle_messages({"a": "b + c", "b": "a", "c": "a"})] == [
        "signals form a cycle: a -> b -> a",
        "signals form a cycle: a -> c -> a",
    ]


def test_a_diamond_is_not_a_cycle() -> None:
    assert cycle_messages({"a": "close", "b": "a", "c": "a * 2", "d": "b + c"}) == []


def test_a_long_chain_of_signals_is_checked_without_recursion_error() -> None:
    length = 3_000
    signals = {f"s{i}": f"s{i + 1} + 1" for i in range(length)}
    signals[f"s{length}"] = "close"
    assert findings(signals=signals) == []


# ---------------------------------------------------------------------- rules


def test_a_strategy_that_never_enters_is_reported() -> None:
    [finding] = findings(entry_long=None)
    assert finding.path == ("spec",)
    assert finding.message == "the strategy never enters a position"
    assert finding.code == "rules"


def test_a_short_only_strategy_is_fine() -> None:
    assert findings(entry_long=None, entry_short="close < 0", exit_short="close > 1") == []


@pytest.mark.parametrize("side", ["long", "short"])
def test_an_exit_without_its_entry_is_reported_at_its_key(side: str) -> None:
    spec = {"entry_long": None, "entry_short": None, f"exit_{side}": "close > 0"}
    spec["entry_short" if side == "long" else "entry_long"] = "close > 0"
    [finding] = findings(**spec)
    assert finding.path == ("spec", f"exit_{side}")
    assert finding.message == f"exit_{side} is given but entry_{side} is not"
    assert finding.at_key


def test_risk_per_trade_without_a_stop_loss_is_reported() -> None:
    [finding] = findings(sizing={"method": "risk_per_trade", "risk_fraction": 0.01})
    assert finding.path == ("spec", "sizing", "method")
    assert "stops.stop_loss" in finding.message


def test_risk_per_trade_with_a_stop_loss_is_fine() -> None:
    sizing = {"method": "risk_per_trade", "risk_fraction": 0.01}
    assert findings(sizing=sizing, stops={"stop_loss": "0.02 * close"}) == []


@pytest.mark.parametrize("max_bars", [288, "fast"])
def test_max_bars_may_be_a_number_or_an_int_param(max_bars: object) -> None:
    assert findings(stops={"max_bars": max_bars}) == []


def test_max_bars_naming_an_unknown_param_gets_a_did_you_mean_hint() -> None:
    [finding] = findings(stops={"max_bars": "fsat"})
    assert finding.path == ("spec", "stops", "max_bars")
    assert finding.message == "unknown param 'fsat'"
    assert finding.hint == "did you mean 'fast'?"
    assert finding.code == "unknown_name"


def test_max_bars_naming_an_unknown_param_without_params_says_what_to_give() -> None:
    [finding] = findings(params={}, signals={}, stops={"max_bars": "hold"})
    assert finding.hint == "give a number of bars or an int param"


@pytest.mark.parametrize(
    "param",
    [
        {"type": "float", "default": 1.0, "min": 0.5, "max": 2.0},
        {"type": "choice", "choices": [10, 20], "default": 10},
        {"type": "bool", "default": True},
    ],
)
def test_max_bars_naming_a_param_that_is_not_an_int_is_reported(param: dict[str, Any]) -> None:
    [finding] = findings(params={"hold": param}, stops={"max_bars": "hold"})
    assert finding.message == "the param 'hold' must be of type int"
    assert finding.code == "type"


@pytest.mark.parametrize(
    "data",
    [
        None,
        [],
        "text",
        {"spec": []},
        {"spec": {"signals": [1], "params": "x", "stops": "x", "entry_long": 5, "regime": 3}},
        {"spec": {"signals": {"a": None, "b": ["x"], "c": {"d": 1}}, "entry_long": True}},
    ],
)
def test_malformed_raw_data_never_raises(data: object) -> None:
    assert isinstance(check_strategy(data), list)


# ---------------------------------------------------------------------- param values

INT = IntParam(type="int", min=3, max=60, default=12)
FLOAT = FloatParam(type="float", min=0.5, max=2.0, default=1.0)
CHOICE = ChoiceParam(type="choice", choices=(1, 2, "x"), default=1)
BOOL = BoolParam(type="bool", default=True)


@pytest.mark.parametrize(
    ("param", "value"),
    [(INT, 3), (INT, 60), (INT, 12), (FLOAT, 0.5), (FLOAT, 2), (FLOAT, 1.25), (CHOICE, 2),
     (CHOICE, "x"), (BOOL, True), (BOOL, False)],
)  # fmt: skip
def test_check_param_value_accepts_values_the_param_can_take(param: Any, value: object) -> None:
    assert check_param_value(param, value) is None


@pytest.mark.parametrize(
    ("param", "value", "problem"),
    [
        (INT, 2, "Input should be within [3, 60] (the param's bounds)"),
        (INT, 61, "Input should be within [3, 60] (the param's bounds)"),
        (INT, 12.0, "Input should be a whole number (the param is an int)"),
        (INT, 12.5, "Input should be a whole number (the param is an int)"),
        (INT, True, "Input should be a number"),
        (INT, "12", "Input should be a number"),
        (INT, None, "Input should be a number"),
        (FLOAT, 2.5, "Input should be within [0.5, 2.0] (the param's bounds)"),
        (FLOAT, float("nan"), "Input should be within [0.5, 2.0] (the param's bounds)"),
        (FLOAT, float("inf"), "Input should be within [0.5, 2.0] (the param's bounds)"),
        (FLOAT, False, "Input should be a number"),
        (CHOICE, "y", "Input should be one of [1, 2, 'x']"),
        (CHOICE, 3, "Input should be one of [1, 2, 'x']"),
        (BOOL, 1, "Input should be true or false"),
        (BOOL, "true", "Input should be true or false"),
    ],
)
def test_check_param_value_explains_what_is_wrong(param: Any, value: object, problem: str) -> None:
    assert check_param_value(param, value) == problem


def test_a_boolean_is_not_one_of_numeric_choices() -> None:
    assert check_param_value(CHOICE, value=True) is not None


# ---------------------------------------------------------------------- profiles


def profile(**spec: Any) -> ProfileSpec:
    body: dict[str, Any] = {
        "mode": "backtest",
        "venue": {"name": "poloniex"},
        "strategies": [{"ref": "a.yaml", "allocation": 0.5}],
        "risk": "risk.yaml",
        "data": {"source": "synthetic", "seed": 1},
    }
    body.update(spec)
    return ProfileSpec.model_validate(body)


LIVE_VENUE = {
    "name": "poloniex",
    "credentials": {"api_key_env": "KEY", "api_secret_env": "SECRET"},
}


def profile_findings(**spec: Any) -> list[tuple[tuple[str | int, ...], str]]:
    return [(finding.path, finding.code) for finding in check_profile(profile(**spec))]


@pytest.mark.parametrize(
    "spec",
    [
        {},
        {"mode": "paper", "data": {"source": "live"}},
        {"mode": "live", "data": {"source": "live"}, "venue": LIVE_VENUE},
        {"strategies": [{"ref": f"s{i}.yaml", "allocation": 0.1} for i in range(10)]},
        {"data": {"source": "catalog", "start": "2024-01-01"}},
        {"data": {"source": "file", "bars": "bars.parquet"}},
        {"store": {"url_env": "DATABASE_URL"}},
    ],
)
def test_a_coherent_profile_has_no_findings(spec: dict[str, Any]) -> None:
    assert profile_findings(**spec) == []


def test_allocations_adding_up_to_more_than_one_are_reported() -> None:
    spec = profile(
        strategies=[{"ref": "a.yaml", "allocation": 0.6}, {"ref": "b.yaml", "allocation": 0.5}]
    )
    [finding] = check_profile(spec)
    assert finding.path == ("spec", "strategies")
    assert finding.message == "allocations add up to 1.1; they may add up to at most 1"
    assert finding.at_key


def test_a_strategy_listed_twice_is_reported_at_each_repeat() -> None:
    strategies = [{"ref": "a.yaml", "allocation": 0.3}] * 2 + [{"ref": "b.yaml", "allocation": 0.1}]
    strategies.append({"ref": "a.yaml", "allocation": 0.1})
    found = list(check_profile(profile(strategies=strategies)))
    assert [(f.path, f.message) for f in found] == [
        (("spec", "strategies", 1, "ref"), "a.yaml is already listed as strategies[0]"),
        (("spec", "strategies", 3, "ref"), "a.yaml is already listed as strategies[0]"),
    ]


@pytest.mark.parametrize(
    ("mode", "data"),
    [
        ("backtest", {"source": "live"}),
        ("paper", {"source": "synthetic", "seed": 1}),
        ("paper", {"source": "catalog", "start": "2024-01-01"}),
        ("live", {"source": "file", "bars": "bars.parquet"}),
    ],
)
def test_a_data_source_that_does_not_fit_the_mode_is_reported(
    mode: str, data: dict[str, Any]
) -> None:
    assert (("spec", "data", "source"), "mode") in profile_findings(
        mode=mode, data=data, venue=LIVE_VENUE
    )


def test_live_mode_without_credentials_is_reported_at_the_venue_key() -> None:
    [finding] = check_profile(profile(mode="live", data={"source": "live"}))
    assert finding.path == ("spec", "venue")
    assert finding.message == "live mode needs venue.credentials"
    assert "api_key_env" in finding.hint
    assert finding.at_key


def test_paper_mode_needs_no_credentials() -> None:
    assert profile_findings(mode="paper", data={"source": "live"}) == []


def test_store_url_and_url_env_together_are_reported() -> None:
    assert profile_findings(store={"url": "sqlite:///x.db", "url_env": "DB_URL"}) == [
        (("spec", "store"), "store")
    ]


def test_a_schedule_name_used_twice_is_reported() -> None:
    schedule = {"name": "nightly", "cron": "0 0 * * *", "task": "report"}
    assert profile_findings(schedules=[schedule, dict(schedule, task="validate")]) == [
        (("spec", "schedules", 1, "name"), "duplicate")
    ]


# ---------------------------------------------------------------------- secrets


@pytest.mark.parametrize(
    ("data", "path"),
    [
        ({"api_key": "abc123"}, ("api_key",)),
        ({"apiKey": "abc123"}, ("apiKey",)),
        ({"api_secret": "abc123"}, ("api_secret",)),
        ({"secret": "abc123"}, ("secret",)),
        ({"password": "hunter2"}, ("password",)),
        ({"passwd": "hunter2"}, ("passwd",)),
        ({"passphrase": "hunter2"}, ("passphrase",)),
        ({"private_key": "0xabc"}, ("private_key",)),
        ({"bot_token": "123:abc"}, ("bot_token",)),
        ({"credentials": "key:secret"}, ("credentials",)),
        ({"password": 123456}, ("password",)),
        (
            {"spec": {"venue": {"credentials": {"api_key": "k", "api_key_env": "K"}}}},
            ("spec", "venue", "credentials", "api_key"),
        ),
        ({"alerts": [{"type": "telegram", "token": "t"}]}, ("alerts", 0, "token")),
        ({"store": {"url": "postgresql+psycopg://user:hunter2@db/x"}}, ("store", "url")),
        ({"urls": ["https://user:pw@example.com/"]}, ("urls", 0)),
    ],
)
def test_a_secret_written_into_a_spec_is_found(data: dict[str, Any], path: tuple) -> None:
    [finding] = find_secrets(data)
    assert finding.path == path
    assert finding.code == "secret"


def test_a_secret_finding_never_repeats_the_value() -> None:
    found = [*find_secrets({"api_key": "sk-live-abc123", "url": "wss://u:sk-pw-789@h/ws"})]
    assert len(found) == 2
    for finding in found:
        assert "sk-live-abc123" not in f"{finding.message} {finding.hint}"
        assert "sk-pw-789" not in f"{finding.message} {finding.hint}"


def test_a_secret_finding_suggests_the_env_key_to_use() -> None:
    [finding] = find_secrets({"api_secret": "abc"})
    assert "api_secret_env: YOUR_VARIABLE" in finding.hint


@pytest.mark.parametrize(
    "data",
    [
        {"api_key_env": "POLONIEX_API_KEY", "api_secret_env": "POLONIEX_API_SECRET"},
        {"venue": {"credentials": {"api_key_env": "K", "api_secret_env": "S", "file": "x"}}},
        {"credentials": {"api_key_env": "K", "api_secret_env": "S"}},
        {"bot_token_env": "TELEGRAM_TOKEN", "chat_id_env": "CHAT"},
        {"password_file": "/run/secrets/db", "private_key_path": "/keys/k.pem"},
        {"password": "", "token": None, "secret": True},
        {"store": {"url": "sqlite:///polytrade.db"}},
        {"store": {"url": "postgresql+psycopg://db.internal/polytrade"}},
        {"rest": "https://user@example.com/x"},
        {"description": "the API key and the password come from the environment"},
        {"secretary": "x", "tokenizer": "y", "keyword": "z"},
    ],
)
def test_names_of_secrets_and_ordinary_values_are_allowed(data: dict[str, Any]) -> None:
    assert list(find_secrets(data)) == []


def test_every_example_spec_is_free_of_secrets(repo: Path) -> None:
    files = sorted(repo.glob("strategies/*.yaml")) + sorted(repo.glob("profiles/**/*.yaml"))
    assert files
    for path in files:
        data = parse_yaml(path.read_text(encoding="utf-8"), str(path)).data
        assert list(find_secrets(data)) == [], path


# ---------------------------------------------------------------------- hints


@pytest.mark.parametrize(
    ("word", "candidates", "hint"),
    [
        ("clsoe", ["close", "open"], "did you mean 'close'?"),
        ("zzz", ["close", "open"], ""),
        ("x", [], ""),
    ],
)
def test_did_you_mean(word: str, candidates: list[str], hint: str) -> None:
    assert did_you_mean(word, candidates) == hint


def test_a_stepped_params_default_off_its_grid_is_reported_with_the_values_around_it() -> None:
    data = {
        "spec": {
            "params": {
                "trend": {"type": "int", "default": 576, "min": 100, "max": 2880, "step": 20},
                "width": {"type": "float", "default": 2.5, "min": 1.0, "max": 4.0, "step": 0.5},
                "stop": {"type": "float", "default": 2.3, "min": 1.0, "max": 4.0, "step": 0.25},
            },
            "signals": {"t": "ema(close, trend) * width * stop"},
            "entry_long": "close > t",
        }
    }
    findings = check_strategy(data)
    grid = [f for f in findings if f.path[-1] == "default"]
    assert [f.path for f in grid] == [
        ("spec", "params", "trend", "default"),
        ("spec", "params", "stop", "default"),
    ]
    assert grid[0].hint == "use 560 or 580"
    assert grid[1].hint == "use 2.25 or 2.5"
