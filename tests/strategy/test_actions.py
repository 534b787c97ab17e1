"""Next best action: the catalogue's rules, the arithmetic of its value, and the catalogue file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ltvcast.exceptions import ConfigError, SchemaError
from ltvcast.strategy.actions import (
    ACTION_COLUMNS,
    CROSS_SELL,
    DEFAULT_CATALOGUE,
    LOYALTY_PERK,
    NO_CONTACT,
    RETENTION_OFFER,
    SECOND_PURCHASE,
    action_mix,
    merge_action_mix,
    next_best_actions,
    read_catalogue,
)


def _scored(**columns: list[object]) -> pd.DataFrame:
    n = len(next(iter(columns.values())))
    base: dict[str, list[object]] = {
        "customer_id": [f"c{i}" for i in range(n)],
        "segment": ["steady"] * n,
        "predicted_value": [100.0] * n,
        "p_active": [0.8] * n,
        "purchases": [3.0] * n,
    }
    base.update(columns)
    return pd.DataFrame(base)


def test_each_rule_picks_its_action() -> None:
    scored = _scored(
        segment=["champions", "steady", "new", "steady", "low_value"],
        predicted_value=[500.0, 400.0, 200.0, 300.0, 5.0],
        p_active=[0.9, 0.2, 0.6, 0.9, 0.9],
        purchases=[9.0, 4.0, 1.0, 5.0, 4.0],
    )
    has_items = pd.Series([False, True, True, True, True], index=scored["customer_id"])
    out = next_best_actions(scored, has_items=has_items)
    assert list(out.columns) == ["customer_id", *ACTION_COLUMNS]
    assert out["action"].tolist() == [
        LOYALTY_PERK,  # 0.03 x 500 = 15 > 1; no items for cross-sell
        RETENTION_OFFER,  # 0.10 x 0.8 x 400 = 32
        SECOND_PURCHASE,  # 0.10 x 200 = 20 beats cross-sell's 10
        CROSS_SELL,  # 0.05 x 300 = 15
        NO_CONTACT,  # 0.05 x 5 = 0.25 < cost 1
    ]
    np.testing.assert_allclose(out["action_value"], [14.0, 31.0, 19.0, 14.0, 0.0])
    assert "= 32.00 > cost 1.00" in out["action_reason"][1]
    assert out["action_reason"][4].startswith("no action pays")


def test_the_downside_band_lowers_the_value_decided_on() -> None:
    scored = _scored(predicted_value=[100.0], value_p10=[20.0], purchases=[1.0])
    plain = next_best_actions(scored.drop(columns="value_p10"))
    cautious = next_best_actions(scored, risk_aversion=0.5)
    assert plain["action_value"][0] == pytest.approx(0.1 * 100 - 1)
    assert cautious["action_value"][0] == pytest.approx(0.1 * 60 - 1)
    neutral = next_best_actions(scored, risk_aversion=0.0)
    assert neutral["action_value"][0] == pytest.approx(plain["action_value"][0])


def test_margin_scales_the_gain_and_an_unpaid_contact_is_never_chosen() -> None:
    scored = _scored(predicted_value=[15.0], purchases=[1.0])
    assert next_best_actions(scored)["action"][0] == SECOND_PURCHASE  # 1.5 > 1
    out = next_best_actions(scored, margin=0.5)  # 0.75 < 1
    assert out["action"][0] == NO_CONTACT
    assert out["action_value"][0] == 0.0


def test_the_chosen_action_is_the_best_eligible_one(store_scored: pd.DataFrame) -> None:
    out = next_best_actions(store_scored)
    assert len(out) == len(store_scored)
    assert (out["action_value"] >= 0).all()
    assert set(out["action"]) <= {a.name for a in DEFAULT_CATALOGUE} | {NO_CONTACT}
    assert not (out["action"] == CROSS_SELL).any()  # nobody has items here
    rescued = out["action"] == RETENTION_OFFER
    assert (store_scored.loc[rescued, "p_active"] < 0.5).all()


def test_mixes_of_buckets_merge_into_the_whole_tables(store_scored: pd.DataFrame) -> None:
    out = next_best_actions(store_scored)
    segments = store_scored.set_index("customer_id")["segment"]
    buckets = [out.iloc[:50], out.iloc[50:300], out.iloc[300:]]
    for by in (None, segments):
        whole = action_mix(out, by)
        merged = merge_action_mix(action_mix(part, by) for part in buckets)
        pd.testing.assert_frame_equal(merged, whole, rtol=1e-12)
        assert merged["customers"].sum() == len(out) and merged["share"].sum() == pytest.approx(1)
        assert len(merged) >= 3


@pytest.fixture
def store_scored() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    n = 400
    return _scored(
        segment=rng.choice(["champions", "steady", "hibernating"], n).tolist(),
        predicted_value=rng.lognormal(3, 1, n).tolist(),
        p_active=rng.uniform(0, 1, n).tolist(),
        purchases=rng.integers(1, 6, n).astype(float).tolist(),
    )


def test_input_errors_name_the_problem() -> None:
    with pytest.raises(SchemaError, match="'purchases'"):
        next_best_actions(_scored(p_active=[0.5]).drop(columns="purchases"))
    with pytest.raises(ConfigError, match="margin"):
        next_best_actions(_scored(p_active=[0.5]), margin=0.0)
    with pytest.raises(ConfigError, match="risk_aversion"):
        next_best_actions(_scored(p_active=[0.5]), risk_aversion=2.0)


def test_catalogue_file_overrides_defaults(tmp_path: Path) -> None:
    path = tmp_path / "actions.csv"
    path.write_text("action,uplift,cost\nretention_offer,0.2,7.5\nloyalty_perk,0,0\n")
    catalogue = {action.name: action for action in read_catalogue(path)}
    assert catalogue[RETENTION_OFFER].uplift == 0.2
    assert catalogue[RETENTION_OFFER].cost == 7.5
    assert catalogue[SECOND_PURCHASE] == DEFAULT_CATALOGUE[1]
    scored = _scored(segment=["champions"], predicted_value=[1000.0])
    assert next_best_actions(scored, catalogue=tuple(catalogue.values()))["action"][0] == (
        NO_CONTACT
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("action,uplift\nretention_offer,0.1\n", "missing column"),
        ("action,uplift,cost\nspam,0.1,1\n", "unknown action"),
        ("action,uplift,cost\ncross_sell,1.5,1\ncross_sell,0.1,1\n", "repeats"),
        ("action,uplift,cost\ncross_sell,0.1,x\n", "column 'cost' .*lines 2"),
    ],
)
def test_bad_catalogue_is_one_clear_error(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "actions.csv"
    path.write_text(text)
    with pytest.raises(SchemaError, match=message):
        read_catalogue(path)
