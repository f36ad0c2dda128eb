"""docs/operators.md is generated from the operator table and kept current."""

from __future__ import annotations

from pathlib import Path

from polytrade.signals.catalog import operators_markdown, signatures_source
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


def test_the_signature_snapshot_matches_the_operator_table() -> None:
    snapshot = Path(__file__).resolve().parents[3] / "polytrade" / "signals" / "signatures.py"
    assert snapshot.read_text(encoding="utf-8") == signatures_source(), (
        "polytrade/signals/signatures.py is out of date: run `make generate`"
    )


def test_type_checking_specs_does_not_import_numba() -> None:
    import subprocess
    import sys

    code = (
        "import sys; import polytrade.compile.graph, polytrade.cli.loading; "
        "print('numba' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"
