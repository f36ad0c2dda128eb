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
import re
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
    rewritten = _HTF_RE.sub(lambda m: f"{m.group(1)}{_HTF_MARK}{m.group(2)}", source)
    lead = len(rewritten) - len(rewritten.lstrip())
    stripped_lines = rewritten.strip().splitlines(keepends=True) or [""]
    try:
        # Parenthesised, an expression may span lines (YAML block scalars) at any indentation.
        tree = ast.parse(f"({rewritten.strip()}\n)", mode="eval")
    except SyntaxError as exc:
        column = (exc.offset or 1) - 1 - (1 if exc.lineno in {None, 1} else 0)
        offset = lead + _char_offset(stripped_lines, exc.lineno or 1, max(column, 0), utf8=False)
        raise ExpressionError(f"syntax error: {exc.msg}", offset=min(offset, len(source))) from None
    except (RecursionError, MemoryError):
        raise ExpressionError(
            "the expression is nested too deeply", hint=f"at most {MAX_DEPTH} levels"
        ) from None
    return _check(source, tree, lead)


def _char_offset(lines: list[str], lineno: int, col: int, *, utf8: bool) -> int:
    before = sum(len(line) for line in lines[: lineno - 1])
    current = lines[lineno - 1] if 0 < lineno <= len(lines) else ""
    if utf8:
        col = len(current.encode("utf-8")[:col].decode("utf-8", errors="ignore"))
    return before + col


def _check(source: str, tree: ast.Expression, lead: int) -> ParsedExpression:
    stripped_lines = source.strip().splitlines(keepends=True) or [""]

    def offset_of(node: ast.expr) -> int:
        column = _char_offset(stripped_lines, node.lineno, node.col_offset, utf8=True)
        return lead + column - (1 if node.lineno == 1 else 0)  # the added "("

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
        raise ExpressionError(f"the operator {type(node.op).__name__!r} is not allowed", offset=at)

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
                f"the comparison {type(node.ops[0]).__name__!r} is not allowed",
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
