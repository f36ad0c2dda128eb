"""Persistence through sqlmodel: SQLite by default, PostgreSQL by URL, Alembic migrations.

Layer 4: imports engine, data and core. The public surface:

- `open_store(url)`: an engine on a store whose schema is at the latest migration;
- `save_backtest`, `load_run`, `list_runs`: backtest runs and their read models;
- `RunStamps`, `spec_hash`, `data_fingerprint`, `code_version`: what a run was made of.
"""

from polytrade.store.database import (
    DEFAULT_URL,
    StoreUnavailableError,
    mask_url,
    open_store,
    store_url,
)
from polytrade.store.runs import (
    FILL_DTYPE,
    RunSummary,
    StoredRun,
    StoredSeries,
    StoredSleeve,
    list_runs,
    load_run,
    save_backtest,
)
from polytrade.store.stamps import RunStamps, code_version, data_fingerprint, spec_hash

__all__ = [
    "DEFAULT_URL",
    "FILL_DTYPE",
    "RunStamps",
    "RunSummary",
    "StoreUnavailableError",
    "StoredRun",
    "StoredSeries",
    "StoredSleeve",
    "code_version",
    "data_fingerprint",
    "list_runs",
    "load_run",
    "mask_url",
    "open_store",
    "save_backtest",
    "spec_hash",
    "store_url",
]
