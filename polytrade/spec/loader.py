"""Load spec files into models, reporting every problem with its file, line, column and path.

`SpecLoader.load(path)` returns a `LoadedSpec` (the model plus the specs it refers to) or
raises `SpecError` with ALL issues of the file and of the files it refers to. References
between files resolve relative to the referring file and are loaded once per loader.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
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
from polytrade.spec.secrets_scan import find_secrets
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
    from collections.abc import Iterable, Iterator

    from pydantic_core import ErrorDetails

SPEC_SUFFIXES: Final = (".yaml", ".yml")


@dataclass(frozen=True)
class LoadedSpec:
    """A valid spec: its file, its model and the valid specs it refers to, by field path."""

    path: Path
    document: Document
    references: dict[str, LoadedSpec] = field(default_factory=dict)

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


class SpecLoader:
    """Loads spec files and their references, caching each file's outcome."""

    def __init__(self) -> None:
        self._done: dict[Path, LoadedSpec | tuple[SpecIssue, ...]] = {}
        self._loading: set[Path] = set()

    def load(self, path: str | Path) -> LoadedSpec:
        """Load one spec; raises SpecError listing every issue found in it and its references."""
        outcome = self._load(Path(path).resolve())
        if isinstance(outcome, LoadedSpec):
            return outcome
        raise SpecError(outcome)

    def check(self, paths: Iterable[str | Path]) -> tuple[int, list[SpecIssue]]:
        """Check files and folders (recursively); returns (files checked, all issues)."""
        files = list(expand_paths(paths))
        issues: set[SpecIssue] = set()
        for file in files:
            outcome = self._load(file.resolve())
            if not isinstance(outcome, LoadedSpec):
                issues.update(outcome)
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
        ctx = _FileContext(yaml_doc)
        ctx.issues.extend(yaml_doc.issues)
        secrets = list(find_secrets(yaml_doc.data))
        secret_paths = {finding.path for finding in secrets}
        ctx.extend(secrets)

        document_cls = self._document_class(ctx)
        if document_cls is None:
            return tuple(ctx.issues)

        model: Document | None = None
        try:
            model = document_cls.model_validate(yaml_doc.data)
        except ValidationError as exc:
            for error in exc.errors(include_url=False, include_input=False):
                ctx.add_pydantic(error, document_cls, secret_paths)
        if document_cls is StrategyDocument:
            # On the raw data, so name errors show up beside structural ones.
            ctx.extend(check_strategy(yaml_doc.data))
        references = self._cross_checks(path, model, ctx)

        if ctx.issues:
            return tuple(ctx.issues)
        assert model is not None  # noqa: S101 - no issue means validation succeeded
        return LoadedSpec(path=path, document=model, references=references)

    def _cross_checks(
        self, path: Path, model: Document | None, ctx: _FileContext
    ) -> dict[str, LoadedSpec]:
        references: dict[str, LoadedSpec] = {}
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
        target = (referrer.parent / ref).resolve()
        shown = display_path(target)
        what = expected.model_fields["kind"].annotation
        kind_name = get_args(what)[0] if get_args(what) else expected.__name__
        if not target.is_file():
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
    """Issues of one file, positioned with the YAML marks."""

    def __init__(self, doc: YamlDocument) -> None:
        self.doc = doc
        self.issues: list[SpecIssue] = []

    def extend(self, findings: Iterable[Finding]) -> None:
        for finding in findings:
            self.add(finding)

    def add(self, finding: Finding) -> None:
        pos = self.doc.locate(finding.path, key=finding.at_key)
        line, column = pos.line, pos.column
        if finding.offset is not None and finding.path in self.doc.values:
            line, column = _offset_position(self.doc, self.doc.values[finding.path], finding.offset)
        self.issues.append(
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
        self, error: ErrorDetails, document_cls: type[BaseModel], secret_paths: set[PathT]
    ) -> None:
        finding = _translate(error, self.doc.data, document_cls)
        if finding.code == "extra_forbidden" and finding.path in secret_paths:
            return  # already reported as a secret, which is the real problem
        self.add(finding)


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


def _offset_position(doc: YamlDocument, pos: Position, offset: int) -> tuple[int, int]:
    """Line and column of character `offset` inside the scalar that starts at `pos`."""
    if pos.style in {"|", ">"}:
        # Block scalar: the text starts on the next line; its first line sets the indentation.
        body = doc.lines[pos.line :]
        indent = next((len(raw) - len(raw.lstrip(" ")) for raw in body if raw.strip()), 0)
        before = "\n".join(raw[indent:] for raw in body)[:offset]
        return pos.line + 1 + before.count("\n"), indent + 1 + len(before.rpartition("\n")[2])
    quote = 1 if pos.style in {"'", '"'} else 0
    return pos.line, pos.column + quote + offset


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
