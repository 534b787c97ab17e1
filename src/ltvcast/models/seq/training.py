"""Training of the sequence network at every period of the history, and its calibration.

Every period ``t`` of a customer's history is an origin: in direct mode the network is
trained to give the ZILN distribution of spend and the Poisson mean of purchases in
``(t, t + horizon]``, with the next period's spend and purchases as an auxiliary task, and
with a curve (:mod:`~ltvcast.models.seq.curve`) the Poisson mean of purchases in
``(t, t + h]`` for each of its other horizons ``h``, masked where that window ends after the
labels training may read; in rollout mode it learns the next period only.
:func:`split_origins` holds out the latest origins for early stopping (time-ordered), or a
fifth of the customers when the history is too short for that; :func:`train_network` runs
Adam with early stopping on them.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ltvcast.exceptions import InsufficientDataError
from ltvcast.features.sequence import LOG_SPEND, PURCHASES, SequenceBatch
from ltvcast.models.seq.forward import forward_all
from ltvcast.models.seq.inputs import NetworkInputs, channel, left_align, spend_from_log
from ltvcast.models.seq.loss import (
    inverse_softplus,
    negbin_nll,
    poisson_nll,
    ziln_mean,
    ziln_nll,
    ziln_params,
)
from ltvcast.models.seq.network import CURVE_HEAD, SeqNetwork, curve_log_means

#: Customers per forward pass when scoring validation origins.
_EVAL_ROWS = 4096


@dataclass(frozen=True)
class TrainingSettings:
    """One training run: Adam with early stopping.

    Attributes
    ----------
    epochs, batch_size, learning_rate, patience
        Adam settings; at most ``epochs`` epochs, stopping ``patience`` epochs after the
        best validation loss.
    customers_per_epoch
        Customers drawn afresh for each epoch, and the size of the validation sample
        (``None``: all).
    rollout
        Whether only the next-period heads are trained (rollout mode).
    aux_weight
        Weight of the next-period loss in direct mode.
    random_state
        Seed of the validation sample and the batch order.
    curve_weights
        Weight of each other horizon's purchase loss (the curve's, in its order).
    label_end
        The last column (right-aligned) whose labels the curve's losses may read: a window
        that ends after it is masked.
    """

    epochs: int
    batch_size: int
    learning_rate: float
    patience: int
    customers_per_epoch: int | None
    rollout: bool
    aux_weight: float
    random_state: int
    curve_weights: tuple[float, ...] = ()
    label_end: int = 0


@dataclass(frozen=True)
class Origins:
    """Targets and origin masks left-aligned to the LSTM steps (block ends).

    Attributes
    ----------
    targets
        :func:`origin_targets`, ``(customers, steps)`` each.
    train, valid
        bool ``(customers, steps)``: training and validation origins.
    rows, valid_rows
        Customers with a training origin; the (sampled) customers with a validation origin.
    """

    targets: dict[str, np.ndarray]
    train: np.ndarray
    valid: np.ndarray
    rows: np.ndarray
    valid_rows: np.ndarray

    def tensors(
        self, idx: np.ndarray, mask: np.ndarray, device: torch.device
    ) -> dict[str, torch.Tensor]:
        """Targets of rows ``idx`` with ``mask`` (``train`` or ``valid``) as ``"mask"``."""
        out = {k: torch.from_numpy(v[idx]).to(device) for k, v in self.targets.items()}
        out["mask"] = torch.from_numpy(mask[idx]).to(device)
        return out


def origin_targets(
    batch: SequenceBatch, h: int, curve: tuple[int, ...] = ()
) -> dict[str, np.ndarray]:
    """Labels of the origin at the end of every column (right-aligned, zero where undefined).

    ``value``/``purchases``: spend and purchase days of the next ``h`` columns;
    ``next_value``: the next column's spend; ``next_extra``: its purchase days beyond one;
    with ``curve`` (the other horizons in columns), ``curve_purchases`` ``(customers,
    columns, len(curve))``: purchase days of the next ``curve[k]`` columns, and
    ``curve_end``: the column where that window ends (masked when later than the labels the
    training may read: :attr:`TrainingSettings.label_end`).
    """
    spend = spend_from_log(channel(batch, LOG_SPEND))
    count = channel(batch, PURCHASES).astype(np.float64)
    n, t = spend.shape

    def ahead(x: np.ndarray, h: int = h) -> np.ndarray:
        cum = np.concatenate([np.zeros((n, 1)), np.cumsum(x, axis=1)], axis=1)
        out = np.zeros((n, t))
        if t - h > 0:
            out[:, : t - h] = cum[:, h + 1 :] - cum[:, 1 : t - h + 1]
        return out

    def shifted(x: np.ndarray) -> np.ndarray:
        out = np.zeros((n, t))
        out[:, :-1] = x[:, 1:]
        return out

    targets = {
        "value": ahead(spend),
        "purchases": ahead(count),
        "next_value": shifted(spend),
        "next_extra": np.clip(shifted(count) - 1.0, 0.0, None),
    }
    if curve:
        targets["curve_purchases"] = np.stack([ahead(count, k) for k in curve], -1)
        ends = np.arange(t)[:, None] + np.asarray(curve)[None, :]
        targets["curve_end"] = np.broadcast_to(ends, (n, t, len(curve)))
    return {k: v.astype(np.float32) for k, v in targets.items()}


def split_origins(
    mask: np.ndarray,
    *,
    rollout: bool,
    horizon_periods: int,
    stride: int,
    period_days: int,
    random_state: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Boolean ``(customers, periods)`` masks of training and validation origins.

    Direct mode validates on the latest origin with a full horizon of labels and trains on
    the origins whose horizon ends by then; rollout mode validates on the last periods.
    When that leaves too few training origins, a random fifth of the customers validates.

    Raises
    ------
    InsufficientDataError
        When no training or no validation origin remains.
    """
    t, h, s = mask.shape[1], horizon_periods, stride
    cols = np.arange(t)[None, :]
    if not rollout:
        last_origin = t - 1 - s * math.ceil(h / s)  # origins end a block of ``s`` periods
        mask = mask & ((t - 1 - cols) % s == 0)
        valid = mask & (cols == last_origin)
        train = mask & (cols <= last_origin - h)
        usable = mask & (cols <= last_origin)
    else:
        n_valid = max(1, min(h, (t - 1) // 4))
        valid = mask & (cols >= t - 1 - n_valid) & (cols <= t - 2)
        train = mask & (cols < t - 1 - n_valid)
        usable = mask & (cols <= t - 2)
    if train.sum() < 0.2 * valid.sum() or not train.any():
        held = np.random.default_rng(random_state).random(len(mask)) < 0.2
        train = usable & ~held[:, None] & ~valid
        valid = valid & held[:, None]
    if not train.any() or not valid.any():
        raise InsufficientDataError(
            f"seq: too little history to train ({mask.sum()} customer-periods of "
            f"{period_days} days for a {horizon_periods}-period horizon)"
        )
    return train, valid


def base_rates(
    targets: dict[str, np.ndarray], train: np.ndarray, prefix: str = "horizon"
) -> tuple[float, float, float, float]:
    """Initial logits of the ``prefix`` heads from the training origins: logit of the buying
    rate, mean and spread (sigma) of the positive log spend, log mean purchases."""
    value_key, count_key = (
        ("value", "purchases") if prefix == "horizon" else ("next_value", "next_extra")
    )
    values = targets[value_key][train]
    positive = values[values > 0]
    rate = float(np.clip(positive.size / max(values.size, 1), 1e-4, 1 - 1e-4))
    logs = np.log(positive) if positive.size else np.zeros(1)
    counts = targets[count_key][train]
    if prefix == "next":
        counts = counts[values > 0] if (values > 0).any() else counts
    return (
        math.log(rate / (1 - rate)),
        float(logs.mean()),
        max(float(logs.std()), 0.1),
        math.log(max(float(counts.mean()), 1e-4)),
    )


def curve_means(
    targets: dict[str, np.ndarray], train: np.ndarray, position: int
) -> tuple[np.ndarray, np.ndarray]:
    """Mean purchases at each horizon of the curve (the own one at ``position``) over the
    ``train`` origins whose window for it is labelled, and the steps (``softplus`` outputs of
    :func:`~ltvcast.models.seq.network.curve_log_means`) that give the ratios of these
    means: ``|log|`` of each other horizon's mean over its neighbour's towards ``position``,
    at least ``1e-3``."""
    t = train.shape[1]
    means = [float(targets["purchases"][train].mean())]
    for k in range(targets["curve_purchases"].shape[-1]):
        known = train & (targets["curve_end"][..., k] <= t - 1)
        means.append(float(targets["curve_purchases"][..., k][known].mean()) if known.any() else 0)
    others = np.clip(np.asarray(means[1:]), 1e-4, None)
    order = np.insert(others, position, max(means[0], 1e-4))
    neighbour = np.concatenate([order[1 : position + 1], order[position:-1]])
    steps = np.clip(np.abs(np.log(others / neighbour)), 1e-3, None)
    return order, steps


def init_heads(
    net: SeqNetwork,
    targets: dict[str, np.ndarray],
    train: np.ndarray,
    curve_steps: np.ndarray | None = None,
) -> None:
    """Start each head at the training base rates (fast, stable convergence), the curve's
    at ``curve_steps`` (:func:`curve_means`)."""
    with torch.no_grad():
        if net.n_curve and curve_steps is not None:
            net.head(CURVE_HEAD).weight.mul_(0.1)
            net.head(CURVE_HEAD).bias.copy_(inverse_softplus(torch.from_numpy(curve_steps)))
        for prefix in ("horizon", "next"):
            logit_rate, mean_log, sigma, log_count = base_rates(targets, train, prefix)
            net.head(f"{prefix}_value").weight.mul_(0.1)
            net.head(f"{prefix}_value").bias.copy_(
                torch.tensor(
                    [
                        logit_rate,
                        mean_log,
                        float(inverse_softplus(torch.tensor(sigma, dtype=torch.float64))),
                    ]
                )
            )
            net.head(f"{prefix}_count").bias.fill_(log_count)


def seq_loss(
    out: dict[str, torch.Tensor],
    target: dict[str, torch.Tensor],
    *,
    rollout: bool,
    aux_weight: float,
    curve_weights: tuple[float, ...] = (),
    curve_position: int = 0,
    label_end: int = 0,
    log_dispersion: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean loss over the origins in ``target["mask"]``.

    The next period's ZILN loss, plus the Poisson loss of its extra purchases where it has
    one; in direct mode, the horizon's ZILN and Poisson losses plus ``aux_weight`` times it,
    plus with a curve each other horizon's Poisson loss times its ``curve_weights`` where its
    window ends by column ``label_end``. The curve's losses move its steps, not the own
    horizon's head (its log mean is held fixed in them), which stays primary. With
    ``log_dispersion`` (the horizon's, then the curve's) the horizon and curve counts are
    negative binomial.
    """

    def count_nll(log_mean: torch.Tensor, count: torch.Tensor, k: slice) -> torch.Tensor:
        if log_dispersion is None:
            return poisson_nll(log_mean, count)
        return negbin_nll(log_mean, count, log_dispersion[k].squeeze(-1))

    weight = target["mask"].float()
    bought = weight * (target["next_value"] > 0).float()
    next_loss = (
        ziln_nll(out["next_value"], target["next_value"]) * weight
        + poisson_nll(out["next_count"][..., 0], target["next_extra"]) * bought
    )
    if rollout:
        total = next_loss
    else:
        horizon_loss = ziln_nll(out["horizon_value"], target["value"]) + count_nll(
            out["horizon_count"][..., 0], target["purchases"], slice(0, 1)
        )
        total = horizon_loss * weight + aux_weight * next_loss
        if CURVE_HEAD in out and curve_weights:
            own = out["horizon_count"][..., 0].detach()
            logs = curve_log_means(own, out[CURVE_HEAD], curve_position)
            others = torch.cat([logs[..., :curve_position], logs[..., curve_position + 1 :]], -1)
            known = (target["curve_end"] <= label_end).float() * weight[..., None]
            scale = torch.tensor(curve_weights, dtype=others.dtype, device=others.device)
            nll = count_nll(others, target["curve_purchases"], slice(1, None))
            total = total + (nll * known * scale).sum(-1)
    return total.sum() / weight.sum().clamp_min(1.0)


def step_aligned(array: np.ndarray, lengths: np.ndarray, stride: int) -> np.ndarray:
    """Right-aligned ``(customers, periods, ...)`` ``array`` at the LSTM steps' block ends,
    left-aligned (the layout of :class:`Origins`)."""
    return left_align(array, lengths)[:, stride - 1 :: stride]


def train_network(
    net: SeqNetwork,
    inputs: NetworkInputs,
    targets: dict[str, np.ndarray],
    train: np.ndarray,
    valid: np.ndarray | None,
    settings: TrainingSettings,
) -> tuple[dict[str, Any], Origins]:
    """Adam on ``train`` origins; early stopping on ``valid`` (all epochs without).

    ``targets``, ``train`` and ``valid`` are right-aligned ``(customers, periods)`` arrays.
    The network ends with the weights of its best epoch, in eval mode.

    Returns
    -------
    (dict, Origins)
        The run's record (best epoch, epochs run, validation losses, origin counts) and the
        aligned origins it used.
    """
    lengths, stride = inputs.lengths, net.stride
    valid_l = step_aligned(np.zeros_like(train) if valid is None else valid, lengths, stride)
    train_l = step_aligned(train, lengths, stride)
    rows = np.flatnonzero(train_l.any(axis=1))
    valid_rows = np.flatnonzero(valid_l.any(axis=1))
    generator = np.random.default_rng(settings.random_state)
    cap = settings.customers_per_epoch or len(rows)
    if len(valid_rows) > cap:
        valid_rows = np.sort(generator.choice(valid_rows, cap, replace=False))
    origins = Origins(
        targets={k: step_aligned(v, lengths, stride) for k, v in targets.items()},
        train=train_l,
        valid=valid_l,
        rows=rows,
        valid_rows=valid_rows,
    )

    def loss(out: dict[str, torch.Tensor], target: dict[str, torch.Tensor]) -> torch.Tensor:
        return seq_loss(
            out,
            target,
            rollout=settings.rollout,
            aux_weight=settings.aux_weight,
            curve_weights=settings.curve_weights,
            curve_position=net.curve_position,
            label_end=settings.label_end,
            log_dispersion=net.log_dispersion,
        )

    device = inputs.device
    optimiser = torch.optim.Adam(net.parameters(), lr=settings.learning_rate)
    curve = list(net.head(CURVE_HEAD).parameters()) if net.n_curve else []
    rest = [p for p in net.parameters() if all(p is not c for c in curve)]
    groups = [g for g in (rest, curve) if g]
    best, best_loss, best_epoch = copy.deepcopy(net.state_dict()), math.inf, 0
    history: list[float] = []
    for epoch in range(1, settings.epochs + 1):
        net.train()
        drawn = generator.permutation(rows)[:cap]
        for idx in np.array_split(drawn, max(1, len(drawn) // settings.batch_size)):
            batch_loss = loss(forward_all(net, inputs, idx), origins.tensors(idx, train_l, device))
            optimiser.zero_grad()
            batch_loss.backward()
            for group in groups:  # the curve's steps apart: they do not change the rest's
                torch.nn.utils.clip_grad_norm_(group, 5.0)
            optimiser.step()
        net.eval()
        if valid is None:
            best, best_epoch = copy.deepcopy(net.state_dict()), epoch
            continue
        with torch.no_grad():
            total, weight = 0.0, 0.0
            for idx in np.array_split(valid_rows, max(1, len(valid_rows) // _EVAL_ROWS)):
                target = origins.tensors(idx, valid_l, device)
                n = float(target["mask"].sum())
                total += float(loss(forward_all(net, inputs, idx), target)) * n
                weight += n
        val_loss = total / max(weight, 1.0)
        history.append(round(val_loss, 6))
        if val_loss < best_loss - 1e-5:
            best, best_loss, best_epoch = copy.deepcopy(net.state_dict()), val_loss, epoch
        elif epoch - best_epoch >= settings.patience:
            break
    net.load_state_dict(best)
    net.eval()
    record = {
        "best_epoch": best_epoch,
        "epochs_run": len(history),
        "validation_loss": history,
        "train_origins": int(train.sum()),
        "validation_origins": 0 if valid is None else int(valid.sum()),
    }
    return record, origins


def validation_values(
    net: SeqNetwork, inputs: NetworkInputs, origins: Origins
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Predicted horizon spend (ZILN mean) and purchases (Poisson mean, at least P(buy), as
    in :func:`~ltvcast.models.seq.forward.direct_forecast`) and actual spend (negative as
    0) at the validation origins, float64, in the order of
    ``origins.valid[origins.valid_rows]``."""
    device = inputs.device
    value, purchases, actual = [], [], []
    with torch.no_grad():
        for idx in np.array_split(
            origins.valid_rows, max(1, len(origins.valid_rows) // _EVAL_ROWS)
        ):
            at = origins.valid[idx]
            keep = torch.from_numpy(at).to(device)
            out = forward_all(net, inputs, idx)
            p, _, _ = ziln_params(out["horizon_value"])
            count = torch.maximum(torch.exp(out["horizon_count"][..., 0]), p)
            value.append(ziln_mean(out["horizon_value"])[keep].double().cpu().numpy())
            purchases.append(count[keep].double().cpu().numpy())
            actual.append(np.clip(origins.targets["value"][idx][at], 0.0, None))
    return (
        np.concatenate(value),
        np.concatenate(purchases),
        np.concatenate(actual).astype(np.float64),
    )


def direct_value_scale(net: SeqNetwork, inputs: NetworkInputs, origins: Origins) -> float:
    """Actual / predicted horizon spend on the validation origins (1 when either is 0).

    Scaling the forecast values by it matches their level to the latest labels the network
    did not learn from.
    """
    value, _, spend = validation_values(net, inputs, origins)
    predicted, actual = float(value.sum()), float(spend.sum())
    return actual / predicted if predicted > 0 and actual > 0 else 1.0
