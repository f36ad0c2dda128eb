"""The safe expression parser: what it accepts, what it refuses, and where it points."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from polytrade.spec import expressions
from polytrade.spec.expressions import (
    MAX_DEPTH,
    MAX_LENGTH,
    CallRef,
    ExpressionError,
    NameRef,
    ParsedExpression,
    parse_expression,
    split_timeframe,
)


def refused(source: str) -> ExpressionError:
    with pytest.raises(ExpressionError) as caught:
        parse_expression(source)
    return caught.value


def outcome(source: str) -> ParsedExpression | ExpressionError:
    """The parsed expression, or the ExpressionError it raised (nothing else is caught)."""
    try:
        return parse_expression(source)
    except ExpressionError as error:
        return error


def names(source: str) -> list[tuple[str, str | None, int]]:
    return [(ref.name, ref.timeframe, ref.offset) for ref in parse_expression(source).names]


# ---------------------------------------------------------------------- accepted grammar


@pytest.mark.parametrize(
    "source",
    [
        "close",
        "close > open",
        "(a + b) * c / d % 2 ** 3 - e",
        "-x + +y",
        "not a and (b or c)",
        "a < b",
        "a <= b",
        "a > b",
        "a >= b",
        "a == b",
        "a != b",
        "True",
        "False",
        "1.5e-3 * x",
        "0x1F + 1_000",
        "ema(close, fast) - ema(close, slow)",
        "cross_above(trend, 0) and htf_up",
        "f()",
        "where(use_basis, prem > 0, True)",
        "abs(pct_change(close, 72)) < max_trend",
        "ema(close@4h, 50) > ema(close@4h, 200)",
        "ema(close, fast)\n  > ema(close, slow)\n",
        "   close   ",
        "a # a comment at the end",
        "(a\n  # a comment on its own line\n  + b)",
    ],
)
def test_accepted_grammar(source: str) -> None:
    parsed = parse_expression(source)
    assert isinstance(parsed, ParsedExpression)
    assert parsed.source == source


def test_names_are_listed_in_source_order_with_offsets() -> None:
    assert names("ema(close, fast) - ema(close, slow)") == [
        ("close", None, 4),
        ("fast", None, 11),
        ("close", None, 23),
        ("slow", None, 30),
    ]


def test_calls_are_listed_with_name_arity_and_offset_and_are_not_names() -> None:
    parsed = parse_expression("ema(close, 20) + f() + g(h(x), 1, 2)")
    assert parsed.calls == (
        CallRef("ema", 2, 0),
        CallRef("f", 0, 17),
        CallRef("g", 3, 23),
        CallRef("h", 1, 25),
    )
    assert [ref.name for ref in parsed.names] == ["close", "x"]


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("close@4h", [("close", "4h", 0)]),
        ("volume@1d / volume", [("volume", "1d", 0), ("volume", None, 12)]),
        ("ema(close@4h, 50)", [("close", "4h", 4)]),
        ("x@15m", [("x", "15m", 0)]),  # which names may take a timeframe is semantics' call
    ],
)
def test_a_name_with_a_higher_timeframe_is_one_name(
    source: str, expected: list[tuple[str, str | None, int]]
) -> None:
    assert names(source) == expected


def test_names_after_a_higher_timeframe_name_keep_their_own_offsets() -> None:
    source = "ema(close@4h, 50) > ema(close@4h, slowx) + close@1d + zz"
    parsed = parse_expression(source)
    for ref in parsed.names:
        assert source[ref.offset :].startswith(ref.name)
    for call in parsed.calls:
        assert source[call.offset :].startswith(call.name)
    assert [ref.offset for ref in parsed.names] == [4, 24, 34, 43, 54]


def test_offsets_count_characters_not_utf8_bytes() -> None:
    assert names("a + \u00e9t\u00e9 + b") == [
        ("a", None, 0),
        ("\u00e9t\u00e9", None, 4),
        ("b", None, 10),
    ]
    assert names("\u00e9") == [("\u00e9", None, 0)]


@pytest.mark.parametrize(
    ("identifier", "expected"),
    [
        ("close\u01c24h", ("close", "4h")),
        ("close", ("close", None)),
        ("fast_ema", ("fast_ema", None)),
    ],
)
def test_split_timeframe(identifier: str, expected: tuple[str, str | None]) -> None:
    assert split_timeframe(identifier) == expected


def test_name_ref_is_a_plain_value() -> None:
    assert parse_expression("close@4h").names == (NameRef("close", "4h", 0),)


# ---------------------------------------------------------------------- refused constructs


@pytest.mark.parametrize(
    ("source", "message", "offset"),
    [
        ("x.y", "attribute access is not allowed", 0),
        ("a + x[1]", "indexing is not allowed", 4),
        ("a[1:2]", "indexing is not allowed", 0),
        ("lambda: 1", "lambda is not allowed", 0),
        ("a if b else c", "'a if c else b' is not allowed", 0),
        ("[x for x in y]", "comprehensions are not allowed", 0),
        ("f(x for x in y)", "comprehensions are not allowed", 1),
        ("{x for x in y}", "comprehensions are not allowed", 0),
        ("{x: 1 for x in y}", "comprehensions are not allowed", 0),
        ("[1, 2]", "lists are not allowed", 0),
        ("a + (1, 2)", "tuples are not allowed", 4),
        ("{1: 2}", "mappings are not allowed", 0),
        ("{1}", "sets are not allowed", 0),
        ("'text'", "strings are not allowed", 0),
        ('a == "b"', "strings are not allowed", 5),
        ("f'{x}'", "strings are not allowed", 0),
        ("b'x'", "bytes values are not allowed", 0),
        ("None", "NoneType values are not allowed", 0),
        ("1j", "complex values are not allowed", 0),
        ("(y := 1)", "assignment (:=) is not allowed", 1),
        ("f(*x)", "*arguments are not allowed", 2),
        ("f(x, n=3)", "keyword arguments are not allowed", 0),
        ("f(**k)", "keyword arguments are not allowed", 0),
        ("a < b < c", "chained comparisons are not allowed", 0),
        ("a is b", "the comparison 'is' is not allowed", 0),
        ("a is not b", "the comparison 'is not' is not allowed", 0),
        ("a in b", "the comparison 'in' is not allowed", 0),
        ("a not in b", "the comparison 'not in' is not allowed", 0),
        ("a // b", "the operator '//' is not allowed", 0),
        ("a << b", "the operator '<<' is not allowed", 0),
        ("a >> b", "the operator '>>' is not allowed", 0),
        ("a & b", "the operator '&' is not allowed", 0),
        ("a | b", "the operator '|' is not allowed", 0),
        ("a ^ b", "the operator '^' is not allowed", 0),
        ("~a", "bitwise '~' is not allowed", 0),
        ("a @ b", "the operator '@' is not allowed", 0),
        ("_x", "names starting with '_' are not allowed: '_x'", 0),
        ("x + _y", "names starting with '_' are not allowed: '_y'", 4),
        ("__import__('os')", "names starting with '_' are not allowed: '__import__'", 0),
        ("f(__builtins__)", "names starting with '_' are not allowed: '__builtins__'", 2),
        ("f(x)(y)", "only operators can be called, e.g. ema(close, 20)", 0),
        ("x.y(1)", "only operators can be called, e.g. ema(close, 20)", 0),
        ("ema@4h(close)", "an operator name cannot take a timeframe", 0),
        ("await x", "await is not allowed", 0),
        ("(yield)", "yield is not allowed", 1),
        ("close\u01c24h", "the character '\u01c2' is not allowed", 5),
    ],
)
def test_refused_construct_names_what_is_wrong_and_where(
    source: str, message: str, offset: int
) -> None:
    error = refused(source)
    assert error.message == message
    assert error.offset == offset
    assert str(error) == message


@pytest.mark.parametrize(
    ("source", "hint"),
    [
        ("a[1]", "lag(x, n)"),
        ("a if b else c", "where(c, a, b)"),
        ("a < b < c", "a < b and b < c"),
        ("a @ b", "close@4h"),
        ("~a", "not"),
        ("f(x, n=3)", "by position"),
        ("a is b", "< <= > >= == !="),
        ("'x'", "numbers, params or series"),
    ],
)
def test_refusals_come_with_a_hint_towards_what_is_allowed(source: str, hint: str) -> None:
    assert hint in refused(source).hint


@pytest.mark.parametrize("source", ["close@", "close@ 4h", "close @4h", "@4h"])
def test_at_sign_without_a_timeframe_right_after_a_name_is_refused(source: str) -> None:
    error = refused(source)
    assert error.message.startswith("syntax error")
    assert 0 <= error.offset <= len(source)


@pytest.mark.parametrize("source", ["", "   ", "\n\t\n"])
def test_an_empty_expression_is_refused(source: str) -> None:
    error = refused(source)
    assert error.message == "the expression is empty"
    assert error.offset == 0


@pytest.mark.parametrize("source", ["# just a comment", "  # indented comment", "\\"])
def test_a_comment_only_expression_is_reported_as_empty(source: str) -> None:
    error = refused(source)
    assert error.message == "the expression is empty"
    assert 0 <= error.offset <= len(source)


def test_a_bare_tuple_is_refused_at_its_first_element() -> None:
    error = refused("a, b")
    assert error.message == "tuples are not allowed"
    assert error.offset == 0


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("a b", "syntax error"),
        ("a +", "syntax error"),
        ("(a", "syntax error: '(' was never closed"),
        ("a)", "syntax error: unmatched ')'"),
        ("a) + (b", "syntax error: unmatched ')'"),
        ("a)(b", "syntax error: unmatched ')'"),
        ("1 +* 2", "syntax error"),
        ("a\x00b", "not allowed"),
    ],
)
def test_syntax_errors_are_expression_errors_inside_the_source(source: str, message: str) -> None:
    error = refused(source)
    assert message in error.message
    assert 0 <= error.offset <= len(source)


def test_an_unmatched_parenthesis_is_blamed_where_it_stands() -> None:
    assert refused("a) + (b").offset == 1


# ---------------------------------------------------------------------- offsets


@pytest.mark.parametrize(
    ("source", "culprit"),
    [
        ("  x.y", "x.y"),
        ("\n\n   _hidden", "_hidden"),
        ("a +\n  b.c", "b.c"),
        ("ema(close,\n    fast) + x[0]", "x[0]"),
        ("a + b +\n  c +\n  d.e", "d.e"),
        ("a +\r\n  b.c", "b.c"),
        ("cross_above(trend, 0)\n  and not\n    f(n=1)", "f(n=1)"),
        ("close@4h + close@1d +\n  x.y", "x.y"),
        ("\u00e9 + \u00e9.x", "\u00e9.x"),
        ("a\n  # comment\n  + _c", "_c"),
    ],
)
def test_offset_points_at_the_offending_character(source: str, culprit: str) -> None:
    assert refused(source).offset == source.index(culprit)


def test_syntax_error_offset_points_into_a_later_line() -> None:
    source = "ema(close, fast)\n  > > ema(close, slow)"
    error = refused(source)
    assert error.offset == source.index("> >") + 2


# ---------------------------------------------------------------------- limits

DEEP_SHAPES = {
    "parentheses": lambda n: "(" * n + "x" + ")" * n,
    "unary minus": lambda n: "-" * n + "x",
    "not": lambda n: "not " * n + "x",
    "calls": lambda n: "f(" * n + "x" + ")" * n,
    "sums": lambda n: "a+" * n + "a",
    "powers": lambda n: "a**" * n + "a",
}


@pytest.mark.parametrize("shape", DEEP_SHAPES)
def test_ten_thousand_deep_nesting_is_an_expression_error(shape: str) -> None:
    refused(DEEP_SHAPES[shape](10_000))


@pytest.mark.parametrize("shape", DEEP_SHAPES)
def test_the_depth_guard_holds_without_the_length_limit(
    shape: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(expressions, "MAX_LENGTH", 10_000_000)
    refused(DEEP_SHAPES[shape](10_000))


def test_nesting_deeper_than_the_limit_is_refused_with_the_limit_in_the_hint() -> None:
    error = refused("-" * (MAX_DEPTH + 5) + "x")
    assert error.message == "the expression is nested too deeply"
    assert str(MAX_DEPTH) in error.hint


def test_nesting_within_the_limit_is_accepted() -> None:
    parse_expression("-" * (MAX_DEPTH - 2) + "x")
    parse_expression("f(" * 30 + "x" + ")" * 30)


@pytest.mark.parametrize("source", ["x" * 10_000, "a + " * 2_500 + "a", " " * 9_999 + "x"])
def test_ten_thousand_characters_are_an_expression_error(source: str) -> None:
    error = refused(source)
    assert f"{len(source):,} characters" in error.message
    assert f"{MAX_LENGTH:,}" in error.message


def test_an_expression_at_the_length_limit_is_accepted() -> None:
    source = "f(" + ", ".join(["a"] * ((MAX_LENGTH - 3) // 3)) + ")"
    assert MAX_LENGTH - 10 < len(source) <= MAX_LENGTH
    parse_expression(source)


@pytest.mark.parametrize("source", ["1and x", "0x1for x", "'\\d' == x", "1(2)"])
def test_parsing_never_emits_python_warnings(source: str) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        outcome(source)
    assert [str(warning.message) for warning in caught] == []


# ---------------------------------------------------------------------- properties

TOKENS = st.sampled_from(
    [
        *"abxyz_019 ()+-*/%<>=!@.,:;~&|^#\\'\"[]{}\n\t\r",
        "\x0c",
        "\x00",
        "\u00e9",
        "\u2028",
        "\u3000",
        "\u01c2",
        "close@4h",
        "@4h",
        "and ",
        "or ",
        "not ",
        "lambda ",
        "if ",
        "else ",
        "ema(",
        "__import__",
        "**",
        "//",
    ]
)
ANY_TEXT = st.one_of(st.text(max_size=200), st.lists(TOKENS, max_size=40).map("".join))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ANY_TEXT)
def test_arbitrary_text_returns_or_raises_expression_error_only(source: str) -> None:
    result = outcome(source)  # anything but ExpressionError propagates and fails the test
    if isinstance(result, ExpressionError):
        assert result.message
    else:
        assert result.source == source


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ANY_TEXT)
@example("# comment")
@example("a, b")
@example("\u00e9|0")
@example(")(")
def test_error_offsets_always_point_inside_the_source(source: str) -> None:
    result = outcome(source)
    if isinstance(result, ExpressionError):
        assert 0 <= result.offset <= len(source)


@dataclass(frozen=True)
class Piece:
    """Generated expression text with the names it contains at their offsets."""

    text: str
    refs: tuple[tuple[int, str, str | None], ...] = ()


def join(*parts: Piece | str) -> Piece:
    text, refs = "", []
    for part in parts:
        if isinstance(part, str):
            text += part
            continue
        refs += [(offset + len(text), name, timeframe) for offset, name, timeframe in part.refs]
        text += part.text
    return Piece(text, tuple(refs))


GAP = st.sampled_from(["", " ", "  ", "\n", "\n    ", " \n  "])
NAME = st.sampled_from(["a", "b2", "close", "fast", "trend", "htf_up", "volume", "x"]).map(
    lambda name: Piece(name, ((0, name, None),))
)
HIGHER = st.tuples(
    st.sampled_from(["close", "high", "volume"]), st.sampled_from(["4h", "1d", "15m"])
).map(lambda pair: Piece(f"{pair[0]}@{pair[1]}", ((0, pair[0], pair[1]),)))
NUMBER = st.one_of(
    st.integers(0, 10**6).map(str),
    st.floats(0, 1e6, allow_nan=False, allow_infinity=False).map(repr),
    st.sampled_from(["True", "False"]),
).map(Piece)


def _compound(children: st.SearchStrategy[Piece]) -> st.SearchStrategy[Piece]:
    binary = st.tuples(
        children,
        GAP,
        st.sampled_from(["+", "-", "*", "/", "%", "**", "<", "<=", ">", ">=", "==", "!="]),
        GAP,
        children,
    ).map(lambda t: join("(", t[0], t[1], t[2], t[3], t[4], ")"))
    boolean = st.tuples(children, st.sampled_from(["and", "or"]), GAP, children).map(
        lambda t: join("(", t[0], f" {t[1]} ", t[2], t[3], ")")
    )
    unary = st.tuples(st.sampled_from(["-", "+", "not "]), children).map(
        lambda t: join("(", t[0], t[1], ")")
    )
    call = st.tuples(
        st.sampled_from(["ema", "f", "cross_above", "where"]),
        st.lists(st.tuples(GAP, children), max_size=3),
    ).map(
        lambda t: join(
            t[0],
            "(",
            *[
                part
                for index, (gap, arg) in enumerate(t[1])
                for part in ((", " if index else ""), gap, arg)
            ],
            ")",
        )
    )
    return st.one_of(binary, boolean, unary, call)


VALID = st.tuples(
    st.sampled_from(["", " ", "\n  "]),
    st.recursive(st.one_of(NAME, HIGHER, NUMBER), _compound, max_leaves=25),
    st.sampled_from(["", " ", "\n"]),
).map(lambda t: join(t[0], t[1], t[2]))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(VALID)
def test_generated_valid_expressions_parse_and_every_name_offset_points_at_that_name(
    piece: Piece,
) -> None:
    parsed = parse_expression(piece.text)
    found = [(ref.offset, ref.name, ref.timeframe) for ref in parsed.names]
    assert found == sorted(piece.refs)
    for ref in parsed.names:
        written = ref.name if ref.timeframe is None else f"{ref.name}@{ref.timeframe}"
        assert piece.text[ref.offset : ref.offset + len(written)] == written
