"""Partitioned recommendations are the in-memory path's, row for row."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from ltvcast.data.datasets import load_online_retail
from ltvcast.data.schemas import CUSTOMER_ID, TIMESTAMP
from ltvcast.data.synthetic import write_simulated_store
from ltvcast.data.validate import load_customer_data
from ltvcast.engine import LocalJob, local
from ltvcast.engine.recommend import recommend_job
from ltvcast.exceptions import ConfigError, NotFittedError
from ltvcast.pipeline import ScoringModel, train_model
from ltvcast.pipeline.recommend import RecommendationSummary, Recommender
from ltvcast.timeframe import parse_as_of, parse_horizon

from .conftest import NOW

#: The as-of of every run here (the slice's rows go on to 2011-12).
AS_OF = "2011-09-09"
#: Columns compared to 1e-9 (the rest exactly).
FLOATS = ("score", "action_value")


@pytest.fixture(scope="module")
def retail(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Online Retail's first 400 customers (returns included), canonical Parquet."""
    data, _ = load_online_retail(data_dir)
    tx = data.transactions
    chosen = pd.Series(tx[CUSTOMER_ID].unique()).sort_values().head(400)
    path = tmp_path_factory.mktemp("retail") / "transactions.parquet"
    tx[tx[CUSTOMER_ID].isin(chosen)].to_parquet(path, index=False)
    return path


@pytest.fixture(scope="module")
def model(retail: Path) -> ScoringModel:
    data, _ = load_customer_data(retail, options=NOW)
    return train_model(data, horizon=parse_horizon("90d"), model="btyd", as_of=AS_OF)


def _in_memory(
    path: Path, scoring: ScoringModel, top: int, as_of: str | None = AS_OF
) -> pd.DataFrame:
    data, _ = load_customer_data(path, options=NOW)
    cutoff = scoring.resolve_as_of(data, as_of)
    past = data.until(cutoff)
    return Recommender(scoring, top=top).fit(past, cutoff).recommend(past, cutoff)


def _partitioned(
    path: Path,
    scoring: ScoringModel,
    out: Path,
    top: int,
    buckets: int = 3,
    as_of: str | None = AS_OF,
) -> tuple[pd.DataFrame, RecommendationSummary]:
    with LocalJob(path, as_of=as_of, options=NOW, buckets=buckets, workers=2) as job:
        job.split()
        job.clean(summarise=False)
        recommender = Recommender(scoring, top=top).fit_files(job.parts, job.as_of)
        done = recommend_job(job, recommender, out)
        assert done.as_of == parse_as_of(as_of, job.last_timestamp)
    assert done.path == out
    return pd.read_parquet(out), done.summary


def _assert_same(partitioned: pd.DataFrame, memory: pd.DataFrame) -> None:
    exact = [c for c in memory.columns if c not in FLOATS]
    pd.testing.assert_frame_equal(partitioned[exact], memory[exact], check_exact=True)
    floats = list(FLOATS)
    pd.testing.assert_frame_equal(partitioned[floats], memory[floats], rtol=1e-9, atol=1e-12)


@pytest.mark.realdata
def test_online_retail_slice_as_in_memory(
    retail: Path, model: ScoringModel, tmp_path: Path
) -> None:
    memory = _in_memory(retail, model, top=5)
    table, summary = _partitioned(retail, model, tmp_path / "recs.parquet", top=5)
    _assert_same(table, memory)
    whole = RecommendationSummary.of(memory)
    assert (summary.customers, summary.with_items, summary.most_items) == (
        whole.customers,
        whole.with_items,
        whole.most_items,
    )
    pd.testing.assert_frame_equal(summary.mix, whole.mix, rtol=1e-9)
    # A real test: personal items for most, several actions, 400 customers up to as-of.
    assert whole.most_items == 5 and len(whole.mix) >= 2
    assert (memory["score"] > 0).mean() > 0.5


@pytest.mark.realdata
def test_rows_after_as_of_change_nothing(retail: Path, model: ScoringModel, tmp_path: Path) -> None:
    tx = pd.read_parquet(retail)
    later = tx[tx[TIMESTAMP] > pd.Timestamp("2011-09-10")]
    assert len(later) > 1000
    cut = tmp_path / "cut.parquet"
    tx[tx[TIMESTAMP] <= pd.Timestamp("2011-09-09 23:59:59")].to_parquet(cut, index=False)
    whole, _ = _partitioned(retail, model, tmp_path / "whole.parquet", top=5)
    past, _ = _partitioned(cut, model, tmp_path / "past.parquet", top=5, buckets=2)
    _assert_same(whole, past)


