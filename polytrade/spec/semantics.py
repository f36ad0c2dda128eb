"""Checks that span fields: names in expressions, signal cycles, rules that fit together.

Pydantic checks each field on its own; this module checks what only the whole document can
say. Strategy checks run on the raw YAML data, defensively, so that an unknown name in an
expression is reported in the same run as a wrong type elsewhere in the file.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from polytrade.core.timeframes import TIMEFRAMES, timeframe_seconds
from polytrade.spec.expressions import FIELDS, ExpressionError, ParsedExpression, parse_expression
from polytrade.spec.models.strategy import BoolParam, ChoiceParam, FloatParam, IntParam

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    from polytrade.spec.models.profile import ProfileSpec

PathT = tuple[str | int, ...]

RULES = ("entry_long", "exit_long", "entry_short", "exit_short")
STOP_EXPRESSIONS = ("stop_loss", "take_profit", "trailing")


@dataclass(frozen=True, slots=True)
class Finding:
    """A problem at a field path; `offset` is a character offset into that field's text."""

    path: PathT
    message: str
    hint: str = ""
    offset: int | None = None
    code: str = "semantic"
    at_key: bool = False
    """Point at the key rather than at the value (for names that are wrong themselves)."""


def did_you_mean(word: str, candidates: Iterator[str] | list[str] | set[str]) -> str:
    """A 'did you mean ...?' hint, or '' when nothing is close."""
    close = difflib.get_close_matches(word, sorted(candidates), n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else ""


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return repr(value)
    return None


def strategy_expressions(spec: Mapping[str, Any]) -> Iterator[tuple[PathT, str]]:
    """Every expression of a raw strategy spec with its path, in document order."""
    for name, text in _mapping(spec.get("signals")).items():
        if (source := _text(text)) is not None:
            yield ("spec", "signals", name), source
    for rule in RULES:
        if (source := _text(spec.get(rule))) is not None:
            yield ("spec", rule), source
    stops = _mapping(spec.get("stops"))
    for stop in STOP_EXPRESSIONS:
        if (source := _text(stops.get(stop))) is not None:
            yield ("spec", "stops", stop), source
    if (source := _text(_mapping(spec.get("regime")).get("when"))) is not None:
        yield ("spec", "regime", "when"), source


def check_strategy(data: Any) -> list[Finding]:
    """Names, timeframes, cycles and rule coherence of a raw Strategy document."""
    if not isinstance(_mapping(data).get("spec"), dict):
        return []  # the models report a missing or malformed spec; there is nothing to check
    spec = _mapping(_mapping(data).get("spec"))
    params = _mapping(spec.get("params"))
    signals = _mapping(spec.get("signals"))
    timeframe = spec.get("timeframe")
    findings: list[Finding] = []

    findings.extend(
        Finding(
            ("spec", "params", name),
            f"{name!r} is a bar field; give the param another name",
            at_key=True,
        )
        for name in params
        if name in FIELDS
    )
    findings.extend(_defaults_on_grid(params))
    for name in signals:
        if name in FIELDS or name in params:
            what = "a bar field" if name in FIELDS else "a param"
            findings.append(
                Finding(
                    ("spec", "signals", name),
                    f"{name!r} is already {what}; give the signal another name",
                    at_key=True,
                )
            )

    known = set(FIELDS) | set(params) | set(signals)
    edges: dict[str, list[str]] = {}
    for path, source in strategy_expressions(spec):
        try:
            parsed = parse_expression(source)
        except ExpressionError as exc:
            findings.append(Finding(path, exc.message, exc.hint, exc.offset, "expression"))
            continue
        findings.extend(_check_names(path, parsed, params, signals, known, timeframe))
        if path[1] == "signals":
            edges[str(path[2])] = [ref.name for ref in parsed.names if ref.name in signals]

    findings.extend(_cycles(edges))
    findings.extend(_rule_coherence(spec, params))
    return findings


def _check_names(
    path: PathT,
    parsed: ParsedExpression,
    params: Mapping[str, Any],
    signals: Mapping[str, Any],
    known: set[str],
    timeframe: Any,
) -> Iterator[Finding]:
    for ref in parsed.names:
        if ref.timeframe is not None:
            yield from _check_timeframe(path, ref.name, ref.timeframe, ref.offset, timeframe)
        elif ref.name not in known:
            hint = did_you_mean(ref.name, known) or (
                "names are bar fields (" + ", ".join(FIELDS) + "), params or signals"
            )
            yield Finding(path, f"unknown name {ref.name!r}", hint, ref.offset, "unknown_name")
    for call in parsed.calls:
        if call.name in params or call.name in signals or call.name in FIELDS:
            what = (
                "a param"
                if call.name in params
                else "a signal"
                if call.name in signals
                else "a bar field"
            )
            yield Finding(
                path, f"{call.name!r} is {what}, not an operator", "", call.offset, "not_callable"
            )


def _check_timeframe(
    path: PathT, name: str, higher: str, offset: int, base: Any
) -> Iterator[Finding]:
    if name not in FIELDS:
        yield Finding(
            path,
            f"only bar fields take a timeframe, and {name!r} is not one",
            "write e.g. close@4h",
            offset,
            "timeframe",
        )
        return
    if higher not in TIMEFRAMES:
        hint = did_you_mean(higher, set(TIMEFRAMES)) or "use one of " + ", ".join(TIMEFRAMES)
        yield Finding(
            path, f"unknown timeframe {higher!r} in {name}@{higher}", hint, offset, "timeframe"
        )
        return
    if isinstance(base, str) and base in TIMEFRAMES:
        step, big = timeframe_seconds(base), timeframe_seconds(higher)
        if big <= step or big % step:
            yield Finding(
                path,
                f"{name}@{higher} must be a higher timeframe that is a whole multiple of the "
                f"strategy's {base}",
                "",
                offset,
                "timeframe",
            )


def _cycles(edges: dict[str, list[str]]) -> Iterator[Finding]:
    """Each cycle among signals once, named in order from its first signal in the file.

    Iterative depth-first search: a chain of thousands of signals must not hit Python's
    recursion limit.
    """
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    reported: set[frozenset[str]] = set()
    for start in edges:
        if start in state:
            continue
        trail: list[str] = [start]
        state[start] = 1
        pending: list[Iterator[str]] = [iter(edges.get(start, []))]
        while pending:
            nxt = next(pending[-1], None)
            if nxt is None:
                pending.pop()
                state[trail.pop()] = 2
                continue
            if state.get(nxt) == 1:
                cycle = trail[trail.index(nxt) :]
                members = frozenset(cycle)
                if members not in reported:
                    reported.add(members)
                    yield _cycle_finding(edges, cycle)
            elif nxt not in state:
                state[nxt] = 1
                trail.append(nxt)
                pending.append(iter(edges.get(nxt, [])))


def _cycle_finding(edges: dict[str, list[str]], cycle: list[str]) -> Finding:
    members = set(cycle)
    first = next(name for name in edges if name in members)
    at = cycle.index(first)
    ordered = [*cycle[at:], *cycle[:at], first]
    message = (
        f"signal {first!r} refers to itself"
        if len(members) == 1
        else "signals form a cycle: " + " -> ".join(ordered)
    )
    return Finding(
        ("spec", "signals", first),
        message,
        "a signal may use only signals that do not use it",
        code="cycle",
    )


def _rule_coherence(spec: Mapping[str, Any], params: Mapping[str, Any]) -> Iterator[Finding]:
    if spec.get("entry_long") is None and spec.get("entry_short") is None:
        yield Finding(
            ("spec",),
            "the strategy never enters a position",
            "give entry_long, entry_short or both",
            code="rules",
        )
    for side in ("long", "short"):
        if spec.get(f"exit_{side}") is not None and spec.get(f"entry_{side}") is None:
            yield Finding(
                ("spec", f"exit_{side}"),
                f"exit_{side} is given but entry_{side} is not",
                f"add entry_{side} or remove exit_{side}",
                code="rules",
                at_key=True,
            )
    sizing = _mapping(spec.get("sizing"))
    stops = _mapping(spec.get("stops"))
    if sizing.get("method") == "risk_per_trade" and stops.get("stop_loss") is None:
        yield Finding(
            ("spec", "sizing", "method"),
            "risk_per_trade sizing needs stops.stop_loss (the risk is the distance to the stop)",
            "add stops.stop_loss or use another sizing method",
            code="rules",
        )
    max_bars = stops.get("max_bars")
    if isinstance(max_bars, str):
        param = _mapping(params.get(max_bars))
        if max_bars not in params:
            hint = did_you_mean(max_bars, set(params)) or "give a number of bars or an int param"
            yield Finding(
                ("spec", "stops", "max_bars"),
                f"unknown param {max_bars!r}",
                hint,
                code="unknown_name",
            )
        elif param.get("type") != "int":
            yield Finding(
                ("spec", "stops", "max_bars"),
                f"the param {max_bars!r} must be of type int",
                code="type",
            )


_STEP_TOLERANCE = 1e-9
"""How far from a whole number of steps a float override may be (rounding in YAML floats)."""


def _defaults_on_grid(params: Mapping[str, Any]) -> Iterator[Finding]:
    """A stepped param's default must be one of its values (min + k * step)."""
    for name, raw in params.items():
        if not isinstance(raw, dict) or raw.get("type") not in ("int", "float"):
            continue  # (a tuple: a mistyped `type` may be a list, which a set cannot hold)
        numbers = [raw.get("min"), raw.get("step"), raw.get("default")]
        values = [
            float(x) for x in numbers if isinstance(x, int | float) and not isinstance(x, bool)
        ]
        if len(values) != len(numbers):
            continue  # the models report missing or mistyped bounds
        low, step, default = values
        if not step > 0:
            continue
        steps = (default - low) / step
        if not math.isfinite(steps):
            continue  # absurd bounds: the models and the bounds checks report them
        if abs(steps - round(steps)) > _STEP_TOLERANCE:
            below = low + math.floor(steps) * step
            yield Finding(
                ("spec", "params", name, "default"),
                f"default {raw['default']} is not one of the param's values: min + k * step "
                f"({raw['min']} + k * {raw['step']})",
                hint=f"use {_plain(below)} or {_plain(below + step)}",
            )


def _plain(value: float) -> str:
    rounded = round(value, 12)
    return str(int(rounded)) if rounded.is_integer() else str(rounded)


def check_param_value(
    param: IntParam | FloatParam | ChoiceParam | BoolParam, value: object
) -> str | None:
    """Why `value` cannot be this param's value, or None when it can (profile overrides)."""
    if isinstance(param, BoolParam):
        return None if isinstance(value, bool) else "Input should be true or false"
    if isinstance(param, ChoiceParam):
        # `True == 1` in Python: compare types too, so `true` is not the choice 1.
        listed = any(
            value == choice and isinstance(value, bool) == isinstance(choice, bool)
            for choice in param.choices
        )
        return None if listed else f"Input should be one of {list(param.choices)}"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "Input should be a number"
    if isinstance(param, IntParam) and not isinstance(value, int):
        return "Input should be a whole number (the param is an int)"
    if not param.min <= value <= param.max:
        return f"Input should be within [{param.min}, {param.max}] (the param's bounds)"
    if param.step is not None:
        steps = (value - param.min) / param.step
        if abs(steps - round(steps)) > _STEP_TOLERANCE:
            return f"Input should be min + k * step ({param.min} + k * {param.step})"
    return None


def check_profile(spec: ProfileSpec) -> Iterator[Finding]:
    """Coherence of a Profile that does not need the files it refers to."""
    total = sum(item.allocation for item in spec.strategies)
    if total > 1 + 1e-9:
        yield Finding(
            ("spec", "strategies"),
            f"allocations add up to {total:g}; they may add up to at most 1",
            "allocation is a fraction of the risk budget's capital",
            code="allocation",
            at_key=True,
        )
    seen: dict[str, int] = {}
    for index, item in enumerate(spec.strategies):
        if item.ref in seen:
            yield Finding(
                ("spec", "strategies", index, "ref"),
                f"{item.ref} is already listed as strategies[{seen[item.ref]}]",
                "merge the entries",
                code="duplicate",
            )
        seen.setdefault(item.ref, index)
    source = spec.data.source
    if spec.mode == "backtest" and source == "live":
        yield Finding(
            ("spec", "data", "source"),
            "a backtest needs history: catalog, synthetic or file",
            code="mode",
        )
    if spec.mode in {"paper", "live"} and source != "live":
        yield Finding(
            ("spec", "data", "source"),
            f"{spec.mode} mode trades on live market data: use source: live",
            code="mode",
        )
    if spec.mode == "live" and spec.venue.credentials is None:
        yield Finding(
            ("spec", "venue"),
            "live mode needs venue.credentials",
            "name the environment variables: credentials: {api_key_env: ..., api_secret_env: ...}",
            code="mode",
            at_key=True,
        )
    if spec.store.url is not None and spec.store.url_env is not None:
        yield Finding(
            ("spec", "store"),
            "give store.url or store.url_env, not both",
            code="store",
            at_key=True,
        )
    names = [schedule.name for schedule in spec.schedules]
    for index, name in enumerate(names):
        if name in names[:index]:
            yield Finding(
                ("spec", "schedules", index, "name"),
                f"the schedule name {name!r} is used twice",
                code="duplicate",
            )
