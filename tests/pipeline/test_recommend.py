"""Recommendations composed from a model, the action catalogue and the item recommender."""

from __future__ import annotations

from dataclasses import replace

import pandas as pd
import pytest

import ltvcast
from ltvcast.data.schemas import ITEM_ID, CustomerData
from ltvcast.data.synthetic import simulate_store, write_store
from ltvcast.pipeline import ScoringModel, train_model
from ltvcast.pipeline.recommend import (
    RECOMMENDATION_COLUMNS,
    ActionPolicy,
    Recommender,
    most_recommended,
    recommend,
)
from ltvcast.strategy.actions import ACTIONS, NO_CONTACT
from ltvcast.timeframe import Horizon


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> CustomerData:
    store = simulate_store(400, days=500, dirty_rate=0.0, random_state=5)
    files = write_store(store, tmp_path_factory.mktemp("store"), horizon=Horizon(60, "d"))
    return ltvcast.load_customer_data(files["transactions"])[0]


@pytest.fixture(scope="module")
def model(data: CustomerData) -> ScoringModel:
    return train_model(data, model="btyd", horizon="60d")


@pytest.fixture(scope="module")
def table(model: ScoringModel, data: CustomerData) -> pd.DataFrame:
    return recommend(model, data, top=5)


def test_long_table_one_action_per_customer(table: pd.DataFrame, data: CustomerData) -> None:
    assert list(table.columns) == list(RECOMMENDATION_COLUMNS)
    assert set(table["customer_id"]) == set(data.customers())
    per_customer = table.groupby("customer_id")
    assert per_customer["action"].nunique().eq(1).all()
    assert per_customer["action_value"].nunique().eq(1).all()
    assert set(table["action"]) <= set(ACTIONS)
    ranked = table[table[ITEM_ID] != ""]
    assert ranked.groupby("customer_id")["rank"].max().le(5).all()
    assert not ranked.duplicated(["customer_id", ITEM_ID]).any()
    assert (table.loc[table[ITEM_ID] == "", "rank"] == 0).all()


def test_cross_sell_only_with_items(table: pd.DataFrame) -> None:
    cross = table[table["action"] == "cross_sell"]
    assert (cross[ITEM_ID] != "").all()


def test_actions_follow_the_policy(model: ScoringModel, data: CustomerData) -> None:
    costly = ActionPolicy(catalogue=tuple(replace(a, cost=1e9) for a in ActionPolicy().catalogue))
    out = recommend(model, data, policy=costly, with_items=False)
    assert (out["action"] == NO_CONTACT).all() and (out["action_value"] == 0).all()
    assert (out[ITEM_ID] == "").all() and out["customer_id"].is_unique


def test_later_rows_change_nothing(model: ScoringModel, data: CustomerData) -> None:
    as_of = data.last_timestamp() - pd.Timedelta(days=30)
    before = recommend(model, data.until(as_of), as_of, top=5)
    later = data.transactions[data.transactions["timestamp"] > as_of]
    assert len(later)
    after = recommend(model, data, as_of, top=5)
    pd.testing.assert_frame_equal(before, after)


def test_one_customer_gets_the_batch_answer(
    model: ScoringModel, data: CustomerData, table: pd.DataFrame
) -> None:
    as_of = data.last_timestamp()
    recommender = Recommender(model, top=5).fit(data, as_of)
    customer = str(table["customer_id"].iloc[123])
    tx = data.transactions[data.transactions["customer_id"] == customer]
    one = recommender.recommend(CustomerData(tx), as_of)
    expected = table[table["customer_id"] == customer].reset_index(drop=True)
    pd.testing.assert_frame_equal(one, expected)


def test_most_recommended_counts_customers(table: pd.DataFrame) -> None:
    everyone = pd.Index(table["customer_id"].unique())
    top = most_recommended(table, everyone, top=3)
    assert list(top.columns) == [ITEM_ID, "customers", "share", "mean_rank"]
    first = top[ITEM_ID].iloc[0]
    got = table.loc[table[ITEM_ID] == first, "customer_id"].nunique()
    assert top["customers"].iloc[0] == got == table.groupby(ITEM_ID)["customer_id"].nunique().max()
