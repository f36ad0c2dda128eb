"""The committed JSON Schemas: in step with the models, valid, and matching the examples."""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from polytrade.cli import run
from polytrade.spec.schema_export import (
    SCHEMA_DIALECT,
    SCHEMA_FILES,
    build_schemas,
    export_schemas,
    stale_schemas,
)

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = sorted(REPO.glob("strategies/*.yaml")) + sorted(REPO.glob("profiles/**/*.yaml"))
SCHEMA_OF_KIND = {
    "Strategy": "strategy.schema.json",
    "RiskBudget": "risk-budget.schema.json",
    "Profile": "profile.schema.json",
    "Evolution": "evolution.schema.json",
}
MODELINE = re.compile(r"^# yaml-language-server: \$schema=(\S+)$")
FIX = "run `uv run polytrade schema export` and commit schemas/"


def plain(value: Any) -> Any:
    """YAML 1.1 data as JSON sees it: PyYAML's safe_load turns 2024-01-01 into a date."""
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain(item) for item in value]
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def validator(name: str) -> jsonschema.Draft202012Validator:
    schema = json.loads((REPO / "schemas" / name).read_text(encoding="utf-8"))
    return jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


def example_ids() -> list[str]:
    return [path.relative_to(REPO).as_posix() for path in EXAMPLES]


# ---------------------------------------------------------------------- drift


def test_there_are_examples_of_every_kind() -> None:
    kinds = {yaml.safe_load(path.read_text(encoding="utf-8"))["kind"] for path in EXAMPLES}
    assert kinds == set(SCHEMA_OF_KIND)


@pytest.mark.parametrize("name", sorted(SCHEMA_FILES))
def test_committed_schema_equals_what_the_models_produce(name: str) -> None:
    committed = REPO / "schemas" / name
    assert committed.is_file(), f"schemas/{name} is missing: {FIX}"
    assert committed.read_text(encoding="utf-8") == build_schemas()[name], (
        f"schemas/{name} differs from the models: {FIX}"
    )


def test_schemas_folder_holds_no_stale_extra_file() -> None:
    committed = {path.name for path in (REPO / "schemas").glob("*.json")}
    assert committed == set(SCHEMA_FILES), f"schemas/ differs from the exported set: {FIX}"


def test_stale_schemas_is_empty_for_the_committed_folder() -> None:
    assert stale_schemas(REPO / "schemas") == [], FIX


@pytest.mark.parametrize("name", sorted(SCHEMA_FILES))
def test_every_schema_is_a_valid_draft_2020_12_schema(name: str) -> None:
    schema = json.loads(build_schemas()[name])
    assert schema["$schema"] == SCHEMA_DIALECT
    assert schema["$id"].endswith(f"/{name}")
    jsonschema.Draft202012Validator.check_schema(schema)


# ---------------------------------------------------------------------- examples


@pytest.mark.parametrize("path", EXAMPLES, ids=example_ids())
def test_every_example_validates_against_its_kind_schema(path: Path) -> None:
    data = plain(yaml.safe_load(path.read_text(encoding="utf-8")))
    for name in (SCHEMA_OF_KIND[data["kind"]], "spec.schema.json"):
        errors = [error.message for error in validator(name).iter_errors(data)]
        assert errors == [], f"{path.name} against {name}"


@pytest.mark.parametrize("path", EXAMPLES, ids=example_ids())
def test_every_example_starts_with_a_modeline_to_the_schema_of_its_kind(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    match = MODELINE.match(text.splitlines()[0])
    assert match, f"{path.name} must start with '# yaml-language-server: $schema=...'"
    target = (path.parent / match.group(1)).resolve()
    assert target.is_file(), f"{path.name} points at {match.group(1)}, which does not exist"
    assert target == REPO / "schemas" / SCHEMA_OF_KIND[yaml.safe_load(text)["kind"]]


@pytest.mark.parametrize(
    ("path", "change"),
    [
        ("strategies/trend_htf.yaml", lambda d: d["spec"]["params"]["fast"].update(min="3")),
        ("strategies/trend_htf.yaml", lambda d: d["spec"].update(colour="red")),
        ("strategies/trend_htf.yaml", lambda d: d["spec"]["sizing"].update(method="kelly")),
        ("profiles/backtest.yaml", lambda d: d["spec"].update(mode="yolo")),
        ("profiles/backtest.yaml", lambda d: d["spec"]["data"].update(start="2024-13-01")),
        ("profiles/risk/default.yaml", lambda d: d.update(apiVersion="polytrade/v2")),
    ],
    ids=["quoted-int", "extra-key", "unknown-tag", "bad-literal", "bad-date", "api-version"],
)
def test_the_schemas_refuse_what_the_models_refuse(path: str, change: Any) -> None:
    data = plain(yaml.safe_load((REPO / path).read_text(encoding="utf-8")))
    change(data)
    assert list(validator(SCHEMA_OF_KIND[data["kind"]]).iter_errors(data))
    assert list(validator("spec.schema.json").iter_errors(data))


# ---------------------------------------------------------------------- commands


def test_schema_check_exits_0_on_the_committed_schemas(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(REPO)
    assert run(["schema", "check"]) == 0
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "schemas match the models" in captured.err


def test_schema_check_exits_3_and_names_a_schema_that_was_edited(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "schemas"
    shutil.copytree(REPO / "schemas", folder)
    edited = folder / "profile.schema.json"
    edited.write_text(edited.read_text(encoding="utf-8").replace("Slippage", "Slipage", 1))
    assert run(["schema", "check", "--out", str(folder)]) == 3
    captured = capsys.readouterr()
    assert captured.out.splitlines() == [str(edited)]
    assert "polytrade schema export" in captured.err


def test_schema_check_exits_3_when_a_schema_is_missing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "schemas"
    shutil.copytree(REPO / "schemas", folder)
    (folder / "spec.schema.json").unlink()
    assert run(["schema", "check", "--out", str(folder)]) == 3
    assert capsys.readouterr().out.splitlines() == [str(folder / "spec.schema.json")]


def test_schema_export_writes_every_file_then_only_what_changed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "out"
    assert sorted(path.name for path in export_schemas(folder)) == sorted(SCHEMA_FILES)
    assert export_schemas(folder) == []
    (folder / "strategy.schema.json").write_text("{}", encoding="utf-8")
    assert run(["schema", "export", "--out", str(folder)]) == 0
    assert capsys.readouterr().out.splitlines() == [str(folder / "strategy.schema.json")]
    assert stale_schemas(folder) == []
    assert sorted(path.name for path in folder.iterdir()) == sorted(SCHEMA_FILES)
