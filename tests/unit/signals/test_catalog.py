"""docs/operators.md is generated from the operator table and kept current."""

from __future__ import annotations

from pathlib import Path

from polytrade.signals.catalog import operators_markdown
from polytrade.signals.registry import operators

DOC = Path(__file__).resolve().parents[3] / "docs" / "operators.md"


def test_docs_operators_md_matches_the_operator_table() -> None:
    assert DOC.read_text(encoding="utf-8") == operators_markdown(), (
        "docs/operators.md is out of date: run "
        "`uv run polytrade operators --markdown > docs/operators.md`"
    )


def test_every_operator_is_documented_with_a_summary_and_examples() -> None:
    for op in operators().values():
        assert len(op.summary) > 20, op.name
        assert f"`{op.name}(" in DOC.read_text(encoding="utf-8"), op.name
