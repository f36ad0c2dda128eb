"""Safe YAML reading that remembers where every key and value came from.

PyYAML's default loaders accept duplicate keys (the last one silently wins), construct Python
objects from tags, expand aliases without limit and resolve YAML 1.1 booleans such as `no`
(the Norway problem). This module composes the node graph with PyYAML's C parser when it is
available and converts it to plain data itself, so that:

- only YAML 1.2 core scalars exist (null, true/false, int, float, str); `yes`, `on` and dates
  stay strings, and pydantic decides what they mean;
- every tag other than the core ones (for example `!!python/object`) is refused;
- duplicate keys, non-scalar keys, tabs used for indentation and alias bombs are reported as
  issues on their line instead of being accepted or crashing;
- the 1-based line and column of every key and every value is kept by its field path, so a
  later validation error can point at the exact place in the file.
"""

from __future__ import annotations

import codecs
import importlib
import re
import stat
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from polytrade.errors import SpecIssue

if TYPE_CHECKING:
    from pathlib import Path

MAX_FILE_BYTES: Final = 1024 * 1024
"""A spec larger than this (1 MiB) is refused before it is parsed."""
MAX_NODES: Final = 50_000
"""Nodes after alias expansion; a billion-laughs document stops here."""
MAX_ALIAS_USES: Final = 200
"""How many times aliases may be dereferenced in one document."""
MAX_DEPTH: Final = 100
"""Nesting levels of mappings and lists; a spec needs fewer than ten. Deeper documents would
exhaust Python's recursion limit here and in the checks that walk the data."""

Path_ = tuple[str | int, ...]

_CORE = "tag:yaml.org,2002:"
_STR, _INT, _FLOAT, _BOOL, _NULL = (_CORE + t for t in ("str", "int", "float", "bool", "null"))
_MAP, _SEQ = _CORE + "map", _CORE + "seq"
_ALLOWED_TAGS: Final = frozenset({_STR, _INT, _FLOAT, _BOOL, _NULL, _MAP, _SEQ})
_LINE_BREAK: Final = re.compile("\r\n|[\r\n\x85\u2028\u2029]")
_PLAIN_KEY: Final = re.compile(r"[^\s.\[\]'\"\\]+")


class _CoreResolver(yaml.resolver.BaseResolver):
    """Implicit scalar types of the YAML 1.2 core schema, and nothing else."""


