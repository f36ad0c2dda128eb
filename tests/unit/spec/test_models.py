"""The spec models: documented, closed, frozen and strict, with their cross-field rules."""

from __future__ import annotations

import datetime as dt
import typing
from typing import TYPE_CHECKING, Any

import pytest
from pydantic import BaseModel, ValidationError

from polytrade.spec import SpecLoader
from polytrade.spec.models import (
    BoolParam,
    ChoiceParam,
    EvolutionDocument,
    EvolutionSpec,
    FloatParam,
    IntParam,
    Metadata,
    ProfileDocument,
    RiskBudgetDocument,
    RiskBudgetSpec,
    StrategyDocument,
    StrategySpec,
)
from polytrade.spec.models.evolution import DataRange, WalkForward
from polytrade.spec.models.profile import CatalogData, SyntheticData
from polytrade.spec.models.risk_budget import OrderRate

if TYPE_CHECKING:
    from pathlib import Path

DOCUMENTS = (StrategyDocument, RiskBudgetDocument, ProfileDocument, EvolutionDocument)


def reachable_models() -> list[type[BaseModel]]:
    """Every model class reachable from the four documents, through unions, tuples and dicts."""
    seen: dict[type[BaseModel], None] = {}

    def visit(annotation: Any) -> None:
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            if annotation not in seen:
                seen[annotation] = None
                for info in annotation.model_fields.values():
                    visit(info.annotation)
            return
        for argument in typing.get_args(annotation):
            visit(argument)

    for document in DOCUMENTS:
        visit(document)
    return list(seen)


MODELS = reachable_models()
FIELDS = [(model, name) for model in MODELS for name in model.model_fields]


def test_the_walk_reaches_models_behind_unions_tuples_and_dicts() -> None:
    names = {model.__name__ for model in MODELS}
    # Behind a discriminated union, a dict of params, a tuple of allocations, Optional:
    assert {"VolTarget", "IntParam", "ChoiceParam", "StrategyAllocation", "LossStreak"} <= names
    assert {"Objective", "DaskBackend", "TelegramSink", "Schedule", "Credentials"} <= names
    assert len(MODELS) > 50


@pytest.mark.parametrize(
    ("model", "name"), FIELDS, ids=[f"{model.__name__}.{name}" for model, name in FIELDS]
)
def test_every_field_has_a_description(model: type[BaseModel], name: str) -> None:
    description = model.model_fields[name].description
    assert description, f"{model.__name__}.{name} has no description"
    assert description.strip() == description
    assert len(description) > 5


@pytest.mark.parametrize("model", MODELS, ids=[model.__name__ for model in MODELS])
def test_every_model_is_closed_frozen_and_strict(model: type[BaseModel]) -> None:
    assert model.model_config.get("extra") == "forbid"
    assert model.model_config.get("frozen") is True
    assert model.model_config.get("strict") is True


@pytest.mark.parametrize("model", MODELS, ids=[model.__name__ for model in MODELS])
def test_every_model_has_a_docstring(model: type[BaseModel]) -> None:
    assert model.__doc__
    assert model.__doc__.strip()


# ---------------------------------------------------------------------- the documents


def load(repo: Path, relative: str) -> Any:
    return SpecLoader().load(repo / relative).document


def test_an_unknown_key_is_refused_at_every_level(repo: Path) -> None:
    raw = load(repo, "strategies/trend_htf.yaml").model_dump(by_alias=True)
    raw["spec"]["stops"]["stop_los"] = "1"
    raw["spec"]["params"]["fast"]["maxx"] = 3
    raw["metadata"]["owner"] = "me"
    with pytest.raises(ValidationError) as caught:
        StrategyDocument.model_validate(raw)
    errors = {(error["type"], error["loc"]) for error in caught.value.errors()}
    assert errors == {
        ("extra_forbidden", ("spec", "stops", "stop_los")),
        ("extra_forbidden", ("spec", "params", "fast", "int", "maxx")),
        ("extra_forbidden", ("metadata", "owner")),
    }


def test_a_loaded_document_cannot_be_changed(repo: Path) -> None:
    document = load(repo, "strategies/trend_htf.yaml")
    with pytest.raises(ValidationError):
        document.kind = "Profile"
    with pytest.raises(ValidationError):
        document.spec.stops.max_bars = 1
    with pytest.raises(ValidationError):
        document.spec.params["fast"].max = 1000


def test_yaml_lists_become_tuples(repo: Path) -> None:
    document = load(repo, "profiles/live.yaml")
    assert isinstance(document.spec.strategies, tuple)
    assert isinstance(document.spec.monitoring.alerts, tuple)
    assert isinstance(document.metadata.tags, tuple)


def test_mappings_inside_a_document_cannot_be_changed(repo: Path) -> None:
    document = load(repo, "strategies/trend_htf.yaml")
    with pytest.raises(TypeError):
        document.spec.signals["injected"] = "close"  # type: ignore[index]


def test_a_document_round_trips_through_its_aliases(repo: Path) -> None:
    document = load(repo, "profiles/backtest.yaml")
    dumped = document.model_dump(by_alias=True, mode="json")
    assert dumped["apiVersion"] == "polytrade/v1"
    assert ProfileDocument.model_validate(dumped, strict=False) == document


