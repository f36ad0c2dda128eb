"""Genome: params as unit-cube genes, decoded to values the spec accepts."""

from __future__ import annotations

import math
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from polytrade.errors import UsageError
from polytrade.evolve.genome import Genome
from polytrade.spec.models.strategy import BoolParam, ChoiceParam, FloatParam, IntParam
from polytrade.spec.semantics import check_param_value

PROPERTY = settings(max_examples=300, deadline=None, database=None)


def _int(low: int, high: int, *, step: int | None = None, log: bool = False) -> IntParam:
    return IntParam(type="int", min=low, max=high, default=low, step=step, log=log)


def _float(low: float, high: float, *, step: float | None = None, log: bool = False) -> FloatParam:
    return FloatParam(type="float", min=low, max=high, default=low, step=step, log=log)


def _choice(*choices: Any) -> ChoiceParam:
    return ChoiceParam(type="choice", choices=choices, default=choices[0])


FLAG = BoolParam(type="bool", default=False)


# ---------------------------------------------------------------- hypothesis strategies


@st.composite
def int_params(draw: st.DrawFn) -> IntParam:
    log = draw(st.booleans())
    low = draw(st.integers(1, 10_000) if log else st.integers(-10_000, 10_000))
    high = low + draw(st.integers(1, 100_000))
    step = draw(st.none() | st.integers(1, high - low))
    return _int(low, high, step=step, log=log)


@st.composite
def decimal_float_params(draw: st.DrawFn) -> FloatParam:
    """Stepped floats written the way a trader writes them: a few decimals."""
    places = draw(st.integers(0, 4))
    log = draw(st.booleans())
    low_units = draw(st.integers(1, 100_000) if log else st.integers(-100_000, 100_000))
    width_units = draw(st.integers(1, 100_000))
    step_units = draw(st.integers(1, width_units))
    scale = 10.0**-places
    low, high = round(low_units * scale, places), round((low_units + width_units) * scale, places)
    # Decimal rounding can leave high - low an ulp short of the step it was built from.
    step = min(round(step_units * scale, places), high - low)
    return _float(low, high, step=step, log=log)


@st.composite
def continuous_float_params(draw: st.DrawFn) -> FloatParam:
    log = draw(st.booleans())
    if log:
        low = draw(st.floats(1e-6, 1e6))
        high = low * draw(st.floats(1.001, 1e6))
    else:
        low = draw(st.floats(-1e6, 1e6))
        high = low + draw(st.floats(1e-3, 1e6))
    return _float(low, high, log=log)


CHOICE_VALUES = st.integers(-100, 100) | st.floats(-1e3, 1e3) | st.text(max_size=5)
choice_params = (
    st.lists(CHOICE_VALUES, min_size=2, max_size=6, unique_by=repr)
    .filter(
        # The spec refuses repeats by ==, so 1 and 1.0 may not sit side by side.
        lambda values: len({(type(v) is str, v) for v in values}) == len(values)
    )
    .map(lambda values: _choice(*values))
)

any_param = (
    int_params()
    | decimal_float_params()
    | continuous_float_params()
    | choice_params
    | st.just(FLAG)
)
genomes = st.dictionaries(
    st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True), any_param, min_size=1, max_size=6
).map(Genome.from_params)

UNIT = st.floats(-0.5, 1.5) | st.sampled_from([0.0, 1.0, 0.5, math.nextafter(1.0, 0.0)])


@st.composite
def genome_and_unit(draw: st.DrawFn) -> tuple[Genome, list[float]]:
    genome = draw(genomes)
    return genome, [draw(UNIT) for _ in range(len(genome))]


def _assert_valid(genome: Genome, values: dict[str, Any]) -> None:
    assert list(values) == list(genome.names)
    for gene in genome.genes:
        value = values[gene.name]
        assert check_param_value(gene.param, value) is None, (gene.param, value)
        if isinstance(gene.param, FloatParam):
            assert type(value) is float
        if isinstance(gene.param, IntParam):
            assert type(value) is int


