"""Safe YAML reading: core-schema scalars, positions, and everything that is refused."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from polytrade.spec.yaml_source import (
    MAX_FILE_BYTES,
    MAX_NODES,
    Position,
    YamlDocument,
    YamlFatalError,
    format_path,
    parse_yaml,
    read_yaml,
)

if TYPE_CHECKING:
    from polytrade.errors import SpecIssue


def parse(text: str) -> YamlDocument:
    return parse_yaml(text, "spec.yaml")


def value_of(scalar: str) -> object:
    """The value that `a: <scalar>` gives."""
    doc = parse(f"a: {scalar}\n")
    assert doc.issues == []
    return doc.data["a"]


def fatal(text: str) -> list[SpecIssue]:
    with pytest.raises(YamlFatalError) as caught:
        parse(text)
    return caught.value.issues


def where(issue: SpecIssue) -> tuple[int, int]:
    return issue.line, issue.column


def where_of(table: dict[tuple[str | int, ...], Position], path: tuple[str | int, ...]) -> tuple:
    position = table[path]
    return position.line, position.column


# ---------------------------------------------------------------------- core schema scalars


@pytest.mark.parametrize(
    ("scalar", "expected"),
    [
        ("true", True),
        ("True", True),
        ("TRUE", True),
        ("false", False),
        ("False", False),
        ("FALSE", False),
    ],
)
def test_core_booleans_become_bool(scalar: str, expected: bool) -> None:  # noqa: FBT001
    assert value_of(scalar) is expected


@pytest.mark.parametrize("scalar", ["null", "Null", "NULL", "~", ""])
def test_core_nulls_become_none(scalar: str) -> None:
    assert value_of(scalar) is None


@pytest.mark.parametrize(
    ("scalar", "expected"),
    [
        ("0", 0),
        ("42", 42),
        ("-12", -12),
        ("+7", 7),
        ("007", 7),
        ("0x1F", 31),
        ("0x1f", 31),
        ("0o17", 15),
    ],
)
def test_core_integers_become_int(scalar: str, expected: int) -> None:
    value = value_of(scalar)
    assert type(value) is int
    assert value == expected


@pytest.mark.parametrize(
    ("scalar", "expected"),
    [
        ("1.5", 1.5),
        ("-.5", -0.5),
        ("1.", 1.0),
        ("1e3", 1000.0),
        ("2.5E-3", 0.0025),
        (".inf", math.inf),
        ("+.inf", math.inf),
        (".Inf", math.inf),
        (".INF", math.inf),
        ("-.inf", -math.inf),
    ],
)
def test_core_floats_become_float(scalar: str, expected: float) -> None:
    value = value_of(scalar)
    assert type(value) is float
    assert value == expected


@pytest.mark.parametrize("scalar", [".nan", ".NaN", ".NAN"])
def test_core_not_a_number_becomes_nan(scalar: str) -> None:
    value = value_of(scalar)
    assert isinstance(value, float)
    assert math.isnan(value)


@pytest.mark.parametrize(
    "scalar",
    [
        # YAML 1.1 booleans: the Norway problem.
        "yes",
        "no",
        "Yes",
        "NO",
        "on",
        "off",
        "y",
        "n",
        # YAML 1.1 timestamps, sexagesimal numbers, binary and underscored ints.
        "2024-01-01",
        "2024-01-01T00:00:00Z",
        "12:30",
        "0b101",
        "1_000",
        # Not core floats or ints.
        "inf",
        "nan",
        "NaN",
        "-0x1F",
        "0x",
    ],
)
def test_yaml_1_1_scalars_stay_strings(scalar: str) -> None:
    assert value_of(scalar) == scalar


@pytest.mark.parametrize("scalar", ['"12"', "'true'", "'null'", '"0x1F"', "'.inf'"])
def test_quoted_scalars_stay_strings(scalar: str) -> None:
    assert value_of(scalar) == scalar[1:-1]


def test_mapping_keys_stay_text_whatever_they_look_like() -> None:
    doc = parse("1: a\ntrue: b\nnull: c\n")
    assert doc.data == {"1": "a", "true": "b", "null": "c"}


def test_merge_keys_are_not_special_in_yaml_1_2() -> None:
    assert parse("<<: {a: 1}\nb: 2\n").data == {"<<": {"a": 1}, "b": 2}


# ---------------------------------------------------------------------- positions

NESTED = """\
top:
  nested:
    key: value
  list:
    - x
    - {k: v, w: [1, 2]}
  flow: {p: 1, q: [a, b]}
