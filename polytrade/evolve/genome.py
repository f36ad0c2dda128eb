"""A Strategy's params as genes: each one a float in [0, 1] for the variation operators.

DEAP's bounded operators (simulated binary crossover, polynomial mutation) work on real
vectors inside a box. A `Genome` gives every param of a Strategy one coordinate of the unit
cube ("unit space") and decodes a point of the cube back to values the spec accepts:

- int: `min..max`, on the grid `min + k * step` (step 1 when omitted), linear or log-scaled
  (log-uniform in value); a point decodes to the grid value nearest to it in unit space;
- float: continuous or on the grid `min + k * step`, linear or log-scaled; grid values are
  computed in decimal, so `0.1 + 2 * 0.1` is `0.3` as a trader would write it;
- choice: the index `floor(u * len(choices))`, the last choice owning u = 1;
- bool: `u >= 0.5`.

Many points decode to the same params; `Genome.key` names the params themselves, so a search
evaluates each set of params once.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from decimal import Decimal
from random import Random
from typing import TYPE_CHECKING, ClassVar

from polytrade.errors import UsageError
from polytrade.spec.models.strategy import BoolParam, ChoiceParam, FloatParam, IntParam
from polytrade.spec.semantics import check_param_value

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

ParamModel = IntParam | FloatParam | ChoiceParam | BoolParam
"""Any param of a Strategy spec."""

ParamValue = bool | int | float | str
"""A param's value: what `Genome.decode` writes and the strategy's expressions read."""

NEIGHBOUR_MOVE = 0.1
"""A continuous gene's neighbours lie within ±10% of its value (parameter stability)."""

GRID_NEIGHBOURHOOD_MAX_GENES = 4
"""Up to this many genes the neighbourhood is the full 3^d - 1 grid; above, a random sample."""

# The tolerance `check_param_value` allows between a value and its grid point, in steps.
_STEP_TOLERANCE = 1e-9
# Continuous genes: encode walks at most this many floats of unit space to hit a value exactly.
_ENCODE_WALK = 64


class _Gene(ABC):
    """One param seen as a coordinate of the unit cube."""

    __slots__ = ()

    name: str
    param: ParamModel

    @abstractmethod
    def decode(self, unit: float) -> ParamValue:
        """The param value at unit position `unit` (already clamped into [0, 1])."""

    @abstractmethod
    def encode(self, value: ParamValue) -> float:
        """A unit position that decodes to `value` (or the decodable value nearest to it)."""

    @abstractmethod
    def canonical(self, value: ParamValue) -> ParamValue:
        """`value` with the type the gene decodes to (5 -> 5.0 for a float param)."""

    @abstractmethod
    def moves(self, value: ParamValue) -> Sequence[ParamValue]:
        """The values next to `value`: ±1 step, ±10%, the adjacent choices, the other bool."""

    @abstractmethod
    def perturb(self, value: ParamValue, rng: Random) -> ParamValue:
        """A random value near `value`, drawn from `rng` (possibly `value` itself)."""


@dataclass(frozen=True, slots=True)
class _RangeGene(_Gene):
    """An int or float param on [min, max], linear or log-scaled."""

    name: str
    param: IntParam | FloatParam

    def _position(self, value: float) -> float:
        low, high = self.param.min, self.param.max
        if self.param.log:
            position = math.log(value / low) / math.log(high / low)
        else:
            position = (value - low) / (high - low)
        return min(max(position, 0.0), 1.0)

    def _at(self, unit: float) -> float:
        low, high = self.param.min, self.param.max
        # The ends of unit space are the bounds exactly (exp(log(0.01)) is not 0.01).
        if unit <= 0.0:
            return float(low)
        if unit >= 1.0:
            return float(high)
        if self.param.log:
            # low * exp(u * span) rather than exp(log(low) + u * span): the sum would round
            # at the size of log(low) and lose the value's last digits.
            value = low * math.exp(unit * math.log(high / low))
        else:
            value = low + unit * (high - low)
        # exp and the product may land a float beyond the bounds.
        return min(max(value, low), high)

    def _clamped(self, value: float) -> float:
        return min(max(float(value), float(self.param.min)), float(self.param.max))


