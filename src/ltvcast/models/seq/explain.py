"""Integrated-gradients drivers of the sequence model's forecasts.

Sundararajan, Taly & Yan (2017), "Axiomatic Attribution for Deep Networks". The attributed
function is the ZILN mean of one head at each customer's last period; the baseline is the
same customer with no activity (raw zero channels), average context and average profile.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from ltvcast.features.sequence import SequenceBatch
from ltvcast.models.seq.forward import chunks, last_hybrid
from ltvcast.models.seq.inputs import NetworkInputs, SeqInputs
from ltvcast.models.seq.loss import ziln_mean
from ltvcast.models.seq.network import SeqNetwork

#: Riemann (midpoint) steps of the path integral.
IG_STEPS = 16


def explain_forecast(
    net: SeqNetwork,
    inputs: SeqInputs,
    batch: SequenceBatch,
    prepared: NetworkInputs,
    predicted: np.ndarray,
    *,
    head: str,
) -> pd.DataFrame:
    """Drivers of ``predicted`` (one value per customer of ``batch``), in value units.

    Attributions are summed per activity channel (over periods), context feature and
    profile column; the Riemann approximation gap is spread over them in proportion to
    their size, so each row sums to ``f(x) - f(baseline)``, and ``base_value`` is
    ``f(baseline)``. Every number is then scaled by ``predicted / f(x)`` so that rows sum to
    ``predicted``.

    Returns
    -------
    DataFrame
        Indexed by the customers of ``batch``: one column per step feature
        (:attr:`SeqInputs.columns`), numeric and categorical profile column, and
        ``base_value``.
    """
    mean, std = inputs.steps.arrays(inputs.channels)
    zero = torch.from_numpy((-mean / std).astype(np.float32))
    parts = [
        integrated_gradients(net, prepared, idx, zero, head=head)
        for idx in chunks(len(prepared.lengths), 1024)
    ]
    table = np.concatenate(parts)
    base, contributions = table[:, 0], table[:, 1:]
    scale = predicted / np.maximum(base + contributions.sum(1), 1e-12)
    base, contributions = base * scale, contributions * scale[:, None]
    out = pd.DataFrame(
        contributions,
        index=batch.customers,
        columns=[*inputs.columns, *inputs.numeric_columns, *inputs.categorical_columns],
    )
    out["base_value"] = base
    return out


def integrated_gradients(
    net: SeqNetwork,
    inputs: NetworkInputs,
    idx: np.ndarray,
    zero: torch.Tensor,
    *,
    head: str,
) -> np.ndarray:
    """``f(baseline)`` then the attributions of rows ``idx``, ``(len(idx), 1 + drivers)``.

    ``zero`` holds the scaled value of each activity channel at raw zero (the baseline);
    the drivers are the step features, the numeric profile inputs and the embeddings.
    """
    device = inputs.device
    n_inputs = inputs.n_channels
    x = torch.from_numpy(inputs.steps[idx]).to(device)
    length = torch.from_numpy(inputs.lengths[idx])
    valid = (torch.arange(x.shape[1])[None, :] < length[:, None]).to(device)[..., None]
    x0 = (
        torch.cat(
            [
                zero.to(device).expand(*x.shape[:2], n_inputs),
                torch.zeros_like(x[..., n_inputs:]),
            ],
            -1,
        )
        * valid
    )
    index = torch.from_numpy(idx).to(device)
    cat, numeric = inputs.categorical[index], inputs.numeric[index]
    embedded = [emb(cat[:, k]) for k, emb in enumerate(net.embeddings)]
    means = [net.embedding(k).weight.mean(0).expand_as(e) for k, e in enumerate(embedded)]
    s = torch.cat([*embedded, numeric], -1).detach()
    s0 = torch.cat([*means, torch.zeros_like(numeric)], -1).detach()
    rows, last = torch.arange(len(idx), device=device), (length - 1).to(device)
    block = rows, torch.div(last, net.stride, rounding_mode="floor")
    wide, offset = last_hybrid(inputs, idx)  # held fixed: BTYD's part is in the base value

    def value(xs: torch.Tensor, ss: torch.Tensor) -> torch.Tensor:
        hidden = net.encode(xs)[block]
        context = xs[rows, last, n_inputs:]
        return ziln_mean(net.forward_heads(hidden, context, ss, wide, offset)[head])

    grads_x, grads_s = torch.zeros_like(x), torch.zeros_like(s)
    for alpha in (np.arange(IG_STEPS) + 0.5) / IG_STEPS:
        xs = (x0 + float(alpha) * (x - x0)).requires_grad_(True)
        ss = (s0 + float(alpha) * (s - s0)).requires_grad_(True)
        gx, gs = torch.autograd.grad(value(xs, ss).sum(), (xs, ss))
        grads_x, grads_s = grads_x + gx, grads_s + gs
    with torch.no_grad():
        attr_x = ((x - x0) * grads_x / IG_STEPS).sum(1)
        attr_s = (s - s0) * grads_s / IG_STEPS
        widths = [e.shape[1] for e in embedded]
        emb_parts = list(torch.split(attr_s[:, : sum(widths)], widths, 1)) if widths else []
        attr = torch.cat(
            [attr_x, attr_s[:, sum(widths) :], *(p.sum(1, keepdim=True) for p in emb_parts)], 1
        )
        f_x, f_0 = value(x, s), value(x0, s0)
        gap = (f_x - f_0) - attr.sum(1)
        size = attr.abs()
        attr = attr + gap[:, None] * size / size.sum(1, keepdim=True).clamp_min(1e-12)
        attr[:, 0] += torch.where(size.sum(1) > 0, torch.zeros_like(gap), gap)
        return torch.cat([f_0[:, None], attr], 1).double().cpu().numpy()