# ---------------------------------------------------------------------- strictness


@pytest.mark.parametrize(
    ("model", "data", "loc"),
    [
        (IntParam, {"type": "int", "min": "3", "max": 10, "default": 5}, ("min",)),
        (IntParam, {"type": "int", "min": 3, "max": 10, "default": 5.0}, ("default",)),
        (IntParam, {"type": "int", "min": 3, "max": 10, "default": True}, ("default",)),
        (FloatParam, {"type": "float", "min": "0.5", "max": 1.0, "default": 1.0}, ("min",)),
        (BoolParam, {"type": "bool", "default": "true"}, ("default",)),
        (BoolParam, {"type": "bool", "default": 1}, ("default",)),
        (Metadata, {"name": 12}, ("name",)),
        (Metadata, {"name": "x", "tags": "trend"}, ("tags",)),
        (OrderRate, {"max_per_minute": "120"}, ("max_per_minute",)),
        (SyntheticData, {"source": "synthetic", "seed": "7"}, ("seed",)),
    ],
)
def test_strict_types_refuse_quoted_or_wrongly_typed_values(
    model: type[BaseModel], data: dict[str, Any], loc: tuple[str, ...]
) -> None:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(data)
    assert loc in [error["loc"] for error in caught.value.errors()]


def test_an_int_is_accepted_where_a_float_is_expected() -> None:
    param = FloatParam(type="float", min=1, max=3, default=2)
    assert param.max == 3.0


# ---------------------------------------------------------------------- params


def int_param(**fields: Any) -> IntParam:
    return IntParam.model_validate({"type": "int", "min": 3, "max": 60, "default": 12, **fields})


def float_param(**fields: Any) -> FloatParam:
    data = {"type": "float", "min": 0.5, "max": 2.0, "default": 1.0, **fields}
    return FloatParam.model_validate(data)


def refusal(build: Any, **fields: Any) -> tuple[tuple[str | int, ...], str]:
    with pytest.raises(ValidationError) as caught:
        build(**fields)
    [error] = caught.value.errors()
    return error["loc"], error["msg"].removeprefix("Value error, ")


@pytest.mark.parametrize("build", [int_param, float_param])
def test_max_must_be_above_min(build: Any) -> None:
    loc, message = refusal(build, min=10, max=5, default=10)
    assert loc == ("max",)
    assert message.startswith("Input should be greater than 10")
    assert message.endswith("(the min)")
    assert refusal(build, min=5, max=5, default=5)[0] == ("max",)


@pytest.mark.parametrize(
    ("default", "message"),
    [(2, "Input should be at least 3 (the min)"), (61, "Input should be at most 60 (the max)")],
)
def test_the_default_must_be_within_bounds(default: int, message: str) -> None:
    assert refusal(int_param, default=default) == (("default",), message)


def test_bounds_are_inclusive_for_the_default() -> None:
    assert int_param(default=3).default == 3
    assert int_param(default=60).default == 60


@pytest.mark.parametrize(("low", "build"), [(0, int_param), (-1, int_param), (0.0, float_param)])
def test_a_log_scale_needs_a_positive_min(low: float, build: Any) -> None:
    loc, message = refusal(build, min=low, default=1, log=True)
    assert loc == ("log",)
    assert message == f"a log-scale param needs min > 0, and min is {low}"


def test_a_log_scale_with_a_positive_min_is_fine() -> None:
    assert int_param(min=1, log=True).log


def test_the_step_may_not_exceed_the_range() -> None:
    assert refusal(int_param, step=58) == (("step",), "Input should be at most 57 (max - min)")
    assert int_param(step=57).step == 57
    assert refusal(int_param, step=0)[0] == ("step",)
    assert refusal(float_param, step=-0.5)[0] == ("step",)


@pytest.mark.parametrize("field", ["min", "max", "default"])
@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_float_params_must_be_finite(field: str, value: float) -> None:
    with pytest.raises(ValidationError) as caught:
        float_param(**{field: value})
    assert [error["loc"] for error in caught.value.errors()] == [(field,)]


@pytest.mark.parametrize("field", ["min", "max", "default"])
def test_a_nan_bound_or_default_is_refused_as_not_finite(field: str) -> None:
    assert refusal(float_param, **{field: float("nan")}) == (
        (field,),
        "Input should be a finite number",
    )


def test_a_choice_default_must_be_one_of_the_choices() -> None:
    with pytest.raises(ValidationError) as caught:
        ChoiceParam(type="choice", choices=("a", "b"), default="c")
    [error] = caught.value.errors()
    assert error["loc"] == ("default",)
    assert "Input should be one of the choices ['a', 'b']" in error["msg"]


def test_choices_must_be_unique_and_at_least_two() -> None:
    with pytest.raises(ValidationError, match="choices repeat 'a'"):
        ChoiceParam(type="choice", choices=("a", "b", "a"), default="a")
    with pytest.raises(ValidationError):
        ChoiceParam(type="choice", choices=("a",), default="a")


