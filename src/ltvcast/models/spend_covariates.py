"""Gamma-Gamma spend with time-invariant covariates on the scale of the spend rate.

The construction of Fader & Hardie (2007, :mod:`ltvcast.models.covariates`) applied to the
Gamma-Gamma model of Fader & Hardie (2013, :mod:`ltvcast.models.gamma_gamma`): a customer's
spends are ``Gamma(p, nu)`` with ``nu ~ Gamma(q, v_i)`` and ``v_i = v exp(g'z_i)``, so the
mean spend per transaction of a customer with covariates ``z_i``, ``p v_i / (q - 1)``, is
the population's times ``exp(g'z_i)``; ``p`` and ``q`` are the population's. Given ``v_i``
the note's conditional expectation holds per customer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Self

import numpy as np
from scipy.special import digamma, gammaln

from ltvcast.exceptions import ConfigError, InsufficientDataError
from ltvcast.models._coefficients import (
    Block,
    CoefficientModel,
    Covariates,
    check_estimable,
    covariate_matrix,
    covariate_rows,
)
from ltvcast.models._population import Param
from ltvcast.models.bgnbd import ArrayLike, FloatArray, as_float_array
from ltvcast.models.gamma_gamma import GammaGammaModel

SPEND = "covariates"


class GammaGammaCovariateModel(CoefficientModel):
    """Gamma-Gamma spend with covariates on the scale of the spend rate, ``v_i = v
    exp(g'z_i)`` (the construction of Fader & Hardie 2007 applied to the Gamma-Gamma of
    Fader & Hardie 2013): the interface of :class:`~ltvcast.models.gamma_gamma.GammaGammaModel`
    with a ``covariates`` keyword.

    Rows left out of the fit (no repeat transaction, spend <= 0) and the degenerate spend
    fall back as in the plain model; a degenerate fit has no coefficient and ignores the
    covariates.

    Attributes
    ----------
    params_ : dict
        ``p``, ``q``, ``v`` (money units), then the ``spend:<column>`` coefficients; or
        ``mean_spend`` alone when ``degenerate_``.
    n_excluded_, degenerate_, note_
        As in :class:`~ltvcast.models.gamma_gamma.GammaGammaModel`.
    covariance_, log_likelihood_, null_log_likelihood_
        See :class:`~ltvcast.models._coefficients.CoefficientModel`.
    """

    PARAMS = ("p", "q", "v")
    _NAME = "Gamma-Gamma with covariates"
    _BLOCKS = (Block("spend", SPEND, 2, 1.0),)
    _FIT_CALL = "fit(frequency, monetary_value, covariates=...)"

    def fit(
        self,
        frequency: ArrayLike,
        monetary_value: ArrayLike,
        weights: ArrayLike | None = None,
        *,
        covariates: Covariates = None,
    ) -> Self:
        """Fit ``p, q, v`` and the coefficients on the rows the plain model fits.

        Raises
        ------
        ConfigError
            For invalid inputs or covariates (see
            :class:`~ltvcast.models.covariates.BetaGeoCovariateModel`).
        InsufficientDataError
            With fewer usable repeat buyers than parameters, or ``q <= 1``.
        """
        plain = GammaGammaModel(self.penalizer_coef).fit(frequency, monetary_value, weights)
        x = as_float_array("frequency", frequency)
        m = as_float_array("monetary_value", monetary_value, size=x.size)
        w = np.ones_like(x) if weights is None else as_float_array("weights", weights, x.size)
        matrix, names = covariate_matrix(SPEND, covariates, x.size)
        self.n_excluded_ = plain.n_excluded_
        if plain.degenerate_:
            self._constant(plain.params_["mean_spend"], plain.note_)
            return self
        keep = (x > 0) & (m > 0) & (w > 0)
        check_estimable(SPEND, matrix[keep], names)
        if np.count_nonzero(keep) < len(self.PARAMS) + len(names):
            raise InsufficientDataError(
                f"{self._NAME} needs more repeat buyers with positive mean spend than its "
                f"{len(self.PARAMS) + len(names)} parameters; got {np.count_nonzero(keep)}"
            )
        x, m, w, matrix = x[keep], m[keep], w[keep], matrix[keep]
        scale = float(np.average(m, weights=w))
        start = np.log([plain.params_["p"], plain.params_["q"], plain.params_["v"] / scale])

        def row_likelihood(log_params: list[Param]) -> tuple[FloatArray, FloatArray]:
            return _spend_rows(log_params, x, m / scale)

        log_scale = np.array([0.0, 0.0, np.log(scale)])
        self._search(row_likelihood, start, {SPEND: matrix}, {SPEND: names}, w, log_scale=log_scale)
        if self.params_["q"] <= 1.0:
            raise InsufficientDataError(
                f"{self._NAME} fit gave q = {self.params_['q']:.3f} <= 1: spend is too "
                "heavy-tailed for a finite mean; cap outliers (winsorize) or use another model"
            )
        self.degenerate_ = False
        self.note_ = (
            "maximum likelihood"
            if np.isinf(self.prior_sd)
            else f"posterior mode (standardised coefficients ~ Normal(0, {self.prior_sd:g}))"
        )
        self.log_likelihood_ = self.log_likelihood(x, m, w, covariates=matrix)
        self.null_log_likelihood_ = plain.log_likelihood(x, m, w)
        return self

    def set_params(
        self, params: Mapping[str, float], covariance: Sequence[Sequence[float]] | None = None
    ) -> Self:
        """As :meth:`CoefficientModel.set_params`; ``mean_spend`` alone restores a degenerate
        (constant-spend) model."""
        if set(params) == {"mean_spend"}:
            self._constant(float(params["mean_spend"]), "set by set_params")
            return self
        if "q" in params and not float(params["q"]) > 1:
            raise ConfigError(f"Gamma-Gamma needs q > 1; got {params['q']}")
        super().set_params(params, covariance)
        self.degenerate_ = False
        self.note_ = "set by set_params"
        return self

    @property
    def population_mean(self) -> float:
        """Mean spend per transaction of a customer whose covariates are all 0."""
        return self._baseline().population_mean

    def for_customers(self, covariates: Covariates = None) -> GammaGammaModel:
        """The plain model at these customers' own ``v_i`` (rows of ``covariates``), for
        :meth:`~ltvcast.models.gamma_gamma.GammaGammaModel.expected_spend` on inputs in the
        same rows (at ``frequency`` 0: each customer's population mean)."""
        return self._bound(covariate_rows({SPEND: covariates}), covariates)

    def expected_spend(
        self, frequency: ArrayLike, monetary_value: ArrayLike, *, covariates: Covariates = None
    ) -> FloatArray:
        """Conditional expected spend per transaction, ``p (v_i + x m) / (p x + q - 1)``."""
        n_rows = as_float_array("frequency", frequency).size
        return self._bound(n_rows, covariates).expected_spend(frequency, monetary_value)

    def log_likelihood(
        self,
        frequency: ArrayLike,
        monetary_value: ArrayLike,
        weights: ArrayLike | None = None,
        *,
        covariates: Covariates = None,
    ) -> float:
        """Total log-likelihood of the usable rows (``frequency > 0``, spend > 0)."""
        if "mean_spend" in self._fitted():
            raise ConfigError(f"a degenerate Gamma-Gamma has no likelihood ({self.note_})")
        x = as_float_array("frequency", frequency)
        m = as_float_array("monetary_value", monetary_value, size=x.size)
        w = np.ones_like(x) if weights is None else as_float_array("weights", weights, x.size)
        log_params = self._row_log_params(x.size, {SPEND: covariates})
        keep = (x > 0) & (m > 0)
        rows: list[Param] = [np.broadcast_to(v, x.shape)[keep] for v in log_params]
        return float(w[keep] @ _spend_rows(rows, x[keep], m[keep])[0])

    # ------------------------------------------------------------------ helpers
    def _constant(self, mean_spend: float, why: str) -> None:
        plain = GammaGammaModel().set_params({"mean_spend": mean_spend})
        self.params_ = dict(plain.params_)
        self.degenerate_ = True
        self.note_ = why

    def _baseline(self) -> GammaGammaModel:
        params = self._fitted()
        if self.degenerate_:
            return GammaGammaModel().set_params({"mean_spend": params["mean_spend"]})
        return GammaGammaModel(self.penalizer_coef).set_params({k: params[k] for k in self.PARAMS})

    def _bound(self, n_rows: int, covariates: Covariates) -> GammaGammaModel:
        baseline = self._baseline()
        if self.degenerate_:
            return baseline
        log_v = self._row_log_params(n_rows, {SPEND: covariates})[2]
        return baseline._per_row(np.exp(log_v)) if np.ndim(log_v) else baseline


def _spend_rows(
    log_params: list[Param], x: FloatArray, m: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Per-row Gamma-Gamma log-likelihood (Fader & Hardie 2013, the marginal density of the
    mean spend ``m`` of ``x`` transactions) and its gradient in ``log(p, q, v_i)``.

    ``lnG(p x + q) - lnG(p x) - lnG(q) + q ln v + p x ln x + (p x - 1) ln m - (p x + q)
    ln(v + x m)``; the plain model's :func:`~ltvcast.models.gamma_gamma._loglik_and_grad`
    sums the same terms with one ``v``, by distinct ``x``.
    """
    p, q, v = (np.exp(t) for t in log_params)
    px = p * x
    log_vxm = np.log(v + x * m)
    ll = (
        gammaln(px + q)
        - gammaln(px)
        - gammaln(q)
        + q * np.log(v)
        + px * np.log(x)
        + (px - 1.0) * np.log(m)
        - (px + q) * log_vxm
    )
    psi = digamma(px + q)
    d_p = x * (psi - digamma(px) + np.log(x) + np.log(m) - log_vxm) * p
    d_q = (psi - digamma(q) + np.log(v) - log_vxm) * q
    d_v = q - (px + q) * v / (v + x * m)
    grad = np.column_stack(np.broadcast_arrays(d_p, d_q, d_v))
    return np.asarray(ll, dtype=np.float64), grad
