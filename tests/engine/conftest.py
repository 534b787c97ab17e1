"""Inputs of the partitioned-path tests: CDNOW's raw file and small simulated stores."""

from __future__ import annotations

from pathlib import Path

import pytest

from ltvcast.data.io import ColumnMap
from ltvcast.data.synthetic import write_simulated_store

#: How CDNOW_master.txt names the canonical columns.
CDNOW_COLUMNS = ColumnMap(time="date", amount="dollar_value", quantity="number_of_cds")


@pytest.fixture(scope="session")
def cdnow_master(data_dir: Path) -> Path:
    """The raw CDNOW master log (whitespace-separated text)."""
    return data_dir / "cdnow" / "CDNOW_master.txt"


@pytest.fixture(scope="session", params=["csv", "parquet"])
def store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Transactions of a dirty simulated store written in chunks (1,500 customers)."""
    fmt = request.param
    folder = tmp_path_factory.mktemp(f"store-{fmt}")
    paths = write_simulated_store(
        folder, 1500, chunk_size=600, fmt=fmt, days=400, dirty_rate=0.03, events=False,
        random_state=7,
    )  # fmt: skip
    return paths["transactions"]
