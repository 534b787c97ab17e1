"""Shared fixtures: the real-data folder (skips when absent) and small seeded tables."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]


def _data_dir() -> Path:
    return Path(os.environ.get("LTVCAST_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def paper_request() -> dict[str, Any]:
    """The founding paper's example customer as a score request (docs/examples): 5 clicks
    and 8 views over the 30 days before as-of, 2 purchases of 300 15 days apart, the last 3
    days before as-of, age 30, male, tier-1 city."""
    path = REPO / "docs" / "examples" / "score_request.json"
    payload: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return payload


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The real datasets (``../shared/data`` or ``$LTVCAST_DATA``); skips tests when absent."""
    path = _data_dir()
    if not path.is_dir():
        pytest.skip(f"real data folder {path} not found (set LTVCAST_DATA to run real-data tests)")
    return path


@pytest.fixture(scope="session")
def cdnow_sample_tx(data_dir: Path) -> pd.DataFrame:
    """The CDNOW 1/10 sample as canonical transactions keyed by its own ids ("1" .. "2357"),
    the ids of the published summaries (:func:`ltvcast.data.datasets.load_cdnow_sample`
    keeps the master ids instead)."""
    raw = pd.read_csv(
        data_dir / "cdnow" / "CDNOW_sample.txt",
        sep=r"\s+",
        header=None,
        names=["master_id", "sample_id", "date", "cds", "dollars"],
        dtype={"date": str},
    )
    return pd.DataFrame(
        {
            "customer_id": raw["sample_id"].astype(str),
            "timestamp": pd.to_datetime(raw["date"], format="%Y%m%d"),
            "amount": raw["dollars"].astype(float),
        }
    )


@pytest.fixture()
def tiny_transactions() -> pd.DataFrame:
    """Three customers, canonical columns, hand-checkable numbers."""
    return pd.DataFrame(
        {
            "customer_id": ["a", "a", "a", "b", "b", "c"],
            "timestamp": pd.to_datetime(
                [
                    "2024-01-01 10:00",
                    "2024-01-15 09:00",
                    "2024-02-01 12:00",
                    "2024-01-10 08:00",
                    "2024-03-01 08:00",
                    "2024-02-20 18:00",
                ]
            ),
            "amount": [10.0, 20.0, 30.0, 5.0, 15.0, 100.0],
        }
    )
