# Every target sets up what it needs: uv (installed if missing) and the locked environment.
UV := .ci/uv
RUN := $(UV) run --locked

.PHONY: setup demo lint typecheck test bench check generate

setup:  ## install uv if missing, then the exact locked dependencies (bytecode compiled once)
	@$(UV) sync --locked --quiet --compile-bytecode
	@$(RUN) python -m compileall -q polytrade

demo: setup  ## the main job on the embedded default: a backtest on the seeded synthetic market
	$(RUN) polytrade validate strategies profiles
	$(RUN) polytrade run profiles/backtest.yaml

lint: setup  ## ruff, formatting, the import-layer contract, schema drift
	$(RUN) ruff check polytrade tests bench
	$(RUN) ruff format --check polytrade tests bench
	$(RUN) lint-imports
	$(RUN) polytrade schema check

typecheck: setup  ## mypy --strict on the package
	$(RUN) mypy

test: setup  ## the whole test suite
	$(RUN) pytest -q -n 2

bench: setup  ## benchmarks (figures, not pass/fail)
	$(RUN) python bench/validate_specs.py
	$(UV) run --locked --group bench python bench/signals.py

generate: setup  ## regenerate schemas/, docs/operators.md and signals/signatures.py
	$(RUN) polytrade schema export
	$(RUN) python -m polytrade.signals.catalog

check: lint typecheck test  ## what CI runs (.ci/run)
