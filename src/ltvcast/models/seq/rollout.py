"""Rollout mode: the next-period heads rolled forward over the horizon by simulation.

Valendin, Reutterer, Platzer & Kalcher (2022), "Customer base analysis with recurrent neural
networks": ``n_samples`` paths per customer feed sampled purchases and spend back as inputs.
The expected value and purchases are Rao-Blackwellised (each step adds the expected spend of
the next period given the path, not the sampled one); ``p_active`` is exact given the model
(one extra path with no purchase: ``1 - prod(1 - p_t)``); the quantiles are those of a
zero-inflated lognormal with that ``p_active`` and mean (:func:`path_quantiles`). Behaviour
events are not simulated, so a rollout model uses transaction channels only.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import torch

from ltvcast.data.schemas import CustomerData
from ltvcast.features.sequence import (
    CONTEXT_NAMES,
    LOG_SPEND,
    PURCHASES,
    SequenceBatch,
    calendar_features,
)
from ltvcast.models.seq.forward import FORECAST_COLUMNS, chunks, last_outputs
from ltvcast.models.seq.inputs import (
    CALENDAR_NAMES,
    NetworkInputs,
    SeqInputs,
    channel,
    spend_from_log,
)
from ltvcast.models.seq.loss import MIN_SIGMA, inverse_softplus, ziln_params, ziln_quantiles
from ltvcast.models.seq.network import SeqNetwork

#: The running context a path updates: tenure, purchases to date, recency and mean spend.
_RUNNING = ("log_tenure", "log_purchases_to_date", "log_recency", "log_mean_spend")
#: The step features the simulation builds, in this order (then put in the model's order).
_SIMULATED = (PURCHASES, LOG_SPEND, *_RUNNING, *CALENDAR_NAMES)


def simulate(
    net: SeqNetwork,
    inputs: SeqInputs,
    batch: SequenceBatch,
    prepared: NetworkInputs,
    periods: int,
    *,
    n_samples: int,
    random_state: int,
) -> dict[str, np.ndarray]:
    """Forecast ``periods`` periods after ``batch`` by simulation, by ``FORECAST_COLUMNS``.

    ``prepared`` holds the network inputs of ``batch``; the values are not calibrated.
    """
    device = prepared.device
    generator = torch.Generator(device=device).manual_seed(random_state)
    lengths = prepared.lengths
    paths = n_samples + 1  # the last path never buys: P(no purchase) exactly
    chunk = max(1, 65536 // paths)
    calendar = torch.from_numpy(
        calendar_features(
            batch.period_ends[-1]
            - pd.Timedelta(days=1)
            + pd.to_timedelta(np.arange(periods) * inputs.grid.period_days, unit="D")
        ).astype(np.float32)
        * float(inputs.grid.calendar)
    ).to(device)
    order = [_SIMULATED.index(c) for c in inputs.columns]
    mean, std = (
        torch.as_tensor(a, dtype=torch.float32, device=device)
        for a in inputs.steps.arrays(inputs.columns)
    )
    running = [CONTEXT_NAMES.index(c) for c in _RUNNING]
    context_start = prepared.n_channels
    parts = []
    for idx in chunks(len(lengths), chunk):
        _, state, static = last_outputs(net, prepared, idx, with_state=True)
        assert state is not None
        h, c = state
        x = torch.from_numpy(prepared.steps[idx]).to(device)
        n = len(idx)
        k = net.kernel_size - 1
        pos = (
            torch.from_numpy(lengths[idx]).to(device)[:, None] - k + torch.arange(k, device=device)
        )
        window = torch.gather(x, 1, pos.clamp_min(0)[..., None].expand(-1, -1, x.shape[-1]))
        window = window * (pos >= 0)[..., None]
        last_ctx = torch.from_numpy(batch.context[idx, -1][:, running]).to(device)
        window, static = window.repeat_interleave(paths, 0), static.repeat_interleave(paths, 0)
        state = (h.repeat_interleave(paths, 1), c.repeat_interleave(paths, 1))
        tenure, to_date, recency, mean_spend = (
            torch.expm1(last_ctx).repeat_interleave(paths, 0).unbind(1)
        )
        spent = mean_spend * to_date.clamp_min(1.0)
        hidden = state[0][-1]
        last = torch.from_numpy(lengths[idx] - 1).to(device)
        context = x[torch.arange(n, device=device), last, context_start:].repeat_interleave(
            paths, 0
        )
        never = (torch.arange(n * paths, device=device) % paths) == paths - 1
        total = torch.zeros(n * paths, device=device)
        expected = torch.zeros_like(total)
        purchases = torch.zeros_like(total)
        no_buy = torch.ones_like(total)
        spread, weight = torch.zeros_like(total), torch.zeros_like(total)
        for s in range(periods):
            heads = net.forward_heads(hidden, context, static)
            p, mu, sigma = ziln_params(heads["next_value"])
            extra = torch.exp(heads["next_count"][:, 0])
            expected += p * torch.exp(mu + 0.5 * sigma**2)
            spread, weight = spread + p * sigma**2, weight + p
            purchases += p * (1.0 + extra)
            buy = (torch.rand(p.shape, generator=generator, device=device) < p) & ~never
            if n_samples and buy.any():
                z = torch.randn(p.shape, generator=generator, device=device)
                spend = torch.where(buy, torch.exp(mu + sigma * z), torch.zeros_like(mu))
                count = torch.where(
                    buy, 1.0 + torch.poisson(extra, generator=generator), torch.zeros_like(mu)
                )
            else:
                spend, count = torch.zeros_like(mu), torch.zeros_like(mu)
            no_buy = no_buy * torch.where(never, 1.0 - p, torch.ones_like(p))
            total = total + spend
            if s == periods - 1:
                break
            tenure, to_date, spent = tenure + 1.0, to_date + count, spent + spend
            mean_spend = spent / to_date.clamp_min(1.0)
            recency = torch.where(
                buy, torch.zeros_like(recency), torch.minimum(recency + 1.0, tenure)
            )
            features = torch.cat(
                [
                    torch.stack([torch.log1p(count), torch.log1p(spend)], 1),
                    torch.log1p(torch.stack([tenure, to_date, recency, mean_spend], 1)),
                    calendar[s + 1].expand(len(count), -1),
                ],
                1,
            )
            new = (features[:, order] - mean) / std
            window = torch.cat([window, new[:, None]], 1)
            hidden, state = net.step(window, state)
            window, context = window[:, 1:], new[:, context_start:]
        sampled = ~never
        value = expected[sampled].view(n, -1).mean(1)
        p_active = 1.0 - no_buy[never]
        prior = (spread / weight.clamp_min(1e-12))[sampled].view(n, -1).mean(1)
        q = path_quantiles(value, p_active, total[sampled].view(n, -1), prior)
        parts.append(
            torch.stack([value, purchases[sampled].view(n, -1).mean(1), p_active, *q.unbind(-1)], 1)
            .double()
            .cpu()
            .numpy()
        )
    return dict(zip(FORECAST_COLUMNS, np.concatenate(parts).T, strict=True))


@dataclasses.dataclass(frozen=True)
class ValidationRollout:
    """The rollout over the validation periods, simulated from their start.

    Attributes
    ----------
    origin, days
        Start of the validation periods and their length in days.
    customers
        The (sampled) validation customers.
    actual, simulated
        Their net spend (negative as 0) and simulated (uncalibrated) value over the periods.
    """

    origin: pd.Timestamp
    days: int
    customers: pd.Index
    actual: np.ndarray
    simulated: np.ndarray

    @property
    def scale(self) -> float:
        """Actual / simulated total (1 when either is 0): the rollout's value calibration."""
        actual, simulated = float(self.actual.sum()), float(self.simulated.sum())
        return actual / simulated if simulated > 0 and actual > 0 else 1.0


