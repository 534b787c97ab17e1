"""Choosing the in-memory or the partitioned path."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from ltvcast.engine import plan
from ltvcast.exceptions import ConfigError


@pytest.fixture
def parquet(tmp_path: Path) -> Path:
    path = tmp_path / "tx.parquet"
    pd.DataFrame(
        {"customer_id": ["a"] * 1000, "timestamp": "2024-01-01", "amount": 1.0}
    ).to_parquet(path)
    return path


def test_small_inputs_stay_in_memory_large_ones_split(
    parquet: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    small = plan.plan_job(parquet, partitions=None, workers=2, refusal=None)
    assert not small.partitioned and "1,000 rows" in small.describe()
    monkeypatch.setattr(plan, "PARTITION_FROM_ROWS", 500)
    monkeypatch.setattr(plan, "BUCKET_ROWS", 300)
    large = plan.plan_job(parquet, partitions=None, workers=2, refusal=None)
    assert (large.buckets, large.workers) == (4, 2)  # a multiple of the workers
    assert large.describe().startswith("partitioned: 4 customer buckets on 2 workers")
    refused = plan.plan_job(parquet, partitions=None, workers=2, refusal="auto: no")
    assert not refused.partitioned and refused.reason == "auto: no"


def test_partitions_force_the_choice(parquet: Path) -> None:
    assert plan.plan_job(parquet, partitions=0, workers=2, refusal=None).buckets == 0
    forced = plan.plan_job(parquet, partitions=3, workers=8, refusal=None)
    assert (forced.buckets, forced.workers) == (3, 3)
    with pytest.raises(ConfigError, match="auto: no"):
        plan.plan_job(parquet, partitions=3, workers=2, refusal="auto: no")
    with pytest.raises(ConfigError, match="--workers"):
        plan.plan_job(parquet, partitions=None, workers=0, refusal=None)


def test_events_and_profiles_count_toward_the_size(
    parquet: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events = tmp_path / "events.parquet"
    pd.DataFrame(
        {"customer_id": ["a"] * 2000, "timestamp": "2024-01-01", "event_type": "view"}
    ).to_parquet(events)
    monkeypatch.setattr(plan, "PARTITION_FROM_ROWS", 2500)
    monkeypatch.setattr(plan, "BUCKET_ROWS", 1000)
    alone = plan.plan_job(parquet, partitions=None, workers=2, refusal=None)
    assert not alone.partitioned
    both = plan.plan_job(parquet, partitions=None, workers=2, refusal=None, others=[events])
    assert (both.buckets, both.workers) == (4, 2) and "~3,000 rows" in both.describe()


def test_refusals_name_what_runs_partitioned() -> None:
    assert "and gbdt (on a customer sample)" in plan.partitioned_models_message("seq")
    assert "BTYD models and gbdt" in plan.partitioned_models_message("seq", scoring=True)
