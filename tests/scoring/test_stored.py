"""StoreHistory: running aggregates from the store, rows read per customer, nothing kept."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ltvcast.data.schemas import CustomerData
from ltvcast.data.store import Store
from ltvcast.data.synthetic import simulate_store
from ltvcast.exceptions import ConfigError
from ltvcast.models import forecaster_class
from ltvcast.models.base import Forecaster
from ltvcast.scoring.history import CustomerHistory
from ltvcast.scoring.online import OnlineScorer
from ltvcast.scoring.stored import StoreHistory
from ltvcast.timeframe import parse_horizon

from .test_online import _ShiftedBTYD

FAR = pd.Timestamp("2100-01-01")


@pytest.fixture(scope="module")
def data() -> CustomerData:
    sim = simulate_store(200, days=365, random_state=5)
    return CustomerData(sim.transactions, sim.events, sim.profiles)


@pytest.fixture(scope="module")
def btyd(data: CustomerData) -> Forecaster:
    return forecaster_class("btyd")().fit(data, data.last_timestamp(), parse_horizon("90d"))


@pytest.fixture()
def store(tmp_path: Path, data: CustomerData) -> Store:
    store = Store(tmp_path / "store.duckdb")
    store.replace(data)
    return store


def test_summaries_and_clock_equal_the_in_memory_history(store: Store, data: CustomerData) -> None:
    lazy = StoreHistory(store, FAR)
    eager = CustomerHistory()
    eager.learn_data(store.read())
    ids = data.customers().tolist()
    assert len(lazy) == len(eager) == len(ids) and lazy.clock == eager.clock
    assert sorted(lazy.ids().tolist()) == sorted(ids)
    got, _ = lazy.summaries(ids, lazy.clock)
    want, _ = eager.summaries(ids, eager.clock)
    pd.testing.assert_frame_equal(got.rfm, want.rfm, rtol=1e-12)
    pd.testing.assert_frame_equal(got.history, want.history, rtol=1e-12)
    assert lazy._tx.frame.empty and lazy._ev.frame.empty  # no row kept in memory


def test_rescoring_equals_batch_predict(store: Store, data: CustomerData, btyd: Forecaster) -> None:
    scorer = OnlineScorer(btyd, history=StoreHistory(store, FAR))
    as_of = data.last_timestamp()
    ids = data.customers().tolist()
    expected = btyd.predict(data, as_of).set_index("customer_id")
    fast = scorer.rescore(ids, as_of).frame.set_index("customer_id")
    scorer.fast_path = False  # the rows read from the store, then predict
    slow = scorer.rescore(ids[:25], as_of).frame.set_index("customer_id")
    for got in (fast, slow):
        columns = ["predicted_value", "predicted_purchases", "p_active"]
        np.testing.assert_allclose(
            got[columns].to_numpy(), expected.loc[got.index, columns].to_numpy(), rtol=1e-9
        )


def test_rows_are_read_per_customer_and_future_rows_stay_out(
    store: Store, data: CustomerData
) -> None:
    store.append(
        transactions=pd.DataFrame(
            {"customer_id": ["zz"], "timestamp": [pd.Timestamp("2099-01-01")], "amount": [5.0]}
        )
    )
    history = StoreHistory(store, pd.Timestamp("2030-01-01"))
    assert "zz" not in history and history.clock == data.last_timestamp()
    customer = str(data.transactions["customer_id"].iloc[0])
    own = history.customer_data(customer)
    assert own is not None
    expected = data.transactions[data.transactions["customer_id"] == customer]
    assert own.transactions["amount"].tolist() == expected["amount"].tolist()
    assert own.profiles is not None and own.profiles["customer_id"].tolist() == [customer]
    assert "zz" not in set(history.to_data().transactions["customer_id"])


def test_a_stored_event_once_learned_moves_the_forecast(
    store: Store, data: CustomerData, btyd: Forecaster
) -> None:
    scorer = OnlineScorer(btyd, history=StoreHistory(store, FAR))
    customer = str(data.transactions["customer_id"].iloc[0])
    before = scorer.history.version(customer)
    stamp = data.last_timestamp() + pd.Timedelta(days=3)
    row = {"customer_id": customer, "timestamp": stamp, "amount": 80.0}
    event = {"customer_id": customer, "timestamp": stamp, "event_type": "purchase"}
    store.append(transactions=pd.DataFrame([row]), events=pd.DataFrame([event]))
    scorer.learn_one({**row, "event_type": "purchase"})
    assert scorer.history.version(customer) != before and scorer.clock == stamp
    got = scorer.rescore([customer]).frame.iloc[0]
    expected = btyd.predict(store.read(), stamp).set_index("customer_id").loc[customer]
    assert got["predicted_value"] == pytest.approx(expected["predicted_value"], rel=1e-9)
    with pytest.raises(ConfigError, match="learns events stored already"):
        scorer.history.learn_data(data)


def test_an_empty_store(tmp_path: Path) -> None:
    store = Store(tmp_path / "empty.duckdb")
    history = StoreHistory(store, FAR)
    assert len(history) == 0 and history.clock is None and history.sample(10) == []


def test_the_fast_path_is_checked_on_stored_rows(store: Store, data: CustomerData) -> None:
    shifted = _ShiftedBTYD().fit(data, data.last_timestamp(), parse_horizon("90d"))
    scorer = OnlineScorer(shifted, history=StoreHistory(store, FAR))
    sample = scorer.history.sample(50)
    assert len(sample) >= 50 and scorer.fast_path
    assert not scorer.check_fast_path(sample)  # predict disagrees: rescore through it
    customer = sample[3]
    got = scorer.rescore([customer]).frame.iloc[0]
    expected = shifted.predict(data, scorer.clock).set_index("customer_id").loc[customer]
    assert got["predicted_value"] == pytest.approx(expected["predicted_value"], rel=1e-9)
