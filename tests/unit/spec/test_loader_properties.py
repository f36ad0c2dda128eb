"""Properties of the loader on any input: it answers with a model or a SpecError, never a crash.

The valid examples in strategies/ and profiles/ are mutated at the data level (keys deleted,
values replaced, keys inserted, list items dropped) and at the text level (characters
inserted, deleted or replaced, lines duplicated), then loaded. Whatever comes out must be a
LoadedSpec or a SpecError whose issues sit on real lines and columns of the files they name.
"""

from __future__ import annotations

import copy
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from polytrade.cli.loading import spec_loader
from polytrade.errors import SpecError, SpecIssue

REPO = Path(__file__).resolve().parents[3]
EXAMPLES = sorted(
    path.relative_to(REPO)
    for pattern in ("strategies/*.yaml", "profiles/*.yaml", "profiles/risk/*.yaml")
    for path in REPO.glob(pattern)
)
SOURCES = {path: (REPO / path).read_text(encoding="utf-8") for path in EXAMPLES}
DATA = {path: yaml.safe_load(text) for path, text in SOURCES.items()}

PROPERTY = settings(
    max_examples=300,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

# Names and values that reach deep into the models, beside arbitrary ones.
FIELD_NAMES = [
    "apiVersion", "kind", "metadata", "spec", "name", "params", "signals", "type", "min",
    "max", "default", "step", "log", "choices", "entry_long", "exit_long", "entry_short",
    "stops", "stop_loss", "max_bars", "sizing", "method", "execution", "style", "regime",
    "when", "timeframe", "instruments", "mode", "venue", "credentials", "api_key",
    "api_key_env", "password", "strategies", "ref", "allocation", "risk", "data", "source",
    "store", "url", "url_env", "schedules", "cron", "profile", "strategy", "population",
    "objectives", "metric", "capital_usdt", "max_order_notional_usdt", "kill_switch",
]  # fmt: skip
INTERESTING = [
    "close@4h", "close@5m", "close@7h", "ema(close, fast)", "close > 0", "fast(close)",
    "__import__('os')", "a) + (b", "1h", "15m", "int", "float", "choice", "bool", "integer",
    "vol_target", "risk_per_trade", "market", "twap", "live", "backtest", "paper", "synthetic",
    "catalog", "../strategies/trend_htf.yaml", "risk/default.yaml", "backtest.yaml",
    "live.yaml", "_mutant.yaml", "Strategy", "Profile", "RiskBudget", "Evolution", "Stratgy",
    "polytrade/v1", "2024-01-01", "2024-02-30", "yes", "on", "", " ", "BTC_USDT_PERP",
    "postgresql://u:pw-1234@db/x", "x" * 300 + ".yaml", "\n", "\t", "é€😀", "*/15 * * * *",
]  # fmt: skip

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**12), max_value=10**12)
    | st.floats()
    | st.text(max_size=12)
    | st.sampled_from(INTERESTING)
)
keys = st.sampled_from(FIELD_NAMES) | st.text(max_size=10)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=3),
    max_leaves=6,
)