@dataclass(frozen=True, slots=True)
class _ContinuousGene(_RangeGene):
    """A float param without a step: any float of [min, max]."""

    def decode(self, unit: float) -> float:
        """The value at `unit`: min + u * (max - min), or its log-scale analogue."""
        return self._at(unit)

    def encode(self, value: ParamValue) -> float:
        """The unit position of `value`, walked ulp by ulp until it decodes to `value`."""
        target = float(value)
        unit = self._position(target)
        # The closed-form inverse can miss the value by an ulp or two; decode is monotone in
        # unit space, so walk towards the value while that gets closer.
        for _ in range(_ENCODE_WALK):
            decoded = self._at(unit)
            if decoded == target:
                break
            nearer = min(max(math.nextafter(unit, 2.0 if decoded < target else -1.0), 0.0), 1.0)
            if nearer == unit or abs(self._at(nearer) - target) > abs(decoded - target):
                break
            unit = nearer
        return unit

    def canonical(self, value: ParamValue) -> float:
        """`value` as a float."""
        return float(value)

    def _shift(self, value: float) -> float:
        return abs(value) * NEIGHBOUR_MOVE or (self.param.max - self.param.min) * NEIGHBOUR_MOVE

    def moves(self, value: ParamValue) -> list[float]:
        """±10% of the value (of the range when the value is 0), clamped into the bounds."""
        centre = float(value)
        shift = self._shift(centre)
        return [self._clamped(centre - shift), self._clamped(centre + shift)]

    def perturb(self, value: ParamValue, rng: Random) -> float:
        """A uniform value within ±10% of `value`, clamped into the bounds."""
        centre = float(value)
        return self._clamped(centre + rng.uniform(-1.0, 1.0) * self._shift(centre))


@dataclass(frozen=True, slots=True)
class _GridGene(_RangeGene):
    """An int param, or a float param with a step: the values min + k * step, k = 0..K."""

    step: int | float
    last_index: int

    def _value(self, index: int) -> int | float:
        if isinstance(self.param, IntParam):
            return self.param.min + index * int(self.step)
        exact = Decimal(repr(float(self.param.min))) + index * Decimal(repr(float(self.step)))
        return min(float(exact), float(self.param.max))

    def _index(self, value: float) -> int:
        index = round((value - self.param.min) / self.step)
        return min(max(index, 0), self.last_index)

    def decode(self, unit: float) -> int | float:
        """The grid value nearest to `unit` in unit space (so in log space for log genes)."""
        below = math.floor((self._at(unit) - self.param.min) / self.step)
        below = min(max(below, 0), self.last_index)
        candidates = [below] if below == self.last_index else [below, below + 1]
        nearest = min(candidates, key=lambda k: abs(self._position(float(self._value(k))) - unit))
        return self._value(nearest)

    def encode(self, value: ParamValue) -> float:
        """The unit position of the grid value nearest to `value`."""
        return self._position(float(self._value(self._index(float(value)))))

    def canonical(self, value: ParamValue) -> int | float:
        """The grid value nearest to `value` (an int for an int param)."""
        return self._value(self._index(float(value)))

    def moves(self, value: ParamValue) -> list[int | float]:
        """The grid values one step below and one step above, when within the bounds."""
        index = self._index(float(value))
        return [self._value(k) for k in (index - 1, index + 1) if 0 <= k <= self.last_index]

    def perturb(self, value: ParamValue, rng: Random) -> int | float:
        """One step down, one step up, or the value itself, with even odds."""
        return rng.choice([self.canonical(value), *self.moves(value)])


@dataclass(frozen=True, slots=True)
class _ChoiceGene(_Gene):
    """One of the listed choices, by index."""

    name: str
    param: ChoiceParam

    def _index(self, value: ParamValue) -> int:
        # `True == 1` in Python: compare bool-ness too, as check_param_value does.
        for index, choice in enumerate(self.param.choices):
            if value == choice and isinstance(value, bool) == isinstance(choice, bool):
                return index
        raise ValueError(f"{value!r} is not one of {list(self.param.choices)}")

    def decode(self, unit: float) -> int | float | str:
        """The choice whose 1/len-wide slice of [0, 1] holds `unit`."""
        count = len(self.param.choices)
        return self.param.choices[min(int(unit * count), count - 1)]

    def encode(self, value: ParamValue) -> float:
        """The middle of the choice's slice, so that small moves keep the choice."""
        return (self._index(value) + 0.5) / len(self.param.choices)

    def canonical(self, value: ParamValue) -> int | float | str:
        """The listed choice equal to `value`."""
        return self.param.choices[self._index(value)]

    def moves(self, value: ParamValue) -> list[int | float | str]:
        """The choices listed just before and just after `value`."""
        index = self._index(value)
        return [
            self.param.choices[k]
            for k in (index - 1, index + 1)
            if 0 <= k < len(self.param.choices)
        ]

    def perturb(self, value: ParamValue, rng: Random) -> int | float | str:
        """An adjacent choice or the value itself."""
        return rng.choice([self.canonical(value), *self.moves(value)])


