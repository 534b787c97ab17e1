"""Training: origin labels, the time-ordered split, head start, loss, the run, calibration."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import special, stats

from ltvcast.data.schemas import CustomerData
from ltvcast.exceptions import InsufficientDataError
from ltvcast.features.sequence import CONTEXT_NAMES, SequenceBatch
from ltvcast.models.seq.forward import torch_session
from ltvcast.models.seq.inputs import NetworkInputs, PeriodGrid, SeqInputs, fit_inputs
from ltvcast.models.seq.network import SeqNetwork
from ltvcast.models.seq.training import (
    Origins,
    TrainingSettings,
    direct_value_scale,
    init_heads,
    origin_targets,
    seq_loss,
    split_origins,
    train_network,
)

from .conftest import WEEKLY_AS_OF

SETTINGS = TrainingSettings(
    epochs=3,
    batch_size=4,
    learning_rate=1e-2,
    patience=1,
    customers_per_epoch=None,
    rollout=False,
    aux_weight=0.5,
    random_state=0,
)


def _batch(purchases: list[float], spend: list[float]) -> SequenceBatch:
    t = len(purchases)
    values = np.stack([purchases, np.log1p(spend)], -1)[None].astype(np.float32)
    return SequenceBatch(
        customers=pd.Index(["a"]),
        values=values,
        lengths=np.array([t]),
        context=np.zeros((1, t, len(CONTEXT_NAMES)), dtype=np.float32),
        channels=("purchases", "log_spend"),
        period_days=7,
        period_ends=pd.date_range("2024-01-08", periods=t, freq="7D"),
    )


def test_origin_targets_sum_the_next_periods() -> None:
    targets = origin_targets(_batch([1, 0, 2, 1, 0], [10, 0, 20, 5, 0]), h=2)
    np.testing.assert_allclose(targets["value"][0], [20, 25, 5, 0, 0], rtol=1e-6)
    np.testing.assert_allclose(targets["purchases"][0], [2, 3, 1, 0, 0])
    np.testing.assert_allclose(targets["next_value"][0], [0, 20, 5, 0, 0], rtol=1e-6)
    np.testing.assert_allclose(targets["next_extra"][0], [0, 1, 0, 0, 0])


def _split(mask: np.ndarray, rollout: bool) -> tuple[np.ndarray, np.ndarray]:
    return split_origins(
        mask, rollout=rollout, horizon_periods=2, stride=2, period_days=7, random_state=0
    )


def test_split_is_time_ordered() -> None:
    mask = np.ones((10, 12), dtype=bool)
    train, valid = _split(mask, rollout=False)
    # origins end a block of two periods; the latest full-horizon origin validates
    assert set(np.flatnonzero(valid.any(0))) == {9} and valid[:, 9].all()
    assert set(np.flatnonzero(train.any(0))) == {1, 3, 5, 7}
    train, valid = split_origins(
        mask, rollout=True, horizon_periods=2, stride=1, period_days=7, random_state=0
    )
    assert set(np.flatnonzero(valid.any(0))) == {9, 10}
    assert set(np.flatnonzero(train.any(0))) == set(range(9))


def test_split_refuses_too_little_history() -> None:
    with pytest.raises(InsufficientDataError, match="too little history"):
        _split(np.ones((10, 2), dtype=bool), rollout=True)


Fitted = tuple[SeqInputs, SequenceBatch, NetworkInputs]


@pytest.fixture(scope="module")
def fitted_inputs(weekly: CustomerData) -> Fitted:
    grid = PeriodGrid(period_days=7, n_periods=10, stride=2, calendar=False, event_types=())
    inputs, batch = fit_inputs(weekly, WEEKLY_AS_OF, grid, use_profiles=True)
    return inputs, batch, inputs.prepare(weekly, batch, torch.device("cpu"))


def _network(inputs: SeqInputs) -> SeqNetwork:
    return SeqNetwork(
        len(inputs.channels),
        len(CONTEXT_NAMES),
        len(inputs.numeric_columns),
        inputs.cardinalities(),
        conv_filters=4,
        lstm_hidden=4,
        head_hidden=4,
        stride=2,
    )


def test_heads_start_at_the_base_rates(fitted_inputs: Fitted) -> None:
    inputs, batch, _ = fitted_inputs
    targets = origin_targets(batch, 2)
    train = batch.mask
    torch.manual_seed(0)
    net = _network(inputs)
    init_heads(net, targets, train)
    values = targets["value"][train]
    logs = np.log(values[values > 0])
    bias = net.head("horizon_value").bias.detach().double().numpy()
    assert special.expit(bias[0]) == pytest.approx((values > 0).mean(), rel=1e-5)
    assert bias[1] == pytest.approx(logs.mean(), rel=1e-5)
    assert np.logaddexp(0.0, bias[2]) == pytest.approx(max(logs.std(), 0.1), rel=1e-5)
    count = float(net.head("horizon_count").bias.detach()[0])
    assert np.exp(count) == pytest.approx(targets["purchases"][train].mean(), rel=1e-5)


def test_loss_is_horizon_plus_weighted_next_period() -> None:
    gen = torch.Generator().manual_seed(0)
    out = {
        "horizon_value": torch.randn(3, 4, 3, generator=gen),
        "horizon_count": torch.randn(3, 4, 1, generator=gen),
        "next_value": torch.randn(3, 4, 3, generator=gen),
        "next_count": torch.randn(3, 4, 1, generator=gen),
    }
    target = {
        "value": torch.rand(3, 4, generator=gen) * (torch.rand(3, 4, generator=gen) < 0.5),
        "purchases": torch.poisson(torch.ones(3, 4), generator=gen),
        "next_value": torch.rand(3, 4, generator=gen) * (torch.rand(3, 4, generator=gen) < 0.5),
        "next_extra": torch.poisson(torch.ones(3, 4), generator=gen),
        "mask": torch.rand(3, 4, generator=gen) < 0.7,
    }

    def loss(aux: float, rollout: bool = False, **change: torch.Tensor) -> float:
        return float(seq_loss({**out, **change}, target, rollout=rollout, aux_weight=aux))

    next_only = loss(0.0, rollout=True)
    assert loss(0.0, rollout=True, horizon_value=torch.zeros(3, 4, 3)) == next_only
    assert loss(2.0) == pytest.approx(loss(0.0) + 2.0 * next_only, rel=1e-6)
    # origins outside the mask do not count
    masked = target["mask"]
    moved = torch.where(masked[..., None], out["horizon_value"], 9.0)
    assert loss(0.5, horizon_value=moved) == pytest.approx(loss(0.5), rel=1e-6)


def test_training_is_seeded_and_ends_on_the_best_epoch(fitted_inputs: Fitted) -> None:
    inputs, batch, prepared = fitted_inputs
    targets = origin_targets(batch, 2)
    train, valid = _split(batch.mask, rollout=False)
    runs = []
    with torch_session(torch.device("cpu"), random_state=0, n_threads=1):
        for _ in range(2):
            torch.manual_seed(0)
            net = _network(inputs)
            init_heads(net, targets, train)
            record, origins = train_network(net, prepared, targets, train, valid, SETTINGS)
            runs.append((record, net.state_dict()))
        net = _network(inputs)
        refit, _ = train_network(net, prepared, targets, train | valid, None, SETTINGS)
    assert runs[0][0] == runs[1][0] and 1 <= record["best_epoch"] <= record["epochs_run"] <= 3
    for name, weights in runs[0][1].items():
        torch.testing.assert_close(weights, runs[1][1][name], rtol=0, atol=0)
    assert record["train_origins"] == int(train.sum()) and origins.train.shape == (12, 5)
    assert refit["best_epoch"] == 3 and refit["validation_loss"] == []


def test_direct_scale_is_actual_over_predicted(
    fitted_inputs: Fitted,
    constant_network: Callable[[SeqInputs, dict[str, list[float]]], SeqNetwork],
) -> None:
    inputs, _, prepared = fitted_inputs
    net = constant_network(inputs, {"horizon_value": [0.4, 2.0, -0.3]})
    rng = np.random.default_rng(0)
    valid = rng.random((12, 5)) < 0.4
    value = rng.gamma(1.0, 20.0, (12, 5)).astype(np.float32)
    origins = Origins({"value": value}, ~valid, valid, np.arange(12), np.arange(12))
    p, sigma = special.expit(0.4), np.logaddexp(0.0, -0.3)
    mean = p * stats.lognorm.mean(s=sigma, scale=np.exp(2.0))
    expected = value[valid].sum() / (mean * valid.sum())
    assert direct_value_scale(net, prepared, origins) == pytest.approx(expected, rel=1e-5)
