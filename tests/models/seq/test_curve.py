"""The horizon curve: monotone by construction, masked labels, BTYD's curve as the start,
the curve columns against an independent integral."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from ltvcast.exceptions import ConfigError
from ltvcast.features.sequence import CONTEXT_NAMES, SequenceBatch
from ltvcast.models.seq.curve import check_horizons, curve_columns, knots
from ltvcast.models.seq.hybrid import curve_offsets
from ltvcast.models.seq.network import CURVE_HEAD, SeqNetwork, curve_log_means
from ltvcast.models.seq.training import curve_means, origin_targets, seq_loss
from ltvcast.timeframe import parse_horizon, parse_horizons


def test_random_weights_still_give_a_monotone_curve() -> None:
    torch.manual_seed(3)
    net = SeqNetwork(2, len(CONTEXT_NAMES), 0, [], conv_filters=4, lstm_hidden=4, n_curve=3,
                     curve_position=1)  # fmt: skip
    with torch.no_grad():
        for parameter in net.parameters():
            parameter.normal_(0.0, 1.0)  # far from any trained state
    steps = torch.randn(64, 9, 2 + len(CONTEXT_NAMES))
    hidden = net.encode(steps)
    out = net.forward_heads(hidden, steps[..., 2:], torch.zeros(64, 0))
    ratios = net.curve_ratios(out)
    assert ratios is not None and ratios.shape == (64, 9, 4)
    assert (ratios.diff(dim=-1) >= 0).all()
    torch.testing.assert_close(ratios[..., 1], torch.ones(64, 9))
    # with offsets too (the hybrid's), and from the log means directly
    offset = torch.randn(64, 9, 7) * 3
    ratios = net.curve_ratios(net.forward_heads(hidden, steps[..., 2:], torch.zeros(64, 0),
                                                None, offset))  # fmt: skip
    assert ratios is not None and (ratios.diff(dim=-1) >= 0).all()
    logs = curve_log_means(torch.zeros(5), torch.randn(5, 4) * 10, 4)
    assert (logs.diff(dim=-1) >= 0).all() and (logs[:, 4] == 0).all()


def test_knots_keep_the_own_horizon_and_what_the_history_can_label() -> None:
    horizons, periods = knots(parse_horizon("13w"), None, 7, max_periods=30)
    assert [str(h) for h in horizons] == ["30d", "13w", "180d"] and periods == (4, 13, 26)
    # 42 days are the own horizon's 6 weeks: one knot, the own horizon
    horizons, periods = knots(parse_horizon("6w"), "42d,1y", 7, max_periods=60)
    assert [str(h) for h in horizons] == ["6w", "1y"] and periods == (6, 52)
    with pytest.raises(ConfigError, match="longest horizon this model was trained for is 180d"):
        check_horizons(parse_horizon("180d"), parse_horizons("30d,1y"))


def _batch(purchases: np.ndarray) -> SequenceBatch:
    n, t = purchases.shape
    values = np.stack([purchases, np.log1p(purchases * 10.0)], -1).astype(np.float32)
    return SequenceBatch(
        customers=pd.Index([f"c{i}" for i in range(n)]),
        values=values,
        lengths=np.full(n, t),
        context=np.zeros((n, t, len(CONTEXT_NAMES)), dtype=np.float32),
        channels=("purchases", "log_spend"),
        period_days=7,
        period_ends=pd.date_range("2024-01-08", periods=t, freq="7D"),
    )


def test_curve_labels_and_their_mask_read_nothing_after_the_label_end() -> None:
    rng = np.random.default_rng(0)
    purchases = rng.poisson(1.0, (3, 12)).astype(np.float64)
    targets = origin_targets(_batch(purchases), 2, (1, 4))
    # the 4-period window of column 3 is columns 4..7
    assert targets["curve_purchases"][1, 3, 1] == purchases[1, 4:8].sum()
    assert targets["curve_end"][0, 3].tolist() == [4, 7]
    assert targets["curve_end"].max() <= 11 + 4
    out = {
        "horizon_value": torch.zeros(3, 12, 3),
        "horizon_count": torch.zeros(3, 12, 1),
        "next_value": torch.zeros(3, 12, 3),
        "next_count": torch.zeros(3, 12, 1),
        CURVE_HEAD: torch.zeros(3, 12, 2, requires_grad=True),
    }
    target = {k: torch.from_numpy(v) for k, v in targets.items()}
    target["mask"] = torch.ones(3, 12, dtype=torch.bool)

    def loss(t: dict[str, torch.Tensor]) -> torch.Tensor:
        return seq_loss(out, t, rollout=False, aux_weight=0.5, curve_weights=(1.0, 0.5),
                        curve_position=1, label_end=6)  # fmt: skip

    before = loss(target)
    # labels of windows that end after column 6 (e.g. data after the validation origin)
    changed = dict(target)
    late = target["curve_end"] > 6
    changed["curve_purchases"] = torch.where(late, 1e6, target["curve_purchases"])
    assert float(loss(changed).detach()) == pytest.approx(float(before.detach()))
    early = dict(target)
    early["curve_purchases"] = torch.where(~late, 1e6, target["curve_purchases"])
    assert float(loss(early).detach()) > float(before.detach()) + 1.0
    # the curve's losses move its steps, not the own horizon's head
    out["horizon_count"].requires_grad_(True)
    only_curve = loss(target) - seq_loss(out, target, rollout=False, aux_weight=0.5)
    only_curve.backward()
    assert out["horizon_count"].grad is None or float(out["horizon_count"].grad.abs().sum()) == 0
    assert float(out[CURVE_HEAD].grad.abs().sum()) > 0  # type: ignore[union-attr]


def test_curve_means_start_the_steps_at_the_label_ratios() -> None:
    purchases = np.ones((4, 20))
    targets = origin_targets(_batch(purchases), 4, (2, 8))
    train = np.zeros((4, 20), dtype=bool)
    train[:, :8] = True
    means, steps = curve_means(targets, train, 1)
    np.testing.assert_allclose(means, [2.0, 4.0, 8.0])
    np.testing.assert_allclose(steps, [np.log(2.0), np.log(2.0)], rtol=1e-6)
    logs = curve_log_means(torch.tensor([np.log(4.0)]), torch.from_numpy(
        np.log(np.expm1(steps))[None]), 1)  # fmt: skip
    np.testing.assert_allclose(np.exp(logs.numpy()[0]), means, rtol=1e-6)


def test_offsets_start_the_curve_at_btyd_curve() -> None:
    steps = np.array([0.7, 0.4])
    btyd = np.array([[0.5, 2.0, 3.5], [0.1, 0.1, 0.1], [0.0, 1.0, 2.0]])  # 3rd: unknown
    offsets = curve_offsets(btyd, 1, steps)
    bias = torch.from_numpy(np.log(np.expm1(steps)))
    logs = curve_log_means(torch.log(torch.tensor([2.0, 0.1, 1.0])),
                           bias + torch.from_numpy(offsets).double(), 1)  # fmt: skip
    np.testing.assert_allclose(np.exp(logs[0].numpy()), btyd[0], rtol=1e-5)
    # a flat BTYD curve gets the smallest step; an unknown customer the network's own
    np.testing.assert_allclose(np.exp(logs[1].numpy()), 0.1 * np.exp([-1e-3, 0, 1e-3]),
                               rtol=1e-4)  # fmt: skip
    assert (offsets[2] == 0).all()


def test_curve_columns_are_monotone_and_match_an_independent_integral() -> None:
    forecast = {
        "predicted_value": np.array([120.0, 10.0]),
        "predicted_purchases": np.array([3.0, 0.2]),
        "p_active": np.array([0.9, 0.15]),
    }
    ratios = np.array([[0.4, 1.0, 1.6, 2.5], [0.2, 1.0, 1.0, 1.1]])
    days = [30.0, 90.0, 180.0, 365.25]
    spans = parse_horizons("7d,30d,60d,90d,180d,1y")
    table = curve_columns(forecast, ratios, days, spans, discount_rate=0.2)
    for name in ("purchases", "value", "p_active", "discounted_value"):
        curve = np.stack([table[f"{name}_{h}"] for h in spans], 1)
        assert (np.diff(curve, axis=1) >= -1e-12).all(), name
    np.testing.assert_allclose(table["value_90d"], forecast["predicted_value"])
    np.testing.assert_allclose(table["purchases_90d"], forecast["predicted_purchases"])
    np.testing.assert_allclose(table["p_active_90d"], forecast["p_active"])
    np.testing.assert_allclose(table["value_60d"], forecast["predicted_value"] * [0.7, 0.6])
    # discounting: a fine Riemann sum of exp(-d u) dV(u) over the piecewise-linear curve
    grid = np.linspace(0.0, 365.25, 200_001)
    knots_days = np.array([0.0, *days])
    for row in range(2):
        value = forecast["predicted_value"][row] * np.interp(
            grid, knots_days, np.concatenate([[0.0], ratios[row]])
        )
        mid = 0.5 * (grid[1:] + grid[:-1])
        reference = (np.exp(-0.2 * mid / 365.25) * np.diff(value)).sum()
        assert table["discounted_value_1y"][row] == pytest.approx(reference, rel=1e-6)
    assert (table["discounted_value_1y"] < table["value_1y"]).all()
    flat = curve_columns(forecast, ratios, days, spans, discount_rate=0.0)
    np.testing.assert_allclose(flat["discounted_value_180d"], flat["value_180d"])


def test_the_curve_leaves_the_rest_of_the_network_as_without_it() -> None:
    def build(n_curve: int) -> tuple[SeqNetwork, float]:
        torch.manual_seed(5)
        net = SeqNetwork(2, len(CONTEXT_NAMES), 0, [], conv_filters=4, lstm_hidden=4,
                         n_curve=n_curve, curve_position=0)  # fmt: skip
        return net, torch.rand(1).item()  # the generator's next draw (a refit's start)

    (plain, after_plain), (curved, after_curved) = build(0), build(2)
    for name, value in plain.state_dict().items():
        torch.testing.assert_close(curved.state_dict()[name], value)
    assert after_curved == after_plain
    steps = torch.randn(8, 6, 2 + len(CONTEXT_NAMES))
    out = curved.forward_heads(curved.encode(steps), steps[..., 2:], torch.zeros(8, 0))
    out[CURVE_HEAD].sum().backward()  # the curve's loss reaches its own head only
    assert all(p.grad is None for n, p in curved.named_parameters() if CURVE_HEAD not in n)
