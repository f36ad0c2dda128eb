"""The signal DAG: shared sub-expressions, kinds, clocks and type errors."""

from __future__ import annotations

import pytest

from polytrade.compile.graph import GraphError, build_graph


def test_the_same_sub_expression_in_two_signals_is_one_node(strategy) -> None:
    doc = strategy(
        """
        params:
          fast: {type: int, default: 12, min: 2, max: 50}
        signals:
          a: ema(close, fast) - close
          b: ema(close, fast) * 2
        entry_long: a > b
        """
    )
    graph = build_graph(doc)
    calls = [n for n in graph.nodes if n.op == "call" and n.value == "ema"]
    assert len(calls) == 1


def test_a_signal_used_twice_is_computed_once(strategy) -> None:
    doc = strategy(
        """
        signals:
          t: sma(close, 10)
        entry_long: t > 1 and t < 1000000
        """
    )
    graph = build_graph(doc)
    assert sum(1 for n in graph.nodes if n.op == "call") == 1


def test_kinds_and_clocks(strategy) -> None:
    doc = strategy(
        """
        params:
          k: {type: float, default: 2.0, min: 1.0, max: 3.0}
          on: {type: bool, default: true}
        signals:
          scaled: k * 2
          htf: ema(close@4h, 10)
          mixed: htf - close
          flag: on
        entry_long: mixed > 0 and flag
        """
    )
    graph = build_graph(doc)
    kind = {name: graph.node(i).kind for name, i in graph.outputs.items()}
    clock = {name: graph.node(i).clock for name, i in graph.outputs.items()}
    assert kind == {
        "scaled": "scalar",
        "htf": "series",
        "mixed": "series",
        "flag": "flag",
        "entry_long": "bool",
    }
    assert clock["htf"] == 4 * 3600
    assert clock["mixed"] == 15 * 60
    assert clock["scaled"] is None


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("entry_long: nope(close)", "unknown operator 'nope'"),
        ("entry_long: emma(close, 3) > 0", "did you mean"),
        ("entry_long: ema(close) > 0", "takes 2 arguments, and 1 was given"),
        ("entry_long: ema(close, 2.5) > 0", "window length"),
        ("entry_long: ema(close, close) > 0", "window length"),
        ("entry_long: close + 1", "must be true or false"),
        ("entry_long: (close > 1) + 1 > 0", "needs a number"),
        ("entry_long: close and close > 1", "needs true/false"),
        ("entry_long: not close", "needs true/false"),
    ],
)
def test_type_errors_are_findings_with_their_offset(strategy, body, message) -> None:
    doc = strategy(body)
    with pytest.raises(GraphError) as caught:
        build_graph(doc)
    assert any(message in f.message + " " + f.hint for f in caught.value.findings), (
        caught.value.findings
    )
    assert all(f.offset is not None for f in caught.value.findings)


def test_a_float_param_cannot_be_a_window_length(strategy) -> None:
    doc = strategy(
        """
        params:
          n: {type: float, default: 5, min: 2, max: 9}
        entry_long: ema(close, n) > 0
        """
    )
    with pytest.raises(GraphError, match="must be an int param with min >= 1"):
        build_graph(doc)


def test_stops_must_be_numbers(strategy) -> None:
    doc = strategy(
        """
        entry_long: close > 0
        stops: {stop_loss: close > 1}
        """
    )
    with pytest.raises(GraphError, match="distance in USDT per coin"):
        build_graph(doc)