def test_an_unknown_param_type_is_a_union_tag_error() -> None:
    data = {"instruments": ["BTC_USDT_PERP"], "timeframe": "1h", "sizing": {"method": "x"}}
    data["params"] = {"fast": {"type": "integer", "default": 1}}
    with pytest.raises(ValidationError) as caught:
        StrategySpec.model_validate(data)
    types = {error["type"] for error in caught.value.errors()}
    assert types == {"union_tag_invalid"}


# ---------------------------------------------------------------------- other cross-field rules


def evolution(**fields: Any) -> EvolutionSpec:
    data = {
        "strategy": "s.yaml",
        "profile": "p.yaml",
        "objectives": [{"metric": "cagr", "direction": "maximize"}],
        "population": 64,
        "generations": 10,
        "seed": 1,
        **fields,
    }
    return EvolutionSpec.model_validate(data)


@pytest.mark.parametrize("population", [4, 8, 64, 1000])
def test_a_population_that_is_a_multiple_of_four_is_accepted(population: int) -> None:
    assert evolution(population=population).population == population


@pytest.mark.parametrize(("population", "suggestion"), [(62, 64), (5, 8), (99, 100)])
def test_a_population_not_a_multiple_of_four_is_refused_with_a_suggestion(
    population: int, suggestion: int
) -> None:
    loc, message = refusal(evolution, population=population)
    assert loc == ("population",)
    assert "multiple of 4" in message
    assert f"try {suggestion}" in message


def test_a_population_below_four_is_refused() -> None:
    assert refusal(evolution, population=0)[0] == ("population",)


def test_an_objective_metric_may_appear_once() -> None:
    twice = [{"metric": "cagr", "direction": "maximize"}] * 2
    assert refusal(evolution, objectives=twice) == (
        ("objectives",),
        "the metric cagr is listed twice",
    )


def test_cpcv_test_groups_must_be_fewer_than_groups() -> None:
    with pytest.raises(ValidationError, match="less than cpcv_groups"):
        WalkForward(cpcv_groups=4, cpcv_test_groups=4)


def test_an_order_may_not_exceed_the_position_limit() -> None:
    data = {
        "capital_usdt": 1000,
        "max_leverage": 2,
        "max_position_notional_usdt": 2000,
        "max_order_notional_usdt": 2500,
        "max_daily_loss": {"limit": 0.05},
        "max_drawdown": {"limit": 0.2},
    }
    with pytest.raises(ValidationError) as caught:
        RiskBudgetSpec.model_validate(data)
    [error] = caught.value.errors()
    assert error["loc"] == ("max_order_notional_usdt",)


def test_orders_per_minute_may_not_be_fewer_than_per_second() -> None:
    with pytest.raises(ValidationError, match="at least max_per_second"):
        OrderRate(max_per_second=10, max_per_minute=5)


def test_an_instrument_may_be_listed_once() -> None:
    data = {
        "instruments": ["BTC_USDT_PERP", "BTC_USDT_PERP"],
        "timeframe": "1h",
        "sizing": {"method": "fixed_fraction", "fraction": 1.0},
    }
    with pytest.raises(ValidationError, match="BTC_USDT_PERP is listed twice"):
        StrategySpec.model_validate(data)


# ---------------------------------------------------------------------- dates


@pytest.mark.parametrize(
    ("value", "expected"),
    [("2024-01-01", dt.date(2024, 1, 1)), ("2024-02-29", dt.date(2024, 2, 29))],
)
def test_dates_are_parsed_from_yaml_strings(value: str, expected: dt.date) -> None:
    assert CatalogData(source="catalog", start=value).start == expected  # type: ignore[arg-type]
    assert DataRange.model_validate({"start": value}).start == expected


def test_a_date_object_is_accepted() -> None:
    assert DataRange(start=dt.date(2024, 1, 1)).start == dt.date(2024, 1, 1)


@pytest.mark.parametrize("value", ["2024-02-30", "2024-1-1", "01/02/2024", "yesterday", ""])
def test_a_malformed_date_is_refused(value: str) -> None:
    with pytest.raises(ValidationError):
        DataRange.model_validate({"start": value})


@pytest.mark.parametrize(
    "value", [0, 1704067200, "1704067200"], ids=["zero", "epoch-int", "epoch-text"]
)
def test_a_number_is_not_a_date(value: object) -> None:
    with pytest.raises(ValidationError):
        DataRange.model_validate({"start": value})


def test_an_end_date_must_come_after_the_start() -> None:
    with pytest.raises(ValidationError, match=r"after start \(2024-01-02\)"):
        DataRange.model_validate({"start": "2024-01-02", "end": "2024-01-01"})
    with pytest.raises(ValidationError, match="after start"):
        CatalogData.model_validate(
            {"source": "catalog", "start": "2024-01-02", "end": "2024-01-02"}
        )
    assert DataRange.model_validate({"start": "2024-01-01", "end": "2024-01-02"}).end


def test_synthetic_data_starts_on_a_default_date() -> None:
    assert SyntheticData(source="synthetic", seed=1).start == dt.date(2024, 1, 1)
