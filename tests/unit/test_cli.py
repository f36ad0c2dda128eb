"""The `polytrade` command line: exit codes, where output goes, and `new` scaffolds."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from polytrade.cli import run
from polytrade.spec import SpecLoader
from polytrade.spec.secrets_scan import find_secrets
from polytrade.spec.yaml_source import parse_yaml

REPO = Path(__file__).resolve().parents[2]
VERSION = "0.1.0"

Capture = pytest.CaptureFixture[str]


def flat(text: str) -> str:
    """Text with every run of whitespace as one space (rich wraps at the terminal width)."""
    return " ".join(text.split())


@pytest.fixture
def in_repo(monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(REPO)
    return REPO


@pytest.fixture
def empty_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def all_files(folder: Path) -> list[str]:
    return sorted(
        path.relative_to(folder).as_posix() for path in folder.rglob("*") if path.is_file()
    )


INVALID_STRATEGY = """\
apiVersion: polytrade/v1
kind: Strategy
metadata:
  name: broken
spec:
  instruments: [BTC_USDT_PERP]
  timeframe: 15m
  params:
    fast: {type: int, default: 12, min: 3, max: 2}
  entry_long: close > 0
  sizing: {method: fixed_fraction, fraction: 1.0}
"""


# ---------------------------------------------------------------------- root


def test_version_prints_the_package_version(capsys: Capture) -> None:
    assert run(["--version"]) == 0
    captured = capsys.readouterr()
    assert captured.out == f"polytrade {VERSION}\n"


def test_help_lists_the_exit_code_table(capsys: Capture) -> None:
    assert run(["--help"]) == 0
    text = flat(capsys.readouterr().out)
    for entry in [
        "0 ok",
        "1 unexpected error",
        "2 usage",
        "3 invalid spec",
        "4 data or exchange unavailable",
        "5 risk halt",
        "130 interrupted",
    ]:
        assert entry in text
    for command in ["validate", "schema", "new"]:
        assert command in text


def test_validate_help_also_lists_the_exit_codes(capsys: Capture) -> None:
    assert run(["validate", "--help"]) == 0
    assert "3 invalid spec" in flat(capsys.readouterr().out)


@pytest.mark.parametrize(
    "argv", [["--bogus"], ["bogus"], ["validate"], ["new"], ["new", "strategy"], ["schema", "x"]]
)
def test_a_wrong_command_line_exits_2(argv: list[str], capsys: Capture) -> None:
    assert run(argv) == 2
    capsys.readouterr()


# ---------------------------------------------------------------------- validate


@pytest.mark.usefixtures("in_repo")
def test_validate_examples_exits_0_with_the_summary_on_stderr_only(capsys: Capture) -> None:
    assert run(["validate", "strategies", "profiles"]) == 0
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "10 specs valid (1 Evolution, 3 Profile, 2 RiskBudget, 4 Strategy)" in flat(captured.err)


@pytest.mark.usefixtures("in_repo")
def test_validate_json_prints_one_empty_list_when_everything_is_valid(capsys: Capture) -> None:
    assert run(["validate", "--json", "strategies", "profiles"]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_validate_json_prints_one_list_of_issues_and_exits_3(
    empty_dir: Path, capsys: Capture
) -> None:
    (empty_dir / "broken.yaml").write_text(INVALID_STRATEGY)
    (empty_dir / "empty.yaml").write_text("")
    assert run(["validate", "--json", "."]) == 3
    captured = capsys.readouterr()
    issues = json.loads(captured.out)  # exactly one JSON document, nothing else
    assert [(issue["file"], issue["line"], issue["column"], issue["path"]) for issue in issues] == [
        ("broken.yaml", 9, 49, "spec.params.fast.max"),
        ("empty.yaml", 1, 1, ""),
    ]
    assert set(issues[0]) == {"file", "line", "column", "path", "message", "hint", "code"}
    assert "2 errors in 2 files (2 checked)" in flat(captured.err)


def test_validate_prints_each_issue_as_file_line_column_on_stdout(
    empty_dir: Path, capsys: Capture
) -> None:
    (empty_dir / "broken.yaml").write_text(INVALID_STRATEGY)
    assert run(["validate", "broken.yaml"]) == 3
    captured = capsys.readouterr()
    assert captured.out == (
        "broken.yaml:9:49 spec.params.fast.max: Input should be greater than 3 (the min)\n"
    )
    assert "1 error in 1 file (1 checked)" in flat(captured.err)


@pytest.mark.usefixtures("in_repo")
@pytest.mark.usefixtures("in_repo")
def test_a_file_named_twice_is_counted_once(capsys: Capture) -> None:
    assert run(["validate", "strategies", "strategies/trend_htf.yaml"]) == 0
    assert "4 specs valid (4 Strategy)" in flat(capsys.readouterr().err)


def test_validate_a_missing_path_exits_2(capsys: Capture) -> None:
    assert run(["validate", "strategies", "no/such/place.yaml"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "no such file or folder: no/such/place.yaml" in flat(captured.err)


def test_validate_a_folder_without_yaml_exits_2(empty_dir: Path, capsys: Capture) -> None:
    (empty_dir / "notes.txt").write_text("not a spec")
    assert run(["validate", "."]) == 2
    assert "no spec files" in flat(capsys.readouterr().err)


# ---------------------------------------------------------------------- new


def test_new_strategy_risk_and_profile_write_files_that_validate(
    empty_dir: Path, capsys: Capture
) -> None:
    assert run(["new", "strategy", "trend"]) == 0
    assert run(["new", "risk", "careful"]) == 0
    assert run(["new", "profile", "research"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines() == [
        "strategies/trend.yaml",
        "profiles/risk/careful.yaml",
        "profiles/research.yaml",
    ]
    assert all_files(empty_dir) == sorted(out.splitlines())
    assert run(["validate", "strategies", "profiles"]) == 0
    loaded = SpecLoader().load("profiles/research.yaml")
    assert loaded.references["spec.strategies[0].ref"].path == empty_dir / "strategies/trend.yaml"
    assert loaded.references["spec.risk"].path == empty_dir / "profiles/risk/careful.yaml"


@pytest.mark.parametrize("mode", ["backtest", "paper", "live"])
@pytest.mark.usefixtures("empty_dir")
def test_new_profile_in_every_mode_validates(mode: str, capsys: Capture) -> None:
    assert run(["new", "strategy", "s"]) == 0
    assert run(["new", "risk", "r"]) == 0
    assert run(["new", "profile", mode, "--mode", mode]) == 0
    capsys.readouterr()
    assert run(["validate", f"profiles/{mode}.yaml"]) == 0
    assert SpecLoader().load(f"profiles/{mode}.yaml").document.spec.mode == mode


def test_new_profile_live_names_the_credentials_environment_variables(
    empty_dir: Path, capsys: Capture
) -> None:
    assert run(["new", "strategy", "s"]) == 0
    assert run(["new", "risk", "r"]) == 0
    assert run(["new", "profile", "prod", "--mode", "live"]) == 0
    capsys.readouterr()
    text = (empty_dir / "profiles/prod.yaml").read_text()
    assert "api_key_env: POLYTRADE_POLONIEX_API_KEY" in text
    assert "api_secret_env: POLYTRADE_POLONIEX_API_SECRET" in text


def test_files_written_by_new_never_contain_a_secret_value(
    empty_dir: Path, capsys: Capture
) -> None:
    assert run(["new", "strategy", "s"]) == 0
    assert run(["new", "risk", "r"]) == 0
    for mode in ["backtest", "paper", "live"]:
        assert run(["new", "profile", mode, "--mode", mode]) == 0
    capsys.readouterr()
    files = sorted(empty_dir.rglob("*.yaml"))
    assert len(files) == 5
    for path in files:
        data = parse_yaml(path.read_text(), path.name).data
        assert list(find_secrets(data)) == [], path
        credentials = data["spec"].get("venue", {}).get("credentials", {})
        for key, value in credentials.items():
            assert key.endswith("_env")
            assert value.isupper(), "an environment variable's name, never its value"


def test_new_with_explicit_strategy_risk_and_dir(empty_dir: Path, capsys: Capture) -> None:
    assert run(["new", "strategy", "s", "--dir", "lib/strats"]) == 0
    assert run(["new", "risk", "r", "--dir", "lib/risk"]) == 0
    argv = ["new", "profile", "p", "--dir", "deploy", "--strategy", "lib/strats/s.yaml"]
    assert run([*argv, "--risk", "lib/risk/r.yaml"]) == 0
    capsys.readouterr()
    text = (empty_dir / "deploy/p.yaml").read_text()
    assert "ref: ../lib/strats/s.yaml" in text
    assert "risk: ../lib/risk/r.yaml" in text
    assert run(["validate", "deploy"]) == 0


def test_new_writes_a_schema_modeline_when_there_is_a_schemas_folder(
    empty_dir: Path, capsys: Capture
) -> None:
    (empty_dir / "schemas").mkdir()
    assert run(["new", "strategy", "s"]) == 0
    assert run(["new", "risk", "r"]) == 0
    capsys.readouterr()
    first_lines = [
        (empty_dir / relative).read_text().splitlines()[0]
        for relative in ["strategies/s.yaml", "profiles/risk/r.yaml"]
    ]
    assert first_lines == [
        "# yaml-language-server: $schema=../schemas/strategy.schema.json",
        "# yaml-language-server: $schema=../../schemas/risk-budget.schema.json",
    ]


def test_new_refuses_to_overwrite_without_force(empty_dir: Path, capsys: Capture) -> None:
    assert run(["new", "strategy", "s"]) == 0
    target = empty_dir / "strategies/s.yaml"
    target.write_text("# my own work\n")
    assert run(["new", "strategy", "s"]) == 2
    assert "already exists (use --force to overwrite it)" in flat(capsys.readouterr().err)
    assert target.read_text() == "# my own work\n"
    assert run(["new", "strategy", "s", "--force"]) == 0
    assert "kind: Strategy" in target.read_text()


@pytest.mark.parametrize("kind", ["strategy", "risk", "profile"])
@pytest.mark.parametrize("name", ["Trend", "_x", "-x", "a b", "a.yaml", "../escape", "x" * 64, ""])
def test_new_rejects_bad_names_and_writes_nothing(
    kind: str, name: str, empty_dir: Path, capsys: Capture
) -> None:
    assert run(["new", kind, "--", name]) == 2
    assert "not a valid name" in flat(capsys.readouterr().err)
    assert all_files(empty_dir) == []


def test_new_profile_without_any_strategy_exits_2_with_a_hint(
    empty_dir: Path, capsys: Capture
) -> None:
    assert run(["new", "profile", "p"]) == 2
    assert "create one with `polytrade new strategy NAME`" in flat(capsys.readouterr().err)
    assert all_files(empty_dir) == []


def test_new_profile_without_any_risk_budget_exits_2_with_a_hint(
    empty_dir: Path, capsys: Capture
) -> None:
    assert run(["new", "strategy", "s"]) == 0
    assert run(["new", "profile", "p"]) == 2
    assert "create one with `polytrade new risk NAME`" in flat(capsys.readouterr().err)
    assert all_files(empty_dir) == ["strategies/s.yaml"]


def test_new_profile_with_an_unknown_mode_exits_2(empty_dir: Path, capsys: Capture) -> None:
    assert run(["new", "strategy", "s"]) == 0
    assert run(["new", "risk", "r"]) == 0
    assert run(["new", "profile", "p", "--mode", "yolo"]) == 2
    assert "--mode must be backtest, paper or live" in flat(capsys.readouterr().err)
    assert not (empty_dir / "profiles/p.yaml").exists()


@pytest.mark.usefixtures("empty_dir")
def test_new_profile_with_a_missing_strategy_file_exits_2(capsys: Capture) -> None:
    assert run(["new", "risk", "r"]) == 0
    assert run(["new", "profile", "p", "--strategy", "nowhere.yaml"]) == 2
    assert "no such file: nowhere.yaml" in flat(capsys.readouterr().err)


def test_after_a_failed_new_no_file_is_left_behind(empty_dir: Path, capsys: Capture) -> None:
    assert run(["new", "strategy", "s"]) == 0
    assert run(["new", "risk", "r"]) == 0
    before = all_files(empty_dir)
    # A risk budget given as the strategy: the written profile does not validate.
    assert run(["new", "profile", "p", "--strategy", "profiles/risk/r.yaml"]) == 3
    assert "a Strategy is expected here" in flat(capsys.readouterr().err)
    assert all_files(empty_dir) == before


def test_a_failed_new_reports_errors_against_the_file_it_would_have_written(
    empty_dir: Path, capsys: Capture
) -> None:
    assert run(["new", "strategy", "s"]) == 0
    assert run(["new", "risk", "r"]) == 0
    assert run(["new", "profile", "p", "--strategy", "profiles/risk/r.yaml"]) == 3
    err = flat(capsys.readouterr().err)
    assert ".tmp" not in err
    assert "profiles/p.yaml" in err
    assert all_files(empty_dir) == ["profiles/risk/r.yaml", "strategies/s.yaml"]


# ---------------------------------------------------------------------- the real console script


def console_script() -> list[str]:
    script = Path(sys.executable).with_name("polytrade")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "polytrade"]


def test_console_script_validates_the_examples_with_exit_code_0() -> None:
    result = subprocess.run(
        [*console_script(), "validate", "strategies", "profiles"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert "10 specs valid" in result.stderr


def test_console_script_exits_3_on_an_invalid_file(tmp_path: Path) -> None:
    (tmp_path / "broken.yaml").write_text(INVALID_STRATEGY)
    result = subprocess.run(
        [*console_script(), "validate", "broken.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 3, result.stderr
    assert result.stdout.startswith("broken.yaml:9:49 spec.params.fast.max:")
    assert "Traceback" not in result.stderr
