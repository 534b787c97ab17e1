"""Choosing the in-memory or the partitioned path."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from ltvcast.engine import plan
from ltvcast.engine.fit import fits_from_summary
from ltvcast.exceptions import ConfigError
from ltvcast.models.registry import forecaster_class


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


@pytest.mark.parametrize(
    ("model", "fits"),
    [("btyd", True), ("pnbd", True), ("bgcnbd", True), ("mbgcnbd", True), ("btyd_cal", False),
     ("baseline", False)],
)  # fmt: skip
def test_models_fitted_from_summaries(model: str, fits: bool) -> None:
    assert fits_from_summary(forecaster_class(model)) is fits