LAYOUTS = {"block": False, "flow": True, "mixed": None}
"""yaml.safe_dump's default_flow_style: block mappings, flow everywhere, flow for leaves."""


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the examples, so that a mutant beside them resolves its references."""
    root = tmp_path_factory.mktemp("examples")
    shutil.copytree(REPO / "strategies", root / "strategies")
    shutil.copytree(REPO / "profiles", root / "profiles")
    return root


def containers(data: Any) -> list[Any]:
    """Every mapping and list in `data`, the root included."""
    found = []
    stack = [data]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            found.append(node)
            stack.extend(node.values())
        elif isinstance(node, list):
            found.append(node)
            stack.extend(node)
    return found


@st.composite
def mutated_data(draw: st.DrawFn) -> tuple[Path, Any]:
    example = draw(st.sampled_from(EXAMPLES))
    data = copy.deepcopy(DATA[example])
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        spots = containers(data)
        if not spots:
            break
        node = draw(st.sampled_from(spots))
        operation = draw(st.sampled_from(["delete", "replace", "insert"]))
        if isinstance(node, dict):
            if node and operation in {"delete", "replace"}:
                key = draw(st.sampled_from(sorted(node)))
                if operation == "delete":
                    del node[key]
                else:
                    node[key] = draw(values)
            else:
                node[draw(keys)] = draw(values)
        elif node and operation in {"delete", "replace"}:
            index = draw(st.integers(min_value=0, max_value=len(node) - 1))
            if operation == "delete":
                del node[index]
            else:
                node[index] = draw(values)
        else:
            node.insert(draw(st.integers(min_value=0, max_value=len(node))), draw(values))
    return example, data


EDIT_TEXT = [*"\t&*!:{}[]'\"#-|>%@`\\ \n,?~0a", "é", "\u2028", "\ufeff", "😀", "\r", "\x07"]


@st.composite
def edited_text(draw: st.DrawFn) -> tuple[Path, str]:
    example = draw(st.sampled_from(EXAMPLES))
    text = SOURCES[example]
    for _ in range(draw(st.integers(min_value=1, max_value=6))):
        at = draw(st.integers(min_value=0, max_value=len(text)))
        operation = draw(st.sampled_from(["insert", "delete", "replace", "copy"]))
        if operation == "insert":
            text = text[:at] + draw(st.sampled_from(EDIT_TEXT)) + text[at:]
        elif operation == "delete":
            text = text[:at] + text[at + draw(st.integers(min_value=1, max_value=8)) :]
        elif operation == "replace":
            text = text[:at] + draw(st.sampled_from(EDIT_TEXT)) + text[at + 1 :]
        else:  # a slice copied elsewhere: duplicate keys, repeated structure
            start = draw(st.integers(min_value=0, max_value=len(text)))
            piece = text[start : start + draw(st.integers(min_value=1, max_value=80))]
            text = text[:at] + piece + text[at:]
    return example, text


# The line breaks of YAML (str.splitlines knows more, e.g. form feeds, which YAML refuses).
YAML_LINE_BREAK = re.compile("\r\n|[\r\n\x85\u2028\u2029]")


def lines_of(file: Path) -> list[str] | None:
    try:
        text = file.read_bytes().decode("utf-8", errors="replace").removeprefix("\ufeff")
    except OSError:
        return None
    lines = YAML_LINE_BREAK.split(text)
    return lines[:-1] if lines and not lines[-1] else lines


def assert_well_located(issue: SpecIssue) -> None:
    """On a line of the file (or just after its end), at most one column past the line."""
    assert issue.file
    assert issue.message.strip()
    assert "\n" not in issue.render()
    assert issue.column >= 1
    assert issue.line >= 1
    lines = lines_of(Path(issue.file))
    if lines is None:  # the file itself could not be read
        assert (issue.line, issue.column) == (1, 1)
        return
    assert issue.line <= len(lines) + 1, issue.render()
    if issue.line <= len(lines):
        assert issue.column <= len(lines[issue.line - 1]) + 1, issue.render()


def assert_loads_or_reports(path: Path) -> None:
    """The property: a model, or a SpecError with well-placed issues; nothing else."""
    try:
        loaded = spec_loader().load(path)
    except SpecError as exc:
        issues = exc.issues
    else:
        assert loaded.document.kind in {"Strategy", "RiskBudget", "Profile", "Evolution"}
        return
    assert issues
    for issue in issues:
        assert_well_located(issue)


@PROPERTY
@given(case=mutated_data(), layout=st.sampled_from(sorted(LAYOUTS)))
def test_data_mutations_load_or_raise_spec_error(
    case: tuple[Path, Any], layout: str, sandbox: Path
) -> None:
    example, data = case
    path = sandbox / example.parent / "_mutant.yaml"
    path.write_text(
        yaml.safe_dump(
            data, default_flow_style=LAYOUTS[layout], allow_unicode=True, sort_keys=False
        ),
        encoding="utf-8",
    )
    assert_loads_or_reports(path)


@settings(PROPERTY, max_examples=400)
@given(case=edited_text())
def test_text_mutations_load_or_raise_spec_error(case: tuple[Path, str], sandbox: Path) -> None:
    example, text = case
    path = sandbox / example.parent / "_mutant.yaml"
    path.write_bytes(text.encode("utf-8", errors="surrogatepass"))
    assert_loads_or_reports(path)


@settings(PROPERTY, max_examples=60)
@given(
    example=st.sampled_from(EXAMPLES),
    layout=st.sampled_from(sorted(LAYOUTS)),
    width=st.integers(min_value=20, max_value=200),
    indent=st.integers(min_value=2, max_value=6),
    order=st.sampled_from(["sorted", "as written"]),
)
def test_a_valid_spec_is_valid_in_any_layout_and_loads_the_same(
    example: Path, layout: str, width: int, indent: int, order: str, sandbox: Path
) -> None:
    text = yaml.safe_dump(
        DATA[example],
        default_flow_style=LAYOUTS[layout],
        width=width,
        indent=indent,
        sort_keys=order == "sorted",
        allow_unicode=True,
    )
    path = sandbox / example.parent / "_layout.yaml"
    path.write_text(text, encoding="utf-8")

    count, issues = spec_loader().check([path])
    assert (count, issues) == (1, [])
    first, second = spec_loader().load(path), spec_loader().load(path)
    assert first.document == second.document
    assert first.document == spec_loader().load(sandbox / example).document


@pytest.mark.parametrize("example", EXAMPLES, ids=[str(example) for example in EXAMPLES])
def test_every_example_is_valid_and_loads_the_same_twice(example: Path) -> None:
    loader = spec_loader()
    assert loader.check([REPO / example]) == (1, [])
    assert spec_loader().load(REPO / example) == spec_loader().load(REPO / example)


@st.composite
def numeric_params(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    kind = draw(st.sampled_from(["int", "float"]))
    if kind == "int":
        low = draw(st.integers(min_value=-(10**6), max_value=10**6))
        high = draw(st.integers(min_value=low + 1, max_value=low + 10**6))
        default = draw(st.integers(min_value=low, max_value=high))
    else:
        bound = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)
        low, high = sorted(draw(st.tuples(bound, bound).filter(lambda pair: pair[0] != pair[1])))
        default = draw(st.floats(min_value=low, max_value=high))
    return kind, {"type": kind, "min": low, "max": high, "default": default}


@settings(PROPERTY, max_examples=60)
@given(params=st.lists(numeric_params(), min_size=1, max_size=4))
def test_a_generated_valid_strategy_has_no_issues(
    params: list[tuple[str, dict[str, Any]]], sandbox: Path
) -> None:
    names = [f"p{index}" for index in range(len(params))]
    spec = {
        "apiVersion": "polytrade/v1",
        "kind": "Strategy",
        "metadata": {"name": "generated"},
        "spec": {
            "instruments": ["BTC_USDT_PERP"],
            "timeframe": "1h",
            "params": {name: param for name, (_, param) in zip(names, params, strict=True)},
            "signals": {"score": " + ".join(f"{name} * close" for name in names)},
            "entry_long": "score > 0",
            "sizing": {"method": "fixed_fraction", "fraction": 1.0},
        },
    }
    path = sandbox / "strategies" / "_generated.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")

    assert spec_loader().check([path]) == (1, [])
    first, second = spec_loader().load(path), spec_loader().load(path)
    assert first.document == second.document


# ------------------------------------------------------- expression errors point at the name

KNOWN_TERMS = ["close", "fast", "trend", "3", "ema(close, fast)", "(close - open)", "0.5"]
UNKNOWN = "zzqx"


@st.composite
def expression_layouts(draw: st.DrawFn) -> str:
    """An entry_long with an unknown name, written in one of YAML's scalar styles."""
    terms = draw(st.lists(st.sampled_from(KNOWN_TERMS), min_size=1, max_size=6))
    terms.insert(draw(st.integers(min_value=0, max_value=len(terms))), UNKNOWN)
    words = [*" + ".join(terms).split(" "), ">", "0"]
    style = draw(st.sampled_from(["plain", "double", "single", "literal", "folded"]))

    def joined(indent: str) -> str:
        # Break the text at some spaces onto continuation lines.
        out = words[0]
        for word in words[1:]:
            out += f"\n{indent}" if draw(st.booleans()) else " "
            out += word
        return out

    if style in {"literal", "folded"}:
        body = joined("    ").replace("\n", "\n    ")
        return f"  entry_long: {'|' if style == 'literal' else '>'}\n    {body}\n"
    text = joined("    ")
    if style == "double":
        # Escape some letters outside the unknown name: the column must skip the escapes.
        chars = []
        for index, char in enumerate(text):
            inside = text.find(UNKNOWN) <= index < text.find(UNKNOWN) + len(UNKNOWN)
            if char.isalpha() and not inside and draw(st.booleans()):
                chars.append(f"\\x{ord(char):02x}")
            else:
                chars.append(char)
        return f'  entry_long: "{"".join(chars)}"\n'
    if style == "single":
        return f"  entry_long: '{text}'\n"
    return f"  entry_long: {text}\n"


@settings(PROPERTY, max_examples=120)
@given(rule=expression_layouts())
def test_an_unknown_name_is_located_in_any_scalar_style(rule: str, sandbox: Path) -> None:
    text = (REPO / "tests/specs/support/strategy.yaml").read_text(encoding="utf-8")
    text = text.replace("  entry_long: cross_above(trend, 0)\n", rule)
    path = sandbox / "strategies" / "_located.yaml"
    path.write_text(text, encoding="utf-8")

    with pytest.raises(SpecError) as info:
        spec_loader().load(path)

    (issue,) = info.value.issues
    assert (issue.path, issue.code) == ("spec.entry_long", "unknown_name")
    line = text.splitlines()[issue.line - 1]
    assert line[issue.column - 1 :].startswith(UNKNOWN), (rule, issue.render())
