"""Segment rules on hand cases, quantile vs absolute cuts, one-customer labels, summaries."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ltvcast.data.schemas import CustomerData
from ltvcast.exceptions import ConfigError, SchemaError
from ltvcast.features.rfm import customer_history
from ltvcast.strategy.segments import (
    ACTIONS,
    SEGMENTS,
    FittedSegmentRules,
    SegmentRules,
    assign_segments,
    segment_summary,
)

RULES = FittedSegmentRules(
    high_value_cut=100.0,
    low_value_cut=20.0,
    active_cut=0.5,
    new_tenure_days=90.0,
    new_max_purchases=2.0,
    high_stake_cut=200.0,
)

#: (value, p_active, tenure_days, purchases) -> expected segment, one row per rule and edge.
CASES = [
    (150.0, 0.9, 400, 10, "champions"),
    (100.0, 0.5, 400, 10, "champions"),  # both cuts inclusive
    (150.0, 0.9, 10, 1, "champions"),  # a new high-value active customer is a champion
    (150.0, 0.49, 400, 10, "high_value_at_risk"),
    (150.0, 0.1, 10, 1, "high_value_at_risk"),
    (50.0, 0.9, 30, 1, "promising_new"),
    (50.0, 0.2, 90, 2, "promising_new"),  # new customers are judged on value, not P(active)
    (20.0, 0.9, 30, 0, "promising_new"),  # low cut inclusive; events only = 0 purchases
    (50.0, 0.9, 91, 1, "steady"),  # tenure just past new
    (50.0, 0.9, 30, 3, "steady"),  # too many purchases to be new
    (50.0, 0.2, 400, 5, "high_value_at_risk"),  # mid value, but 250 if active: rescue
    (50.0, 0.3, 400, 5, "hibernating"),  # 167 if active: below the stake cut
    (5.0, 0.1, 400, 5, "hibernating"),
    (5.0, 0.1, 10, 1, "hibernating"),  # new but low value
    (5.0, 0.9, 400, 5, "low_value"),
    (19.99, 0.9, 10, 1, "low_value"),
    (0.0, 1.0, 400, 5, "low_value"),
]


def _tables(rows: list[tuple[float, float, float, float]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    ids = [f"c{i}" for i in range(len(rows))]
    value, p_active, tenure, purchases = (list(col) for col in zip(*rows, strict=True))
    predictions = pd.DataFrame({"customer_id": ids, "predicted_value": value, "p_active": p_active})
    history = pd.DataFrame({"customer_id": ids, "tenure_days": tenure, "purchases": purchases})
    return predictions, history


def test_hand_cases_cover_every_rule() -> None:
    predictions, history = _tables([case[:4] for case in CASES])
    got = RULES.assign(predictions, history)
    assert got.tolist() == [case[4] for case in CASES]
    assert got.index.tolist() == predictions["customer_id"].tolist()
    assert set(got) == set(SEGMENTS)


@pytest.mark.parametrize(("value", "p_active", "tenure", "purchases", "expected"), CASES)
def test_label_one_customer_matches_batch(
    value: float, p_active: float, tenure: float, purchases: float, expected: str
) -> None:
    assert RULES.label(value, p_active, tenure, purchases) == expected


def test_history_order_and_missing_customers() -> None:
    predictions, history = _tables([(50.0, 0.9, 400, 10), (50.0, 0.9, 400, 10)])
    # history in another order, second customer absent -> counts as new
    history = history.iloc[[0]].iloc[::-1]
    got = RULES.assign(predictions.iloc[::-1], history)
    assert got.to_dict() == {"c1": "promising_new", "c0": "steady"}


def test_quantile_cuts_are_fitted_on_the_forecasts() -> None:
    rng = np.random.default_rng(0)
    n = 1000
    predictions = pd.DataFrame(
        {
            "customer_id": [f"c{i}" for i in range(n)],
            "predicted_value": rng.permutation(np.arange(1, n + 1, dtype=float)),
            "p_active": rng.random(n),
        }
    )
    fitted = SegmentRules(high_value=0.9, low_value=0.5, active=0.5, active_mode="absolute").fit(
        predictions
    )
    assert fitted.high_value_cut == pytest.approx(np.quantile(np.arange(1, n + 1), 0.9))
    assert fitted.low_value_cut == pytest.approx(500.5)
    assert fitted.active_cut == 0.5
    history = pd.DataFrame(
        {"customer_id": predictions["customer_id"], "tenure_days": 365.0, "purchases": 5}
    )
    segments = assign_segments(predictions, history, SegmentRules(high_value=0.9))
    value = predictions.set_index("customer_id")["predicted_value"]
    at_stake = segments.eq("high_value_at_risk") & (value.reindex(segments.index) >= 901)
    assert segments.eq("champions").sum() + at_stake.sum() == 100
    stake = predictions["predicted_value"] / predictions["p_active"]
    fitted_default = SegmentRules(high_value=0.9).fit(predictions)
    assert fitted_default.high_stake_cut == pytest.approx(np.quantile(stake, 0.9))
    # default P(active) cut is the median: half of everyone is active
    active = segments.isin(["champions", "steady", "low_value"])
    assert active.sum() == 500
    # absolute cuts pass through unchanged, quantile P(active) cut is fitted too
    absolute = SegmentRules(high_value=300.0, low_value=10.0, value_mode="absolute")
    assert absolute.fit(predictions).high_value_cut == 300.0
    by_rank = SegmentRules(active=0.25).fit(predictions)
    assert by_rank.active_cut == pytest.approx(np.quantile(predictions["p_active"], 0.25))


def test_zero_quantile_cut_never_makes_zero_forecasts_valuable() -> None:
    predictions, history = _tables([(0.0, 0.9, 400, 5)] * 9 + [(10.0, 0.9, 400, 5)])
    segments = assign_segments(predictions, history)  # quantile cuts are 0 and 1.0
    assert segments.tolist() == ["low_value"] * 9 + ["champions"]


def test_round_trip_and_bad_rules() -> None:
    assert FittedSegmentRules.from_dict(RULES.to_dict()) == RULES
    with pytest.raises(ConfigError, match="segment rules need numbers"):
        FittedSegmentRules.from_dict({"high_value_cut": 1.0})
    with pytest.raises(ConfigError, match="value_mode"):
        SegmentRules(value_mode="rank")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="must lie in"):
        SegmentRules(high_value=1.5)
    with pytest.raises(ConfigError, match="must not exceed"):
        SegmentRules(high_value=0.3, low_value=0.6)
    with pytest.raises(SchemaError, match="history: missing column"):
        RULES.assign(*_tables([(1.0, 1.0, 1, 1)])[:1], pd.DataFrame({"customer_id": ["c0"]}))


def test_customer_history_from_data(tiny_transactions: pd.DataFrame) -> None:
    events = pd.DataFrame(
        {
            "customer_id": ["d", "b"],
            "timestamp": pd.to_datetime(["2024-02-25", "2023-12-31"]),
            "event_type": ["view", "view"],
        }
    )
    data = CustomerData(tiny_transactions, events)
    as_of = pd.Timestamp("2024-03-01 00:00")  # b's 2024-03-01 08:00 purchase is after as-of
    history = customer_history(data, as_of).set_index("customer_id")
    assert history.index.tolist() == ["a", "b", "c", "d"]
    assert history.loc["a", "tenure_days"] == pytest.approx(60 - 10 / 24)
    assert history.loc["b", "tenure_days"] == pytest.approx(61.0)  # first seen by an event
    assert history["purchases"].tolist() == [3, 1, 1, 0]
    assert history["past_value"].tolist() == [60.0, 5.0, 100.0, 0.0]


def test_segment_summary_totals() -> None:
    predictions, history = _tables([case[:4] for case in CASES])
    segments = RULES.assign(predictions, history)
    table = segment_summary(predictions, segments)
    assert table["segment"].tolist() == list(SEGMENTS)
    assert table["customers"].sum() == len(CASES)
    assert table["share"].sum() == pytest.approx(1.0)
    assert table["revenue_share"].sum() == pytest.approx(1.0)
    champions = table.set_index("segment").loc["champions"]
    assert champions["customers"] == 3
    assert champions["predicted_revenue"] == pytest.approx(400.0)
    assert champions["action"] == ACTIONS["champions"]
    # a segment nobody falls in is listed with zeros
    only = segment_summary(predictions.iloc[:1], segments.iloc[:1]).set_index("segment")
    assert only.loc["steady", "customers"] == 0
    assert only.loc["champions", "revenue_share"] == 1.0
