"""Shared fixtures: paths of the repository and of ../shared, and services the tests may use."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def repo() -> Path:
    """The repository root."""
    return REPO


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data; tests that need it skip with the reason when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(
            f"shared market data is absent ({SHARED_DATA}); .ci/run refuses to run without it"
        )
    return SHARED_DATA


@pytest.fixture(scope="session")
def pg_url() -> str:
    """PostgreSQL URL from POLYTRADE_TEST_PG_URL; tests that need it skip when it is unset."""
    url = os.environ.get("POLYTRADE_TEST_PG_URL")
    if not url:
        pytest.skip(
            "POLYTRADE_TEST_PG_URL is not set (.ci/run sets it when 127.0.0.1:5432 answers)"
        )
    return url
