"""Online scoring: per-event history, cache invalidation and batch/online agreement.

Every available model is fitted on a real CDNOW slice (plus seeded behaviour events); the
first part of the data is bulk-loaded, the rest replayed one event at a time, and every
customer's ``predict_one`` must equal batch ``predict`` on the same data to 1e-6 relative.
"""

from __future__ import annotations

import importlib

import numpy as np
import pandas as pd
import pytest

from ltvcast.data.schemas import CustomerData
from ltvcast.evaluation.selection import AutoForecaster
from ltvcast.exceptions import InsufficientDataError, NotFittedError
from ltvcast.features.rfm import customer_history, rfm_summary
from ltvcast.models import forecaster_class
from ltvcast.models.base import Forecaster
from ltvcast.models.btyd import BTYDForecaster
from ltvcast.scoring.history import CustomerHistory
from ltvcast.scoring.online import OnlineScorer
from ltvcast.timeframe import parse_horizon

CUTOFF = pd.Timestamp("1998-01-31")  # bulk-loaded up to here, replayed per event after
FIT_AS_OF = pd.Timestamp("1997-12-31 23:59:59")
MODEL_PARAMS: dict[str, dict[str, object]] = {
    "baseline": {},
    "tenure_mean": {},
    "btyd": {},
    "gbdt": {"n_estimators": 20, "min_child_samples": 10, "num_threads": 1},
    "seq": {
        "epochs": 2,
        "conv_filters": 8,
        "lstm_hidden": 8,
        "lstm_layers": 1,
        "head_hidden": 8,
        "device": "cpu",
        "n_threads": 1,
    },
}


@pytest.fixture(scope="module")
def cdnow(cdnow_sample_tx: pd.DataFrame) -> CustomerData:
    """First 400 customers of the CDNOW 1/10 sample, with seeded views and carts."""
    raw = cdnow_sample_tx[cdnow_sample_tx["customer_id"].astype(int) <= 400]
    rng = np.random.default_rng(7)
    stamps = raw["timestamp"] + pd.to_timedelta(rng.integers(8, 20, len(raw)), unit="h")
    tx = pd.DataFrame(
        {"customer_id": raw["customer_id"], "timestamp": stamps, "amount": raw["amount"]}
    ).reset_index(drop=True)
    # behaviour events: a few views/carts in the days before some purchases
    picks = tx.sample(frac=0.6, random_state=3)
    events = pd.DataFrame(
        {
            "customer_id": picks["customer_id"].to_numpy(),
            "timestamp": (
                picks["timestamp"] - pd.to_timedelta(rng.integers(1, 72, len(picks)), unit="h")
            ).to_numpy(),
            "event_type": rng.choice(["view", "cart", "click"], len(picks)),
        }
    )
    ids = tx["customer_id"].unique()
    profiles = pd.DataFrame(
        {
            "customer_id": ids,
            "age": rng.integers(18, 70, len(ids)),
            "city": rng.choice(["a", "b"], len(ids)),
        }
    )
    return CustomerData(tx.sort_values("timestamp", ignore_index=True), events, profiles)


def _available() -> list[str]:
    names = []
    for name in MODEL_PARAMS:
        try:
            forecaster_class(name)
        except (ImportError, AttributeError):
            continue
        names.append(name)
    return names


@pytest.fixture(scope="module", params=_available())
def fitted(request: pytest.FixtureRequest, cdnow: CustomerData) -> Forecaster:
    name = request.param
    cls = forecaster_class(name)
    return cls(**MODEL_PARAMS[name]).fit(cdnow, FIT_AS_OF, parse_horizon("13w"))


def _event_stream(data: CustomerData, after: pd.Timestamp) -> pd.DataFrame:
    """Rows after ``after`` as event-shaped records in time order."""
    tx = data.transactions[data.transactions["timestamp"] > after].assign(event_type="purchase")
    assert data.events is not None
    ev = data.events[data.events["timestamp"] > after]
    return pd.concat([tx, ev], ignore_index=True).sort_values("timestamp", kind="stable")


def _as_replayed(data: CustomerData, after: pd.Timestamp = CUTOFF) -> CustomerData:
    """What the scorer holds after the replay: purchases replayed as events are also
    'purchase' behaviour events."""
    tx = data.transactions
    replayed = tx.loc[tx["timestamp"] > after, ["customer_id", "timestamp"]]
    events = pd.concat([data.events, replayed.assign(event_type="purchase")], ignore_index=True)
    return CustomerData(tx, events, data.profiles)


