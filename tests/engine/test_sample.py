"""Events and profiles in customer buckets; gbdt trained on a customer sample, scored per bucket."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ltvcast.data.schemas import CUSTOMER_ID
from ltvcast.data.synthetic import write_simulated_store
from ltvcast.data.validate import load_customer_data
from ltvcast.engine import LocalJob
from ltvcast.engine.buckets import customer_hashes
from ltvcast.engine.jobs import sample_cut
from ltvcast.exceptions import ConfigError
from ltvcast.pipeline import ScoringModel, train_model
from ltvcast.timeframe import parse_horizon

from .conftest import CDNOW_COLUMNS, NOW, assert_same, saved_state

HORIZON = "90d"


@pytest.fixture(scope="module", params=["csv", "parquet"])
def shop(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    """A dirty simulated store with events and profiles (900 customers, in chunks)."""
    folder = tmp_path_factory.mktemp(f"shop-{request.param}")
    return write_simulated_store(
        folder, 900, chunk_size=400, fmt=request.param, days=400, dirty_rate=0.03,
        random_state=3,
    )  # fmt: skip


def _job(shop: dict[str, Path], buckets: int = 5, workers: int = 2, keep: bool = True) -> LocalJob:
    return LocalJob(
        shop["transactions"],
        events=shop["events"],
        profiles=shop["profiles"],
        options=NOW,
        buckets=buckets,
        workers=workers,
        keep=keep,
    )


def test_events_and_profiles_clean_and_train_btyd_as_in_memory(
    shop: dict[str, Path], tmp_path: Path
) -> None:
    """The three tables' cleaning report adds up to the in-memory one; btyd's model and
    predictions (event-only customers included) are the in-memory ones."""
    out = tmp_path / "p.parquet"
    with _job(shop) as job:
        job.split()
        report = job.clean()
        scoring = job.train("btyd", parse_horizon(HORIZON))
        job.predict(scoring, out)
    data, cleaning = load_customer_data(
        shop["transactions"], shop["events"], shop["profiles"], options=NOW
    )
    assert {"events", "profiles"} <= {s.table for s in report.steps}
    memory = train_model(data, horizon=HORIZON, model="btyd", cleaning=cleaning)
    predictions = memory.predict(data)
    assert_same(
        (scoring, report.lines(), pd.read_parquet(out)), (memory, cleaning.lines(), predictions)
    )


def _scored(job: LocalJob, scoring: ScoringModel, out: Path) -> pd.DataFrame:
    job.predict(scoring, out)
    return pd.read_parquet(out)


def test_gbdt_scored_in_buckets_as_in_memory(shop: dict[str, Path], tmp_path: Path) -> None:
    """The same trained gbdt gives the in-memory predictions bucket by bucket (its features
    are per customer; vocabularies, encoder and cuts are fitted state)."""
    data, cleaning = load_customer_data(
        shop["transactions"], shop["events"], shop["profiles"], options=NOW
    )
    memory = train_model(data, horizon=HORIZON, model="gbdt", cleaning=cleaning)
    assert memory.forecaster.profile_encoder_ is not None  # type: ignore[attr-defined]
    expected = memory.predict(data)
    with _job(shop) as job:
        job.split()
        job.clean(summarise=False)
        got = _scored(job, memory, tmp_path / "p.parquet")
    pd.testing.assert_frame_equal(got, expected, rtol=1e-9, atol=0.0)


def test_gbdt_trains_on_the_sample_as_in_memory(shop: dict[str, Path]) -> None:
    """gbdt on a sample is train_model on the sampled customers' rows (the same model to
    the last bit), with the whole table's summary and a note; the sample is the customers
    with the smallest hashes, the same for any bucket count."""
    size = 300
    with _job(shop) as job:
        job.split()
        job.clean()
        scoring = job.train("gbdt", parse_horizon(HORIZON), sample_customers=size)
    with _job(shop, buckets=3, workers=1) as other:
        other.split()
        other.clean()
        again = other.train("gbdt", parse_horizon(HORIZON), sample_customers=size)
    assert saved_state(scoring.forecaster) == saved_state(again.forecaster)

    data, cleaning = load_customer_data(
        shop["transactions"], shop["events"], shop["profiles"], options=NOW
    )
    customers = data.customers()
    hashes = customer_hashes(customers)
    chosen = customers[np.argsort(hashes, kind="stable")[:size]]
    assert sample_cut(hashes, size) == int(np.sort(hashes)[size - 1])

    def only(frame: pd.DataFrame | None) -> pd.DataFrame | None:
        return (
            None if frame is None else frame[frame[CUSTOMER_ID].isin(chosen)].reset_index(drop=True)
        )

    tx = only(data.transactions)
    assert tx is not None
    sample = type(data)(tx, only(data.events), only(data.profiles))
    memory = train_model(
        sample, horizon=HORIZON, model="gbdt", as_of=data.last_timestamp(), cleaning=cleaning
    )
    assert saved_state(scoring.forecaster) == saved_state(memory.forecaster)
    assert scoring.rules == memory.rules
    training = scoring.training
    assert training is not None
    assert training.customers == len(customers)
    assert training.start == data.first_timestamp()
    assert training.notes[-1].startswith(f"trained on a sample of {size:,} of {len(customers):,}")


def test_sampling_needs_kept_buckets_and_a_size(shop: dict[str, Path]) -> None:
    with _job(shop, keep=False) as job:
        job.split()
        job.clean()
        with pytest.raises(ConfigError, match="keep=False"):
            job.train("gbdt", parse_horizon(HORIZON))
        with pytest.raises(ConfigError, match="--sample-customers must be at least 1"):
            job.train("gbdt", parse_horizon(HORIZON), sample_customers=0)


def test_profile_columns_typed_apart_by_buckets_are_refused(tmp_path: Path) -> None:
    tx = tmp_path / "tx.csv"
    tx.write_text("customer_id,timestamp,amount\n" + "".join(
        f"c{i},2024-01-0{1 + i % 5},1\n" for i in range(40)
    ))  # fmt: skip
    profiles = tmp_path / "profiles.csv"
    zips = ["x1" if i == 0 else str(1000 + i) for i in range(40)]  # one text value
    profiles.write_text("customer_id,zip\n" + "".join(f"c{i},{z}\n" for i, z in enumerate(zips)))
    with LocalJob(tx, profiles=profiles, options=NOW, buckets=4, workers=1) as job:
        job.split()
        with pytest.raises(ConfigError, match="column 'zip' holds numbers for some customers"):
            job.clean()


@pytest.mark.realdata
def test_gbdt_scored_in_buckets_on_cdnow(cdnow_master: Path, tmp_path: Path) -> None:
    """A real transactions log: gbdt trained in memory, scored in buckets alike."""
    data, cleaning = load_customer_data(cdnow_master, columns=CDNOW_COLUMNS, options=NOW)
    memory = train_model(data, horizon="13w", model="gbdt", as_of="1997-09-30", cleaning=cleaning)
    expected = memory.predict(data, "1997-09-30")
    with LocalJob(
        cdnow_master, as_of="1997-09-30", columns=CDNOW_COLUMNS, options=NOW, buckets=4, workers=2
    ) as job:
        job.split()
        job.clean(summarise=False)
        got = _scored(job, memory, tmp_path / "p.parquet")
    pd.testing.assert_frame_equal(got, expected, rtol=1e-9, atol=0.0)


def test_buckets_without_transactions_keep_their_event_customers(tmp_path: Path) -> None:
    """Customers with events only, in buckets no transaction fell into, are scored as in
    memory (the buckets hold the tables' canonical empty frames)."""
    tx = tmp_path / "tx.csv"
    lines = [
        f"{c},2024-0{1 + k}-{3 + i:02d},{5 + i + k}\n"
        for i, c in enumerate("abcdef")
        for k in range(1 + i % 3)
    ]
    tx.write_text("customer_id,timestamp,amount\n" + "".join(lines))
    events = tmp_path / "events.csv"
    rows = [f"{c},2024-01-{1 + i % 20:02d},view\n" for i, c in enumerate("abcdefghijklmnop")]
    events.write_text("customer_id,timestamp,event_type\n" + "".join(rows))
    out = tmp_path / "p.parquet"
    with LocalJob(tx, events=events, options=NOW, buckets=12, workers=1) as job:
        assert len(job.split().numbers) == 6  # of 12: the others hold events only
        report = job.clean()
        scoring = job.train("btyd", parse_horizon("30d"))
        job.predict(scoring, out)
    data, cleaning = load_customer_data(tx, events, options=NOW)
    memory = train_model(data, horizon="30d", model="btyd", cleaning=cleaning)
    assert_same(
        (scoring, report.lines(), pd.read_parquet(out)),
        (memory, cleaning.lines(), memory.predict(data)),
    )
    assert len(pd.read_parquet(out)) == 16
