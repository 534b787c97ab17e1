"""Budget optimiser: feasibility, optimality against brute force, no negative-gain contacts."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from ltvcast.exceptions import ConfigError, SchemaError
from ltvcast.strategy.plan import (
    METHOD_ALL,
    METHOD_EQUAL,
    METHOD_EXACT,
    METHOD_RATIO,
    plan_contacts,
    read_uplift_table,
    select_within_budget,
    uplift_by_segment,
)


def _brute_force(net: np.ndarray, cost: np.ndarray, budget: float) -> float:
    """Best net over all 2^n subsets (vectorised over a bit matrix)."""
    n = len(net)
    bits = np.array(list(itertools.product([0, 1], repeat=n)), dtype=bool)
    feasible = bits @ cost <= budget + 1e-9
    return float((bits[feasible] @ net).max())


def _predictions(values: list[float], p_active: list[float] | None = None) -> pd.DataFrame:
    n = len(values)
    return pd.DataFrame(
        {
            "customer_id": [f"c{i:02d}" for i in range(n)],
            "predicted_value": values,
            "p_active": p_active if p_active is not None else [0.5] * n,
        }
    )


def test_hand_solved_equal_costs() -> None:
    # gains = 0.1 * value: 10, 5, 2, 0.5, 8 ; cost 1 each -> net 9, 4, 1, -0.5, 7
    preds = _predictions([100, 50, 20, 5, 80])
    plan = plan_contacts(preds, budget=2.5, cost_per_contact=1.0, uplift=0.1)
    assert plan.contacts["customer_id"].tolist() == ["c00", "c04"]
    s = plan.summary
    assert s.method == METHOD_EQUAL
    assert s.eligible == 4
    assert s.expected_cost == pytest.approx(2.0)
    assert s.expected_return == pytest.approx(18.0)
    assert s.expected_net == pytest.approx(16.0)
    assert s.roi == pytest.approx(8.0)


def test_hand_solved_unequal_costs_beats_ratio_greedy() -> None:
    # budget 10: A + B (cost 10, net 12) beats A + C (net 11) and B + C (over budget)
    gain = np.array([11.0, 11.0, 10.0])
    cost = np.array([4.0, 6.0, 6.0])  # net 7, 5, 4 ; ratios 1.75, 0.83, 0.67
    chosen, method, bound = select_within_budget(gain, cost, 10.0)
    assert method == METHOD_EXACT
    assert chosen.tolist() == [True, True, False]
    # greedy by ratio takes A (ratio 2) then only B fits (net 7); the optimum is B + C (net 10)
    gain = np.array([3.0, 10.0, 10.0])
    cost = np.array([1.0, 5.0, 5.0])  # net 2 (ratio 2), 5 (1), 5 (1); budget 10
    chosen, _, _ = select_within_budget(gain, cost, 10.0)
    assert chosen.tolist() == [False, True, True]
    greedy, method, bound = select_within_budget(gain, cost, 10.0, exact_max_cells=0)
    assert method == METHOD_RATIO
    assert greedy.tolist() == [True, True, False]
    assert bound >= 10.0


@pytest.mark.parametrize("seed", range(8))
def test_matches_brute_force_on_ten_customers(seed: int) -> None:
    rng = np.random.default_rng(seed)
    gain = np.round(rng.gamma(1.0, 10.0, size=10), 2)
    cost = np.round(rng.uniform(1.0, 9.0, size=10), 2)
    budget = float(np.round(rng.uniform(5.0, 30.0), 2))
    chosen, method, bound = select_within_budget(gain, cost, budget)
    net = gain - cost
    best = max(_brute_force(net, cost, budget), 0.0)
    assert cost[chosen].sum() <= budget + 1e-9
    assert (net[chosen] > 0).all()
    assert net[chosen].sum() == pytest.approx(best)
    assert bound == pytest.approx(best) or method == METHOD_ALL
    # the ratio greedy is feasible, at least half the optimum, and below its own bound
    greedy, method, bound = select_within_budget(gain, cost, budget, exact_max_cells=0)
    if method == METHOD_RATIO:
        assert cost[greedy].sum() <= budget + 1e-9
        assert net[greedy].sum() >= 0.5 * best - 1e-9
        assert bound >= best - 1e-9


@pytest.mark.parametrize("seed", range(4))
def test_equal_costs_match_brute_force(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    gain = rng.gamma(0.8, 4.0, size=10)
    cost = np.full(10, 2.0)
    budget = float(rng.integers(1, 12))
    chosen, _, _ = select_within_budget(gain, cost, budget)
    assert (gain - cost)[chosen].sum() == pytest.approx(
        max(_brute_force(gain - cost, cost, budget), 0.0)
    )


def test_never_exceeds_budget_nor_picks_losers_at_scale() -> None:
    rng = np.random.default_rng(7)
    n = 20_000
    preds = pd.DataFrame(
        {
            "customer_id": [f"id{i}" for i in range(n)],
            "predicted_value": rng.lognormal(3.0, 1.5, n) * (rng.random(n) < 0.6),
            "p_active": rng.random(n),
        }
    )
    cost = pd.Series(rng.uniform(0.5, 3.0, n).round(3), index=preds["customer_id"])
    plan = plan_contacts(preds, budget=1500.0, cost_per_contact=cost, uplift=0.05, margin=0.3)
    c = plan.contacts
    assert plan.summary.method == METHOD_RATIO
    assert c["cost"].sum() <= 1500.0
    assert (c["expected_gain"] > c["cost"]).all()
    assert plan.summary.expected_net <= plan.summary.upper_bound
    assert plan.summary.expected_net >= 0.99 * plan.summary.upper_bound
    assert plan.summary.expected_cost > 1490.0  # the budget is nearly used


def test_churn_rescue_weighs_value_by_churn_probability() -> None:
    preds = _predictions([100.0, 100.0, 300.0], p_active=[0.9, 0.2, 1.0])
    plan = plan_contacts(
        preds, budget=100.0, cost_per_contact=5.0, uplift=0.5, margin=0.5, churn_rescue=True
    )
    # value at stake 10, 80, 0 -> gain 2.5, 20, 0 -> only c01 beats the cost of 5
    assert plan.contacts["customer_id"].tolist() == ["c01"]
    assert plan.contacts["value_at_stake"].iloc[0] == pytest.approx(80.0)
    assert plan.summary.expected_return == pytest.approx(20.0)
    assert plan.summary.method == METHOD_ALL


def test_nothing_worth_contacting_gives_empty_plan() -> None:
    plan = plan_contacts(_predictions([1.0, 2.0]), budget=100, cost_per_contact=5, uplift=0.1)
    assert plan.contacts.empty
    assert plan.summary.expected_cost == 0.0
    assert np.isnan(plan.summary.roi)


def test_uplift_by_segment_and_segment_column(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "uplift.csv"
    path.write_text("segment,uplift\nhigh_value_at_risk,0.2\nsteady,0.05\n")
    table = read_uplift_table(path)
    assert table == {"high_value_at_risk": 0.2, "steady": 0.05}
    preds = _predictions([100.0, 100.0, 100.0])
    segments = pd.Series(
        ["high_value_at_risk", "steady", "champions"], index=preds["customer_id"], name="segment"
    )
    uplift = uplift_by_segment(segments, table)
    assert uplift.tolist() == [0.2, 0.05, 0.0]
    plan = plan_contacts(preds, budget=10.0, cost_per_contact=1.0, uplift=uplift, segments=segments)
    assert plan.contacts[["customer_id", "segment"]].values.tolist() == [
        ["c00", "high_value_at_risk"],
        ["c01", "steady"],
    ]


def test_bad_inputs_raise_clear_errors(tmp_path) -> None:  # type: ignore[no-untyped-def]
    preds = _predictions([10.0])
    with pytest.raises(ConfigError, match="budget"):
        plan_contacts(preds, budget=-1, cost_per_contact=1, uplift=0.1)
    with pytest.raises(ConfigError, match="uplift must lie"):
        plan_contacts(preds, budget=1, cost_per_contact=1, uplift=1.5)
    with pytest.raises(ConfigError, match="margin"):
        plan_contacts(preds, budget=1, cost_per_contact=1, uplift=0.1, margin=0)
    with pytest.raises(ConfigError, match="missing for 1 customers"):
        plan_contacts(preds, budget=1, cost_per_contact=pd.Series({"x": 1.0}), uplift=0.1)
    with pytest.raises(ConfigError, match="unknown segment"):
        uplift_by_segment(pd.Series(["steady"]), {"stedy": 0.1})
    bad = tmp_path / "u.csv"
    bad.write_text("segment,uplift\nsteady,abc\nchampions,2\n")
    with pytest.raises(SchemaError, match=r"u.csv: column 'uplift'.*2 rows.*lines 2, 3"):
        read_uplift_table(bad)
    bad.write_text("seg,uplift\nsteady,0.1\n")
    with pytest.raises(SchemaError, match="missing column"):
        read_uplift_table(bad)
