"""Load spec files into models, reporting every problem with its file, line, column and path.

`SpecLoader.load(path)` returns a `LoadedSpec` (the model plus the specs it refers to) or
raises `SpecError` with ALL issues of the file and of the files it refers to. References
between files resolve relative to the referring file and are loaded once per loader.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, get_args, get_origin

from pydantic import BaseModel, ValidationError

from polytrade.errors import SpecError, SpecIssue
from polytrade.spec.models import (
    API_VERSION,
    KINDS,
    Document,
    EvolutionDocument,
    ProfileDocument,
    RiskBudgetDocument,
    StrategyDocument,
)
from polytrade.spec.secrets_scan import find_secrets, secret_texts
from polytrade.spec.semantics import (
    Finding,
    PathT,
    check_param_value,
    check_profile,
    check_strategy,
    did_you_mean,
)
from polytrade.spec.yaml_source import (
    Position,
    YamlDocument,
    YamlFatalError,
    format_path,
    read_yaml,
)

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    from pydantic_core import ErrorDetails

SPEC_SUFFIXES: Final = (".yaml", ".yml")


@dataclass(frozen=True)
class LoadedSpec:
    """A valid spec: its file, its model and the valid specs it refers to, by field path."""

    path: Path
    document: Document
    references: dict[str, LoadedSpec] = field(default_factory=dict)
    source: YamlDocument | None = field(default=None, repr=False, compare=False)
    """Where each key and value stands in the file (for issues found after loading)."""

    @property
    def kind(self) -> str:
        """The document's kind: Strategy, RiskBudget, Profile or Evolution."""
        return self.document.kind


def display_path(path: Path) -> str:
    """`path` as it is shown in messages: relative to the working folder when inside it."""
    try:
        relative = os.path.relpath(path)
    except ValueError:  # pragma: no cover - another drive on Windows
        return str(path)
    return str(path) if relative.startswith("..") else relative


Check = Callable[[Any], Iterable[Finding]]
"""A further check of a valid document (e.g. the signal compiler's type check)."""


