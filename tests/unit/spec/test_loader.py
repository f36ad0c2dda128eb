"""The loader: kinds, references between files, caching, and where every issue points."""

from __future__ import annotations

import shutil
import textwrap
from collections import Counter
from typing import TYPE_CHECKING, Any

import pytest

from polytrade.errors import SpecError, SpecIssue
from polytrade.spec import LoadedSpec, SpecLoader, expand_paths, loader
from polytrade.spec.models import (
    EvolutionDocument,
    ProfileDocument,
    RiskBudgetDocument,
    StrategyDocument,
)

if TYPE_CHECKING:
    from pathlib import Path

EXAMPLES = [
    ("strategies/breakout_atr.yaml", StrategyDocument),
    ("strategies/funding_carry.yaml", StrategyDocument),
    ("strategies/mean_reversion.yaml", StrategyDocument),
    ("strategies/trend_htf.yaml", StrategyDocument),
    ("profiles/backtest.yaml", ProfileDocument),
    ("profiles/paper.yaml", ProfileDocument),
    ("profiles/live.yaml", ProfileDocument),
    ("profiles/evolve.yaml", EvolutionDocument),
    ("profiles/risk/default.yaml", RiskBudgetDocument),
    ("profiles/risk/live.yaml", RiskBudgetDocument),
]

STRATEGY = """\
apiVersion: polytrade/v1
kind: Strategy
metadata:
  name: {name}
spec:
  instruments: [BTC_USDT_PERP]
  timeframe: 15m
  params:
    fast: {{type: int, default: 12, min: 3, max: {fast_max}}}
    slow: {{type: int, default: 48, min: 10, max: 300}}
  signals:
    trend: ema(close, fast) - ema(close, slow)
  entry_long: cross_above(trend, 0)
  exit_long: cross_below(trend, 0)
  sizing: {{method: fixed_fraction, fraction: 1.0}}
"""

PROFILE = """\
apiVersion: polytrade/v1
kind: Profile
metadata:
  name: {name}
spec:
  mode: backtest
  venue: {{name: poloniex}}
  strategies:
    - ref: {ref}
      allocation: 0.5
  risk: {risk}
  data: {{source: synthetic, seed: 1}}
"""


