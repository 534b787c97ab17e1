"""The store simulator: canonical clean tables, dirt that cleaning can remove, behaviour that
predicts purchases, and ground truth checked three ways (an independent numerical
integral, Monte-Carlo re-simulation, and what actually happened in the simulated data)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from ltvcast.data.purchases import horizon_labels
from ltvcast.data.synthetic import (
    SimulatedStore,
    iter_simulated_chunks,
    seasonality,
    simulate_store,
)
from ltvcast.exceptions import ConfigError
from ltvcast.timeframe import Horizon

KNOWN = {"view", "click", "cart", "checkout", "purchase"}


@pytest.fixture(scope="module")
def store() -> SimulatedStore:
    return simulate_store(4000, random_state=11)


@pytest.fixture(scope="module")
def big_store() -> SimulatedStore:
    """Enough customers for aggregate checks against the truth (no events: faster)."""
    return simulate_store(20_000, events=False, random_state=5)


# ------------------------------------------------------------------------ clean tables
def test_clean_tables_are_canonical(store: SimulatedStore) -> None:
    tx = store.transactions
    columns = ["customer_id", "timestamp", "amount", "order_id", "quantity", "item_id"]
    assert list(tx.columns) == columns
    assert not tx.isna().any().any()
    assert tx["amount"].dtype == np.float64
    assert pd.api.types.is_datetime64_any_dtype(tx["timestamp"])
    assert pd.api.types.is_string_dtype(tx["customer_id"])
    assert tx["timestamp"].is_monotonic_increasing
    assert tx["timestamp"].between(store.start, store.end).all()
    assert (tx["amount"] != 0).all()
    pd.testing.assert_frame_equal(tx, store.clean_transactions())

    # Returns: negative rows after a sale of the same order, never more than it.
    sales = tx[tx["amount"] > 0].set_index("order_id")
    assert sales.index.is_unique
    returns = tx[tx["amount"] < 0]
    assert 0.05 < len(returns) / len(sales) < 0.2
    sale = sales.loc[returns["order_id"]]
    assert (returns["timestamp"].to_numpy() > sale["timestamp"].to_numpy()).all()
    assert (-returns["amount"].to_numpy() <= sale["amount"].to_numpy() + 1e-9).all()

    ev = store.events
    assert not ev.isna().any().any()
    assert set(ev["event_type"].unique()) == KNOWN
    assert ev["timestamp"].is_monotonic_increasing
    prof, params = store.profiles, store.params
    assert prof["customer_id"].is_unique and len(prof) == 4000
    assert (params["customer_id"] == prof["customer_id"]).all()
    assert set(tx["customer_id"]) <= set(prof["customer_id"])
    assert {"age", "gender", "city_tier", "channel", "device", "signup_date"} <= set(prof.columns)


def test_same_seed_same_store_other_seed_other_store() -> None:
    one, two = simulate_store(600, random_state=3), simulate_store(600, random_state=3)
    for name in ("transactions", "events", "profiles", "params", "orders"):
        pd.testing.assert_frame_equal(getattr(one, name), getattr(two, name))
    other = simulate_store(600, random_state=4)
    assert not one.transactions["amount"].equals(other.transactions["amount"])


def test_some_customers_register_and_never_buy(store: SimulatedStore) -> None:
    buyers = set(store.transactions["customer_id"])
    never = store.profiles.loc[~store.profiles["customer_id"].isin(buyers), "customer_id"]
    assert 0.1 < len(never) / len(store.profiles) < 0.5
    assert never.isin(store.events["customer_id"].unique()).all()  # they browse


# ------------------------------------------------------------------------ behaviour
def test_every_purchase_ends_a_session_that_started_before_it(store: SimulatedStore) -> None:
    ev = store.events
    sessions = ev.groupby("session_id")
    purchases = ev[ev["event_type"] == "purchase"]
    first = sessions["timestamp"].min().loc[purchases["session_id"]].to_numpy()
    lead = purchases["timestamp"].to_numpy() - first
    assert (lead > np.timedelta64(0, "s")).all()
    assert (lead <= np.timedelta64(6, "h")).all()
    kinds = ev.groupby(["session_id", "event_type"]).size().unstack(fill_value=0)
    assert (kinds.loc[purchases["session_id"], ["view", "cart", "checkout"]] > 0).all().all()
    assert (sessions["customer_id"].nunique() == 1).all()
    # One purchase event per order, at the order's time.
    orders = store.orders
    assert len(purchases) == len(orders)
    assert set(zip(purchases["customer_id"], purchases["timestamp"], strict=True)) == set(
        zip(orders["customer_id"], orders["timestamp"], strict=True)
    )


def test_recent_browsing_tells_alive_from_dead_among_lapsed_buyers(
    store: SimulatedStore,
) -> None:
    as_of = store.start + pd.Timedelta(days=500)
    tx, ev = store.transactions, store.events
    recent = tx["timestamp"].between(as_of - pd.Timedelta(days=120), as_of)
    recent_buyers = tx.loc[recent, "customer_id"]
    truth = store.truth(as_of, "30d")
    lapsed = truth[~truth["customer_id"].isin(recent_buyers.unique())]
    browse = ev[ev["timestamp"].between(as_of - pd.Timedelta(days=30), as_of)]
    counts = browse.groupby("customer_id").size().reindex(lapsed["customer_id"]).fillna(0)
    alive = counts.to_numpy()[lapsed["alive"].to_numpy()]
    dead = counts.to_numpy()[~lapsed["alive"].to_numpy()]
    assert len(alive) > 100 and len(dead) > 100
    assert alive.mean() > 5 * dead.mean()
    assert (alive > 0).mean() > 3 * (dead > 0).mean()


def test_profiles_shift_behaviour(store: SimulatedStore) -> None:
    """Referral customers buy more often than paid-social ones; tier-1 cities spend more."""
    joined = store.transactions[store.transactions["amount"] > 0].merge(
        store.profiles, on="customer_id"
    )
    per_customer = joined.groupby("channel").size() / store.profiles["channel"].value_counts()
    assert per_customer["referral"] > 1.4 * per_customer["paid_social"]
    basket = joined.groupby("city_tier")["amount"].median()  # latent ratio 1.2 / 0.85
    assert basket[1] > 1.15 * basket[3]
    # gender is a null feature: no effect on latent rates beyond noise
    rate = store.params.merge(store.profiles, on="customer_id").groupby("gender")
    means = rate["purchase_rate"].mean()
    assert abs(means["female"] / means["male"] - 1) < 0.2


def test_seasonality_has_retail_peaks_and_mean_one() -> None:
    year = pd.date_range("2023-01-01", "2024-01-01", freq="h", inclusive="left")
    assert seasonality(year).mean() == pytest.approx(1.0, abs=0.03)
    black_friday = pd.Timestamp("2023-11-24 20:00")
    ordinary = pd.Timestamp("2023-10-20 20:00")  # also a Friday
    assert (
        seasonality(pd.DatetimeIndex([black_friday]))[0]
        > 1.8 * seasonality(pd.DatetimeIndex([ordinary]))[0]
    )
    evening, night = pd.Timestamp("2023-10-22 21:00"), pd.Timestamp("2023-10-22 04:00")
    assert (
        seasonality(pd.DatetimeIndex([evening]))[0] > 5 * seasonality(pd.DatetimeIndex([night]))[0]
    )


# ------------------------------------------------------------------------ dirt
def _parse(frame: pd.DataFrame) -> pd.DataFrame:
    """What a cleaning step does: parse text, drop unusable rows and exact duplicates."""
    stamp = pd.to_datetime(frame["timestamp"], errors="coerce", format="mixed", utc=True)
    out = frame.assign(timestamp=stamp.dt.tz_localize(None).astype("datetime64[us]"))
    if "amount" in frame:
        out["amount"] = pd.to_numeric(frame["amount"], errors="coerce")
        out = out[out["amount"].notna() & (out["amount"] != 0)]
    out = out[out["customer_id"].notna() & out["timestamp"].notna()].drop_duplicates()
    return out.sort_values(list(out.columns)).reset_index(drop=True)


def test_dirty_rows_appear_at_the_rate_and_cleaning_recovers_the_clean_rows() -> None:
    rate = 0.05
    dirty = simulate_store(2500, dirty_rate=rate, random_state=8)
    clean = replace(dirty, transactions=dirty.clean_transactions())
    tx = dirty.transactions
    n_clean = len(clean.transactions)
    amount = pd.to_numeric(tx["amount"], errors="coerce")
    stamp = pd.to_datetime(tx["timestamp"], errors="coerce", format="mixed", utc=True)
    kinds = {
        "missing id": tx["customer_id"].isna().sum(),
        "bad timestamp": stamp.isna().sum(),
        "bad amount": amount.isna().sum(),
        "zero amount": (amount == 0).sum(),
        "duplicate": tx.duplicated().sum(),
    }
    assert all(count > 0 for count in kinds.values()), kinds
    assert len(tx) - n_clean == pytest.approx(rate * n_clean, rel=0.25)
    assert sum(kinds.values()) == pytest.approx(rate * n_clean, rel=0.25)
    assert tx["timestamp"].str.contains(r"[+-]\d\d:00$", regex=True).any()  # UTC offsets

    expected = clean.transactions.sort_values(list(tx.columns)).reset_index(drop=True)
    pd.testing.assert_frame_equal(_parse(tx), expected, check_dtype=False)

    ev = dirty.events
    unknown = ~ev["event_type"].isin(KNOWN)
    assert unknown.sum() == pytest.approx(rate / 4 * len(ev) / (1 + rate), rel=0.25)
    assert ev["customer_id"].isna().any() and ev.duplicated().any()
    clean_ev = simulate_store(2500, dirty_rate=0.0, random_state=8)
    # The dirt draws come after the clean tables, so the clean events are the same rows.
    assert len(_parse(ev[~unknown])) == len(clean_ev.events.drop_duplicates())


def test_bad_arguments_raise_config_error() -> None:
    with pytest.raises(ConfigError, match="dirty_rate"):
        simulate_store(10, dirty_rate=1.5)
    with pytest.raises(ConfigError, match="n_customers"):
        simulate_store(0)
    with pytest.raises(ConfigError, match="chunk_size"):
        next(iter_simulated_chunks(10, chunk_size=0))


# ------------------------------------------------------------------------ truth
def _reference_truth(
    store: SimulatedStore, ids: pd.Index, as_of: pd.Timestamp, end: pd.Timestamp
) -> pd.DataFrame:
    """Expected orders and P(any order) by brute-force summation on a 2-minute grid.

    Independent of the simulator's hourly clock: E[N] = λ ∫ s(t) e^{-μ(t-a)} dt and
    P(N = 0) = e^{-μh - λΛ(h)} + ∫ μ e^{-μu} e^{-λΛ(u)} du.
    """
    step = pd.Timedelta(minutes=2)
    grid = pd.date_range(as_of + step / 2, end, freq=step)
    dt = step / pd.Timedelta(days=1)
    u = ((grid - as_of) / pd.Timedelta(days=1)).to_numpy()
    season = seasonality(grid) * dt
    params = store.params.set_index("customer_id").loc[ids]
    lam = params["purchase_rate"].to_numpy()[:, None]
    mu = params["dropout_rate"].to_numpy()[:, None]
    survive = np.exp(-mu * u)
    cum = np.cumsum(season) - season / 2
    h = (end - as_of) / pd.Timedelta(days=1)
    p_none = (mu * survive * np.exp(-lam * cum) * dt).sum(axis=1) + np.exp(
        -mu[:, 0] * h - lam[:, 0] * season.sum()
    )
    return pd.DataFrame(
        {"orders": lam[:, 0] * (survive * season).sum(axis=1), "p_active": 1 - p_none},
        index=ids,
    )


def test_truth_matches_an_independent_numerical_integral(store: SimulatedStore) -> None:
    as_of = pd.Timestamp("2024-11-10 15:30")  # spans Black Friday and Christmas
    horizon = Horizon(8, "w")
    no_returns = replace(store, params=store.params.assign(return_prob=0.0))
    truth = no_returns.truth(as_of, horizon).set_index("customer_id")
    alive = truth[truth["alive"] & (truth["true_value"] > 0)].index[:200]
    ref = _reference_truth(store, alive, as_of, horizon.end(as_of))
    spend = store.params.set_index("customer_id").loc[alive, "spend_mean"]
    np.testing.assert_allclose(truth.loc[alive, "true_value"], ref["orders"] * spend, rtol=2e-3)
    np.testing.assert_allclose(truth.loc[alive, "p_active"], ref["p_active"], rtol=2e-3)
    assert (truth.loc[~truth["alive"], ["true_purchases", "p_active"]] == 0).all().all()


def test_truth_matches_monte_carlo_resimulation(store: SimulatedStore) -> None:
    as_of, horizon = "2024-03-15", Horizon(60, "d")
    truth = store.truth(as_of, horizon).set_index("customer_id")
    # Alive buyers plus customers with orders just before as_of (pending returns).
    recent = store.orders.loc[
        store.orders["timestamp"].between(pd.Timestamp("2024-02-20"), pd.Timestamp(as_of)),
        "customer_id",
    ]
    buyers = truth.index[truth["alive"] & (truth["true_value"] > 0)][:200]
    pick = buyers.union(pd.Index(recent.unique()[:100]))
    paths = 3000
    sims = store.sample_window(as_of, horizon, n_paths=paths, customers=pick, random_state=1)
    t = truth.loc[sims.customer_id]

    value, days, p_active = (t[c].to_numpy() for c in ("true_value", "true_purchases", "p_active"))
    checks = {  # sample, expected, a floor on the standard deviation for rare outcomes
        "value": (sims.value, value, np.abs(value) / np.sqrt(np.maximum(p_active, 1e-3))),
        "purchases": (sims.purchases, days, np.sqrt(days)),
        "p_active": (sims.purchases > 0, p_active, np.sqrt(p_active * (1 - p_active))),
    }
    for name, (sample, expected, floor) in checks.items():
        sd = np.maximum(np.maximum(sample.std(axis=1), floor), 1e-2)
        z = (sample.mean(axis=1) - expected) / (sd / np.sqrt(paths))
        assert np.abs(z).max() < 5.5, name
        assert abs(z.mean()) < 4 / np.sqrt(len(z)), name
    assert (t["true_value"] < 0).any()  # some owe only pending returns


def test_truth_matches_what_happened(big_store: SimulatedStore) -> None:
    """Summed over customers, realised spend in the window ≈ summed true value."""
    for as_of, horizon in [("2024-05-31", Horizon(90, "d")), ("2023-11-01", Horizon(2, "m"))]:
        truth = big_store.truth(as_of, horizon)
        start = pd.Timestamp(as_of) + pd.Timedelta(days=1) - pd.Timedelta(microseconds=1)
        actual = horizon_labels(
            big_store.clean_transactions(),
            pd.Index(truth["customer_id"]),
            start,
            horizon.end(start),
        )
        sims = big_store.sample_window(as_of, horizon, n_paths=60, random_state=2)
        spread = {
            "value": sims.value.sum(axis=0).std(),
            "purchases": sims.purchases.sum(axis=0).std(),
            "active": (sims.purchases > 0).sum(axis=0).std(),
        }
        realised = {
            "value": actual["value"].sum(),
            "purchases": actual["purchases"].sum(),
            "active": (actual["purchases"] > 0).sum(),
        }
        expected = {
            "value": truth["true_value"].sum(),
            "purchases": truth["true_purchases"].sum(),
            "active": truth["p_active"].sum(),
        }
        for key in realised:
            assert abs(realised[key] - expected[key]) < 4.5 * spread[key], (as_of, key)
            assert realised[key] == pytest.approx(expected[key], rel=0.1), (as_of, key)


# ------------------------------------------------------------------------ scale
def test_chunks_have_unique_ids_and_are_deterministic() -> None:
    chunks = list(iter_simulated_chunks(1000, chunk_size=400, random_state=9, events=False))
    assert [len(c.profiles) for c in chunks] == [400, 400, 200]
    ids = pd.concat([c.profiles["customer_id"] for c in chunks])
    assert ids.is_unique and len(ids) == 1000
    orders = pd.concat([c.orders["order_id"] for c in chunks])
    assert orders.is_unique
    assert all(c.events.empty for c in chunks)
    again = next(iter_simulated_chunks(1000, chunk_size=400, random_state=9, events=False))
    pd.testing.assert_frame_equal(chunks[0].transactions, again.transactions)


def test_a_store_in_one_chunk_is_the_in_memory_store() -> None:
    [chunk] = iter_simulated_chunks(700, 700, days=300, dirty_rate=0.02, random_state=4)
    whole = simulate_store(700, days=300, dirty_rate=0.02, random_state=4)
    for name in ("transactions", "events", "profiles", "params", "orders"):
        pd.testing.assert_frame_equal(getattr(chunk, name), getattr(whole, name))


def test_chunks_are_simulated_as_they_are_consumed() -> None:
    """Memory, indirectly: one chunk at a time, never more than ``chunk_size`` customers."""
    chunks = iter_simulated_chunks(10**9, chunk_size=200, days=100, events=False)
    first, second = next(chunks), next(chunks)  # 10^9 customers would not fit
    assert len(first.profiles) == len(second.profiles) == 200
    assert second.profiles["customer_id"].iloc[0] == "C00000201"
