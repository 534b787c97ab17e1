"""BG/BB model of repeat transactions at discrete opportunities (Fader, Hardie & Shang 2010).

Fader, P. S., Hardie, B. G. S. & Shang, J. (2010). Customer-Base Analysis in a Discrete-Time
Noncontractual Setting. *Marketing Science* 29(6), 1086-1108.

Transactions can only happen at discrete opportunities (a yearly gala, a weekly delivery
slot). While alive a customer transacts at each opportunity with probability
``p ~ Beta(alpha, beta)``; at the start of each opportunity an alive customer dies with
probability ``theta ~ Beta(gamma, delta)``. Inputs per customer are ``frequency`` (x, repeat
transactions in the ``n`` opportunities after the first), ``recency`` (t_x, the opportunity
of the last of them, 0 when ``x = 0``) and ``n_periods`` (n).
"""

from __future__ import annotations

import numpy as np
from scipy.special import betaln, digamma, logsumexp

from ltvcast.exceptions import ConfigError
from ltvcast.models._population import PopulationModel
from ltvcast.models.bgnbd import (
    ArrayLike,
    FloatArray,
    as_float_array,
    check_rule,
    compress_rows,
    fit_weights,
    maximise_log_likelihood,
)

#: Parameter names, in the order of the paper.
PARAMS = ("alpha", "beta", "gamma", "delta")


class BetaGeoBetaBinomModel(PopulationModel):
    """BG/BB model fitted by maximum likelihood (FHS 2010, eq. 5).

    Parameters
    ----------
    penalizer_coef
        L2 penalty on the parameters added to the mean negative log-likelihood, as in
        ``lifetimes``; 0 gives the plain MLE.

    Attributes
    ----------
    params_ : dict
        ``alpha``, ``beta`` (transaction probability) and ``gamma``, ``delta`` (dropout).
    n_customers_ : float
        Total weight (customers) the model was fitted on.
    """

    _NAME = "BG/BB"
    PARAMS = PARAMS
    _FIT_CALL = "fit(frequency, recency, n_periods)"

    def fit(
        self,
        frequency: ArrayLike,
        recency: ArrayLike,
        n_periods: ArrayLike,
        weights: ArrayLike | None = None,
    ) -> BetaGeoBetaBinomModel:
        """Fit ``alpha, beta, gamma, delta`` by maximising the likelihood.

        ``weights`` count the customers of each row, so a recency/frequency table (as
        published) fits like the customers it summarises.

        Raises
        ------
        ConfigError
            For non-integer inputs or ones outside ``0 <= x <= t_x <= n`` (``t_x = 0`` when
            ``x = 0``).
        InsufficientDataError
            With fewer than 4 customers, no repeat transaction, or no convergence.
        """
        if self.penalizer_coef < 0:
            raise ConfigError(f"penalizer_coef must be >= 0; got {self.penalizer_coef!r}")
        x, tx, n = _check(frequency, recency, n_periods)
        w = fit_weights(self._NAME, x, weights)
        (x, tx, n), w = compress_rows((x, tx, n), w)
        total = float(w.sum())
        penalty = self.penalizer_coef

        def neg_loglik(theta: FloatArray) -> tuple[float, FloatArray]:
            ll, grad = _loglik_and_grad(theta, x, tx, n)
            params = np.exp(theta)
            value = -float(w @ ll) / total + penalty * float(params @ params)
            gradient = -(grad * w[:, None]).sum(axis=0) / total + 2.0 * penalty * params**2
            return value, gradient

        theta = maximise_log_likelihood(neg_loglik, np.zeros(4), self._NAME)
        self.params_ = dict(zip(PARAMS, (float(v) for v in np.exp(theta)), strict=True))
        self.n_customers_ = total
        return self

    # -------------------------------------------------------------- predictions
    def log_likelihood(
        self,
        frequency: ArrayLike,
        recency: ArrayLike,
        n_periods: ArrayLike,
        weights: ArrayLike | None = None,
    ) -> float:
        """Total log-likelihood of the data under the fitted parameters (FHS 2010, eq. 5)."""
        x, tx, n = _check(frequency, recency, n_periods)
        w = np.ones_like(x) if weights is None else as_float_array("weights", weights, x.size)
        ll, _ = _loglik_and_grad(np.log(self._params()), x, tx, n)
        return float(w @ ll)

    def p_alive(self, frequency: ArrayLike, recency: ArrayLike, n_periods: ArrayLike) -> FloatArray:
        """P(alive at opportunity ``n + 1`` | x, t_x, n) (FHS 2010, eq. 11):
        ``B(alpha + x, beta + n - x) / B(alpha, beta) B(gamma, delta + n + 1) / B(gamma,
        delta) / L``."""
        alpha, beta, gamma, delta = self._params()
        x, tx, n = _check(frequency, recency, n_periods)
        ll, _ = _loglik_and_grad(np.log([alpha, beta, gamma, delta]), x, tx, n)
        log_alive = (
            betaln(alpha + x, beta + n - x)
            - betaln(alpha, beta)
            + betaln(gamma, delta + n + 1.0)
            - betaln(gamma, delta)
        )
        out: FloatArray = np.exp(log_alive - ll)
        return out

    def expected_purchases(
        self,
        n_future_periods: int | ArrayLike,
        frequency: ArrayLike,
        recency: ArrayLike,
        n_periods: ArrayLike,
    ) -> FloatArray:
        """Expected transactions in the next ``n_future_periods`` opportunities (FHS 2010,
        eq. 13).

        ``B(alpha + x + 1, beta + n - x) / B(alpha, beta) / L sum_(i=1..n*) B(gamma, delta +
        n + i) / B(gamma, delta)``: a customer transacts at opportunity ``n + i`` if they
        survived its ``n + i`` starts and buy there. The sum is the paper's closed form
        ``delta / (gamma - 1) ...`` taken term by term, which has no singularity at
        ``gamma = 1``.
        """
        alpha, beta, gamma, delta = self._params()
        x, tx, n = _check(frequency, recency, n_periods)
        future = np.broadcast_to(np.asarray(n_future_periods, dtype=np.float64), x.shape)
        check_rule(
            "n_future_periods",
            np.isfinite(future) & (future >= 0) & (future == np.round(future)),
            "a whole number >= 0",
        )
        ll, _ = _loglik_and_grad(np.log([alpha, beta, gamma, delta]), x, tx, n)
        log_buy = betaln(alpha + x + 1.0, beta + n - x) - betaln(alpha, beta) - ll
        # sum_(i <= n*) E[(1 - theta)^(n + i)], per distinct n, cumulated over i.
        levels, idx = np.unique(n, return_inverse=True)
        steps = np.arange(1.0, float(future.max(initial=0.0)) + 1.0)
        survive = np.exp(betaln(gamma, delta + levels[:, None] + steps) - betaln(gamma, delta))
        cumulated = np.concatenate([np.zeros((levels.size, 1)), survive.cumsum(axis=1)], axis=1)
        out: FloatArray = np.exp(log_buy) * cumulated[idx.ravel(), future.astype(np.int64)]
        return out

    # ------------------------------------------------------------------ helpers