@pytest.fixture
def workspace(tmp_path: Path, repo: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the example specs, as the working folder."""
    shutil.copytree(repo / "strategies", tmp_path / "strategies")
    shutil.copytree(repo / "profiles", tmp_path / "profiles")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def strategy_text(name: str = "s", fast_max: int = 60) -> str:
    return STRATEGY.format(name=name, fast_max=fast_max)


def profile_text(
    name: str = "p", ref: str = "../strategies/s.yaml", risk: str = "risk/default.yaml"
) -> str:
    return PROFILE.format(name=name, ref=ref, risk=risk)


def issues_of(path: Path) -> tuple[SpecIssue, ...]:
    with pytest.raises(SpecError) as caught:
        SpecLoader().load(path)
    return caught.value.issues


def line_of(path: Path, needle: str) -> int:
    lines = path.read_text(encoding="utf-8").splitlines()
    return next(number for number, line in enumerate(lines, start=1) if needle in line)


def column_of(path: Path, needle: str) -> int:
    return (
        path.read_text(encoding="utf-8").splitlines()[line_of(path, needle) - 1].index(needle) + 1
    )


# ---------------------------------------------------------------------- kinds and references


@pytest.mark.parametrize(("relative", "document"), EXAMPLES)
def test_each_example_loads_as_its_kind(repo: Path, relative: str, document: type) -> None:
    loaded = SpecLoader().load(repo / relative)
    assert isinstance(loaded, LoadedSpec)
    assert isinstance(loaded.document, document)
    assert loaded.kind == loaded.document.kind
    assert loaded.path == (repo / relative).resolve()


def test_profile_references_are_resolved_relative_to_the_profile(repo: Path) -> None:
    loaded = SpecLoader().load(repo / "profiles/backtest.yaml")
    assert set(loaded.references) == {
        "spec.risk",
        "spec.strategies[0].ref",
        "spec.strategies[1].ref",
    }
    assert loaded.references["spec.risk"].path == repo / "profiles/risk/default.yaml"
    assert loaded.references["spec.risk"].kind == "RiskBudget"
    assert loaded.references["spec.strategies[0].ref"].path == repo / "strategies/trend_htf.yaml"
    assert loaded.references["spec.strategies[1].ref"].path == repo / "strategies/breakout_atr.yaml"


def test_evolution_references_a_strategy_and_a_backtest_profile_with_its_own_references(
    repo: Path,
) -> None:
    loaded = SpecLoader().load(repo / "profiles/evolve.yaml")
    assert set(loaded.references) == {"spec.strategy", "spec.profile"}
    assert loaded.references["spec.strategy"].kind == "Strategy"
    profile = loaded.references["spec.profile"]
    assert profile.kind == "Profile"
    assert "spec.risk" in profile.references


def test_references_do_not_depend_on_the_working_folder(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    loaded = SpecLoader().load(repo / "profiles/live.yaml")
    assert loaded.references["spec.risk"].path == repo / "profiles/risk/live.yaml"


def test_a_reference_from_a_nested_folder_resolves_from_that_folder(workspace: Path) -> None:
    write(workspace / "strategies/s.yaml", strategy_text())
    profile = write(
        workspace / "profiles/team/p.yaml",
        profile_text(ref="../../strategies/s.yaml", risk="../risk/default.yaml"),
    )
    loaded = SpecLoader().load(profile)
    assert loaded.references["spec.strategies[0].ref"].path == workspace / "strategies/s.yaml"


# ---------------------------------------------------------------------- broken references


def test_a_referenced_invalid_file_reports_its_issues_and_an_issue_at_the_referring_line(
    workspace: Path,
) -> None:
    strategy = write(workspace / "strategies/s.yaml", strategy_text(fast_max=2))
    profile = write(workspace / "profiles/p.yaml", profile_text())
    issues = issues_of(profile)
    at_reference = [issue for issue in issues if issue.file == "profiles/p.yaml"]
    in_strategy = [issue for issue in issues if issue.file == "strategies/s.yaml"]
    assert [
        (issue.line, issue.column, issue.path, issue.code, issue.message) for issue in at_reference
    ] == [
        (
            line_of(profile, "- ref:"),
            column_of(profile, "../strategies"),
            "spec.strategies[0].ref",
            "invalid_reference",
            (
                "the referenced Strategy strategies/s.yaml is invalid "
                "(1 error, listed under that file)"
            ),
        )
    ]
    [issue] = in_strategy
    assert issue.render() == (
        f"strategies/s.yaml:{line_of(strategy, 'fast:')}:{column_of(strategy, '2}')} "
        "spec.params.fast.max: Input should be greater than 3 (the min)"
    )


def test_a_missing_reference_is_reported_at_the_referring_value(workspace: Path) -> None:
    profile = write(workspace / "profiles/p.yaml", profile_text(ref="../strategies/absent.yaml"))
    [issue] = issues_of(profile)
    assert (issue.line, issue.column) == (line_of(profile, "- ref:"), column_of(profile, "../"))
    assert issue.code == "broken_reference"
    assert issue.message == "the referenced file strategies/absent.yaml does not exist"
    assert issue.hint == "paths are relative to profiles/p.yaml"


def test_a_reference_to_the_wrong_kind_is_reported(workspace: Path) -> None:
    profile = write(
        workspace / "profiles/p.yaml", profile_text(ref="risk/default.yaml", risk="risk/live.yaml")
    )
    [issue] = issues_of(profile)
    assert issue.code == "reference_kind"
    assert issue.message == (
        "profiles/risk/default.yaml is a RiskBudget, but a Strategy is expected here"
    )


def test_an_evolution_of_a_paper_profile_is_refused(workspace: Path) -> None:
    evolve = workspace / "profiles/evolve.yaml"
    evolve.write_text(evolve.read_text().replace("profile: backtest.yaml", "profile: paper.yaml"))
    [issue] = issues_of(evolve)
    assert issue.path == "spec.profile"
    assert "evolution needs a backtest profile" in issue.message


def test_a_profile_that_refers_to_itself_is_a_reference_cycle(workspace: Path) -> None:
    write(workspace / "strategies/s.yaml", strategy_text())
    profile = write(workspace / "profiles/p.yaml", profile_text(risk="p.yaml"))
    [issue] = issues_of(profile)
    assert issue.path == "spec.risk"
    assert issue.code == "reference_cycle"


def test_two_files_that_refer_to_each_other_end_with_a_cycle_issue(workspace: Path) -> None:
    write(workspace / "strategies/s.yaml", strategy_text())
    first = write(workspace / "profiles/a.yaml", profile_text(name="a", risk="b.yaml"))
    write(workspace / "profiles/b.yaml", profile_text(name="b", risk="a.yaml"))
    issues = issues_of(first)
    assert ("profiles/b.yaml", "reference_cycle") in [(i.file, i.code) for i in issues]
    assert ("profiles/a.yaml", "invalid_reference") in [(i.file, i.code) for i in issues]


# ---------------------------------------------------------------------- cache


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """How many times each file was read, by name."""
    counter: Counter[str] = Counter()
    real = loader.read_yaml

    def counting(path: Path, display: str) -> Any:
        counter[path.name] += 1
        return real(path, display)

    monkeypatch.setattr(loader, "read_yaml", counting)
    return counter


def test_a_file_referenced_twice_is_loaded_once(repo: Path, reads: Counter[str]) -> None:
    spec_loader = SpecLoader()
    # Both profiles run trend_htf.yaml; backtest and evolve both need risk/default.yaml.
    count, issues = spec_loader.check(
        [
            repo / "profiles/backtest.yaml",
            repo / "profiles/paper.yaml",
            repo / "profiles/evolve.yaml",
        ]
    )
    assert (count, issues) == (3, [])
    assert reads["trend_htf.yaml"] == 1
    assert reads["default.yaml"] == 1
    assert reads["backtest.yaml"] == 1
    assert set(reads.values()) == {1}


def test_loading_the_same_file_again_returns_the_cached_spec(repo: Path) -> None:
    spec_loader = SpecLoader()
    first = spec_loader.load(repo / "profiles/backtest.yaml")
    assert spec_loader.load(repo / "profiles/../profiles/backtest.yaml") is first
    strategy = spec_loader.load(repo / "strategies/trend_htf.yaml")
    assert first.references["spec.strategies[0].ref"] is strategy


def test_an_invalid_file_referenced_twice_is_read_once_and_reported_once(
    workspace: Path, reads: Counter[str]
) -> None:
    write(workspace / "strategies/s.yaml", strategy_text(fast_max=2))
    one = write(workspace / "profiles/one.yaml", profile_text(name="one"))
    two = write(workspace / "profiles/two.yaml", profile_text(name="two"))
    _, issues = SpecLoader().check([one, two])
    assert reads["s.yaml"] == 1
    assert [issue.file for issue in issues].count("strategies/s.yaml") == 1


# ---------------------------------------------------------------------- param overrides


def test_profile_param_overrides_are_checked_against_the_referenced_strategy(
    workspace: Path,
) -> None:
    write(workspace / "strategies/s.yaml", strategy_text())
    text = profile_text().replace(
        "      allocation: 0.5\n",
        "      allocation: 0.5\n      params: {fsat: 3, slow: 1000, fast: 2.5}\n",
    )
    profile = write(workspace / "profiles/p.yaml", text)
    issues = issues_of(profile)
    line = line_of(profile, "params:")
    assert [(i.line, i.column, i.path, i.code, i.message, i.hint) for i in issues] == [
        (
            line,
            column_of(profile, "fsat"),
            "spec.strategies[0].params.fsat",
            "unknown_param",
            "'fsat' is not a param of strategies/s.yaml",
            "did you mean 'fast'?",
        ),
        (
            line,
            column_of(profile, "1000"),
            "spec.strategies[0].params.slow",
            "param_value",
            "Input should be within [10, 300] (the param's bounds)",
            "",
        ),
        (
            line,
            column_of(profile, "2.5"),
            "spec.strategies[0].params.fast",
            "param_value",
            "Input should be a whole number (the param is an int)",
            "",
        ),
    ]


def test_valid_param_overrides_are_accepted(workspace: Path) -> None:
    write(workspace / "strategies/s.yaml", strategy_text())
    text = profile_text().replace(
        "      allocation: 0.5\n", "      allocation: 0.5\n      params: {fast: 3, slow: 300}\n"
    )
    loaded = SpecLoader().load(write(workspace / "profiles/p.yaml", text))
    assert isinstance(loaded.document, ProfileDocument)
    assert loaded.document.spec.strategies[0].params == {"fast": 3, "slow": 300}


# ---------------------------------------------------------------------- issue positions


def test_all_errors_of_a_file_are_reported_at_once(workspace: Path) -> None:
    text = strategy_text().replace("timeframe: 15m", "timeframe: 15min\n  colour: red")
    text = text.replace("ema(close, fast)", "ema(clsoe, fast)")
    text = text.replace("fraction: 1.0", "fraction: '1.0'")
    strategy = write(workspace / "strategies/s.yaml", text)
    issues = issues_of(strategy)
    assert {(issue.path, issue.code) for issue in issues} == {
        ("spec.timeframe", "literal_error"),
        ("spec.colour", "extra_forbidden"),
        ("spec.signals.trend", "unknown_name"),
        ("spec.sizing.fraction", "float_type"),
    }
    by_path = {issue.path: issue for issue in issues}
    assert by_path["spec.signals.trend"].hint == "did you mean 'close'?"
    assert (by_path["spec.colour"].line, by_path["spec.colour"].column) == (
        line_of(strategy, "colour"),
        3,
    )


def test_an_unknown_name_is_located_at_its_column(workspace: Path) -> None:
    strategy = write(
        workspace / "strategies/s.yaml",
        strategy_text().replace("ema(close, fast) - ema(close, slow)", "ema(close, fast) - zork"),
    )
    [issue] = issues_of(strategy)
    assert (issue.line, issue.column) == (line_of(strategy, "zork"), column_of(strategy, "zork"))


def test_an_unknown_name_after_a_higher_timeframe_series_is_located_at_its_column(
    workspace: Path,
) -> None:
    strategy = write(
        workspace / "strategies/s.yaml",
        strategy_text().replace(
            "ema(close, fast) - ema(close, slow)", "ema(close@4h, fast) - ema(close@4h, slowx)"
        ),
    )
    [issue] = issues_of(strategy)
    assert (issue.line, issue.column) == (line_of(strategy, "slowx"), column_of(strategy, "slowx"))


@pytest.mark.parametrize(
    ("signal", "needle"),
    [
        ("|\n      ema(close, fast)\n        + zork\n", "zork"),
        (">-\n      ema(close, fast)\n      + zork\n", "zork"),
        ('"ema(close, fast) + zork"\n', "zork"),
        ("'ema(close, fast) + zork'\n", "zork"),
        ("ema(close, fast) >\n      zork\n", "zork"),
        ('"ema(close, fast) >\n      zork"\n', "zork"),
    ],
    ids=[
        "literal",
        "folded",
        "double-quoted",
        "single-quoted",
        "plain-two-lines",
        "quoted-two-lines",
    ],
)
def test_an_unknown_name_in_any_scalar_style_is_located_where_it_is_written(
    workspace: Path, signal: str, needle: str
) -> None:
    text = strategy_text().replace("ema(close, fast) - ema(close, slow)\n", signal)
    strategy = write(workspace / "strategies/s.yaml", text)
    [issue] = issues_of(strategy)
    assert issue.path == "spec.signals.trend"
    assert (issue.line, issue.column) == (line_of(strategy, needle), column_of(strategy, needle))


def test_a_secret_is_reported_and_its_value_never_printed(workspace: Path) -> None:
    live = workspace / "profiles/live.yaml"
    live.write_text(
        live.read_text().replace(
            "      api_key_env: POLYTRADE_POLONIEX_API_KEY\n",
            "      api_key_env: POLYTRADE_POLONIEX_API_KEY\n      api_key: sk-live-abc123\n",
        )
    )
    issues = issues_of(live)
    assert [(issue.path, issue.code) for issue in issues] == [
        ("spec.venue.credentials.api_key", "secret")
    ]
    assert issues[0].line == line_of(live, "sk-live-abc123")
    assert all("sk-live-abc123" not in issue.render() for issue in issues)


def test_a_secret_is_masked_even_where_another_message_would_quote_it(workspace: Path) -> None:
    strategy = write(workspace / "strategies/s.yaml", strategy_text())
    strategy.write_text(
        strategy.read_text().replace(
            "kind: Strategy", "kind: sk-live-abc123\ntoken: sk-live-abc123"
        )
    )
    issues = issues_of(strategy)
    assert "secret" in [issue.code for issue in issues]
    assert all("sk-live-abc123" not in issue.render() for issue in issues)


def test_an_unknown_kind_gets_a_did_you_mean_hint(workspace: Path) -> None:
    strategy = write(
        workspace / "strategies/s.yaml", strategy_text().replace("kind: Strategy", "kind: Stratgy")
    )
    [issue] = issues_of(strategy)
    assert (issue.path, issue.message, issue.hint) == (
        "kind",
        "unknown kind 'Stratgy'",
        "did you mean 'Strategy'?",
    )
    assert issue.line == line_of(strategy, "kind:")


def test_yaml_issues_are_reported_together_with_model_issues(workspace: Path) -> None:
    text = strategy_text().replace("  timeframe: 15m\n", "  timeframe: 15m\n  timeframe: 1h\n")
    text = text.replace("fraction: 1.0", "fraction: -1")
    strategy = write(workspace / "strategies/s.yaml", text)
    assert {(issue.path, issue.code) for issue in issues_of(strategy)} == {
        ("spec.timeframe", "duplicate_key"),
        ("spec.sizing.fraction", "greater_than"),
    }


def test_a_file_that_is_not_a_mapping_is_refused(workspace: Path) -> None:
    [issue] = issues_of(write(workspace / "strategies/s.yaml", "- just\n- a list\n"))
    assert issue.code == "envelope"


def test_check_counts_files_and_returns_sorted_unique_issues(workspace: Path) -> None:
    write(workspace / "strategies/s.yaml", strategy_text(fast_max=2))
    write(workspace / "profiles/p.yaml", profile_text())
    count, issues = SpecLoader().check(["strategies", "profiles"])
    assert count == len(list(expand_paths(["strategies", "profiles"])))
    assert issues == sorted(set(issues))
    assert {issue.file for issue in issues} == {"strategies/s.yaml", "profiles/p.yaml"}


def test_expand_paths_finds_yaml_files_recursively_and_skips_hidden_ones(tmp_path: Path) -> None:
    for relative in ["a.yaml", "b.yml", "c.txt", "sub/d.yaml", ".hidden/e.yaml", "sub/.f.yaml"]:
        write(tmp_path / relative, "x: 1\n")
    found = [path.relative_to(tmp_path).as_posix() for path in expand_paths([tmp_path])]
    assert found == ["a.yaml", "b.yml", "sub/d.yaml"]
    assert list(expand_paths([tmp_path / "c.txt"])) == [tmp_path / "c.txt"]
