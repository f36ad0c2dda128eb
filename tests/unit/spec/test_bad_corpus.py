"""The corpus of malformed specs: each file fails with exactly the issues its header names.

Every file under tests/specs/bad/ starts with comment lines:

    # case: what is wrong
    # expect: LINE:COL PATH            an issue in this file
    # expect: OTHER.yaml:LINE:COL PATH an issue in a file it refers to (relative path)

`polytrade validate FILE` must exit 3 and report exactly that set of (file, line, column,
path), no more and no fewer. Cases that cannot live in the repository as files (a 10 MB file,
an empty file, bytes that are not UTF-8, a folder) are built in tmp_path below.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from polytrade.cli import run
from polytrade.cli.loading import spec_loader
from polytrade.errors import SpecError, SpecIssue
from polytrade.spec.loader import display_path
from polytrade.spec.yaml_source import MAX_FILE_BYTES

SPECS = Path(__file__).resolve().parents[2] / "specs"
BAD = SPECS / "bad"
SUPPORT = SPECS / "support"
CORPUS = sorted(BAD.glob("*.yaml"))

_EXPECT = re.compile(
    r"^# expect: (?:(?P<file>[^\s:]+):)?(?P<line>\d+):(?P<column>\d+)(?: (?P<path>\S+))?$"
)

Where = tuple[Path, int, int, str]

# The secret values written into the corpus, by file. They must never be printed.
SECRETS = {
    "secret_api_key.yaml": ["8f2b1c9d4e7a6b5c3d2e1f0a9b8c7d6e"],
    "secret_store_url_password.yaml": ["hunter2-S3cr3t"],
    "secret_token_in_alerts.yaml": ["123456:AAE-xoxo-TopSecretToken", "TopSecretToken"],
    "secret_url_in_discriminators.yaml": ["Pa55w0rd-hunter"],
    "secret_url_in_reference.yaml": ["tok-9f8e7d6c"],
    "secret_number_and_unknown_kind.yaml": ["CorrectHorse42", "1234567890"],
}


def expectations(file: Path) -> set[Where]:
    """The (file, line, column, path) set named by the header of a corpus file."""
    expected: set[Where] = set()
    for raw in file.read_text(encoding="utf-8").splitlines():
        if raw.startswith("# case: "):
            continue
        if not raw.startswith("# expect:"):
            break
        match = _EXPECT.match(raw)
        assert match is not None, f"{file.name}: malformed header line {raw!r}"
        where = (file.parent / match["file"]).resolve() if match["file"] else file.resolve()
        expected.add((where, int(match["line"]), int(match["column"]), match["path"] or ""))
    return expected


def located(issues: list[dict]) -> set[Where]:
    return {(Path(i["file"]).resolve(), i["line"], i["column"], i["path"]) for i in issues}


def validate_json(file: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, list, str]:
    code = run(["validate", str(file), "--json"])
    out = capsys.readouterr()
    return code, json.loads(out.out), out.err


def test_the_corpus_is_large_and_every_file_names_its_issues() -> None:
    assert len(CORPUS) >= 40
    for file in CORPUS:
        assert file.read_text(encoding="utf-8").startswith("# case: "), file.name
        assert expectations(file), f"{file.name} has no '# expect:' line"


@pytest.mark.parametrize("file", CORPUS, ids=[file.stem for file in CORPUS])
def test_validate_json_reports_exactly_the_expected_issues(
    file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, issues, err = validate_json(file, capsys)

    assert code == 3, err
    assert located(issues) == expectations(file)
    files = {Path(issue["file"]).resolve() for issue in issues}
    assert file.resolve() in files
    for issue in issues:
        assert issue["message"], issue
        assert issue["code"], issue
        assert issue["line"] >= 1
        assert issue["column"] >= 1
    assert "error" in err


@pytest.mark.parametrize("file", CORPUS, ids=[file.stem for file in CORPUS])
def test_validate_text_lines_start_with_file_line_column_and_path(
    file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = run(["validate", str(file)])
    lines = capsys.readouterr().out.splitlines()

    assert code == 3
    prefixes = {
        f"{display_path(where)}:{line}:{column} {path}: "
        if path
        else f"{display_path(where)}:{line}:{column} "
        for where, line, column, path in expectations(file)
    }
    assert len(lines) >= len(prefixes)
    for text in lines:
        assert any(text.startswith(prefix) for prefix in prefixes), text
    for prefix in prefixes:
        assert any(text.startswith(prefix) for text in lines), prefix


@pytest.mark.parametrize("file", CORPUS, ids=[file.stem for file in CORPUS])
def test_load_raises_spec_error_with_the_same_issues(file: Path) -> None:
    with pytest.raises(SpecError) as info:
        spec_loader().load(file)

    got = {(Path(i.file).resolve(), i.line, i.column, i.path) for i in info.value.issues}
    assert got == expectations(file)


# Files whose message matters as much as the place: each was wrong or missing once.
MESSAGES = {
    "multiple_documents": "the file holds more than one YAML document",
    "deeply_nested": "nested more than 100 levels deep",
    "billion_laughs": "aliases are used more than 200 times",
    "alias_recursive": "an alias refers to the node that contains it",
    "expr_unbalanced_paren": "syntax error: unmatched ')'",
    "expr_syntax_quoted": "syntax error: unmatched ')'",
    "expr_string_escape": "strings are not allowed",
    "expr_after_higher_timeframe": "unknown name 'volum'",
    "expr_multiline_plain": "unknown name 'volum'",
    "profile_ref_name_too_long": "the referenced file cannot be opened",
    "spec_null": "Input should be a valid dictionary",
    "kind_typo": "did you mean 'Strategy'?",
}


@pytest.mark.parametrize("stem", sorted(MESSAGES))
def test_the_message_says_what_is_wrong(stem: str) -> None:
    with pytest.raises(SpecError) as info:
        spec_loader().load(BAD / f"{stem}.yaml")

    messages = [f"{issue.message} ({issue.hint})" for issue in info.value.issues]
    assert any(MESSAGES[stem] in message for message in messages), messages


@pytest.mark.parametrize(
    "stem", ["spec_null", "profile_allocation_out_of_range", "evolution_objective_direction"]
)
def test_one_problem_is_not_reported_again_as_a_consequence(stem: str) -> None:
    # A null spec is not also "a strategy that never enters"; a list with one bad item is not
    # also "too short".
    with pytest.raises(SpecError) as info:
        spec_loader().load(BAD / f"{stem}.yaml")

    assert len(info.value.issues) == len(expectations(BAD / f"{stem}.yaml"))


def test_the_whole_corpus_at_once_reports_the_union(capsys: pytest.CaptureFixture[str]) -> None:
    # One loader for all files: references are loaded once and cached; nothing may go missing.
    code, issues, _ = validate_json(BAD, capsys)

    assert code == 3
    expected = set().union(*(expectations(file) for file in CORPUS))
    assert located(issues) == expected


def test_the_support_specs_are_valid(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["validate", str(SUPPORT)]) == 0, capsys.readouterr().out


@pytest.mark.parametrize("name", sorted(SECRETS))
def test_a_secret_is_never_printed(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    file = BAD / name
    text = file.read_text(encoding="utf-8")
    for secret in SECRETS[name]:
        assert secret in text  # the corpus really holds it

    code, issues, err = validate_json(file, capsys)
    assert code == 3
    assert any(issue["code"] == "secret" for issue in issues)
    outputs = [json.dumps(issues), err]
    assert run(["validate", str(file)]) == 3
    captured = capsys.readouterr()
    outputs += [captured.out, captured.err]
    with pytest.raises(SpecError) as info:
        spec_loader().load(file)
    outputs.append(str(info.value))

    for output in outputs:
        squeezed = "".join(output.split())  # a wrapped line must not hide a secret either
        for secret in SECRETS[name]:
            assert secret not in output
            assert secret not in squeezed


# ---------------------------------------------------------------------- generated cases


def issues_of(path: Path) -> list[SpecIssue]:
    with pytest.raises(SpecError) as info:
        spec_loader().load(path)
    return list(info.value.issues)


def only_issue(path: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    code, issues, _ = validate_json(path, capsys)
    assert code == 3
    assert len(issues) == 1, issues
    assert Path(issues[0]["file"]).resolve() == path.resolve()
    return issues[0]


def test_a_zero_byte_file_is_empty(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "empty.yaml"
    path.write_bytes(b"")

    issue = only_issue(path, capsys)

    assert (issue["line"], issue["column"], issue["path"], issue["code"]) == (1, 1, "", "empty")


@pytest.mark.parametrize(
    "text", ["---\n", "--- # nothing yet\n...\n", "\n\n   \n", "# only\n# comments"]
)
def test_an_empty_document_is_empty(
    text: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "blank.yaml"
    path.write_text(text, encoding="utf-8")

    assert only_issue(path, capsys)["code"] == "empty"


def test_a_10_mb_file_is_refused_before_parsing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "huge.yaml"
    line = b"# " + b"x" * 97 + b"\n"
    path.write_bytes(b"apiVersion: polytrade/v1\n" + line * (10 * 1024 * 1024 // len(line)))

    issue = only_issue(path, capsys)

    assert (issue["line"], issue["column"], issue["path"], issue["code"]) == (
        1,
        1,
        "",
        "too_large",
    )
    assert "bytes" in str(issue["message"])
    assert f"{MAX_FILE_BYTES:,}" in str(issue["message"])


def test_a_file_just_at_the_limit_is_parsed(tmp_path: Path) -> None:
    path = tmp_path / "limit.yaml"
    head = b"apiVersion: polytrade/v1\nkind: Stratgy\n"
    path.write_bytes(head + b"#" * (MAX_FILE_BYTES - len(head)))

    (issue,) = issues_of(path)

    assert (issue.line, issue.path, issue.code) == (2, "kind", "kind")


@pytest.mark.parametrize(
    ("raw", "line", "column"),
    [
        (b"apiVersion: polytrade/v1\nkind: Str\xffategy\n", 2, 10),
        (b"\xef\xbb\xbfapiVersion: \xc3\n", 1, 13),  # after a byte-order mark
        (b"a: 1\r\nb: \xe9t\xe9\r\n", 2, 4),  # Latin-1, not UTF-8
    ],
)
def test_bytes_that_are_not_utf8_are_located(
    raw: bytes, line: int, column: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(raw)

    issue = only_issue(path, capsys)

    assert (issue["line"], issue["column"], issue["path"], issue["code"]) == (
        line,
        column,
        "",
        "encoding",
    )


@pytest.mark.parametrize("char", ["\x00", "\x07", "\x1b", "\ufffe"])
def test_a_control_character_is_located_on_its_line(
    char: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "control.yaml"
    path.write_text(f"apiVersion: polytrade/v1\nkind: Str{char}ategy\n", encoding="utf-8")

    issue = only_issue(path, capsys)

    assert (issue["line"], issue["column"], issue["path"], issue["code"]) == (2, 10, "", "syntax")
    assert "\n" not in str(issue["message"])
    assert f"U+{ord(char):04X}" in str(issue["message"])


def test_a_control_character_after_wide_characters_keeps_its_column(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # libyaml counts bytes; the column counts characters.
    path = tmp_path / "control.yaml"
    path.write_text("metadata:\n  description: é€😀\x07\n", encoding="utf-8")

    issue = only_issue(path, capsys)

    assert (issue["line"], issue["column"]) == (2, 19)


def test_a_folder_named_like_a_spec(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "folder.yaml"
    folder.mkdir()

    (issue,) = issues_of(folder)
    assert (issue.line, issue.column, issue.path) == (1, 1, "")
    assert "folder" in issue.message
    # On the command line a folder is searched for specs; this one holds none: a usage error.
    assert run(["validate", str(folder)]) == 2
    capsys.readouterr()


def test_a_reference_to_a_folder_is_broken(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "risk.yaml").mkdir()
    profile = (SUPPORT / "profile.yaml").read_text(encoding="utf-8")
    profile = profile.replace("strategy.yaml", str(SUPPORT / "strategy.yaml"))
    path = tmp_path / "profile.yaml"
    path.write_text(profile, encoding="utf-8")
    line = profile.splitlines().index("  risk: risk.yaml") + 1

    issue = only_issue(path, capsys)

    assert (issue["line"], issue["column"], issue["path"], issue["code"]) == (
        line,
        9,
        "spec.risk",
        "broken_reference",
    )


def test_a_missing_file_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["validate", str(tmp_path / "nope.yaml")]) == 2
    assert "no such file" in capsys.readouterr().err
    (issue,) = issues_of(tmp_path / "nope.yaml")
    assert (issue.line, issue.column, issue.path) == (1, 1, "")


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root reads any file")
def test_an_unreadable_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "secret.yaml"
    path.write_text("apiVersion: polytrade/v1\n", encoding="utf-8")
    path.chmod(0)
    try:
        issue = only_issue(path, capsys)
    finally:
        path.chmod(0o600)
    assert (issue["line"], issue["column"]) == (1, 1)
    assert "cannot read" in str(issue["message"])


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"], ids=["lf", "crlf", "cr"])
def test_line_endings_do_not_shift_positions(
    newline: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = (SUPPORT / "strategy.yaml").read_text(encoding="utf-8")
    text = text.replace(
        "  entry_long: cross_above(trend, 0)\n",
        "  entry_long: |\n    cross_above(trend, 0)\n      and volum > 0\n",
    )
    line = text.splitlines().index("      and volum > 0") + 1
    text = text.replace("apiVersion: polytrade/v1", "apiVersion: polytrade/v0")
    path = tmp_path / "strategy.yaml"
    path.write_bytes(text.replace("\n", newline).encode("utf-8"))

    code, issues, _ = validate_json(path, capsys)

    assert code == 3
    assert {(i["line"], i["column"], i["path"]) for i in issues} == {
        (1, 13, "apiVersion"),
        (line, 11, "spec.entry_long"),
    }


def test_a_key_with_a_line_break_keeps_the_message_on_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = (SUPPORT / "risk.yaml").read_text(encoding="utf-8")
    path = tmp_path / "risk.yaml"
    path.write_text(text + '  "max\\nlegs": 3\n', encoding="utf-8")

    assert run(["validate", str(path)]) == 3
    (line,) = capsys.readouterr().out.splitlines()

    assert line.startswith(f"{display_path(path)}:12:3 spec['max\\nlegs']: unknown field")
