"""The four spec kinds as whole documents: apiVersion, kind, metadata, spec."""

from __future__ import annotations

from typing import Final, Literal

from pydantic import Field

from polytrade.spec.models.base import Items, Name, SpecModel
from polytrade.spec.models.evolution import EvolutionSpec
from polytrade.spec.models.profile import ProfileSpec
from polytrade.spec.models.risk_budget import RiskBudgetSpec
from polytrade.spec.models.strategy import StrategySpec

API_VERSION: Final = "polytrade/v1"


class GateRecord(SpecModel):
    """One promotion gate as an evolved strategy passed it."""

    name: str = Field(description="The gate, e.g. lockbox_psr.")
    value: float | None = Field(
        description="What was measured, in the gate's unit: a probability, a ratio, a t-stat or "
        "years (null: not measurable)."
    )
    threshold: str = Field(description="The rule it was held to, e.g. '>= 0.9'.")
    passed: bool | None = Field(description="Whether it held (null: shown only).")


class Lineage(SpecModel):
    """Where an evolved strategy came from: enough to reproduce the evolution that made it."""

    parent: str = Field(description="The strategy spec that was evolved (path as given).")
    parent_spec_hash: str = Field(description="sha256 of the evolution's spec files.")
    evolution_id: str = Field(description="The evolution's id in the store.")
    generation: int = Field(ge=0, description="Generations the search ran.")
    seed: int = Field(ge=0, description="The evolution's seed.")
    data_fingerprint: str = Field(description="sha256 of the data evolution ran on.")
    data: str = Field(description="What the data was (synthetic, catalog, file).")
    code_version: str = Field(description="Polytrade's version when it was evolved.")
    genome_key: str = Field(description="sha256 of the evolved params.")
    gates: Items[GateRecord] = Field((), description="Every promotion gate, as measured.")


class Metadata(SpecModel):
    """Who a document is: its name, what it is for, and tags to find it by."""

    name: Name = Field(description="Unique name of the document within its kind.")
    description: str = Field("", max_length=2000, description="What it is for, in a sentence.")
    tags: Items[Name] = Field((), description="Labels for search and grouping.")
    lineage: Lineage | None = Field(
        None, description="Set on strategies written by `polytrade evolve`: their origin."
    )


class _Document(SpecModel):
    api_version: Literal["polytrade/v1"] = Field(
        alias="apiVersion", description="Spec language version."
    )
    metadata: Metadata = Field(description="Name, description and tags.")


class StrategyDocument(_Document):
    """A Strategy: signals, rules, stops, sizing and execution, with a param search space."""

    kind: Literal["Strategy"] = Field(description="Document kind.")
    spec: StrategySpec = Field(description="The strategy.")


class RiskBudgetDocument(_Document):
    """A RiskBudget: capital, limits, circuit breakers and the kill switch."""

    kind: Literal["RiskBudget"] = Field(description="Document kind.")
    spec: RiskBudgetSpec = Field(description="The risk budget.")


class ProfileDocument(_Document):
    """A Profile: one deployment of strategies in backtest, paper or live mode."""

    kind: Literal["Profile"] = Field(description="Document kind.")
    spec: ProfileSpec = Field(description="The deployment.")


class EvolutionDocument(_Document):
    """An Evolution: a guarded search over a strategy's params."""

    kind: Literal["Evolution"] = Field(description="Document kind.")
    spec: EvolutionSpec = Field(description="The search.")


Document = StrategyDocument | RiskBudgetDocument | ProfileDocument | EvolutionDocument

KINDS: Final[dict[str, type[Document]]] = {
    "Strategy": StrategyDocument,
    "RiskBudget": RiskBudgetDocument,
    "Profile": ProfileDocument,
    "Evolution": EvolutionDocument,
}
"""Document class by `kind`."""
