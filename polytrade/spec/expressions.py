"""The safe parser for strategy expressions such as `ema(close, fast) > ema(close@4h, 50)`.

Expressions are parsed with `ast.parse(mode="eval")` and every node is checked against a
whitelist; nothing is ever evaluated. What may appear:

- numbers, `True`, `False`; names of bar fields, params and other signals;
- a bar field at a higher timeframe, `close@4h` (aligned to the last CLOSED higher bar);
- `+ - * / % **`, unary `-` and `not`, `and`, `or`, one comparison at a time
  (`< <= > >= == !=`);
- operator calls with positional arguments, `ema(close, 20)`.

This module checks syntax only. Which names exist is decided by the strategy (see
`polytrade.spec.semantics`); which operators exist and their types by `polytrade.compile`.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Callable

MAX_LENGTH: Final = 2000
"""Characters in one expression."""
MAX_DEPTH: Final = 64
"""Nesting depth of one expression's syntax tree."""

FIELDS: Final[dict[str, str]] = {
    "open": "bar open price (USDT per coin)",
    "high": "bar high price (USDT per coin)",
    "low": "bar low price (USDT per coin)",
    "close": "bar close price (USDT per coin)",
    "volume": "bar volume (coins)",
    "funding_rate": "funding rate of the current interval (fraction per interval, e.g. 0.0001)",
    "mark_price": "mark price at bar close (USDT per coin)",
    "index_price": "index price at bar close (USDT per coin)",
}
"""Bar fields an expression may read, with their units."""

_HTF_MARK: Final = "\u01c2"  # a letter, so `close@4h` becomes one identifier of the same length
_HTF_RE: Final = re.compile(r"(?<![\w.])([A-Za-z_]\w*)@(\w+)")
_PY_LINE: Final = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+$")

_BINOPS: Final = {
    ast.Add: "+",
    ast.Sub: "-",
    ast.Mult: "*",
    ast.Div: "/",
    ast.Mod: "%",
    ast.Pow: "**",
}
_COMPARES: Final = (ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.Eq, ast.NotEq)
_REFUSED: Final[dict[type[ast.AST], tuple[str, str]]] = {
    ast.Attribute: (
        "attribute access is not allowed",
        "expressions read only series, params and operators",
    ),
    ast.Subscript: ("indexing is not allowed", "use lag(x, n) for the value n bars ago"),
    ast.Lambda: ("lambda is not allowed", "define a named signal instead"),
    ast.IfExp: ("'a if c else b' is not allowed", "use where(c, a, b)"),
    ast.ListComp: ("comprehensions are not allowed", ""),
    ast.GeneratorExp: ("comprehensions are not allowed", ""),
    ast.SetComp: ("comprehensions are not allowed", ""),
    ast.DictComp: ("comprehensions are not allowed", ""),
    ast.List: ("lists are not allowed", ""),
    ast.Tuple: ("tuples are not allowed", "an operator takes its arguments directly: f(a, b)"),
    ast.Dict: ("mappings are not allowed", ""),
    ast.Set: ("sets are not allowed", ""),
    ast.NamedExpr: ("assignment (:=) is not allowed", "define a named signal instead"),
    ast.Starred: ("*arguments are not allowed", ""),
    ast.JoinedStr: ("strings are not allowed", ""),
    ast.Await: ("await is not allowed", ""),
    ast.Yield: ("yield is not allowed", ""),
    ast.YieldFrom: ("yield is not allowed", ""),
}


_SYMBOLS: Final[dict[type[ast.AST], str]] = {
    ast.FloorDiv: "//",
    ast.LShift: "<<",
    ast.RShift: ">>",
    ast.BitAnd: "&",
    ast.BitOr: "|",
    ast.BitXor: "^",
    ast.MatMult: "@",
    ast.Is: "is",
    ast.IsNot: "is not",
    ast.In: "in",
    ast.NotIn: "not in",
}
"""How users wrote the operators the language refuses."""