def _check(
    frequency: ArrayLike, recency: ArrayLike, n_periods: ArrayLike
) -> tuple[FloatArray, FloatArray, FloatArray]:
    x = as_float_array("frequency", frequency)
    tx = as_float_array("recency", recency, size=x.size)
    n = as_float_array("n_periods", n_periods, size=x.size)
    for name, values in (("frequency", x), ("recency", tx), ("n_periods", n)):
        check_rule(name, values == np.round(values), "whole numbers")
    check_rule("frequency", x >= 0, ">= 0")
    check_rule("recency", (x <= tx) & (tx <= n), "frequency <= recency <= n_periods")
    check_rule("recency", (x > 0) | (tx == 0), "recency = 0 when frequency = 0")
    return x, tx, n


def _loglik_and_grad(
    theta: FloatArray, x: FloatArray, tx: FloatArray, n: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Per-row log-likelihood and its gradient in ``log(alpha, beta, gamma, delta)``.

    FHS 2010 eq. 5: the customer is alive through opportunity ``n`` (one term), or died at
    the start of opportunity ``t_x + i + 1`` for ``i = 0 .. n - t_x - 1`` (one term each);
    the terms are combined in log space, rows x terms.
    """
    alpha, beta, gamma, delta = np.exp(theta)
    n_dead = int((n - tx).max(initial=0.0))
    i = np.arange(n_dead, dtype=np.float64)
    # Column 0: alive at n; column 1 + i: died at the start of opportunity t_x + i + 1.
    p_ones = np.broadcast_to(x[:, None], (x.size, n_dead + 1))
    p_zeros = np.column_stack([n - x, tx[:, None] - x[:, None] + i])
    theta_lives = np.column_stack([n, tx[:, None] + i])
    dies = np.r_[0.0, np.ones(n_dead)]
    valid = np.column_stack([np.ones(x.size, dtype=bool), i < (n - tx)[:, None]])

    terms = (
        betaln(alpha + p_ones, beta + p_zeros)
        - betaln(alpha, beta)
        + betaln(gamma + dies, delta + theta_lives)
        - betaln(gamma, delta)
    )
    terms = np.where(valid, terms, -np.inf)
    ll = logsumexp(terms, axis=1)
    share = np.exp(terms - ll[:, None])

    psi_ab, psi_gd = digamma(alpha + beta), digamma(gamma + delta)
    psi_p = digamma(alpha + p_ones + beta + p_zeros)
    psi_t = digamma(gamma + dies + delta + theta_lives)
    d_alpha = digamma(alpha + p_ones) - psi_p - digamma(alpha) + psi_ab
    d_beta = digamma(beta + p_zeros) - psi_p - digamma(beta) + psi_ab
    d_gamma = digamma(gamma + dies) - psi_t - digamma(gamma) + psi_gd
    d_delta = digamma(delta + theta_lives) - psi_t - digamma(delta) + psi_gd
    grad = np.column_stack(
        [
            (share * np.where(valid, d, 0.0)).sum(axis=1) * value
            for d, value in ((d_alpha, alpha), (d_beta, beta), (d_gamma, gamma), (d_delta, delta))
        ]
    )
    return ll, grad
