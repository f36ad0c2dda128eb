"""Where a generation's genomes are backtested: this machine's cores, or a Dask cluster.

Local (the default): the population evaluator's threads. The compiled loop releases the GIL
and every thread reads the same bars, so threads beat a process pool here: no pickling of
bars, no copies, no per-process compilation.

Dask (`backend: {type: dask, scheduler_address: ...}`): the genomes are cut into chunks, one
task each; the workers compile the strategy once per process (the plan is rebuilt from the
Strategy document, which pickles) and return the chunk's population arrays. The bars are
scattered to the workers once. Results are gathered in chunk order, so they are the local
evaluator's bit for bit (a test holds them to each other).
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

import numpy as np

from polytrade.engine.population import Population

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from polytrade.evolve.fitness import Market
    from polytrade.spec.models import RiskBudgetDocument, StrategyDocument
    from polytrade.spec.models.evolution import DaskBackend, LocalBackend
    from polytrade.spec.models.profile import ExecutionModel

CHUNK_GENOMES = 32
"""Genomes per Dask task: enough to share each chunk of bars read from memory."""


def evaluator_for(
    backend: LocalBackend | DaskBackend, market: Market
) -> Callable[[np.ndarray, Mapping[str, np.ndarray]], Population] | None:
    """The evaluator the spec's backend asks for (None: the local default)."""
    if backend.type != "dask":
        return None
    from dask.distributed import Client  # noqa: PLC0415

    client = Client(backend.scheduler_address)  # type: ignore[no-untyped-call]
    return DaskEvaluator(client, market)


class DaskEvaluator:
    """Backtests populations on a Dask cluster (see the module docstring)."""

    def __init__(self, client: Any, market: Market) -> None:  # noqa: ANN401 - a dask Client
        self.client = client
        self.market = market
        self._scattered: dict[int, Any] = {}

    def __call__(self, vectors: np.ndarray, bars: Mapping[str, np.ndarray]) -> Population:
        """The population of `vectors` on `bars`, evaluated on the cluster."""
        if vectors.shape[0] == 0:
            return self.market.run(vectors, bars=bars)
        remote = self._bars(bars)
        chunks = [
            vectors[start : start + CHUNK_GENOMES]
            for start in range(0, vectors.shape[0], CHUNK_GENOMES)
        ]
        futures = self.client.map(
            _evaluate_chunk,
            chunks,
            strategy=self.market.strategy,
            risk=self.market.risk,
            execution=self.market.execution,
            bars=remote,
            margin_mode=self.market.margin_mode,
            depth=self.market.depth,
            pure=False,
        )
        parts: list[Population] = self.client.gather(futures)
        return Population(
            samples=parts[0].samples,
            equity=np.concatenate([p.equity for p in parts]),
            opened=np.concatenate([p.opened for p in parts]),
            summary=np.concatenate([p.summary for p in parts]),
            risk=np.concatenate([p.risk for p in parts]),
        )

    def _bars(self, bars: Mapping[str, np.ndarray]) -> Any:  # noqa: ANN401 - a dask Future
        key = id(bars)
        if key not in self._scattered:
            self._scattered[key] = self.client.scatter(dict(bars), broadcast=True)
        return self._scattered[key]


def _evaluate_chunk(
    vectors: np.ndarray,
    *,
    strategy: StrategyDocument,
    risk: RiskBudgetDocument,
    execution: ExecutionModel,
    bars: Mapping[str, np.ndarray],
    margin_mode: str,
    depth: np.ndarray | None,
) -> Population:
    """On a Dask worker: one chunk of genomes, one thread (the worker runs tasks side by side)."""
    from polytrade.engine.population import evaluate  # noqa: PLC0415

    plan = _plan(strategy.model_dump_json(by_alias=True))
    return evaluate(
        plan,
        strategy,
        risk,
        execution,
        bars,
        vectors,
        workers=1,
        margin_mode=margin_mode,
        depth=depth,
    )


@functools.cache
def _plan(strategy_json: str) -> Any:  # noqa: ANN401 - a Plan
    """The strategy compiled once per worker process (cached by its JSON)."""
    from polytrade.compile.plan import compile_strategy  # noqa: PLC0415
    from polytrade.spec.models import StrategyDocument  # noqa: PLC0415

    return compile_strategy(StrategyDocument.model_validate_json(strategy_json))