class ExpressionError(ValueError):
    """A syntax problem in an expression, at a 0-based character `offset` into its source."""

    def __init__(self, message: str, offset: int = 0, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.offset = offset
        self.hint = hint


@dataclass(frozen=True, slots=True)
class NameRef:
    """A name read by an expression; `timeframe` is set for `close@4h`."""

    name: str
    timeframe: str | None
    offset: int
    """0-based character offset of the name in the expression's source."""


@dataclass(frozen=True, slots=True)
class CallRef:
    """An operator call in an expression: its name, how many arguments, where it starts."""

    name: str
    arity: int
    offset: int


@dataclass(frozen=True, slots=True)
class ParsedExpression:
    """A checked expression: the syntax tree plus every name and call it contains."""

    source: str
    tree: ast.Expression
    names: tuple[NameRef, ...]
    calls: tuple[CallRef, ...]


def split_timeframe(identifier: str) -> tuple[str, str | None]:
    """`closeǂ4h` (as the parser sees `close@4h`) -> (`close`, `4h`); other names unchanged."""
    if _HTF_MARK in identifier:
        name, _, timeframe = identifier.partition(_HTF_MARK)
        return name, timeframe
    return identifier, None


def parse_expression(source: str) -> ParsedExpression:
    """Parse and whitelist-check one expression. Raises ExpressionError, never anything else."""
    if not source.strip():
        raise ExpressionError("the expression is empty")
    if len(source) > MAX_LENGTH:
        raise ExpressionError(
            f"the expression is {len(source):,} characters long; the limit is {MAX_LENGTH:,}",
            hint="split it into named signals",
        )
    if _HTF_MARK in source:
        raise ExpressionError(
            f"the character {_HTF_MARK!r} is not allowed", offset=source.index(_HTF_MARK)
        )
    if "\x00" in source:
        raise ExpressionError("the character '\\x00' is not allowed", offset=source.index("\x00"))
    # `close@4h` -> `closeǂ4h`: one character for another, so character offsets still match.
    rewritten = _HTF_RE.sub(lambda m: f"{m.group(1)}{_HTF_MARK}{m.group(2)}", source)
    lead = len(rewritten) - len(rewritten.lstrip())
    stripped = rewritten.strip()
    # Parenthesised, an expression may span lines (YAML block scalars) at any indentation.
    wrapped = f"({stripped}\n)"
    try:
        tree = _parse(wrapped)
    except SyntaxError as exc:
        raise _syntax_error(exc, stripped, lead, len(source)) from None
    except (RecursionError, MemoryError):
        raise ExpressionError(
            "the expression is nested too deeply", hint=f"at most {MAX_DEPTH} levels"
        ) from None
    if isinstance(tree.body, ast.Tuple) and not tree.body.elts:
        # Only a comment or a line continuation: the added parentheses alone make `()`.
        raise ExpressionError("the expression is empty")
    if tree.body.lineno == 1 and tree.body.col_offset == 0:
        # The added "(" became part of the expression: the text closes a parenthesis it never
        # opened, as in `a) + (b`, which must not pass as `(a) + (b)`.
        unmatched = _unmatched_close(stripped)
        if unmatched is not None:
            raise ExpressionError("syntax error: unmatched ')'", offset=lead + unmatched)
    return _check(source, wrapped, tree, lead)


def _syntax_error(exc: SyntaxError, stripped: str, lead: int, length: int) -> ExpressionError:
    """The ExpressionError for a SyntaxError raised on the parenthesised text, well placed."""
    error, wrapped = exc, True
    in_wrapper = (exc.lineno or 1) > 1 or (exc.offset or 1) <= 1
    if in_wrapper and len(_lines(stripped)) == 1:
        # Python blames the parentheses added around the text (e.g. for an unmatched ")"):
        # without them a one-line expression shows where the error really is.
        try:
            _parse(stripped)
        except SyntaxError as bare:
            if bare.lineno == 1 and 1 <= (bare.offset or 0) <= len(stripped):
                error, wrapped = bare, False
    parsed = f"({stripped}\n)" if wrapped else stripped
    # SyntaxError counts characters from 1; the added "(" shifts everything by one more.
    column = _char_offset(_lines(parsed), error.lineno or 1, (error.offset or 1) - 1, utf8=False)
    offset = lead + max(column - (1 if wrapped else 0), 0)
    return ExpressionError(
        f"syntax error: {error.msg}", offset=min(offset, length), hint=_syntax_hint(stripped)
    )


def _syntax_hint(text: str) -> str:
    """What the usual mistakes behind a syntax error look like, and how to write them."""
    if re.search(r"\)\s*@", text):
        return "only bar fields take a timeframe: write ema(close@4h, 20), not ema(close, 20)@4h"
    if re.search(r"[0-9.]\s*%(?!\s*[\w(])", text):
        return "write percentages as fractions: 0.05, not 5%"
    if re.search(r"(?<![<>=!])=(?!=)", text):
        return "compare with ==; expressions cannot assign"
    if "&&" in text or "||" in text:
        return "write 'and' / 'or'"
    return ""


def _parse(text: str) -> ast.Expression:
    with warnings.catch_warnings():
        # Python warns about some code it still compiles (an invalid escape in a string, a
        # literal called like a function); the whitelist refuses those with a message of its
        # own, so the warning must neither be printed nor, under -W error, become an error.
        warnings.simplefilter("ignore")
        return ast.parse(text, mode="eval")


def _unmatched_close(text: str) -> int | None:
    """Character offset of the first closing bracket in `text` that closes nothing."""
    depth = 0
    try:
        for token in tokenize.generate_tokens(io.StringIO(text).readline):
            if token.type != tokenize.OP or token.string not in "()[]{}":
                continue
            depth += 1 if token.string in "([{" else -1
            if depth < 0:
                return _char_offset(_lines(text), token.start[0], token.start[1], utf8=False)
    except (tokenize.TokenError, SyntaxError):
        return None
    return None


def _lines(text: str) -> list[str]:
    """Lines with their ends, as Python's tokenizer counts them (str.splitlines counts more)."""
    return _PY_LINE.findall(text) or [""]


def _char_offset(lines: list[str], lineno: int, col: int, *, utf8: bool) -> int:
    before = sum(len(line) for line in lines[: lineno - 1])
    current = lines[lineno - 1] if 0 < lineno <= len(lines) else ""
    if utf8:
        col = len(current.encode("utf-8")[:col].decode("utf-8", errors="ignore"))
    return before + col


def _check(source: str, parsed: str, tree: ast.Expression, lead: int) -> ParsedExpression:
    # Column offsets count UTF-8 bytes of the parsed text, where `ǂ` takes two bytes and the
    # `@` it replaces one: convert them on the parsed text itself.
    parsed_lines = _lines(parsed)

    def offset_of(node: ast.expr) -> int:
        column = _char_offset(parsed_lines, node.lineno, node.col_offset, utf8=True)
        return lead + max(column - 1, 0)  # the added "(" (a tuple starts at it)

    checker = _Whitelist(offset_of)
    stack: list[tuple[ast.expr, int]] = [(tree.body, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise ExpressionError(
                "the expression is nested too deeply",
                offset=offset_of(node),
                hint=f"at most {MAX_DEPTH} levels; split it into named signals",
            )
        checker.check(node)
        children = node.args if isinstance(node, ast.Call) else ast.iter_child_nodes(node)
        stack.extend((child, depth + 1) for child in children if isinstance(child, ast.expr))
    names = tuple(sorted(checker.names, key=lambda ref: ref.offset))
    calls = tuple(sorted(checker.calls, key=lambda ref: ref.offset))
    return ParsedExpression(source, tree, names, calls)


class _Whitelist:
    """Accepts a node only if a `visit_<NodeType>` method exists for it and passes."""

    def __init__(self, offset_of: Callable[[ast.expr], int]) -> None:
        self.offset_of = offset_of
        self.names: list[NameRef] = []
        self.calls: list[CallRef] = []

    def check(self, node: ast.expr) -> None:
        at = self.offset_of(node)
        visit = getattr(self, f"visit_{type(node).__name__}", None)
        if visit is None:
            message, hint = _REFUSED.get(type(node), (f"{type(node).__name__} is not allowed", ""))
            raise ExpressionError(message, offset=at, hint=hint)
        visit(node, at)

    def visit_Constant(self, node: ast.Constant, at: int) -> None:  # noqa: N802 - ast names
        if not isinstance(node.value, bool | int | float):
            kind = (
                "strings" if isinstance(node.value, str) else f"{type(node.value).__name__} values"
            )
            raise ExpressionError(
                f"{kind} are not allowed", offset=at, hint="use numbers, params or series"
            )

    def visit_Name(self, node: ast.Name, at: int) -> None:  # noqa: N802
        _check_name(node.id, at)
        name, timeframe = split_timeframe(node.id)
        self.names.append(NameRef(name, timeframe, at))

    def visit_BinOp(self, node: ast.BinOp, at: int) -> None:  # noqa: N802
        if type(node.op) in _BINOPS:
            return
        if isinstance(node.op, ast.MatMult):
            raise ExpressionError(
                "the operator '@' is not allowed",
                offset=at,
                hint="write a higher timeframe as field@timeframe, e.g. close@4h",
            )
        symbol = _SYMBOLS.get(type(node.op), type(node.op).__name__)
        hint = "use 'and' / 'or' for conditions" if symbol in {"&", "|", "^"} else ""
        raise ExpressionError(f"the operator {symbol!r} is not allowed", offset=at, hint=hint)

    def visit_UnaryOp(self, node: ast.UnaryOp, at: int) -> None:  # noqa: N802
        if not isinstance(node.op, ast.USub | ast.UAdd | ast.Not):
            raise ExpressionError("bitwise '~' is not allowed", offset=at, hint="use 'not'")

    def visit_BoolOp(self, node: ast.BoolOp, at: int) -> None:  # noqa: N802
        del node, at  # `and` / `or` are always fine; their operands are checked on their own

    def visit_Compare(self, node: ast.Compare, at: int) -> None:  # noqa: N802
        if len(node.ops) > 1:
            raise ExpressionError(
                "chained comparisons are not allowed", offset=at, hint="write 'a < b and b < c'"
            )
        if not isinstance(node.ops[0], _COMPARES):
            raise ExpressionError(
                f"the comparison {_SYMBOLS.get(type(node.ops[0]), type(node.ops[0]).__name__)!r} "
                "is not allowed",
                offset=at,
                hint="use < <= > >= == !=",
            )

    def visit_Call(self, node: ast.Call, at: int) -> None:  # noqa: N802
        if not isinstance(node.func, ast.Name):
            raise ExpressionError("only operators can be called, e.g. ema(close, 20)", offset=at)
        if node.keywords:
            raise ExpressionError(
                "keyword arguments are not allowed", offset=at, hint="pass arguments by position"
            )
        _check_name(node.func.id, at)
        if split_timeframe(node.func.id)[1] is not None:
            raise ExpressionError("an operator name cannot take a timeframe", offset=at)
        self.calls.append(CallRef(node.func.id, len(node.args), at))


def _check_name(identifier: str, at: int) -> None:
    if identifier.startswith("_"):
        raise ExpressionError(
            f"names starting with '_' are not allowed: {identifier!r}",
            offset=at,
            hint="such names reach Python internals",
        )