class SpecLoader:
    """Loads spec files and their references, caching each file's outcome.

    `checks` adds checks by kind that lower layers cannot make themselves: the CLI passes the
    signal compiler's type check for Strategy documents, so `validate` reports type errors
    with their lines like every other error.
    """

    def __init__(self, checks: Mapping[str, Check] | None = None) -> None:
        self._done: dict[Path, LoadedSpec | tuple[SpecIssue, ...]] = {}
        self._loading: set[Path] = set()
        self._checks = dict(checks or {})

    def load(self, path: str | Path) -> LoadedSpec:
        """Load one spec; raises SpecError listing every issue found in it and its references."""
        outcome = self._load(Path(path).resolve())
        if isinstance(outcome, LoadedSpec):
            return outcome
        raise SpecError(outcome)

    def check(self, paths: Iterable[str | Path]) -> tuple[int, list[SpecIssue]]:
        """Check files and folders (recursively); returns (files checked, all issues).

        A file named twice (directly and through its folder) is checked once. Two documents of
        one kind may not share a `metadata.name`.
        """
        files = list(dict.fromkeys(file.resolve() for file in expand_paths(paths)))
        issues: set[SpecIssue] = set()
        loaded: list[LoadedSpec] = []
        for file in files:
            outcome = self._load(file)
            if isinstance(outcome, LoadedSpec):
                loaded.append(outcome)
            else:
                issues.update(outcome)
        issues.update(_duplicate_names(loaded))
        return len(files), sorted(issues)

    # ------------------------------------------------------------------ one file

    def _load(self, path: Path) -> LoadedSpec | tuple[SpecIssue, ...]:
        if path in self._done:
            return self._done[path]
        self._loading.add(path)
        try:
            outcome = self._load_uncached(path)
        finally:
            self._loading.discard(path)
        self._done[path] = outcome
        return outcome

    def _load_uncached(self, path: Path) -> LoadedSpec | tuple[SpecIssue, ...]:
        display = display_path(path)
        try:
            yaml_doc = read_yaml(path, display)
        except YamlFatalError as exc:
            return tuple(exc.issues)
        ctx = _FileContext(yaml_doc, secret_texts(yaml_doc.data))
        for issue in yaml_doc.issues:
            ctx.add_issue(issue)
        secrets = list(find_secrets(yaml_doc.data))
        # pydantic errors at these paths only repeat a problem already reported.
        secret_paths = {finding.path for finding in secrets}
        refused = {issue.path for issue in yaml_doc.issues if issue.code == "tag"}
        ctx.extend(secrets)

        document_cls = self._document_class(ctx)
        if document_cls is None:
            return tuple(ctx.issues)

        model: Document | None = None
        try:
            model = document_cls.model_validate(yaml_doc.data)
        except ValidationError as exc:
            for error in exc.errors(include_url=False, include_input=False):
                ctx.add_pydantic(error, document_cls, secret_paths, refused)
        if document_cls is StrategyDocument:
            # On the raw data, so name errors show up beside structural ones.
            ctx.extend(check_strategy(yaml_doc.data))
        references = self._cross_checks(path, model, ctx)

        if ctx.issues:
            return tuple(ctx.issues)
        assert model is not None  # noqa: S101 - no issue means validation succeeded
        return LoadedSpec(path=path, document=model, references=references, source=yaml_doc)

    def _cross_checks(
        self, path: Path, model: Document | None, ctx: _FileContext
    ) -> dict[str, LoadedSpec]:
        references: dict[str, LoadedSpec] = {}
        if model is not None and model.kind in self._checks:
            ctx.extend(self._checks[model.kind](model))
        if isinstance(model, ProfileDocument):
            ctx.extend(check_profile(model.spec))
            self._profile_references(path, model, ctx, references)
        elif isinstance(model, EvolutionDocument):
            self._evolution_references(path, model, ctx, references)
        return references

    @staticmethod
    def _document_class(ctx: _FileContext) -> type[Document] | None:
        data = ctx.doc.data
        if not isinstance(data, dict):
            ctx.add(
                Finding(
                    (),
                    "a spec must be a mapping with apiVersion, kind, metadata and spec",
                    f"start the file with apiVersion: {API_VERSION}",
                    code="envelope",
                )
            )
            return None
        kind = data.get("kind")
        if "kind" not in data:
            ctx.add(
                Finding(("kind",), "kind is missing", "one of " + ", ".join(KINDS), code="missing")
            )
            return None
        if not isinstance(kind, str) or kind not in KINDS:
            hint = (did_you_mean(kind, set(KINDS)) if isinstance(kind, str) else "") or (
                "one of " + ", ".join(KINDS)
            )
            ctx.add(Finding(("kind",), f"unknown kind {kind!r}", hint, code="kind"))
            if data.get("apiVersion") != API_VERSION:
                ctx.add(_api_version_finding(data))
            return None
        return KINDS[kind]

    # ------------------------------------------------------------------ references

    def _reference(
        self,
        referrer: Path,
        ref: str,
        at: PathT,
        expected: type[Document],
        ctx: _FileContext,
    ) -> LoadedSpec | None:
        what = expected.model_fields["kind"].annotation
        kind_name = get_args(what)[0] if get_args(what) else expected.__name__
        try:
            target = (referrer.parent / ref).resolve()
            exists = target.is_file()
        except OSError as exc:  # e.g. a name too long for the file system
            ctx.add(
                Finding(
                    at,
                    f"the referenced file cannot be opened: {exc.strerror}",
                    f"paths are relative to {ctx.doc.file}",
                    code="broken_reference",
                )
            )
            return None
        shown = display_path(target)
        if not exists:
            ctx.add(
                Finding(
                    at,
                    f"the referenced file {shown} does not exist",
                    f"paths are relative to {ctx.doc.file}",
                    code="broken_reference",
                )
            )
            return None
        if target in self._loading:
            ctx.add(
                Finding(
                    at,
                    f"{shown} refers back to this file",
                    "remove the cycle",
                    code="reference_cycle",
                )
            )
            return None
        outcome = self._load(target)
        if not isinstance(outcome, LoadedSpec):
            ctx.add(
                Finding(
                    at,
                    f"the referenced {kind_name} {shown} is invalid "
                    f"({_count(len(outcome), 'error')}, listed under that file)",
                    code="invalid_reference",
                )
            )
            ctx.issues.extend(outcome)
            return None
        if not isinstance(outcome.document, expected):
            ctx.add(
                Finding(
                    at,
                    f"{shown} is a {outcome.kind}, but a {kind_name} is expected here",
                    code="reference_kind",
                )
            )
            return None
        return outcome

    def _profile_references(
        self, path: Path, model: ProfileDocument, ctx: _FileContext, out: dict[str, LoadedSpec]
    ) -> None:
        risk = self._reference(path, model.spec.risk, ("spec", "risk"), RiskBudgetDocument, ctx)
        if risk is not None:
            out["spec.risk"] = risk
        for index, item in enumerate(model.spec.strategies):
            at: PathT = ("spec", "strategies", index, "ref")
            loaded = self._reference(path, item.ref, at, StrategyDocument, ctx)
            if loaded is None:
                continue
            out[format_path(at)] = loaded
            assert isinstance(loaded.document, StrategyDocument)  # noqa: S101 - checked by _reference
            params = loaded.document.spec.params
            for name, value in item.params.items():
                where: PathT = ("spec", "strategies", index, "params", name)
                if name not in params:
                    hint = did_you_mean(name, set(params)) or (
                        "its params are: " + (", ".join(params) or "none")
                    )
                    ctx.add(
                        Finding(
                            where,
                            f"{name!r} is not a param of {display_path(loaded.path)}",
                            hint,
                            code="unknown_param",
                            at_key=True,
                        )
                    )
                elif (problem := check_param_value(params[name], value)) is not None:
                    ctx.add(Finding(where, problem, code="param_value"))

    def _evolution_references(
        self, path: Path, model: EvolutionDocument, ctx: _FileContext, out: dict[str, LoadedSpec]
    ) -> None:
        strategy = self._reference(
            path, model.spec.strategy, ("spec", "strategy"), StrategyDocument, ctx
        )
        if strategy is not None:
            out["spec.strategy"] = strategy
            assert isinstance(strategy.document, StrategyDocument)  # noqa: S101
            if not strategy.document.spec.params:
                ctx.add(
                    Finding(
                        ("spec", "strategy"),
                        f"{display_path(strategy.path)} has no params to evolve",
                        "add params with min and max to the strategy",
                        code="nothing_to_evolve",
                    )
                )
        profile = self._reference(
            path, model.spec.profile, ("spec", "profile"), ProfileDocument, ctx
        )
        if profile is not None:
            out["spec.profile"] = profile
            assert isinstance(profile.document, ProfileDocument)  # noqa: S101
            if profile.document.spec.mode != "backtest":
                ctx.add(
                    Finding(
                        ("spec", "profile"),
                        f"{display_path(profile.path)} is a {profile.document.spec.mode} "
                        "profile; evolution needs a backtest profile",
                        code="reference_kind",
                    )
                )


