"""Losses of the sequence model: the zero-inflated lognormal (ZILN) and Poisson counts.

Wang, Liu & Miao (2019), "A Deep Probabilistic Model for Customer Lifetime Value Prediction"
(google/lifetime_value). A network emits three numbers per customer: a logit for
``p = P(value > 0)`` and the location ``mu`` and scale ``sigma = softplus(.)`` of a lognormal
for the positive part. The density is ``(1 - p)`` at zero and ``p * LogNormal(mu, sigma)``
above it, so

- negative log-likelihood: ``-log(1 - p)`` for ``y = 0`` and
  ``-log p - log LogNormal(y; mu, sigma)`` for ``y > 0`` (eq. 2 of the paper);
- mean: ``p * exp(mu + sigma^2 / 2)``;
- quantile ``q``: ``0`` when ``q <= 1 - p``, else the lognormal quantile at ``(q - (1 - p)) / p``.

Purchase counts get a Poisson likelihood on a log-rate head (:func:`poisson_nll`), or a
negative binomial one with the same mean and a learned dispersion (:func:`negbin_nll`).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

#: Smallest lognormal scale, for numerical stability (as in google/lifetime_value).
MIN_SIGMA = 1e-3


def ziln_params(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Split ``(..., 3)`` logits into ``p``, ``mu`` and ``sigma`` (each ``(...)``)."""
    p = torch.sigmoid(logits[..., 0])
    mu = logits[..., 1]
    sigma = F.softplus(logits[..., 2]).clamp_min(MIN_SIGMA)
    return p, mu, sigma


def ziln_nll(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-sample ZILN negative log-likelihood of ``target`` (``>= 0``), shape of ``target``.

    Targets below zero (net returns) count as zero.
    """
    positive = target > 0
    classification = F.binary_cross_entropy_with_logits(
        logits[..., 0], positive.to(logits.dtype), reduction="none"
    )
    _, mu, sigma = ziln_params(logits)
    safe = torch.where(positive, target, torch.ones_like(target))
    log_y = torch.log(safe)
    log_pdf = (
        -log_y
        - torch.log(sigma)
        - 0.5 * math.log(2.0 * math.pi)
        - 0.5 * ((log_y - mu) / sigma) ** 2
    )
    return classification - torch.where(positive, log_pdf, torch.zeros_like(log_pdf))


def ziln_loss(
    logits: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Mean ZILN negative log-likelihood over the entries where ``mask`` is true."""
    nll = ziln_nll(logits, target)
    if mask is None:
        return nll.mean()
    weight = mask.to(nll.dtype)
    return (nll * weight).sum() / weight.sum().clamp_min(1.0)


def ziln_mean(logits: torch.Tensor) -> torch.Tensor:
    """Expected value ``p * exp(mu + sigma^2 / 2)``."""
    p, mu, sigma = ziln_params(logits)
    return p * torch.exp(mu + 0.5 * sigma**2)


def ziln_quantiles(logits: torch.Tensor, quantiles: tuple[float, ...] = (0.1, 0.9)) -> torch.Tensor:
    """Quantiles of the zero-inflated mixture, shape ``(..., len(quantiles))``."""
    p, mu, sigma = ziln_params(logits)
    out = []
    for q in quantiles:
        level = ((q - (1.0 - p)) / p.clamp_min(1e-12)).clamp(1e-12, 1.0 - 1e-7)
        value = torch.exp(mu + sigma * torch.special.ndtri(level))
        out.append(torch.where(q <= 1.0 - p, torch.zeros_like(value), value))
    return torch.stack(out, dim=-1)


def poisson_nll(log_rate: torch.Tensor, count: torch.Tensor) -> torch.Tensor:
    """Per-sample Poisson negative log-likelihood of ``count`` given ``log(rate)``.

    The constant ``log(count!)`` is left out: ``rate - count * log(rate)``.
    """
    return torch.exp(log_rate) - count * log_rate


def negbin_nll(log_mean: torch.Tensor, count: torch.Tensor, log_r: torch.Tensor) -> torch.Tensor:
    """Per-sample negative binomial negative log-likelihood of ``count`` with mean
    ``exp(log_mean)`` and size ``r = exp(log_r)`` (variance ``m + m^2 / r``; Poisson as
    ``r -> inf``), without the constant ``log(count!)``::

        -lgamma(y + r) + lgamma(r) - r log(r / (r + m)) - y log(m / (r + m))
    """
    r = torch.exp(log_r)
    log_total = torch.logaddexp(log_r, log_mean)  # log(r + m)
    return (
        torch.lgamma(r)
        - torch.lgamma(count + r)
        - r * (log_r - log_total)
        - count * (log_mean - log_total)
    )


def inverse_softplus(x: torch.Tensor) -> torch.Tensor:
    """The ``z`` with ``softplus(z) = x`` (``x > 0``): ``x + log(1 - exp(-x))``.

    Turns a lognormal scale into the raw logit that :func:`ziln_params` maps back to it.
    """
    return x + torch.log(-torch.expm1(-x))