"""


def test_positions_of_keys_and_values_in_nested_block_mappings_are_1_based() -> None:
    doc = parse(NESTED)
    assert where_of(doc.keys, ("top",)) == (1, 1)
    assert where_of(doc.keys, ("top", "nested")) == (2, 3)
    assert where_of(doc.values, ("top", "nested")) == (3, 5)
    assert where_of(doc.keys, ("top", "nested", "key")) == (3, 5)
    assert where_of(doc.values, ("top", "nested", "key")) == (3, 10)


def test_positions_of_block_sequence_items_are_the_items_themselves() -> None:
    doc = parse(NESTED)
    assert where_of(doc.values, ("top", "list")) == (5, 5)
    assert where_of(doc.keys, ("top", "list", 0)) == (5, 7)
    assert where_of(doc.values, ("top", "list", 0)) == (5, 7)
    assert where_of(doc.values, ("top", "list", 1)) == (6, 7)


def test_positions_inside_flow_mappings_and_sequences() -> None:
    doc = parse(NESTED)
    assert where_of(doc.keys, ("top", "list", 1, "k")) == (6, 8)
    assert where_of(doc.values, ("top", "list", 1, "k")) == (6, 11)
    assert where_of(doc.values, ("top", "list", 1, "w", 0)) == (6, 18)
    assert where_of(doc.values, ("top", "list", 1, "w", 1)) == (6, 21)
    assert where_of(doc.keys, ("top", "flow", "q")) == (7, 16)
    assert where_of(doc.values, ("top", "flow", "q", 1)) == (7, 23)


def test_positions_with_windows_line_endings() -> None:
    doc = parse("a: 1\r\nb:\r\n  c: [x, y]\r\n")
    assert doc.data == {"a": 1, "b": {"c": ["x", "y"]}}
    assert where_of(doc.values, ("b", "c", 1)) == (3, 10)


@pytest.mark.parametrize(
    ("scalar", "style"),
    [
        ("plain", None),
        ("'single'", "'"),
        ('"double"', '"'),
        ("|\n  block\n", "|"),
        (">\n  f\n", ">"),
    ],
)
def test_scalar_style_is_kept_with_the_position(scalar: str, style: str | None) -> None:
    doc = parse(f"a: {scalar}\n")
    assert doc.values["a",].style == style


def test_locate_returns_the_exact_position_when_the_path_is_known() -> None:
    doc = parse(NESTED)
    assert doc.locate(("top", "nested", "key")) == doc.values["top", "nested", "key"]
    assert doc.locate(("top", "nested", "key"), key=True) == doc.keys["top", "nested", "key"]


def test_locate_falls_back_to_the_nearest_located_ancestor() -> None:
    doc = parse(NESTED)
    # pydantic reports a missing field or a union tag under a path that is not in the file.
    assert doc.locate(("top", "nested", "missing", "deeper")) == doc.values["top", "nested"]
    assert doc.locate(("top", "list", 7)) == doc.values["top", "list"]
    assert doc.locate(("nowhere",)) == doc.values[()]
    assert doc.locate(()) == doc.values[()]


def test_every_key_and_value_of_a_document_is_located() -> None:
    doc = parse(NESTED)

    def paths(data: object, path: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
        out = [path]
        if isinstance(data, dict):
            for key, value in data.items():
                out += paths(value, (*path, key))
        elif isinstance(data, list):
            for index, value in enumerate(data):
                out += paths(value, (*path, index))
        return out

    for path in paths(doc.data):
        assert path in doc.values
        if path:
            assert path in doc.keys


@pytest.mark.parametrize(
    ("path", "text"),
    [
        ((), ""),
        (("spec",), "spec"),
        (("spec", "strategies", 0, "ref"), "spec.strategies[0].ref"),
        (("spec", "params", "fast", "max"), "spec.params.fast.max"),
        ((0, "a"), "[0].a"),
    ],
)
def test_format_path_reads_like_the_yaml(path: tuple[str | int, ...], text: str) -> None:
    assert format_path(path) == text


# ---------------------------------------------------------------------- keys


def test_duplicate_key_reports_the_second_occurrence_with_the_first_line_in_the_hint() -> None:
    doc = parse("a: 1\nb:\n  c: 2\n  c: 3\n")
    assert doc.data == {"a": 1, "b": {"c": 2}}, "the first value is kept"
    [issue] = doc.issues
    assert where(issue) == (4, 3)
    assert issue.path == "b.c"
    assert issue.message == "duplicate key 'c'"
    assert "line 3" in issue.hint
    assert issue.code == "duplicate_key"
    assert issue.file == "spec.yaml"


def test_every_duplicate_key_is_reported() -> None:
    doc = parse("a: 1\nb: 2\na: 3\nb: 4\na: 5\n")
    assert [(where(issue), issue.path) for issue in doc.issues] == [
        ((3, 1), "a"),
        ((4, 1), "b"),
        ((5, 1), "a"),
    ]


def test_a_sequence_used_as_a_key_is_an_issue() -> None:
    doc = parse("ok: 1\n? [a, b]\n: 2\n")
    assert doc.data == {"ok": 1}
    [issue] = doc.issues
    assert where(issue) == (2, 3)
    assert issue.code == "key"


# ---------------------------------------------------------------------- tags


@pytest.mark.parametrize(
    ("tagged", "shown"),
    [
        ("!!python/object/apply:os.system ['echo pwned']", "!!python/object/apply:os.system"),
        ("!!python/name:os.system ''", "!!python/name:os.system"),
        ("!!python/tuple [1, 2]", "!!python/tuple"),
        ("!!binary aGVsbG8=", "!!binary"),
        ("!!set {x, y}", "!!set"),
        ("!!omap [a: 1]", "!!omap"),
        ("!!timestamp 2024-01-01", "!!timestamp"),
        ("!custom 1", "!custom"),
    ],
)
def test_non_core_tags_are_refused_where_they_stand(tagged: str, shown: str) -> None:
    doc = parse(f"fine: 1\nbad:\n  - ok\n  - {tagged}\n")
    assert doc.data == {"fine": 1, "bad": ["ok", None]}
    [issue] = doc.issues
    assert where(issue) == (4, 5)
    assert issue.path == "bad[1]"
    assert shown in issue.message
    assert "not allowed" in issue.message
    assert issue.code == "tag"


def test_a_python_tag_never_runs_anything(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    doc = parse(f"a: !!python/object/apply:os.system ['touch {marker}']\n")
    assert not marker.exists()
    assert doc.data == {"a": None}


@pytest.mark.parametrize(
    ("tagged", "expected"),
    [("!!str 12", "12"), ("!!int 0x10", 16), ("!!float 1", 1.0), ("!!bool true", True)],
)
def test_explicit_core_tags_convert_their_value(tagged: str, expected: object) -> None:
    value = value_of(tagged)
    assert value == expected
    assert type(value) is type(expected)


@pytest.mark.parametrize(("tagged", "tag"), [("!!int abc", "!!int"), ("!!float xyz", "!!float")])
def test_explicit_number_tag_on_text_gives_an_issue_not_a_crash(tagged: str, tag: str) -> None:
    doc = parse(f"x: 1\na: {tagged}\n")
    assert doc.data == {"x": 1, "a": None}
    [issue] = doc.issues
    assert where(issue) == (2, 4)
    assert issue.path == "a"
    assert issue.message == f"{tagged.split()[1]!r} cannot be read as {tag}"
    assert issue.code == "tag"


@pytest.mark.parametrize("tagged", ["!!bool maybe", "!!null foo"])
def test_explicit_bool_or_null_tag_on_other_text_gives_an_issue(tagged: str) -> None:
    doc = parse(f"a: {tagged}\n")
    assert [issue.code for issue in doc.issues] == ["tag"]


# ---------------------------------------------------------------------- tabs


@pytest.mark.parametrize(
    ("text", "position"),
    [("a:\n\tb: 1\n", (2, 1)), ("a:\n  \tb: 1\n", (2, 3)), ("a:\n  b:\n  \t- 1\n", (3, 3))],
)
def test_tab_indentation_is_refused_at_its_line_and_column(
    text: str, position: tuple[int, int]
) -> None:
    [issue] = fatal(text)
    assert where(issue) == position
    assert issue.code == "tab"
    assert "tab" in issue.message
    assert "spaces" in issue.hint


def test_every_tab_indented_line_is_reported_at_once() -> None:
    issues = fatal("a:\n\tb: 1\n\tc: 2\n")
    assert [where(issue) for issue in issues] == [(2, 1), (3, 1)]


def test_a_tab_inside_a_value_is_not_indentation() -> None:
    assert parse("a: x\ty\nb: 1\t# comment\n").data == {"a": "x\ty", "b": 1}


def test_a_tab_inside_block_scalar_content_is_not_indentation() -> None:
    assert parse("a: |\n  x\n  \ty\n").data == {"a": "x\n\ty\n"}


# ---------------------------------------------------------------------- documents


def test_more_than_one_document_is_refused_at_the_second_one() -> None:
    [issue] = fatal("a: 1\n---\nb: 2\n")
    assert where(issue) == (2, 1)
    assert issue.code == "syntax"


def test_more_than_one_document_is_explained_in_plain_words() -> None:
    [issue] = fatal("a: 1\n---\nb: 2\n")
    assert issue.message == "the file holds more than one YAML document"
    assert issue.hint == "put each spec in its own file"


def test_explicit_markers_around_one_document_are_fine() -> None:
    assert parse("---\na: 1\n...\n").data == {"a": 1}


@pytest.mark.parametrize("text", ["", "\n\n", "   \n", "# a comment\n# and another\n"])
def test_an_empty_or_comment_only_file_is_refused(text: str) -> None:
    [issue] = fatal(text)
    assert where(issue) == (1, 1)
    assert issue.code == "empty"
    assert "apiVersion" in issue.hint


@pytest.mark.parametrize(
    ("text", "line", "problem", "context_line"),
    [
        ("a: [1, 2\nb: 3\n", 2, "did not find expected ',' or ']'", "line 1"),
        ("a: 'unterminated\n", 2, "unexpected end of stream", "line 1"),
        ("a: b: c\n", 1, "mapping values are not allowed", None),
        ("a: 1\n b: 2\n", 2, "mapping values are not allowed", None),
        ("a: &x 1\nb: *y\n", 2, "undefined alias", None),
    ],
)
def test_syntax_errors_carry_the_line_of_the_problem(
    text: str, line: int, problem: str, context_line: str | None
) -> None:
    [issue] = fatal(text)
    assert issue.line == line
    assert issue.column >= 1
    assert issue.message.startswith("YAML syntax error:")
    assert problem in issue.message
    assert issue.code == "syntax"
    if context_line is not None:
        assert context_line in issue.hint


def test_syntax_error_column_points_at_the_offending_character() -> None:
    [issue] = fatal("key: value\nother: x: y\n")
    assert where(issue) == (2, 9)


# ---------------------------------------------------------------------- aliases

BILLION_LAUGHS = "\n".join(
    [
        'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
        *(
            f"{name}: &{name} [{', '.join([f'*{prev}'] * 9)}]"
            for prev, name in zip("abcdefgh", "bcdefghi", strict=True)
        ),
    ]
)


def test_billion_laughs_is_refused_quickly() -> None:
    started = time.perf_counter()
    [issue] = fatal(BILLION_LAUGHS)
    assert time.perf_counter() - started < 1.0
    assert issue.code == "alias_bomb"
    assert issue.line >= 1


def test_many_aliases_of_a_scalar_are_bounded_by_the_node_count() -> None:
    uses = ", ".join(["*s"] * (MAX_NODES + 10))
    started = time.perf_counter()
    [issue] = fatal(f"a: &s x\nb: [{uses}]\n")
    assert time.perf_counter() - started < 5.0
    assert issue.code == "alias_bomb"


@pytest.mark.parametrize("text", ["a: &a [*a]\n", "a: &a {b: *a}\n", "a: &a {b: [1, {c: *a}]}\n"])
def test_a_recursive_alias_is_refused(text: str) -> None:
    [issue] = fatal(text)
    assert issue.code == "alias_recursion"
    assert where(issue) == (1, 4)


def test_reusing_an_anchor_a_few_times_is_fine() -> None:
    doc = parse("base: &b {x: 1}\nc: *b\nd: *b\n")
    assert doc.data == {"base": {"x": 1}, "c": {"x": 1}, "d": {"x": 1}}
    assert doc.issues == []


# ---------------------------------------------------------------------- files


def test_a_file_of_one_mebibyte_and_one_byte_is_refused_without_being_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = tmp_path / "big.yaml"
    with spec.open("wb") as handle:
        handle.truncate(MAX_FILE_BYTES + 1)  # sparse: nothing is written

    def never(*_args: object, **_kwargs: object) -> bytes:
        pytest.fail("a file over the limit must not be read")

    monkeypatch.setattr(Path, "read_bytes", never)
    monkeypatch.setattr(Path, "open", never)
    with pytest.raises(YamlFatalError) as caught:
        read_yaml(spec, "big.yaml")
    [issue] = caught.value.issues
    assert issue.code == "too_large"
    assert issue.file == "big.yaml"
    assert f"{MAX_FILE_BYTES + 1:,} bytes" in issue.message
    assert MAX_FILE_BYTES == 1024 * 1024


def test_a_file_of_exactly_one_mebibyte_is_read(tmp_path: Path) -> None:
    body = b"a: 1\n"
    spec = tmp_path / "limit.yaml"
    spec.write_bytes(body + b"#" * (MAX_FILE_BYTES - len(body)))
    assert read_yaml(spec, "limit.yaml").data == {"a": 1}


def test_a_byte_order_mark_is_accepted_and_does_not_shift_columns(tmp_path: Path) -> None:
    spec = tmp_path / "bom.yaml"
    spec.write_bytes(b"\xef\xbb\xbfa: 1\nb: two\n")
    doc = read_yaml(spec, "bom.yaml")
    assert doc.data == {"a": 1, "b": "two"}
    assert where_of(doc.values, ("a",)) == (1, 4)


def test_non_utf8_text_is_refused_at_the_first_bad_byte(tmp_path: Path) -> None:
    spec = tmp_path / "latin1.yaml"
    spec.write_bytes("a: 1\nb: café\n".encode("latin-1"))
    with pytest.raises(YamlFatalError) as caught:
        read_yaml(spec, "latin1.yaml")
    [issue] = caught.value.issues
    assert where(issue) == (2, 7)  # "b: caf" is six characters
    assert issue.code == "encoding"
    assert "UTF-8" in issue.message


def test_utf16_text_is_refused(tmp_path: Path) -> None:
    spec = tmp_path / "utf16.yaml"
    spec.write_bytes("a: 1\n".encode("utf-16"))
    with pytest.raises(YamlFatalError) as caught:
        read_yaml(spec, "utf16.yaml")
    assert [issue.code for issue in caught.value.issues] == ["encoding"]


def test_a_missing_file_is_an_issue(tmp_path: Path) -> None:
    with pytest.raises(YamlFatalError) as caught:
        read_yaml(tmp_path / "absent.yaml", "absent.yaml")
    [issue] = caught.value.issues
    assert issue.file == "absent.yaml"
    assert "cannot read the file" in issue.message


@pytest.mark.parametrize("cause", ["folder", "permission"])
def test_a_path_that_cannot_be_read_is_an_issue_not_a_crash(
    cause: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "spec.yaml"
    if cause == "folder":
        target.mkdir()
    else:
        target.write_text("a: 1\n")

        def denied(*_args: object, **_kwargs: object) -> bytes:
            raise PermissionError(13, "Permission denied")

        monkeypatch.setattr(Path, "read_bytes", denied)
        monkeypatch.setattr(Path, "open", denied)
    with pytest.raises(YamlFatalError) as caught:
        read_yaml(target, "spec.yaml")
    [issue] = caught.value.issues
    assert issue.file == "spec.yaml"
    assert "cannot read the file" in issue.message


def test_a_control_character_is_refused_at_its_position() -> None:
    [issue] = fatal("a: 1\nb: x\x07y\n")
    assert where(issue) == (2, 5)
    assert issue.code == "syntax"