def validation_rollout(
    net: SeqNetwork,
    inputs: SeqInputs,
    data: CustomerData,
    as_of: pd.Timestamp,
    batch: SequenceBatch,
    valid: np.ndarray,
    *,
    customers_per_epoch: int | None,
    n_samples: int,
    random_state: int,
    device: torch.device,
) -> ValidationRollout:
    """Simulate the validation periods from their start, for the validation customers.

    One-step calibration misses how errors compound along a simulated path, so the rollout
    itself is run from the first validation origin over the validation periods (for at most
    ``customers_per_epoch`` of the validation customers). ``batch`` is the training batch and
    ``valid`` its validation origins.
    """
    periods = batch.n_periods - 1 - int(np.argmax(valid.any(axis=0)))
    days = periods * inputs.grid.period_days
    origin = pd.Timestamp(as_of) - pd.Timedelta(days=days)
    start = inputs.batch(data, origin)
    rows = batch.customers.get_indexer(start.customers)
    chosen = np.flatnonzero(valid[rows].any(axis=1))
    cap = customers_per_epoch or len(chosen)
    if len(chosen) > cap:
        generator = np.random.default_rng(random_state)
        chosen = np.sort(generator.choice(chosen, cap, replace=False))
    if not len(chosen):
        return ValidationRollout(origin, days, start.customers[:0], np.zeros(0), np.zeros(0))
    sub = dataclasses.replace(
        start,
        customers=start.customers[chosen],
        values=start.values[chosen],
        lengths=start.lengths[chosen],
        context=start.context[chosen],
    )
    log_spend = channel(batch, LOG_SPEND)[rows[chosen], -periods:]
    actual = np.clip(spend_from_log(log_spend), 0.0, None).sum(1)
    with torch.inference_mode():
        prepared = inputs.prepare(data, sub, device)
        forecast = simulate(
            net, inputs, sub, prepared, periods, n_samples=n_samples, random_state=random_state
        )
    return ValidationRollout(origin, days, sub.customers, actual, forecast["predicted_value"])


def path_quantiles(
    value: torch.Tensor, p_active: torch.Tensor, totals: torch.Tensor, prior: torch.Tensor
) -> torch.Tensor:
    """``value_p10``/``value_p90`` of a horizon total, ``(n, 2)``.

    The total is taken as zero-inflated lognormal with the exact ``p_active`` and mean
    ``value``; only its log-scale comes from the sampled path ``totals`` ``(n, paths)``: the
    variance of the positive totals' logs, shrunk towards ``prior`` (the model's per-period
    log-variance) with the weight of two paths. Empirical quantiles of a few paths straddle
    the jump from zero and are unstable between seeds.
    """
    positive = totals > 0
    k = positive.sum(1).to(totals.dtype)
    logs = torch.where(positive, torch.log(totals.clamp_min(1e-12)), torch.zeros_like(totals))
    mean = logs.sum(1) / k.clamp_min(1.0)
    squares = (torch.where(positive, logs - mean[:, None], torch.zeros_like(logs)) ** 2).sum(1)
    variance = (squares + 2.0 * prior) / ((k - 1.0).clamp_min(0.0) + 2.0)
    p = p_active.clamp(1e-6, 1.0 - 1e-6)
    sigma = variance.sqrt().clamp_min(MIN_SIGMA)
    mu = torch.log(value.clamp_min(1e-12) / p) - 0.5 * variance
    logits = torch.stack([torch.logit(p), mu, inverse_softplus(sigma)], -1)
    return ziln_quantiles(logits)
