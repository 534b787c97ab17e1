"""ZILN loss, mean and quantiles against scipy's lognormal; Poisson NLL and inverse softplus."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import special, stats

from ltvcast.models.seq.loss import (
    inverse_softplus,
    negbin_nll,
    poisson_nll,
    ziln_loss,
    ziln_mean,
    ziln_nll,
    ziln_params,
    ziln_quantiles,
)

LOGITS = torch.tensor(
    [[0.3, 1.2, 0.4], [-1.5, 3.0, -0.2], [2.0, -0.5, 1.5], [0.0, 0.0, 0.0]], dtype=torch.float64
)


def _reference(logits: torch.Tensor) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    raw = logits.numpy()
    p = 1.0 / (1.0 + np.exp(-raw[:, 0]))
    sigma = np.log1p(np.exp(raw[:, 2]))
    return p, raw[:, 1], sigma


def test_nll_is_minus_log_likelihood() -> None:
    target = torch.tensor([0.0, 12.5, 0.7, 1.0], dtype=torch.float64)
    p, mu, sigma = _reference(LOGITS)
    y = target.numpy()
    density = stats.lognorm.pdf(np.where(y > 0, y, 1.0), s=sigma, scale=np.exp(mu))
    expected = -np.log(np.where(y > 0, p * density, 1.0 - p))
    np.testing.assert_allclose(ziln_nll(LOGITS, target).numpy(), expected, rtol=1e-10)
    mask = torch.tensor([True, False, True, True])
    assert float(ziln_loss(LOGITS, target, mask)) == pytest.approx(expected[[0, 2, 3]].mean())


def test_params_and_mean() -> None:
    p, mu, sigma = _reference(LOGITS)
    got = ziln_params(LOGITS)
    np.testing.assert_allclose(got[0].numpy(), p)
    np.testing.assert_allclose(got[2].numpy(), sigma)
    expected = p * stats.lognorm.mean(s=sigma, scale=np.exp(mu))
    np.testing.assert_allclose(ziln_mean(LOGITS).numpy(), expected, rtol=1e-10)


def test_mixture_quantiles() -> None:
    p, mu, sigma = _reference(LOGITS)
    got = ziln_quantiles(LOGITS, (0.1, 0.5, 0.9)).numpy()
    for k, q in enumerate((0.1, 0.5, 0.9)):
        level = (q - (1.0 - p)) / p
        expected = np.where(
            q <= 1.0 - p,
            0.0,
            stats.lognorm.ppf(np.clip(level, 1e-12, 1.0), s=sigma, scale=np.exp(mu)),
        )
        np.testing.assert_allclose(got[:, k], expected, rtol=1e-8)


def test_loss_gradient_finite_for_zero_targets() -> None:
    logits = LOGITS.clone().requires_grad_(True)
    ziln_loss(logits, torch.zeros(4, dtype=torch.float64)).backward()
    assert logits.grad is not None and torch.isfinite(logits.grad).all()


def test_poisson_nll_is_minus_log_pmf_without_the_factorial() -> None:
    rate = np.array([0.3, 1.0, 2.5, 7.0, 0.01])
    count = np.array([0.0, 1.0, 4.0, 3.0, 2.0])
    got = poisson_nll(torch.from_numpy(np.log(rate)), torch.from_numpy(count)).numpy()
    expected = -stats.poisson.logpmf(count, rate) - special.gammaln(count + 1.0)
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_inverse_softplus_undoes_softplus() -> None:
    x = np.array([1e-3, 0.1, 0.7, 2.0, 15.0])
    got = inverse_softplus(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, np.log(np.expm1(x)), rtol=1e-12)
    np.testing.assert_allclose(np.logaddexp(0.0, got), x, rtol=1e-12)  # softplus(z) = x


def test_negbin_nll_is_minus_scipys_log_pmf_without_the_factorial() -> None:
    mean = np.array([0.2, 1.5, 4.0, 30.0])
    count = np.array([0.0, 2.0, 1.0, 45.0])
    size = np.array([0.5, 2.0, 10.0, 1.0])
    got = negbin_nll(
        torch.from_numpy(np.log(mean)), torch.from_numpy(count), torch.from_numpy(np.log(size))
    ).numpy()
    expected = -stats.nbinom.logpmf(count, size, size / (size + mean)) - special.gammaln(count + 1)
    np.testing.assert_allclose(got, expected, rtol=1e-10)
    # a large size is nearly the Poisson (within m^2 / r)
    huge = negbin_nll(torch.from_numpy(np.log(mean)), torch.from_numpy(count),
                      torch.full((4,), 14.0, dtype=torch.float64))  # fmt: skip
    poisson = poisson_nll(torch.from_numpy(np.log(mean)), torch.from_numpy(count))
    np.testing.assert_allclose(huge.numpy(), poisson.numpy(), atol=1e-3)
