"""Rollout: simulated sums against closed forms, its calibration, and the path quantiles."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import special, stats

from ltvcast.data.schemas import CustomerData
from ltvcast.features.sequence import SequenceBatch
from ltvcast.models.seq.inputs import PeriodGrid, SeqInputs, fit_inputs
from ltvcast.models.seq.network import SeqNetwork
from ltvcast.models.seq.rollout import path_quantiles, simulate, validation_rollout
from ltvcast.models.seq.training import split_origins

from .conftest import WEEKLY_AS_OF

#: Constant next-period heads: P(buy) = expit(0.3), lognormal(2, softplus(-0.5)), extras e^-1.
HEADS = {"next_value": [0.3, 2.0, -0.5], "next_count": [-1.0]}
P = special.expit(0.3)
MEAN = P * stats.lognorm.mean(s=np.logaddexp(0.0, -0.5), scale=np.exp(2.0))


@pytest.fixture(scope="module")
def rollout_inputs(weekly: CustomerData) -> tuple[SeqInputs, SequenceBatch]:
    grid = PeriodGrid(period_days=7, n_periods=10, stride=1, calendar=False, event_types=())
    return fit_inputs(weekly, WEEKLY_AS_OF, grid, use_profiles=True)


def test_simulation_of_constant_heads_matches_closed_forms(
    weekly: CustomerData,
    rollout_inputs: tuple[SeqInputs, SequenceBatch],
    constant_network: Callable[[SeqInputs, dict[str, list[float]]], SeqNetwork],
) -> None:
    inputs, batch = rollout_inputs
    net = constant_network(inputs, HEADS)
    with torch.inference_mode():
        prepared = inputs.prepare(weekly, batch, torch.device("cpu"))
        out = simulate(net, inputs, batch, prepared, 5, n_samples=8, random_state=0)
    np.testing.assert_allclose(out["predicted_value"], 5 * MEAN, rtol=1e-5)
    np.testing.assert_allclose(out["predicted_purchases"], 5 * P * (1 + np.exp(-1.0)), rtol=1e-5)
    np.testing.assert_allclose(out["p_active"], 1 - (1 - P) ** 5, rtol=1e-5)
    assert (0 <= out["value_p10"]).all() and (out["value_p10"] <= out["value_p90"]).all()


def test_calibration_is_actual_over_simulated_validation_spend(
    weekly: CustomerData,
    rollout_inputs: tuple[SeqInputs, SequenceBatch],
    constant_network: Callable[[SeqInputs, dict[str, list[float]]], SeqNetwork],
) -> None:
    inputs, batch = rollout_inputs
    _, valid = split_origins(
        batch.mask, rollout=True, horizon_periods=2, stride=1, period_days=7, random_state=0
    )
    assert set(np.flatnonzero(valid.any(0))) == {7, 8} and valid[:, 7].all()
    validation = validation_rollout(
        constant_network(inputs, HEADS),
        inputs,
        weekly,
        WEEKLY_AS_OF,
        batch,
        valid,
        customers_per_epoch=None,
        n_samples=4,
        random_state=0,
        device=torch.device("cpu"),
    )
    assert validation.days == 14 and len(validation.customers) == 12
    # simulated from two weeks before the as-of time, for all 12 customers
    tx = weekly.transactions
    actual = tx.loc[tx["timestamp"] > WEEKLY_AS_OF - pd.Timedelta(weeks=2), "amount"].sum()
    assert validation.scale == pytest.approx(actual / (12 * 2 * MEAN), rel=1e-5)


def test_path_quantiles_match_a_lognormal_reference() -> None:
    """Many lognormal paths: the ZILN quantiles match scipy's; p_active moves the level."""
    rng = np.random.default_rng(0)
    totals = torch.from_numpy(rng.lognormal(1.0, 0.5, (1, 4000)))
    mean = torch.tensor([np.exp(1.0 + 0.125)], dtype=torch.float64)
    prior = torch.tensor([0.25], dtype=torch.float64)
    for p_active, level in ((1.0, 0.9), (0.5, 0.8)):  # p90 of the mixture = positive part's p80
        p = torch.tensor([p_active], dtype=torch.float64)
        q10, q90 = path_quantiles(mean * p, p, totals, prior)[0].tolist()
        assert q90 == pytest.approx(stats.lognorm.ppf(level, 0.5, scale=np.e), rel=0.03)
        assert q10 == (
            0.0
            if p_active < 0.9
            else pytest.approx(stats.lognorm.ppf(0.1, 0.5, scale=np.e), rel=0.03)
        )
