"""Pydantic models of the four spec kinds (frozen, strict, unknown keys forbidden)."""

from polytrade.spec.models.documents import (
    API_VERSION,
    KINDS,
    Document,
    EvolutionDocument,
    Metadata,
    ProfileDocument,
    RiskBudgetDocument,
    StrategyDocument,
)
from polytrade.spec.models.evolution import EvolutionSpec
from polytrade.spec.models.profile import ProfileSpec
from polytrade.spec.models.risk_budget import RiskBudgetSpec
from polytrade.spec.models.strategy import (
    BoolParam,
    ChoiceParam,
    FloatParam,
    IntParam,
    StrategySpec,
)

__all__ = [
    "API_VERSION",
    "KINDS",
    "BoolParam",
    "ChoiceParam",
    "Document",
    "EvolutionDocument",
    "EvolutionSpec",
    "FloatParam",
    "IntParam",
    "Metadata",
    "ProfileDocument",
    "ProfileSpec",
    "RiskBudgetDocument",
    "RiskBudgetSpec",
    "StrategyDocument",
    "StrategySpec",
]
