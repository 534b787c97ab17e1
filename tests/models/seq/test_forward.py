"""Running the network: direct forecasts against scipy, chunks, seeded torch sessions."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from scipy import special, stats

from ltvcast.data.schemas import CustomerData
from ltvcast.models.seq.forward import FORECAST_COLUMNS, chunks, direct_forecast, torch_session
from ltvcast.models.seq.inputs import PeriodGrid, SeqInputs, fit_inputs
from ltvcast.models.seq.network import SeqNetwork

from .conftest import WEEKLY_AS_OF


def test_direct_forecast_of_constant_heads(
    weekly: CustomerData,
    constant_network: Callable[[SeqInputs, dict[str, list[float]]], SeqNetwork],
) -> None:
    grid = PeriodGrid(period_days=7, n_periods=10, stride=2, calendar=True, event_types=("view",))
    inputs, batch = fit_inputs(weekly, WEEKLY_AS_OF, grid, use_profiles=True)
    net = constant_network(inputs, {"horizon_value": [0.8, 3.0, 0.2], "horizon_count": [0.5]})
    with torch.inference_mode():
        out = direct_forecast(net, inputs.prepare(weekly, batch, torch.device("cpu")))
    assert tuple(out) == FORECAST_COLUMNS and all(len(v) == 12 for v in out.values())
    p, sigma, scale = special.expit(0.8), np.logaddexp(0.0, 0.2), np.exp(3.0)
    expected = {
        "predicted_value": p * stats.lognorm.mean(s=sigma, scale=scale),
        "predicted_purchases": max(np.exp(0.5), p),
        "p_active": p,
        "value_p10": 0.0,  # 1 - p > 0.1: the p10 is the point mass at zero
        "value_p90": stats.lognorm.ppf((0.9 - (1 - p)) / p, s=sigma, scale=scale),
    }
    assert 1 - p > 0.1
    for name, value in expected.items():
        np.testing.assert_allclose(out[name], value, rtol=1e-5, err_msg=name)


def test_chunks_cover_every_row_once() -> None:
    parts = list(chunks(10, 4))
    assert [len(p) for p in parts] == [4, 4, 2]
    np.testing.assert_array_equal(np.concatenate(parts), np.arange(10))
    assert list(chunks(0, 4)) == []


def test_session_is_seeded_and_restores_torch() -> None:
    threads = torch.get_num_threads()
    before = torch.random.get_rng_state()
    draws = []
    for _ in range(2):
        with torch_session(torch.device("cpu"), random_state=7, n_threads=1):
            assert torch.get_num_threads() == 1
            assert torch.are_deterministic_algorithms_enabled()
            draws.append(torch.rand(3))
    torch.testing.assert_close(draws[0], draws[1])
    assert torch.get_num_threads() == threads
    assert torch.equal(torch.random.get_rng_state(), before)
    assert not torch.are_deterministic_algorithms_enabled()
