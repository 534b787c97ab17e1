"""Backtest of item recommenders on time (synthetic shop and a real Online Retail slice)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from ltvcast.data.datasets import load_online_retail
from ltvcast.data.schemas import CustomerData
from ltvcast.evaluation.ranking import RANKING_METRICS
from ltvcast.exceptions import InsufficientDataError, SchemaError
from ltvcast.pipeline.item_backtest import backtest_recommenders, next_period_purchases
from ltvcast.strategy.items import BuyAgainRecommender, ItemRecommender, PopularityRecommender

CUTOFF = pd.Timestamp("2024-06-30 23:59:59")


def _paired_shop() -> CustomerData:
    """Items come in pairs (2t, 2t + 1) next to a best-seller (99). Even customers buy both
    halves of their pair together; odd ones buy one half only, and after the cutoff the other:
    the next best item that co-purchase knows and popularity or buy-again do not."""
    rows = []
    for c in range(400):
        pair = 2 * ((c // 2) % 20)
        mine = [pair, pair + 1] if c % 2 == 0 else [pair + (c // 40) % 2]
        for day in (10, 100):
            when = pd.Timestamp("2024-01-01") + pd.Timedelta(days=day + c % 7)
            rows += [(f"c{c}", when, 5.0, f"o{c}-{day}", f"i{item}") for item in [*mine, 99]]
        if c % 2:
            other = pair + 1 - (c // 40) % 2
            rows.append((f"c{c}", pd.Timestamp("2024-07-20"), 7.0 + c, f"p{c}", f"i{other}"))
    tx = pd.DataFrame(rows, columns=["customer_id", "timestamp", "amount", "order_id", "item_id"])
    return CustomerData(tx.astype({"customer_id": "str", "order_id": "str", "item_id": "str"}))


def _three() -> dict[str, object]:
    return {
        "ours": ItemRecommender(top=3, exclude_recent_days=365, repeat_weight=0.0),
        "popularity": PopularityRecommender(top=3, exclude_recent_days=365),
        "buy again": BuyAgainRecommender(top=3),
    }


def test_co_purchase_finds_the_other_half_of_the_pair() -> None:
    result = backtest_recommenders(_paired_shop(), CUTOFF, 91, _three(), k=3)  # type: ignore[arg-type]
    assert list(result.index) == ["ours", "popularity", "buy again"]
    assert set(RANKING_METRICS) <= set(result.columns)
    assert result.loc["ours", "hit_rate"] == 1.0
    assert result.loc["ours", "ndcg"] == 1.0  # the other half comes first
    assert result.loc["popularity", "hit_rate"] < 0.5
    assert result.loc["buy again", "revenue_hit_rate"] < 0.5
    assert (result["buyers"] == 200).all()


def test_the_next_period_is_what_is_scored() -> None:
    data = _paired_shop()
    truth = next_period_purchases(data, CUTOFF, 91)
    assert truth["customer_id"].nunique() == 200
    assert truth["item_id"].nunique() == 40
    with pytest.raises(InsufficientDataError, match="no purchase"):
        backtest_recommenders(data, pd.Timestamp("2025-06-30"), 30, _three())  # type: ignore[arg-type]
    with pytest.raises(SchemaError, match="--item-col"):
        next_period_purchases(CustomerData(data.transactions.drop(columns="item_id")), CUTOFF, 91)


@pytest.mark.realdata
def test_online_retail_slice_beats_popularity(data_dir: Path) -> None:
    data, _ = load_online_retail(data_dir)
    tx = data.transactions
    data = CustomerData(tx[tx["timestamp"] < pd.Timestamp("2011-05-01")])
    result = backtest_recommenders(
        data,
        pd.Timestamp("2011-03-31 23:59:59"),
        30,
        {"ours": ItemRecommender(), "popularity": PopularityRecommender()},
    )
    for column in RANKING_METRICS:
        assert result[column].between(0, 1).all()
    assert result.loc["ours", "hit_rate"] > result.loc["popularity", "hit_rate"]