@dataclass(frozen=True, slots=True)
class _BoolGene(_Gene):
    """On above the middle of [0, 1], off below it."""

    name: str
    param: BoolParam

    _POSITIONS: ClassVar[dict[bool, float]] = {False: 0.25, True: 0.75}

    def decode(self, unit: float) -> bool:
        """True when `unit >= 0.5`."""
        return unit >= 0.5  # noqa: PLR2004 (the middle of the unit interval)

    def encode(self, value: ParamValue) -> float:
        """0.25 for false, 0.75 for true: the middle of each half."""
        return self._POSITIONS[bool(value)]

    def canonical(self, value: ParamValue) -> bool:
        """`value` as a bool."""
        return bool(value)

    def moves(self, value: ParamValue) -> list[bool]:
        """The other setting."""
        return [not value]

    def perturb(self, value: ParamValue, rng: Random) -> bool:
        """The other setting or the same one, with even odds."""
        return rng.choice([bool(value), not value])


def _gene(name: str, param: ParamModel) -> _Gene:
    if isinstance(param, IntParam):
        step = param.step or 1
        return _GridGene(name, param, step, (param.max - param.min) // step)
    if isinstance(param, FloatParam):
        if param.step is None:
            return _ContinuousGene(name, param)
        # The max may sit on the grid up to float noise, e.g. 0.1 + 2 * 0.1 vs 0.3.
        last = math.floor((param.max - param.min) / param.step + _STEP_TOLERANCE)
        return _GridGene(name, param, param.step, last)
    if isinstance(param, ChoiceParam):
        return _ChoiceGene(name, param)
    return _BoolGene(name, param)


@dataclass(frozen=True, slots=True)
class Genome:
    """A Strategy's params as a point of the unit cube [0, 1]^d, one coordinate per param.

    Build it with `Genome.from_params(strategy.params)`. Coordinates follow the order of the
    params in the spec (`names`). Every decoded value passes `check_param_value`.
    """

    genes: tuple[_Gene, ...]

    @classmethod
    def from_params(cls, params: Mapping[str, ParamModel]) -> Genome:
        """One gene per param of a Strategy spec, in the spec's order.

        Raises:
            UsageError: the strategy has no params, so evolution has nothing to vary.
        """
        if not params:
            raise UsageError(
                "the strategy has no params, so there is nothing to evolve: declare the "
                "numbers to search under spec.params (type, min, max, default) and use them "
                "in its signals and rules"
            )
        return cls(tuple(_gene(name, param) for name, param in params.items()))

    @property
    def names(self) -> tuple[str, ...]:
        """The param names, in the order of the unit vector's coordinates."""
        return tuple(gene.name for gene in self.genes)

    def __len__(self) -> int:
        """The number of genes d (the dimension of the unit cube)."""
        return len(self.genes)

    def decode(self, unit: Sequence[float]) -> dict[str, ParamValue]:
        """The params at a point of the unit cube; coordinates outside [0, 1] are clamped.

        Raises:
            ValueError: the vector has the wrong length or a NaN coordinate.
        """
        if len(unit) != len(self.genes):
            raise ValueError(
                f"the unit vector has {len(unit)} coordinates; the genome has "
                f"{len(self.genes)} genes {list(self.names)}"
            )
        values: dict[str, ParamValue] = {}
        for gene, position in zip(self.genes, unit, strict=True):
            if math.isnan(position):
                raise ValueError(f"the unit coordinate of {gene.name} is NaN")
            values[gene.name] = gene.decode(min(max(float(position), 0.0), 1.0))
        return values

    def encode(self, values: Mapping[str, ParamValue]) -> list[float]:
        """A point of the unit cube that decodes to `values` (one float in [0, 1] per gene).

        `decode(encode(v)) == v` for every valid int, choice and bool value and for every
        decoded value; a stepped float comes back as its grid point (within the spec's 1e-9
        step tolerance of the input) and a continuous float as the nearest value unit space
        can express: the input itself unless unit space is coarser than the floats there (near
        0 of a wide range, high in a wide log range), and then within two of its steps.

        Raises:
            UsageError: a param is missing, unknown or outside its bounds.
        """
        self._check(values)
        return [gene.encode(values[gene.name]) for gene in self.genes]

    def random(self, rng: Random) -> list[float]:
        """A uniform point of the unit cube (log-uniform in value for log-scaled genes)."""
        return [rng.random() for _ in self.genes]

    def key(self, values: Mapping[str, ParamValue]) -> str:
        """A stable name of a set of params: sha256 hex of their canonical JSON.

        Canonical: keys sorted, no spaces, ints for int params and floats for float params, so
        two unit vectors that decode to the same params share a key.

        Raises:
            UsageError: a param is missing, unknown or outside its bounds.
        """
        text = json.dumps(
            self.canonical(values),
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
            allow_nan=False,
        )
        return hashlib.sha256(text.encode()).hexdigest()

    def canonical(self, values: Mapping[str, ParamValue]) -> dict[str, ParamValue]:
        """`values` as decode writes them, in the genome's order.

        Ints for int params, floats for float params, stepped values snapped to the grid.

        Raises:
            UsageError: a param is missing, unknown or outside its bounds.
        """
        self._check(values)
        return {gene.name: gene.canonical(values[gene.name]) for gene in self.genes}

    def neighbours(
        self, values: Mapping[str, ParamValue], count: int = 64, rng: Random | None = None
    ) -> list[dict[str, ParamValue]]:
        """The params around `values` for the parameter-stability gate, all valid and distinct.

        A gene's moves are ±1 grid step (int and stepped float), ±10% of the value (continuous
        float; ±10% of the range at 0), the adjacent choices, or the other bool; grid moves
        beyond the bounds are dropped and continuous ones clamped to them. With d <= 4 genes:
        every combination of moves, the 3^d - 1 grid (fewer at the bounds). Above: up to
        `count` random perturbations, each gene moved to a random neighbour or within ±10%,
        drawn from `rng` (by default a generator seeded from the centre's key, so the same
        centre has the same neighbours).

        Raises:
            UsageError: a param is missing, unknown or outside its bounds.
        """
        centre = self.key(values)
        seen = {centre}
        found: list[dict[str, ParamValue]] = []

        def keep(candidate: dict[str, ParamValue]) -> None:
            name = self.key(candidate)
            if name not in seen:
                seen.add(name)
                found.append(self.canonical(candidate))

        if len(self.genes) <= GRID_NEIGHBOURHOOD_MAX_GENES:
            options = [
                [gene.canonical(values[gene.name]), *gene.moves(values[gene.name])]
                for gene in self.genes
            ]
            for combination in itertools.product(*options):
                keep(dict(zip(self.names, combination, strict=True)))
            return found
        draw = rng if rng is not None else Random(centre)  # noqa: S311 (not crypto)
        # Near the bounds many draws repeat; the cap keeps a cramped centre from spinning.
        for _ in range(count * 20):
            if len(found) >= count:
                break
            keep({gene.name: gene.perturb(values[gene.name], draw) for gene in self.genes})
        return found

    def complexity(self, values: Mapping[str, ParamValue]) -> int:
        """The number of free genes, the evolution's "complexity" objective (a count).

        Every param of the genome is free to vary, so this is d for any valid `values`; the
        values are checked so that a foreign parameter set is not scored silently.

        Raises:
            UsageError: a param is missing, unknown or outside its bounds.
        """
        self._check(values)
        return len(self.genes)

    def _check(self, values: Mapping[str, ParamValue]) -> None:
        missing = [name for name in self.names if name not in values]
        unknown = [name for name in values if name not in self.names]
        if missing or unknown:
            raise UsageError(
                f"the params {sorted(values)} do not match the genome {list(self.names)} "
                f"(missing {missing}, unknown {unknown}): give exactly the strategy's params"
            )
        for gene in self.genes:
            problem = check_param_value(gene.param, values[gene.name])
            if problem is not None:
                raise UsageError(
                    f"param {gene.name} was {values[gene.name]!r}: {problem}; give a value "
                    "the strategy's spec allows"
                )
