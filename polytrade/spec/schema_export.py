"""JSON Schemas of the spec kinds, for editors (yaml-language-server) and for drift checks.

`schemas/*.schema.json` is generated from the models by `polytrade schema export` and
committed; a test fails when the committed files differ from what the models produce.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any, Final

from pydantic import Field, TypeAdapter

from polytrade.spec.models import (
    API_VERSION,
    EvolutionDocument,
    ProfileDocument,
    RiskBudgetDocument,
    StrategyDocument,
)

if TYPE_CHECKING:
    from pathlib import Path

SCHEMA_DIALECT: Final = "https://json-schema.org/draft/2020-12/schema"

_ANY_SPEC = Annotated[
    StrategyDocument | RiskBudgetDocument | ProfileDocument | EvolutionDocument,
    Field(discriminator="kind"),
]

SCHEMA_FILES: Final[dict[str, Any]] = {
    "strategy.schema.json": StrategyDocument,
    "risk-budget.schema.json": RiskBudgetDocument,
    "profile.schema.json": ProfileDocument,
    "evolution.schema.json": EvolutionDocument,
    "spec.schema.json": _ANY_SPEC,
}
"""File name -> the model (or union of models) it describes."""


def build_schemas() -> dict[str, str]:
    """Every schema file's exact text, keyed by file name."""
    out: dict[str, str] = {}
    for name, model in SCHEMA_FILES.items():
        schema = TypeAdapter(model).json_schema(by_alias=True, mode="validation")
        schema = {
            "$schema": SCHEMA_DIALECT,
            "$id": f"https://polytrade.dev/schemas/{API_VERSION}/{name}",
            **schema,
        }
        out[name] = json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    return out


def export_schemas(folder: Path) -> list[Path]:
    """Write every schema into `folder`; returns the files that changed."""
    folder.mkdir(parents=True, exist_ok=True)
    changed = []
    for name, text in build_schemas().items():
        target = folder / name
        if not target.exists() or target.read_text(encoding="utf-8") != text:
            temporary = target.with_suffix(".tmp")
            temporary.write_text(text, encoding="utf-8")
            temporary.replace(target)
            changed.append(target)
    return changed


def stale_schemas(folder: Path) -> list[str]:
    """Names of schema files in `folder` that are missing or differ from the models."""
    stale = []
    for name, text in build_schemas().items():
        target = folder / name
        if not target.exists() or target.read_text(encoding="utf-8") != text:
            stale.append(name)
    return stale
