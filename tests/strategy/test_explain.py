"""Explanation summaries: global importance, top drivers, rendering, additivity of GBDT SHAP."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from ltvcast.data.schemas import CustomerData
from ltvcast.exceptions import ConfigError, SchemaError
from ltvcast.models.base import Forecaster
from ltvcast.strategy.explain import (
    explain_customers,
    global_importance,
    render_drivers,
    top_drivers,
)
from ltvcast.timeframe import Horizon

CONTRIBUTIONS = pd.DataFrame(
    {
        "recency": [-4.0, 2.0, 0.0],
        "frequency": [10.0, -1.0, 3.0],
        "monetary": [1.0, 1.0, -1.0],
        "base_value": [20.0, 20.0, 20.0],
    },
    index=pd.Index(["a", "b", "c"], name="customer_id"),
)


def test_global_importance_is_mean_absolute_contribution() -> None:
    table = global_importance(CONTRIBUTIONS)
    assert table["feature"].tolist() == ["frequency", "recency", "monetary"]
    assert table["mean_abs"].tolist() == pytest.approx([14 / 3, 2.0, 1.0])
    assert table["mean"].tolist() == pytest.approx([4.0, -2 / 3, 1 / 3])
    assert table["share"].sum() == pytest.approx(1.0)
    assert table["share"].iloc[0] == pytest.approx((14 / 3) / (14 / 3 + 3.0))


def test_top_drivers_rank_by_absolute_contribution() -> None:
    top = top_drivers(CONTRIBUTIONS, k=2)
    assert top.columns.tolist() == ["customer_id", "rank", "feature", "contribution"]
    assert top.values.tolist() == [
        ["a", 1, "frequency", 10.0],
        ["a", 2, "recency", -4.0],
        ["b", 1, "recency", 2.0],
        ["b", 2, "frequency", -1.0],  # tie |-1| = |1| broken by name
        ["c", 1, "frequency", 3.0],
        ["c", 2, "monetary", -1.0],
    ]
    with pytest.raises(ConfigError, match="k must be"):
        top_drivers(CONTRIBUTIONS, k=0)
    with pytest.raises(SchemaError, match="base_value"):
        top_drivers(CONTRIBUTIONS.drop(columns="base_value"))


def test_render_drivers_adds_up() -> None:
    text = render_drivers(CONTRIBUTIONS.loc["a"], k=2, unit="EUR")
    lines = text.splitlines()
    assert [line.split()[:2] for line in lines] == [
        ["base", "value"],
        ["frequency", "+10.00"],
        ["recency", "-4.00"],
        ["(1", "other"],
        ["=", "predicted"],
    ]
    assert lines[0].endswith(" 20.00") and lines[3].endswith(" +1.00")
    assert lines[4].endswith(" 27.00 EUR")
    assert len({len(line) for line in lines[:4]}) == 1  # numbers right-aligned in one column


class _Recorder(Forecaster):
    """Explains each customer by their transaction count; records the data it was given."""

    name = "recorder"

    def __init__(self) -> None:
        self.seen: list[CustomerData] = []

    def _fit(self, data: CustomerData, as_of: pd.Timestamp, horizon: Horizon) -> None:
        return None

    def _predict(self, data: CustomerData, as_of: pd.Timestamp) -> pd.DataFrame:
        raise NotImplementedError

    def explain(self, data: CustomerData, as_of: pd.Timestamp) -> pd.DataFrame:
        self.seen.append(data)
        counts = data.until(as_of).transactions.groupby("customer_id").size()
        return pd.DataFrame({"n": counts.astype(float), "base_value": 1.0})

    def save_state(self, directory: Any) -> dict[str, Any]:
        return {}

    def load_state(self, directory: Any, state: dict[str, Any]) -> None:
        return None


def test_explain_customers_cuts_data_to_the_requested_ones(
    tiny_transactions: pd.DataFrame,
) -> None:
    data = CustomerData(tiny_transactions)
    model = _Recorder()
    as_of = pd.Timestamp("2024-02-25")
    got = explain_customers(model, data, as_of, ["c", "a"])
    assert got.index.tolist() == ["c", "a"]
    assert got["n"].tolist() == [1.0, 3.0]
    assert set(model.seen[-1].transactions["customer_id"]) == {"a", "c"}
    with pytest.raises(ConfigError, match=r"\['b'\] have no transaction"):
        explain_customers(model, data, pd.Timestamp("2024-01-05"), ["a", "b"])
    assert len(explain_customers(model, data, as_of)) == 3


def test_gbdt_tree_contributions_sum_to_the_prediction(store: CustomerData) -> None:
    gbdt = pytest.importorskip("ltvcast.models.gbdt", reason="GBDT model not available")
    as_of = pd.Timestamp("2024-01-31")
    model = gbdt.GBDTForecaster(n_estimators=15, max_origins=2, num_leaves=15, num_threads=1).fit(
        store, as_of, Horizon(90, "d")
    )
    predictions = model.predict(store, as_of).set_index("customer_id")
    contributions = model.explain(store, as_of)
    assert contributions.index.tolist() == predictions.index.tolist()
    np.testing.assert_allclose(
        contributions.sum(axis=1), predictions["predicted_value"], rtol=1e-6, atol=1e-6
    )
    importance = global_importance(contributions)
    assert importance["mean_abs"].iloc[0] > 0
    one = explain_customers(model, store, as_of, [predictions.index[5]])
    np.testing.assert_allclose(one.iloc[0], contributions.iloc[5], rtol=1e-9, atol=1e-9)
