"""Ranking metrics against a hand-computed example."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from ltvcast.evaluation.ranking import (
    RANKING_METRICS,
    evaluate_ranking,
    hit_rate_at_k,
    ndcg_at_k,
    precision_at_k,
    recall_at_k,
    revenue_weighted_hit_rate_at_k,
)
from ltvcast.exceptions import ConfigError, SchemaError


@pytest.fixture()
def recs() -> pd.DataFrame:
    """a: x, y, z; b: p, q, r; c (buys nothing next period): x; d: no recommendations."""
    return pd.DataFrame(
        {
            "customer_id": ["a", "a", "a", "b", "b", "b", "c"],
            "rank": [1, 2, 3, 1, 2, 3, 1],
            "item_id": ["x", "y", "z", "p", "q", "r", "x"],
            "score": [3.0, 2.0, 1.0, 3.0, 2.0, 1.0, 1.0],
        }
    )


@pytest.fixture()
def purchases() -> pd.DataFrame:
    """a buys y twice and w (revenue 40), b buys s (70), d buys x (100)."""
    return pd.DataFrame(
        {
            "customer_id": ["a", "a", "a", "b", "d"],
            "item_id": ["y", "y", "w", "s", "x"],
            "amount": [10.0, 10.0, 20.0, 70.0, 100.0],
        }
    )


def test_metrics_at_3_match_the_hand_computed_values(
    recs: pd.DataFrame, purchases: pd.DataFrame
) -> None:
    # Buyers a, b, d; only a hits (y at rank 2), a bought 2 distinct items.
    assert hit_rate_at_k(recs, purchases, 3) == pytest.approx(1 / 3)
    assert precision_at_k(recs, purchases, 3) == pytest.approx((1 / 3) / 3)
    assert recall_at_k(recs, purchases, 3) == pytest.approx((1 / 2) / 3)
    dcg = 1 / math.log2(3)
    ideal = 1 + 1 / math.log2(3)
    assert ndcg_at_k(recs, purchases, 3) == pytest.approx((dcg / ideal) / 3)
    assert revenue_weighted_hit_rate_at_k(recs, purchases, 3) == pytest.approx(40 / 210)


def test_only_ranks_up_to_k_count(recs: pd.DataFrame, purchases: pd.DataFrame) -> None:
    assert hit_rate_at_k(recs, purchases, 1) == 0.0
    assert ndcg_at_k(recs, purchases, 1) == 0.0
    assert revenue_weighted_hit_rate_at_k(recs, purchases, 1) == 0.0


def test_a_perfect_list_scores_one() -> None:
    purchases = pd.DataFrame(
        {"customer_id": ["a", "a"], "item_id": ["x", "y"], "amount": [1.0, 2.0]}
    )
    recs = pd.DataFrame(
        {"customer_id": ["a", "a"], "rank": [1, 2], "item_id": ["y", "x"], "score": [2.0, 1.0]}
    )
    assert evaluate_ranking(recs, purchases, 2) == {
        "hit_rate": 1.0,
        "precision": 1.0,
        "recall": 1.0,
        "ndcg": 1.0,
        "revenue_hit_rate": 1.0,
        "buyers": 1.0,
    }


def test_evaluate_ranking_equals_the_single_metrics(
    recs: pd.DataFrame, purchases: pd.DataFrame
) -> None:
    together = evaluate_ranking(recs, purchases, 3)
    for name, metric in RANKING_METRICS.items():
        assert together[name] == pytest.approx(metric(recs, purchases, 3))
    assert together["buyers"] == 3


def test_bad_inputs_are_refused(recs: pd.DataFrame, purchases: pd.DataFrame) -> None:
    with pytest.raises(SchemaError, match="purchases: missing column"):
        hit_rate_at_k(recs, purchases.drop(columns="amount"), 3)
    with pytest.raises(SchemaError, match="no purchase"):
        hit_rate_at_k(recs, purchases.iloc[:0], 3)
    with pytest.raises(ConfigError, match="k must be a positive integer"):
        hit_rate_at_k(recs, purchases, 0)