# ---------------------------------------------------------------- properties


@PROPERTY
@given(genome_and_unit())
def test_every_point_of_unit_space_decodes_to_params_the_spec_accepts(case: Any) -> None:
    genome, unit = case
    _assert_valid(genome, genome.decode(unit))


@PROPERTY
@given(genome_and_unit())
def test_decoded_params_survive_encode_and_decode_exactly(case: Any) -> None:
    genome, unit = case
    values = genome.decode(unit)
    encoded = genome.encode(values)
    assert all(0.0 <= u <= 1.0 for u in encoded)
    assert genome.decode(encoded) == values
    assert genome.key(genome.decode(encoded)) == genome.key(values)


@PROPERTY
@given(int_params(), st.data())
def test_any_valid_int_survives_encode_and_decode(param: IntParam, data: st.DataObject) -> None:
    step = param.step or 1
    value = param.min + step * data.draw(st.integers(0, (param.max - param.min) // step))
    genome = Genome.from_params({"n": param})
    assert genome.decode(genome.encode({"n": value})) == {"n": value}


@PROPERTY
@given(decimal_float_params(), st.data())
def test_a_stepped_float_comes_back_as_its_grid_point(
    param: FloatParam, data: st.DataObject
) -> None:
    assert param.step is not None
    last = math.floor((param.max - param.min) / param.step + 1e-9)
    index = data.draw(st.integers(0, last))
    value = min(param.min + index * param.step, param.max)  # naive float arithmetic
    genome = Genome.from_params({"x": param})
    back = float(genome.decode(genome.encode({"x": value}))["x"])
    assert abs(back - value) <= 1e-9 * param.step
    assert check_param_value(param, back) is None
    assert genome.key({"x": value}) == genome.key({"x": back})


@PROPERTY
@given(continuous_float_params(), st.data())
def test_a_continuous_float_survives_encode_and_decode(
    param: FloatParam, data: st.DataObject
) -> None:
    value = data.draw(st.floats(param.min, param.max))
    genome = Genome.from_params({"x": param})
    back = float(genome.decode(genome.encode({"x": value}))["x"])
    # Exact unless unit space is coarser than the floats at the value (a value near 0 of a
    # wide range, a large value of a log range): then within two of its steps there.
    slope = value * math.log(param.max / param.min) if param.log else param.max - param.min
    spacing = abs(slope) * math.ulp(1.0)
    assert back == value or abs(back - value) <= 2 * spacing + 2 * math.ulp(value)


@PROPERTY
@given(choice_params, st.data())
def test_any_choice_and_any_bool_survive_encode_and_decode(
    param: ChoiceParam, data: st.DataObject
) -> None:
    choice = data.draw(st.sampled_from(param.choices))
    flag = data.draw(st.booleans())
    genome = Genome.from_params({"c": param, "f": FLAG})
    values = {"c": choice, "f": flag}
    back = genome.decode(genome.encode(values))
    assert back == values
    assert type(back["c"]) is type(choice)


@settings(max_examples=100, deadline=None, database=None)
@given(genome_and_unit(), st.integers(1, 80))
def test_neighbours_are_valid_distinct_and_never_the_centre(case: Any, count: int) -> None:
    genome, unit = case
    centre = genome.decode(unit)
    neighbours = genome.neighbours(centre, count=count)
    keys = [genome.key(n) for n in neighbours]
    assert genome.key(centre) not in keys
    assert len(set(keys)) == len(keys)
    for neighbour in neighbours:
        _assert_valid(genome, neighbour)
    if len(genome) <= 4:
        assert len(neighbours) <= 3 ** len(genome) - 1
    else:
        assert len(neighbours) <= count


# ---------------------------------------------------------------- worked examples


def test_an_int_grid_decodes_to_min_plus_k_steps_rounding_to_the_nearest() -> None:
    genome = Genome.from_params({"n": _int(1, 10, step=4)})  # values 1, 5, 9
    decoded = [genome.decode([u])["n"] for u in (0.0, 0.2, 0.23, 0.3, 0.6, 0.7, 1.0)]
    # positions of 1, 5, 9 are 0, 4/9, 8/9; 0.23 is nearer 0 than 4/9 (0.222 is the midpoint).
    assert decoded == [1, 1, 5, 5, 5, 9, 9]


def test_a_log_int_is_log_uniform_and_rounds_in_log_space() -> None:
    genome = Genome.from_params({"n": _int(1, 1000, log=True)})
    # sqrt(1000) = 31.62: log(31.62/31) = 0.0198 > log(32/31.62) = 0.0119, so 32.
    assert genome.decode([0.5]) == {"n": 32}
    assert genome.decode([1 / 3]) == {"n": 10}
    rng = random.Random(7)  # noqa: S311
    draws = [int(genome.decode(genome.random(rng))["n"]) for _ in range(3000)]
    # Log-uniform: a third of the draws at or below 10, a third above 100.
    assert 0.30 < sum(d <= 10 for d in draws) / 3000 < 0.37
    assert 0.30 < sum(d > 100 for d in draws) / 3000 < 0.37


def test_a_stepped_float_is_computed_in_decimal() -> None:
    genome = Genome.from_params({"x": _float(0.1, 0.9, step=0.2)})
    assert [genome.decode([u])["x"] for u in (0.0, 0.5, 0.75, 1.0)] == [0.1, 0.5, 0.7, 0.9]
    # 0.1 + 3 * 0.2 is 0.7000000000000001 in floats: the key does not care.
    assert genome.key({"x": 0.1 + 3 * 0.2}) == genome.key({"x": 0.7})


def test_a_continuous_float_maps_the_unit_interval_onto_its_bounds() -> None:
    genome = Genome.from_params({"lin": _float(-2.0, 6.0), "log": _float(0.01, 100.0, log=True)})
    assert genome.decode([0.0, 0.0]) == {"lin": -2.0, "log": 0.01}
    assert genome.decode([1.0, 1.0]) == {"lin": 6.0, "log": 100.0}
    middle = genome.decode([0.25, 0.5])
    assert middle["lin"] == 0.0
    assert middle["log"] == pytest.approx(1.0, rel=1e-12)


def test_a_log_float_near_its_max_stays_in_bounds_and_round_trips() -> None:
    genome = Genome.from_params({"x": _float(25.0, 55.0, log=True)})
    below_one = math.nextafter(1.0, 0.0)
    # 25 * exp(u * log(55 / 25)) is 55.00000000000001 here: decode clamps to the max.
    assert 25.0 * math.exp(below_one * math.log(55.0 / 25.0)) > 55.0
    assert genome.decode([below_one]) == {"x": 55.0}
    # Here the closed-form inverse of 134.99999999999997 lands on 135.0; encode walks back.
    genome = Genome.from_params({"x": _float(38.77, 135.0, log=True)})
    near_max = genome.decode([below_one])
    assert near_max == {"x": 134.99999999999997}
    assert genome.decode(genome.encode(near_max)) == near_max


def test_a_choice_is_the_floor_of_u_times_its_count_and_a_bool_is_u_at_least_half() -> None:
    genome = Genome.from_params({"c": _choice("a", 2, 3.5), "f": FLAG})
    assert genome.decode([0.0, 0.4999])["c"] == "a"
    assert genome.decode([0.34, 0.5]) == {"c": 2, "f": True}
    assert genome.decode([0.6666, 0.0])["c"] == 2
    assert genome.decode([0.6667, 1.0]) == {"c": 3.5, "f": True}
    assert genome.decode([1.0, 0.4999]) == {"c": 3.5, "f": False}
    assert genome.decode([2.0, -1.0]) == {"c": 3.5, "f": False}  # clamped into [0, 1]


def test_the_key_is_the_sha256_of_the_canonical_json_of_the_params() -> None:
    genome = Genome.from_params({"slow": _int(10, 200), "k": _float(0.5, 4.0)})
    # sha256 of '{"k":2.0,"slow":50}', computed independently with `sha256sum`.
    expected = "d02d6a9ded33c24b30c3d9db25197fa80d06475dd17980aba8826d5372858d0a"
    assert genome.key({"slow": 50, "k": 2}) == expected  # the int 2 is a float param's 2.0
    assert genome.key({"k": 2.0, "slow": 50}) == expected
    assert genome.key({"slow": 51, "k": 2.0}) != expected


def test_two_unit_vectors_with_the_same_params_share_a_key() -> None:
    genome = Genome.from_params({"n": _int(0, 4), "f": FLAG})
    assert genome.key(genome.decode([0.01, 0.6])) == genome.key(genome.decode([0.1, 0.99]))


def test_the_neighbourhood_of_an_interior_point_is_the_full_3_to_the_d_grid() -> None:
    genome = Genome.from_params(
        {"fast": _int(2, 50), "slow": _int(20, 400, step=10), "k": _float(0.5, 4.0)}
    )
    centre = {"fast": 10, "slow": 100, "k": 2.0}
    neighbours = genome.neighbours(centre)
    assert len(neighbours) == 26
    assert {n["fast"] for n in neighbours} == {9, 10, 11}
    assert {n["slow"] for n in neighbours} == {90, 100, 110}
    assert sorted({n["k"] for n in neighbours}) == pytest.approx([1.8, 2.0, 2.2], rel=1e-15)


def test_at_the_bounds_the_neighbourhood_loses_the_moves_outside() -> None:
    genome = Genome.from_params({"fast": _int(2, 50), "c": _choice("a", "b", "c"), "f": FLAG})
    neighbours = genome.neighbours({"fast": 2, "c": "a", "f": False})
    # fast: {2, 3}, c: {a, b}, f: {False, True}: 2 * 2 * 2 - 1.
    assert len(neighbours) == 7


def test_above_four_genes_the_neighbourhood_is_a_reproducible_random_sample() -> None:
    params = {f"p{i}": _float(1.0, 100.0) for i in range(6)}
    genome = Genome.from_params(params)
    centre = dict.fromkeys(params, 50.0)
    neighbours = genome.neighbours(centre, count=64)
    assert len(neighbours) == 64
    assert all(45.0 <= float(v) <= 55.0 for n in neighbours for v in n.values())  # ±10%
    assert genome.neighbours(centre, count=64) == neighbours  # seeded from the centre's key
    assert genome.neighbours(centre, count=64, rng=random.Random(1)) != neighbours  # noqa: S311


def test_random_points_come_from_the_given_generator() -> None:
    genome = Genome.from_params({"a": _int(0, 9), "b": FLAG})
    first = genome.random(random.Random(3))  # noqa: S311
    assert first == genome.random(random.Random(3))  # noqa: S311
    assert first != genome.random(random.Random(4))  # noqa: S311
    assert all(0.0 <= u < 1.0 for u in first)


def test_complexity_counts_the_free_genes() -> None:
    genome = Genome.from_params({"a": _int(0, 9), "b": FLAG, "c": _float(0.0, 1.0)})
    assert genome.complexity({"a": 3, "b": True, "c": 0.5}) == 3
    assert genome.names == ("a", "b", "c")


def test_a_strategy_without_params_has_nothing_to_evolve() -> None:
    with pytest.raises(UsageError, match="nothing to evolve"):
        Genome.from_params({})


def test_params_outside_the_genome_are_refused_with_the_reason() -> None:
    genome = Genome.from_params({"a": _int(0, 9)})
    with pytest.raises(UsageError, match=r"param a was 10: Input should be within \[0, 9\]"):
        genome.key({"a": 10})
    with pytest.raises(UsageError, match=r"missing \['a'\], unknown \['b'\]"):
        genome.encode({"b": 1})
    with pytest.raises(ValueError, match="NaN"):
        genome.decode([math.nan])
    with pytest.raises(ValueError, match="2 coordinates"):
        genome.decode([0.1, 0.2])