def _replayed(forecaster: Forecaster, data: CustomerData) -> OnlineScorer:
    scorer = OnlineScorer(forecaster)
    scorer.history.learn_data(data.until(CUTOFF))
    stream = _event_stream(data, CUTOFF)
    half = len(stream) // 2
    for event in stream.iloc[:half].to_dict("records"):  # one event at a time, then batches
        scorer.learn_one({k: v for k, v in event.items() if not pd.isna(v)})
    for start in range(half, len(stream), 25):
        scorer.learn_many(stream.iloc[start : start + 25])
    return scorer


def test_online_equals_batch_for_every_customer(fitted: Forecaster, cdnow: CustomerData) -> None:
    scorer = _replayed(fitted, cdnow)
    as_of = cdnow.last_timestamp()
    assert scorer.clock == as_of
    held = _as_replayed(cdnow)
    batch = fitted.predict(held, as_of).set_index("customer_id")
    # customers touched by the replay, plus a fixed sample of the others (GBDT features cost
    # ~0.1 s per single-customer call on 2 busy cores, so the sample stays small)
    touched = _event_stream(cdnow, CUTOFF)["customer_id"].unique()[:12]
    others = batch.index.difference(touched)[::90]
    customers = np.concatenate([touched, others.to_numpy()])
    online = pd.DataFrame([scorer.predict_one(c) for c in customers]).set_index("customer_id")
    columns = [c for c in batch.columns if c != "customer_id"]
    np.testing.assert_allclose(
        online[columns].to_numpy(np.float64),
        batch.loc[customers, columns].to_numpy(np.float64),
        rtol=1e-6,
        atol=1e-9,
    )
    assert (online["as_of"] == as_of).all()
    # an earlier as-of agrees too (rows after it are ignored on both paths)
    early = pd.Timestamp("1998-03-15")
    batch_early = fitted.predict(held, early).set_index("customer_id")
    for customer in touched[:3]:
        got = scorer.predict_one(customer, early)
        assert got["predicted_value"] == pytest.approx(
            batch_early.loc[customer, "predicted_value"], rel=1e-6
        )


def test_predict_many_agrees_and_serves_unchanged_customers(
    fitted: Forecaster, cdnow: CustomerData
) -> None:
    scorer = _replayed(fitted, cdnow)
    frame = scorer.predict_many()
    expected = fitted.predict(_as_replayed(cdnow), cdnow.last_timestamp())
    pd.testing.assert_frame_equal(frame, expected, rtol=1e-6)
    customer = frame["customer_id"].iloc[0]
    assert scorer.predict_one(customer)["predicted_value"] == pytest.approx(
        frame["predicted_value"].iloc[0], rel=1e-12
    )


@pytest.fixture(scope="module")
def btyd(cdnow: CustomerData) -> Forecaster:
    return forecaster_class("btyd")().fit(cdnow, FIT_AS_OF, parse_horizon("13w"))


def test_new_event_invalidates_only_that_customer(btyd: Forecaster, cdnow: CustomerData) -> None:
    forecaster = btyd
    scorer = OnlineScorer(forecaster)
    scorer.history.learn_data(cdnow)
    scorer.predict_many()
    customer = cdnow.transactions["customer_id"].iloc[0]
    as_of = scorer.clock
    before = scorer.predict_one(customer)
    scorer.learn_one(
        {"customer_id": customer, "timestamp": as_of, "event_type": "purchase", "amount": 500.0}
    )
    assert scorer.clock == as_of  # same time: the other customers' cached forecasts stay valid
    after = scorer.predict_one(customer)
    assert after != before
    new = pd.DataFrame({"customer_id": [customer], "timestamp": [as_of], "amount": [500.0]})
    one = CustomerData(
        pd.concat([cdnow.transactions, new], ignore_index=True),
        pd.concat([cdnow.events, new[["customer_id", "timestamp"]].assign(event_type="purchase")]),
        cdnow.profiles,
    )
    expected = forecaster.predict(one, as_of).set_index("customer_id").loc[customer]
    assert after["predicted_value"] == pytest.approx(expected["predicted_value"], rel=1e-6)
    assert scorer.history.last_event_at(customer) == as_of