@pytest.mark.realdata
def test_a_model_not_scored_in_buckets_is_refused(retail: Path, tmp_path: Path) -> None:
    data, _ = load_customer_data(retail, options=NOW)
    baseline = train_model(data, horizon=parse_horizon("90d"), model="baseline", as_of=AS_OF)
    with LocalJob(retail, as_of=AS_OF, options=NOW, buckets=2, workers=1) as job:
        job.split()
        job.clean(summarise=False)
        recommender = Recommender(baseline).fit_files(job.parts, job.as_of)
        with pytest.raises(ConfigError, match="baseline needs the whole table in memory"):
            recommend_job(job, recommender, tmp_path / "recs.csv")


@pytest.mark.realdata
def test_an_unfitted_recommender_is_refused(
    retail: Path, model: ScoringModel, tmp_path: Path
) -> None:
    with LocalJob(retail, as_of=AS_OF, options=NOW, buckets=2, workers=1) as job:
        job.split()
        job.clean(summarise=False)
        with pytest.raises(NotFittedError, match="fit_files"):
            recommend_job(job, Recommender(model), tmp_path / "recs.csv")
        # Without items nothing is learned first: actions alone, one row per customer.
        done = recommend_job(job, Recommender(model, with_items=False), tmp_path / "a.csv")
    table = pd.read_csv(done.path, dtype={CUSTOMER_ID: str}, keep_default_na=False)
    assert table[CUSTOMER_ID].is_unique and (table["item_id"] == "").all()
    assert done.summary.with_items == 0 and done.summary.customers == len(table)


def test_dirty_simulated_store_as_in_memory(store: Path, tmp_path: Path) -> None:
    """Chunked CSV and Parquet with dirty rows, at the last time (no as-of given)."""
    data, _ = load_customer_data(store, options=NOW)
    scoring = train_model(data, horizon=parse_horizon("60d"), model="pnbd")
    memory = _in_memory(store, scoring, top=3, as_of=None)
    table, _ = _partitioned(store, scoring, tmp_path / "r.parquet", top=3, buckets=4, as_of=None)
    _assert_same(table, memory)
    assert memory["customer_id"].nunique() > 1000 and (memory["item_id"] != "").mean() > 0.9


@pytest.mark.realdata
def test_a_large_output_is_merged_in_ranges(
    retail: Path, model: ScoringModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sorted one range of customer ids at a time, the file is the same."""
    whole, _ = _partitioned(retail, model, tmp_path / "whole.parquet", top=5)
    monkeypatch.setattr(local, "_SORT_ROWS", 300)
    ranged, _ = _partitioned(retail, model, tmp_path / "ranged.parquet", top=5)
    assert len(whole) > 5 * 300
    _assert_same(ranged, whole)


def test_a_model_of_events_and_profiles_recommends_as_in_memory(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    """gbdt uses events and profiles: each bucket's worker scores with its bucket's own."""
    shop = write_simulated_store(
        tmp_path_factory.mktemp("shop"), 600, chunk_size=300, fmt="parquet", days=400,
        random_state=5,
    )  # fmt: skip
    tables = (shop["transactions"], shop["events"], shop["profiles"])
    data, _ = load_customer_data(*tables, options=NOW)
    scoring = train_model(data, horizon=parse_horizon("60d"), model="gbdt")
    cutoff = scoring.resolve_as_of(data)
    memory = Recommender(scoring, top=3).fit(data, cutoff).recommend(data, cutoff)
    with LocalJob(
        tables[0], events=tables[1], profiles=tables[2], options=NOW, buckets=3, workers=2
    ) as job:
        job.split()
        job.clean(summarise=False)
        recommender = Recommender(scoring, top=3).fit_files(job.parts, job.as_of)
        done = recommend_job(job, recommender, tmp_path / "r.parquet")
    _assert_same(pd.read_parquet(done.path), memory)
    assert memory["action"].nunique() >= 2
