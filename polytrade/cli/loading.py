"""The spec loader every command uses: spec checks plus the signal compiler's type check."""

from __future__ import annotations

from polytrade.compile.graph import type_findings
from polytrade.spec import SpecLoader


def spec_loader() -> SpecLoader:
    """A SpecLoader that also type-checks strategy expressions (operators, arguments, kinds)."""
    return SpecLoader(checks={"Strategy": type_findings})