def test_new_customer_and_unknown_customer(btyd: Forecaster) -> None:
    scorer = OnlineScorer(btyd)
    with pytest.raises(InsufficientDataError, match="no event learned yet"):
        scorer.predict_one("x")
    scorer.learn_many(
        pd.DataFrame(
            {
                "customer_id": ["new", "new"],
                "timestamp": pd.to_datetime(["1998-01-01 10:00", "1998-01-02 10:00"]),
                "event_type": ["view", "purchase"],
                "amount": [np.nan, 42.0],
            }
        )
    )
    assert "new" in scorer and len(scorer) == 1
    got = scorer.predict_one("new")
    assert got["customer_id"] == "new" and got["predicted_value"] >= 0
    with pytest.raises(InsufficientDataError, match="'ghost' has no transaction"):
        scorer.predict_one("ghost")
    with pytest.raises(InsufficientDataError, match="up to 1997-06-01"):
        scorer.predict_one("new", pd.Timestamp("1997-06-01"))


def test_buffers_merge_without_changing_forecasts(cdnow: CustomerData) -> None:
    """Force many merges of the per-customer buffers: the history equals the data."""
    history = CustomerHistory()
    history.merge_min_rows = 50
    history.merge_fraction = 0.0
    history.learn_data(cdnow.until(CUTOFF))
    stream = _event_stream(cdnow, CUTOFF)
    half = len(stream) // 2
    for event in stream.iloc[:half].to_dict("records"):  # one by one ...
        history.learn_one({k: v for k, v in event.items() if not pd.isna(v)})
    for start in range(half, len(stream), 17):  # ... then in small frames
        history.learn_frame(stream.iloc[start : start + 17])
    got = history.to_data()
    key = ["customer_id", "timestamp", "amount"]
    pd.testing.assert_frame_equal(
        got.transactions[key].sort_values(key, ignore_index=True),
        cdnow.transactions[key].sort_values(key, ignore_index=True),
        check_dtype=False,
    )
    assert got.events is not None and cdnow.events is not None
    assert len(got.events) == len(_as_replayed(cdnow).events)
    assert len(history) == len(cdnow.customers())


def test_unfitted_forecaster_is_refused() -> None:
    with pytest.raises(NotFittedError):
        OnlineScorer(importlib.import_module("ltvcast.models.gbdt").GBDTForecaster())


def _with_returns(data: CustomerData) -> CustomerData:
    """CDNOW plus returns: some on purchase days, some on days of their own (one of them a
    customer's first day, so their first purchase day comes later)."""
    tx = data.transactions
    rng = np.random.default_rng(5)
    picks = tx.sample(frac=0.08, random_state=2)
    shift = pd.to_timedelta(rng.choice([0, 0, 1, 3], len(picks)), unit="D")
    returns = picks.assign(timestamp=picks["timestamp"] + shift, amount=-0.5 * picks["amount"])
    first = tx.groupby("customer_id")["timestamp"].min()
    early = pd.DataFrame(
        {
            "customer_id": first.index[:5],
            "timestamp": first.to_numpy()[:5] - pd.Timedelta(days=2),
            "amount": -10.0,
        }
    )
    both = pd.concat([tx, returns, early], ignore_index=True).sort_values("timestamp")
    return CustomerData(both.reset_index(drop=True), data.events, data.profiles)