_CORE_SCALARS: Final = {
    _BOOL: re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    _INT: re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"),
    _FLOAT: re.compile(
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    _NULL: re.compile(r"^(?:~|null|Null|NULL|)$"),
}
"""The YAML 1.2 core schema's scalar forms; an explicit tag must match its form too."""
_FIRST_CHARACTERS: Final = {
    _BOOL: list("tTfF"),
    _INT: list("-+0123456789"),
    _FLOAT: list("-+.0123456789"),
    _NULL: ["~", "n", "N", ""],
}
for _tag, _pattern in _CORE_SCALARS.items():
    _CoreResolver.add_implicit_resolver(_tag, _pattern, _FIRST_CHARACTERS[_tag])


def _libyaml_parser() -> Any:
    # libyaml's parser is about ten times faster; pure-Python builds of PyYAML lack it.
    try:
        return importlib.import_module("yaml.cyaml").CParser
    except (ImportError, AttributeError):  # pragma: no cover
        return None


_CParser: Any = _libyaml_parser()

if _CParser is not None:

    class _Composer(_CParser, _CoreResolver):  # type: ignore[misc]
        """Composes nodes with libyaml and resolves scalars with the core schema."""

        def __init__(self, stream: str) -> None:
            _CParser.__init__(self, stream)
            _CoreResolver.__init__(self)

else:  # pragma: no cover - PyYAML wheels ship libyaml; this keeps source builds working

    class _Composer(  # type: ignore[no-redef]
        yaml.reader.Reader,
        yaml.scanner.Scanner,
        yaml.parser.Parser,
        yaml.composer.Composer,
        _CoreResolver,
    ):
        def __init__(self, stream: str) -> None:
            yaml.reader.Reader.__init__(self, stream)
            yaml.scanner.Scanner.__init__(self)
            yaml.parser.Parser.__init__(self)
            yaml.composer.Composer.__init__(self)
            _CoreResolver.__init__(self)


@dataclass(frozen=True, slots=True)
class Position:
    """A 1-based line and column in a file, with the scalar style when the node is a scalar."""

    line: int
    column: int
    style: str | None = None
    """None for plain scalars, `'` or `"` for quoted ones, `|` or `>` for block scalars."""


@dataclass(slots=True)
class YamlDocument:
    """Plain data read from one YAML file, with the position of every key and value."""

    file: str
    data: Any
    keys: dict[Path_, Position] = field(default_factory=dict)
    """Where the key of the entry at a path stands (for sequence items: the item itself)."""
    values: dict[Path_, Position] = field(default_factory=dict)
    """Where the value at a path starts."""
    issues: list[SpecIssue] = field(default_factory=list)
    """Problems found while reading (duplicate keys, forbidden tags); data is still usable."""
    lines: list[str] = field(default_factory=list)
    """The file's text by line, to place positions inside block scalars."""

    def locate(self, path: Path_, *, key: bool = False) -> Position:
        """The position of `path`, or of its nearest located ancestor."""
        table = self.keys if key else self.values
        probe = path
        while probe:
            if probe in table:
                return table[probe]
            if probe in self.values:
                return self.values[probe]
            probe = probe[:-1]
        return self.values.get((), Position(1, 1))


class YamlFatalError(Exception):
    """The file could not be read as YAML at all; `issues` says where and why."""

    def __init__(self, issues: list[SpecIssue]) -> None:
        self.issues = issues
        super().__init__("; ".join(issue.render() for issue in issues))


def split_lines(text: str) -> list[str]:
    """The lines of `text` as YAML counts them: str.splitlines also splits at form feeds."""
    return _LINE_BREAK.split(text)


def format_path(path: Path_) -> str:
    """`('spec', 'strategies', 0, 'ref')` -> `spec.strategies[0].ref`.

    A key that is not a plain word (spaces, line breaks, dots, quotes) is quoted, as in
    `spec.params['my param']`, so that a path stays one unambiguous line.
    """
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif not _PLAIN_KEY.fullmatch(part):
            out += f"[{part!r}]"
        else:
            out += f".{part}" if out else part
    return out


def read_yaml(path: Path, display: str) -> YamlDocument:
    """Read one spec file safely; raises YamlFatalError when nothing usable can be read.

    `display` is the file name to print in messages (usually relative to the working folder).
    """
    try:
        info = path.stat()
    except OSError as exc:
        raise YamlFatalError(
            [_issue(display, 1, 1, f"cannot read the file: {exc.strerror}")]
        ) from exc
    if not stat.S_ISREG(info.st_mode):
        what = "it is a folder" if stat.S_ISDIR(info.st_mode) else "it is not a regular file"
        raise YamlFatalError([_issue(display, 1, 1, f"cannot read the file: {what}")])
    if info.st_size > MAX_FILE_BYTES:
        raise YamlFatalError([_too_large(display, f"{info.st_size:,} bytes")])
    try:
        with path.open("rb") as handle:
            # Bounded: the file may have grown since it was measured.
            raw = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise YamlFatalError(
            [_issue(display, 1, 1, f"cannot read the file: {exc.strerror}")]
        ) from exc
    if len(raw) > MAX_FILE_BYTES:
        raise YamlFatalError([_too_large(display, f"more than {MAX_FILE_BYTES:,} bytes")])
    raw = raw.removeprefix(codecs.BOM_UTF8)  # a byte-order mark is allowed and skipped
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = split_lines(raw[: exc.start].decode("utf-8", errors="replace"))
        raise YamlFatalError(
            [
                _issue(
                    display,
                    len(before),
                    len(before[-1]) + 1,
                    "the file is not valid UTF-8 text",
                    code="encoding",
                )
            ]
        ) from exc
    return parse_yaml(text, display)


def _too_large(display: str, size: str) -> SpecIssue:
    return _issue(
        display,
        1,
        1,
        f"the file is {size}; a spec may be at most {MAX_FILE_BYTES:,} bytes",
        "split it, or keep data out of specs",
        code="too_large",
    )


def parse_yaml(text: str, display: str) -> YamlDocument:
    """Parse YAML text as one spec document; see the module docstring for what is refused."""
    composer: Any = None
    try:
        # The pure-Python reader checks the characters as it is built, so build it in here.
        composer = _Composer(text)
        root = composer.get_single_node()
    except yaml.MarkedYAMLError as exc:
        # A tab in indentation is the usual cause; tabs inside block text are fine, so they
        # are only looked for once parsing has failed.
        tabs = _tab_indentation(text, display)
        raise YamlFatalError(tabs or [_syntax_issue(exc, display)]) from exc
    except yaml.reader.ReaderError as exc:
        raise YamlFatalError([_reader_issue(exc, text, display)]) from exc
    except yaml.YAMLError as exc:  # pragma: no cover - every other error carries marks
        raise YamlFatalError([_issue(display, 1, 1, f"YAML error: {exc}", code="syntax")]) from exc
    finally:
        if composer is not None:
            composer.dispose()
    if root is None or (isinstance(root, ScalarNode) and root.tag == _NULL and not root.value):
        # No node at all, or only the empty node of a bare `---`.
        raise YamlFatalError(
            [
                _issue(
                    display,
                    1,
                    1,
                    "the file is empty",
                    "a spec starts with apiVersion: polytrade/v1, kind, metadata and spec",
                    code="empty",
                )
            ]
        )
    doc = YamlDocument(file=display, data=None, lines=split_lines(text))
    builder = _Builder(doc)
    doc.values[()] = _position(root)
    doc.data = builder.build(root, ())
    return doc


def _issue(
    file: str, line: int, column: int, message: str, hint: str = "", *, code: str = "yaml"
) -> SpecIssue:
    return SpecIssue(
        file=file, line=line, column=column, path="", message=message, hint=hint, code=code
    )


def _syntax_issue(exc: yaml.MarkedYAMLError, display: str) -> SpecIssue:
    mark = exc.problem_mark or exc.context_mark
    line, column = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
    problem = exc.problem or "invalid YAML"
    message = f"YAML syntax error: {problem}"
    hint = ""
    if "expected a single document" in f"{problem} {exc.context or ''}":
        message = "the file holds more than one YAML document"
        hint = "put each spec in its own file"
    elif exc.context:
        hint = exc.context
        if exc.context_mark is not None and exc.context_mark is not mark:
            hint += f" at line {exc.context_mark.line + 1}"
    return _issue(display, line, column, message, hint, code="syntax")


def _reader_issue(exc: yaml.reader.ReaderError, text: str, display: str) -> SpecIssue:
    """A character YAML does not allow (a control character), at its line and column."""
    # libyaml counts bytes of the UTF-8 text; the pure-Python reader counts characters.
    offset = exc.position
    if _CParser is not None:
        offset = len(text.encode("utf-8")[: exc.position].decode("utf-8", errors="ignore"))
    before = split_lines(text[:offset])
    line, column = len(before), len(before[-1]) + 1
    character = exc.character if isinstance(exc.character, int) else ord(exc.character)
    return _issue(
        display,
        line,
        column,
        f"the character U+{character:04X} is not allowed in YAML",
        "remove it; control characters cannot appear in a spec",
        code="syntax",
    )


def _tab_indentation(text: str, display: str) -> list[SpecIssue]:
    issues = []
    for number, line in enumerate(split_lines(text), start=1):
        indent = line[: len(line) - len(line.lstrip(" \t"))]
        if "\t" in indent and line.strip():
            issues.append(
                _issue(
                    display,
                    number,
                    indent.index("\t") + 1,
                    "a tab is used for indentation; YAML allows only spaces",
                    "replace the tab with spaces",
                    code="tab",
                )
            )
    return issues


def _position(node: Node) -> Position:
    style = node.style if isinstance(node, ScalarNode) else None
    return Position(node.start_mark.line + 1, node.start_mark.column + 1, style or None)


class _Builder:
    """Turns a composed node graph into plain data, recording positions and issues."""

    def __init__(self, doc: YamlDocument) -> None:
        self.doc = doc
        self.nodes = 0
        self.alias_uses = 0
        self.seen: set[int] = set()
        self.active: set[int] = set()

    def fatal(self, node: Node, path: Path_, message: str, hint: str, code: str) -> YamlFatalError:
        pos = _position(node)
        return YamlFatalError(
            [SpecIssue(self.doc.file, pos.line, pos.column, format_path(path), message, hint, code)]
        )

    def build(self, node: Node, path: Path_) -> Any:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise self.fatal(
                node,
                path,
                f"the document expands to more than {MAX_NODES:,} values",
                "aliases (*name) that repeat large anchors are refused",
                "alias_bomb",
            )
        if len(path) > MAX_DEPTH:
            raise self.fatal(
                node,
                path,
                f"the document is nested more than {MAX_DEPTH} levels deep",
                "specs are shallow: flatten the structure",
                "too_deep",
            )
        ident = id(node)
        if ident in self.active:
            raise self.fatal(
                node,
                path,
                "an alias refers to the node that contains it",
                "remove the recursive alias",
                "alias_recursion",
            )
        if ident in self.seen and not isinstance(node, ScalarNode):
            self.alias_uses += 1
            if self.alias_uses > MAX_ALIAS_USES:
                raise self.fatal(
                    node,
                    path,
                    f"aliases are used more than {MAX_ALIAS_USES} times",
                    "write the values out; specs are small",
                    "alias_bomb",
                )
        self.seen.add(ident)
        if node.tag not in _ALLOWED_TAGS:
            pos = _position(node)
            self.doc.issues.append(
                SpecIssue(
                    self.doc.file,
                    pos.line,
                    pos.column,
                    format_path(path),
                    f"the tag {node.tag.replace(_CORE, '!!')!r} is not allowed",
                    "specs hold plain data: strings, numbers, booleans, lists and mappings",
                    "tag",
                )
            )
            return None
        if isinstance(node, ScalarNode):
            try:
                return self.scalar(node)
            except ValueError:
                pos = _position(node)
                self.doc.issues.append(
                    SpecIssue(
                        self.doc.file,
                        pos.line,
                        pos.column,
                        format_path(path),
                        f"{_shorten(node.value)!r} cannot be read as "
                        f"{node.tag.replace(_CORE, '!!')}",
                        "write it in the YAML 1.2 core form of that type, or remove the tag"
                        if node.tag != _INT or len(node.value) < _MAX_INT_DIGITS
                        else f"integers may have at most {_MAX_INT_DIGITS:,} digits",
                        "tag",
                    )
                )
                return None
        self.active.add(ident)
        try:
            if isinstance(node, SequenceNode):
                return self.sequence(node, path)
            assert isinstance(node, MappingNode)  # noqa: S101 - the composer makes only three kinds
            return self.mapping(node, path)
        finally:
            self.active.discard(ident)

    def sequence(self, node: SequenceNode, path: Path_) -> list[Any]:
        items = []
        for index, child in enumerate(node.value):
            child_path = (*path, index)
            self.doc.keys[child_path] = self.doc.values[child_path] = _position(child)
            items.append(self.build(child, child_path))
        return items

    def mapping(self, node: MappingNode, path: Path_) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key_pos = _position(key_node)
            if not isinstance(key_node, ScalarNode) or key_node.tag not in _ALLOWED_TAGS:
                self.doc.issues.append(
                    SpecIssue(
                        self.doc.file,
                        key_pos.line,
                        key_pos.column,
                        format_path(path),
                        "a mapping key must be a plain name",
                        "lists and mappings cannot be keys",
                        "key",
                    )
                )
                continue
            key = key_node.value
            child_path = (*path, key)
            if key in out:
                first = self.doc.keys[child_path]
                self.doc.issues.append(
                    SpecIssue(
                        self.doc.file,
                        key_pos.line,
                        key_pos.column,
                        format_path(child_path),
                        f"duplicate key {key!r}",
                        f"it is already defined at line {first.line}; keep one",
                        "duplicate_key",
                    )
                )
                continue
            self.doc.keys[child_path] = key_pos
            self.doc.values[child_path] = _position(value_node)
            out[key] = self.build(value_node, child_path)
        return out

    @staticmethod
    def scalar(node: ScalarNode) -> Any:
        value: str = node.value
        tag = node.tag
        if tag == _STR:
            return value
        if not _CORE_SCALARS[tag].match(value):
            # `!!bool maybe` or `!!int 1_000`: an explicit tag on text of another form.
            raise ValueError(value)
        if tag == _NULL:
            return None
        if tag == _BOOL:
            return value.lower() == "true"
        if tag == _INT:
            return _to_int(value)
        return _to_float(value)


_MAX_INT_DIGITS: Final = 4300
"""Python's limit on converting decimal text to int."""


def _shorten(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _to_int(value: str) -> int:
    text = value.lower()
    sign = -1 if text.startswith("-") else 1
    text = text.lstrip("+-")
    if text.startswith(("0o", "0x")):
        return sign * int(text, 0)
    return sign * int(text)


def _to_float(value: str) -> float:
    text = value.lower()
    if text.endswith(".inf"):
        return float("-inf") if text.startswith("-") else float("inf")
    if text == ".nan":
        return float("nan")
    return float(text)


def parse_scalar(text: str) -> Any:
    """A plain YAML 1.2 core scalar as YAML would read it (for `--param name=value`).

    `12` is an int, `2.5` a float, `true` a bool, `null` None; anything else is the text.
    """
    for tag, pattern in _CORE_SCALARS.items():
        if pattern.match(text):
            node = ScalarNode(tag, text)
            return _Builder.scalar(node)
    return text