def _duplicate_names(loaded: list[LoadedSpec]) -> Iterator[SpecIssue]:
    first: dict[tuple[str, str], LoadedSpec] = {}
    for spec in sorted(loaded, key=lambda item: str(item.path)):
        key = (spec.kind, spec.document.metadata.name)
        if key not in first:
            first[key] = spec
            continue
        where = spec.source.locate(("metadata", "name")) if spec.source else Position(1, 1)
        yield SpecIssue(
            display_path(spec.path),
            where.line,
            where.column,
            "metadata.name",
            f"the {spec.kind} name {key[1]!r} is also used by {display_path(first[key].path)}",
            "names identify specs in runs and in the UI: make them unique",
            "duplicate_name",
        )


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _api_version_finding(data: dict[str, Any]) -> Finding:
    if "apiVersion" not in data:
        return Finding(
            ("apiVersion",),
            "apiVersion is missing",
            f"add apiVersion: {API_VERSION}",
            code="missing",
        )
    return Finding(
        ("apiVersion",),
        f"unsupported apiVersion {data['apiVersion']!r}",
        f"this Polytrade reads {API_VERSION}",
        code="api_version",
    )


def expand_paths(paths: Iterable[str | Path]) -> Iterator[Path]:
    """Files as given, and every *.yaml / *.yml below folders (hidden ones skipped), sorted."""
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(
                p
                for p in path.rglob("*")
                if p.suffix in SPEC_SUFFIXES
                and p.is_file()
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
            yield from found
        else:
            yield path


# ---------------------------------------------------------------------- error mapping


class _FileContext:
    """Issues of one file, positioned with the YAML marks, with its secret values masked."""

    def __init__(self, doc: YamlDocument, secrets: Iterable[str] = ()) -> None:
        self.doc = doc
        self.issues: list[SpecIssue] = []
        self.secrets = sorted(secrets, key=len, reverse=True)

    def redact(self, text: str) -> str:
        """`text` with every secret value of the file replaced by `***`."""
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text

    def add_issue(self, issue: SpecIssue) -> None:
        self.issues.append(
            replace(issue, message=self.redact(issue.message), hint=self.redact(issue.hint))
        )

    def extend(self, findings: Iterable[Finding]) -> None:
        for finding in findings:
            self.add(finding)

    def add(self, finding: Finding) -> None:
        pos = self.doc.locate(finding.path, key=finding.at_key)
        line, column = pos.line, pos.column
        if finding.offset is not None and finding.path in self.doc.values:
            line, column = _offset_position(
                self.doc,
                self.doc.values[finding.path],
                finding.offset,
                _data_at(self.doc.data, finding.path),
            )
        self.add_issue(
            SpecIssue(
                file=self.doc.file,
                line=line,
                column=column,
                path=format_path(finding.path),
                message=finding.message,
                hint=finding.hint,
                code=finding.code,
            )
        )

    def add_pydantic(
        self,
        error: ErrorDetails,
        document_cls: type[BaseModel],
        secret_paths: set[PathT],
        refused: set[str],
    ) -> None:
        finding = _translate(error, self.doc.data, document_cls)
        if format_path(finding.path) in refused:
            return  # the value was refused (a forbidden tag); its type error adds nothing
        if finding.code == "extra_forbidden" and finding.path in secret_paths:
            return  # already reported as a secret, which is the real problem
        if finding.code == "too_short" and _long_enough(self.doc.data, finding.path, error):
            # pydantic counts only the items that validated; the list itself is long enough
            # and its bad items are reported on their own.
            return
        self.add(finding)


def _long_enough(data: Any, path: PathT, error: ErrorDetails) -> bool:
    minimum = error.get("ctx", {}).get("min_length")
    value = _data_at(data, path)
    return isinstance(minimum, int) and isinstance(value, list) and len(value) >= minimum


def _data_at(data: Any, path: PathT) -> Any:
    """The raw value at `path`, or None when the path does not exist in the data."""
    current: Any = data
    for part in path:
        found, current = _child(current, part)
        if not found:
            return None
    return current


def _translate(error: ErrorDetails, data: Any, document_cls: type[BaseModel]) -> Finding:
    """A pydantic error as a Finding on the data's own path, in Polytrade's words."""
    loc = tuple(error["loc"])
    kind = error["type"]
    ctx = error.get("ctx", {})
    if kind in {"missing", "extra_forbidden"} and loc and isinstance(loc[-1], str):
        # The last element names the key; everything before it exists in the data.
        parent, _ = _walk(data, loc[:-1])
        path: PathT = (*parent, loc[-1])
        if kind == "missing":
            if path == ("apiVersion",):
                return _api_version_finding(data)
            return Finding(
                path,
                f"{loc[-1]} is required",
                _description(document_cls, loc),
                code=kind,
                at_key=True,
            )
        allowed = _allowed_fields(document_cls, loc[:-1])
        hint = did_you_mean(str(loc[-1]), allowed) or (
            "allowed here: " + ", ".join(sorted(allowed)) if allowed else ""
        )
        return Finding(path, f"unknown field {loc[-1]!r}", hint, code=kind, at_key=True)
    path, rest = _walk(data, loc)
    if path == ("apiVersion",):
        return _api_version_finding(data)
    if kind in {"union_tag_invalid", "union_tag_not_found"}:
        discriminator = str(ctx.get("discriminator", "")).strip("'")
        if kind == "union_tag_not_found":
            return Finding(
                (*path, discriminator), f"{discriminator} is required", code=kind, at_key=True
            )
        expected = [tag.strip(" '") for tag in str(ctx.get("expected_tags", "")).split(",")]
        tag = str(ctx.get("tag", ""))
        hint = did_you_mean(tag, set(expected)) or "one of " + ", ".join(expected)
        return Finding((*path, discriminator), f"unknown {discriminator} {tag!r}", hint, code=kind)
    message = error["msg"].removeprefix("Value error, ")
    hint = ""
    if kind == "literal_error" and isinstance(value := _value_at(data, path), str):
        options = str(ctx.get("expected", "")).replace(" or ", ",").split(",")
        hint = did_you_mean(value, {option.strip(" '") for option in options})
    return Finding(path, message, hint, code=kind, at_key="[key]" in rest)


def _walk(data: Any, loc: tuple[str | int, ...]) -> tuple[PathT, list[str | int]]:
    """Split a pydantic loc into the part that exists in the data and the rest.

    The rest holds union tags (`int` in `spec.params.fast.int.max`), `[key]` markers and the
    name of a missing or unknown field.
    """
    path: list[str | int] = []
    rest: list[str | int] = []
    current: Any = data
    for part in loc:
        found, child = _child(current, part)
        if found:
            path.append(part)
            current = child
        else:
            rest.append(part)
    return tuple(path), rest


def _child(container: Any, part: str | int) -> tuple[bool, Any]:
    if isinstance(container, dict) and isinstance(part, str) and part in container:
        return True, container[part]
    if isinstance(container, list) and isinstance(part, int) and 0 <= part < len(container):
        return True, container[part]
    return False, None


def _value_at(data: Any, path: PathT) -> Any:
    current: Any = data
    for part in path:
        current = current[part]
    return current


def _offset_position(doc: YamlDocument, pos: Position, offset: int, value: Any) -> tuple[int, int]:
    """Line and column of character `offset` of the scalar `value` that starts at `pos`.

    The scalar's text in the file is read token by token beside the value, so that lines
    folded into spaces, indentation, escapes and doubled quotes are accounted for. When the
    two cannot be matched, the offset is counted from the start of the scalar.
    """
    quote = 1 if pos.style in {"'", '"'} else 0
    fallback = pos.line, pos.column + quote + offset
    if not isinstance(value, str) or not 0 <= offset <= len(value):
        return fallback
    # 0-based; a block scalar's text starts after the line break that ends its indicator line.
    start = pos.line - 1, pos.column - 1 + quote
    if pos.style in {"|", ">"}:
        start = pos.line - 1, len(doc.lines[pos.line - 1]) if pos.line <= len(doc.lines) else 0
    tokens = list(islice(_scalar_tokens(doc.lines, *start, pos.style), 4 * len(value) + 16))
    index, end = 0, start
    for number, (produced, line, column, width) in enumerate(tokens):
        if produced is None:  # a run of blanks and line breaks
            taken = _whitespace_taken(value, index, islice(tokens, number + 1, None))
            if index <= offset < index + taken:
                return line + 1, column + 1
            index += taken
        elif produced:
            if index == offset:
                return line + 1, column + 1
            if index >= len(value) or value[index] != produced:
                return fallback
            index += 1
            end = line, column + width
        if index == len(value) == offset:
            return end[0] + 1, end[1] + 1
    return fallback


def _whitespace_taken(
    value: str, index: int, after: Iterable[tuple[str | None, int, int, int]]
) -> int:
    """How much of the whitespace at value[index:] a run of blanks and line breaks stands for.

    All of it, except the whitespace that the tokens right after the run stand for
    themselves (an escaped tab or space, a blank inside the next line).
    """
    run = index
    while run < len(value) and value[run].isspace():
        run += 1
    for produced, *_ in after:
        if produced and not produced.isspace():
            break
        run -= bool(produced)
    return max(run - index, 0)


_ESCAPES: Final = {
    "0": "\0", "a": "\a", "b": "\b", "t": "\t", "\t": "\t", "n": "\n", "v": "\v",
    "f": "\f", "r": "\r", "e": "\x1b", " ": " ", '"': '"', "/": "/", "\\": "\\",
    "N": "\x85", "_": "\xa0", "L": "\u2028", "P": "\u2029",
}  # fmt: skip
"""What each short escape of a double-quoted YAML scalar stands for."""
_HEX_ESCAPES: Final = {"x": 2, "u": 4, "U": 8}


def _scalar_tokens(
    lines: list[str], line: int, column: int, style: str | None
) -> Iterator[tuple[str | None, int, int, int]]:
    """(what it stands for, line, column, width) for the text of a scalar onwards (0-based).

    A token stands for one character; for nothing ("", an escaped line break with the
    indentation after it); or, when None, for the blanks at the end of a line, its line break
    and the indentation of the next ones, which the value keeps, folds into a space or drops.
    """
    while line < len(lines):
        text = lines[line]
        if column < len(text) and text[column] in " \t" and _skip_blanks(text, column) < len(text):
            yield text[column], line, column, 1  # a blank inside a line stands for itself
            column += 1
        elif column >= len(text) or text[column] in " \t":
            first = line, column
            column = _skip_blanks(text, column)
            while column >= len(text) and line + 1 < len(lines):
                line += 1
                text = lines[line]
                column = _skip_blanks(text, 0)
            yield None, *first, 0
            if column >= len(text):
                return
        elif style == '"' and text[column] == "\\":
            if column + 1 == len(text):  # an escaped line break: the indentation after it goes
                yield "", line, column, 1
                line += 1
                column = _skip_blanks(lines[line], 0) if line < len(lines) else 0
                continue
            escape = _escape(text, column)
            if escape is None:
                return
            yield escape[0], line, column, escape[1]
            column += escape[1]
        elif style == "'" and text.startswith("''", column):
            yield "'", line, column, 2
            column += 2
        else:
            yield text[column], line, column, 1
            column += 1


def _skip_blanks(text: str, column: int) -> int:
    while column < len(text) and text[column] in " \t":
        column += 1
    return column


def _escape(text: str, column: int) -> tuple[str, int] | None:
    """The character a double-quoted escape at `column` stands for, and its width."""
    code = text[column + 1]
    if code in _HEX_ESCAPES:
        digits = text[column + 2 : column + 2 + _HEX_ESCAPES[code]]
        try:
            return chr(int(digits, 16)), 2 + len(digits)
        except ValueError:
            return None
    return (_ESCAPES[code], 2) if code in _ESCAPES else None


def _unwrap(annotation: Any) -> list[Any]:
    """The concrete types behind Annotated, Optional and unions."""
    origin = get_origin(annotation)
    if origin is None:
        return [annotation]
    if str(origin) == "typing.Annotated" or getattr(origin, "__name__", "") == "Annotated":
        return _unwrap(get_args(annotation)[0])
    if origin in {tuple, list, dict}:
        return [annotation]
    out: list[Any] = []
    for arg in get_args(annotation):
        out.extend(_unwrap(arg))
    return out


def _model_at(root: type[BaseModel], loc: tuple[str | int, ...]) -> type[BaseModel] | None:
    """The model class whose fields a pydantic loc points into, following union tags."""
    candidates: list[Any] = [root]
    for part in loc:
        next_candidates: list[Any] = []
        for candidate in candidates:
            for concrete in _unwrap(candidate):
                origin = get_origin(concrete)
                if isinstance(concrete, type) and issubclass(concrete, BaseModel):
                    if isinstance(part, str) and part in concrete.model_fields:
                        next_candidates.append(concrete.model_fields[part].annotation)
                    elif _tag_of(concrete) == part:
                        next_candidates.append(concrete)
                elif origin is dict:
                    next_candidates.append(get_args(concrete)[1])
                elif origin in {tuple, list} and isinstance(part, int):
                    next_candidates.append(get_args(concrete)[0])
        if not next_candidates:
            return None
        candidates = next_candidates
    models = [
        c
        for cand in candidates
        for c in _unwrap(cand)
        if isinstance(c, type) and issubclass(c, BaseModel)
    ]
    return models[0] if len(models) == 1 else None


def _tag_of(model: type[BaseModel]) -> str | None:
    for name in ("type", "method", "style", "model", "source", "kind"):
        field_info = model.model_fields.get(name)
        if field_info is not None and get_origin(field_info.annotation) is not None:
            args = get_args(field_info.annotation)
            if len(args) == 1 and isinstance(args[0], str):
                return args[0]
    return None


def _allowed_fields(root: type[BaseModel], loc: tuple[str | int, ...]) -> set[str]:
    model = _model_at(root, loc)
    if model is None:
        return set()
    return {info.alias or name for name, info in model.model_fields.items()}


def _description(root: type[BaseModel], loc: tuple[str | int, ...]) -> str:
    model = _model_at(root, loc[:-1])
    if model is None or not isinstance(loc[-1], str):
        return ""
    for name, info in model.model_fields.items():
        if loc[-1] in {name, info.alias}:
            return info.description or ""
    return ""