def test_summaries_equal_rfm_summary_whatever_the_arrival_order(cdnow: CustomerData) -> None:
    """Running purchase-day aggregates equal rfm_summary of all rows, with returns, returns-
    only days and transactions that arrive late (before their customer's latest day)."""
    data = _with_returns(cdnow)
    history = CustomerHistory()
    history.learn_data(data.until(CUTOFF))
    stream = data.transactions[data.transactions["timestamp"] > CUTOFF].assign(
        event_type="purchase"
    )
    late = stream.sample(frac=0.1, random_state=4)  # delivered after everything else
    in_order = stream.drop(late.index)
    bulk = in_order.iloc[100:400]  # a bulk load on top of buffered rows
    in_order = in_order.drop(bulk.index)
    for start in range(0, len(in_order), 40):
        history.learn_frame(in_order.iloc[start : start + 40])
        if start == 40:
            history.learn_data(CustomerData(bulk.drop(columns="event_type"), None, None))
    for event in late.to_dict("records"):
        history.learn_one({str(k): v for k, v in event.items()})
    as_of = data.last_timestamp()
    summary, versions = history.summaries(data.customers(), as_of)
    expected = rfm_summary(data.transactions, as_of)
    pd.testing.assert_frame_equal(
        summary.rfm, expected, rtol=1e-9, atol=1e-9, check_index_type=False
    )
    days = ["frequency", "recency", "T", "first_purchase"]
    pd.testing.assert_frame_equal(
        summary.rfm[days], expected[days], check_exact=True, check_index_type=False
    )
    # the segment inputs (first row time) too
    stats = customer_history(history.to_data(), as_of)[["customer_id", "tenure_days", "purchases"]]
    pd.testing.assert_frame_equal(summary.history, stats, rtol=1e-12)
    assert versions == [history.version(c) for c in summary.ids]


@pytest.mark.parametrize(
    ("model", "spend_days"), [("btyd", "all"), ("btyd", "repeat"), ("btyd_cal", "all")]
)
def test_btyd_rescoring_from_summaries_equals_predict(
    cdnow: CustomerData, model: str, spend_days: str
) -> None:
    data = _with_returns(cdnow)
    cls = forecaster_class(model)
    forecaster = cls(spend_days=spend_days).fit(data, FIT_AS_OF, parse_horizon("13w"))  # type: ignore[call-arg]
    scorer = _replayed(forecaster, data)
    assert scorer.fast_path
    customers = data.customers()
    scored = scorer.rescore(customers)
    expected = forecaster.predict(_as_replayed(data), data.last_timestamp())
    pd.testing.assert_frame_equal(scored.frame, expected, rtol=1e-9)
    stats = customer_history(_as_replayed(data), data.last_timestamp())
    np.testing.assert_array_equal(scored.stats["purchases"], stats["purchases"])
    assert scored.versions == [scorer.history.version(c) for c in expected["customer_id"]]


class _ShiftedBTYD(BTYDForecaster):
    """A BTYD whose predict the running summaries do not reproduce."""

    def _predict(self, data: CustomerData, as_of: pd.Timestamp) -> pd.DataFrame:
        return super()._predict(data, as_of) + 1.0


def test_fast_path_is_checked_against_predict(cdnow: CustomerData) -> None:
    forecaster = _ShiftedBTYD().fit(cdnow, FIT_AS_OF, parse_horizon("13w"))
    scorer = OnlineScorer(forecaster)
    scorer.history.learn_data(cdnow)
    assert scorer.fast_path
    frame = scorer.predict_many()
    assert not scorer.fast_path  # the check found the disagreement: rescore through predict
    customer = frame["customer_id"].iloc[3]
    scorer.learn_one({"customer_id": customer, "timestamp": scorer.clock, "event_type": "view"})
    got = scorer.rescore([customer]).frame.iloc[0]
    assert got["predicted_value"] == pytest.approx(frame["predicted_value"].iloc[3], rel=1e-9)


def test_auto_with_a_btyd_winner_takes_the_rfm_path(
    cdnow: CustomerData, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fast path is a capability (``rfm_scorer``), not a class: ``auto`` has it when its
    winner does, and rescoring then never calls ``predict``."""
    auto = AutoForecaster(candidates=("btyd",)).fit(cdnow, FIT_AS_OF, parse_horizon("13w"))
    assert auto.choice_ == "btyd" and auto.rfm_scorer is auto.chosen
    scorer = _replayed(auto, cdnow)
    assert scorer.fast_path
    scorer.predict_many()  # the agreement check against predict keeps it
    assert scorer.fast_path
    customers = cdnow.customers()
    expected = auto.predict(_as_replayed(cdnow), cdnow.last_timestamp())

    def no_predict(*args: object) -> pd.DataFrame:
        raise AssertionError("rescored through predict")

    monkeypatch.setattr(auto, "predict", no_predict)
    pd.testing.assert_frame_equal(scorer.rescore(customers).frame, expected, rtol=1e-9)
    other = AutoForecaster(candidates=("baseline",)).fit(cdnow, FIT_AS_OF, parse_horizon("13w"))
    assert other.rfm_scorer is None and not OnlineScorer(other).fast_path
