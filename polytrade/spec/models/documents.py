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


class Metadata(SpecModel):
    """Who a document is: its name, what it is for, and tags to find it by."""

    name: Name = Field(description="Unique name of the document within its kind.")
    description: str = Field("", max_length=2000, description="What it is for, in a sentence.")
    tags: Items[Name] = Field((), description="Labels for search and grouping.")


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
