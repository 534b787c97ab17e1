"""Gamma-Gamma model of average spend per transaction.

Fader, P. S., Hardie, B. G. S. & Lee, K. L. (2005). RFM and CLV: Using Iso-Value Curves for
Customer Base Analysis. *Journal of Marketing Research* 42(4), 415-430; and Fader, P. S. &
Hardie, B. G. S. (2013). "The Gamma-Gamma Model of Monetary Value" (note).

A customer's spends are ``Gamma(p, nu)``; across customers ``nu ~ Gamma(q, v)``. For a
customer with ``x`` repeat transactions of mean value ``m`` the likelihood is the 2013
note's marginal density of ``m`` (``Gamma(p x, nu x)`` given ``nu``, integrated over ``nu``),
and the conditional expected spend is ``p (v + x m) / (p x + q - 1)`` (the note's
``E(M | p, q, gamma, m_x, x)``, with ``gamma = v``), a weighted mean of the population
mean ``p v / (q - 1)`` and the customer's own ``m``.

Degenerate spend: a log of dates only (every amount 1), or one where the customers' mean
spends (nearly) all agree, has its likelihood maximum at infinity (``p, q -> inf``: no
spread within or between customers) and the search cannot converge. There the model falls
back to the constant spend, the repeat buyers' mean spend, for every customer;
``degenerate_`` is True, ``note_`` says why and ``params_`` holds ``mean_spend`` alone.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

import numpy as np
from scipy.special import digamma, gammaln

from ltvcast.exceptions import ConfigError, InsufficientDataError, NotFittedError
from ltvcast.models._population import Param
from ltvcast.models.bgnbd import (
    ArrayLike,
    FloatArray,
    as_float_array,
    check_rule,
    maximise_log_likelihood,
)


class GammaGammaModel:
    """Gamma-Gamma spend model fitted by maximum likelihood on repeat buyers.

    Customers with ``frequency == 0`` or ``monetary_value <= 0`` (free items, net returns)
    carry no information the model can use: they are left out of the fit and counted in
    ``n_excluded_``, and :meth:`expected_spend` gives them the population mean.

    Parameters
    ----------
    penalizer_coef
        L2 penalty on the (money-scaled) parameters, as in ``lifetimes``; 0 gives the MLE.

    Attributes
    ----------
    params_ : dict
        ``p``, ``q``, ``v`` (``v`` in money units).
    n_excluded_ : int
        Rows left out of the fit (non-repeaters or non-positive mean spend).
    degenerate_ : bool
        True when the spend held no spread to fit and the model gives the constant
        ``params_["mean_spend"]`` to every customer (see the module docstring).
    note_ : str
        How the parameters were obtained (``"maximum likelihood"`` or why the fallback).
    """

    #: Per-row ``(p, q, v)`` (:meth:`_per_row`), else None.
    _rows: tuple[Param, Param, Param] | None = None

    def __init__(self, penalizer_coef: float = 0.0) -> None:
        self.penalizer_coef = penalizer_coef

    def fit(
        self, frequency: ArrayLike, monetary_value: ArrayLike, weights: ArrayLike | None = None
    ) -> GammaGammaModel:
        """Fit ``p, q, v`` by maximum likelihood on rows with ``frequency > 0`` and spend > 0.

        Spend is divided by its mean during the search (``v`` is scaled back after).

        When all usable mean spends are equal (to 1e-9 relative), or the search does not
        converge, the fit falls back to the constant spend (``degenerate_``).

        Raises
        ------
        ConfigError
            For non-finite or negative inputs.
        InsufficientDataError
            With fewer than 3 usable repeat buyers, or ``q <= 1`` (the population mean spend
            would be infinite).
        """
        if self.penalizer_coef < 0:
            raise ConfigError(f"penalizer_coef must be >= 0; got {self.penalizer_coef!r}")
        x = as_float_array("frequency", frequency)
        m = as_float_array("monetary_value", monetary_value, size=x.size)
        w = np.ones_like(x) if weights is None else as_float_array("weights", weights, x.size)
        check_rule("frequency", x >= 0, ">= 0")
        check_rule("weights", w >= 0, ">= 0")
        keep = (x > 0) & (m > 0) & (w > 0)
        self.n_excluded_ = int(np.count_nonzero(~keep))
        if np.count_nonzero(keep) < 3:
            raise InsufficientDataError(
                f"Gamma-Gamma needs at least 3 repeat buyers with positive mean spend; got "
                f"{np.count_nonzero(keep)} ({self.n_excluded_} of {x.size} rows excluded)"
            )
        x, m, w = x[keep], m[keep], w[keep]
        scale = float(np.average(m, weights=w))
        self.degenerate_ = False
        if np.ptp(m) <= 1e-9 * scale:
            self._constant(scale, f"all {len(m)} customers fitted have the same mean spend")
            return self
        m = m / scale
        total = float(w.sum())
        penalty = self.penalizer_coef

        rows = _Rows(x, m, w)

        def neg_loglik(theta: FloatArray) -> tuple[float, FloatArray]:
            ll, grad = _loglik_and_grad(theta, rows)
            params = np.exp(theta)
            value = -ll / total + penalty * float(params @ params)
            return value, -grad / total + 2.0 * penalty * params**2

        try:
            theta = maximise_log_likelihood(neg_loglik, np.log([1.0, 2.0, 1.0]), "Gamma-Gamma")
        except InsufficientDataError as err:
            self._constant(scale, f"the spend has too little spread to fit ({err})")
            return self
        p, q, v = np.exp(theta)
        if q <= 1.0:
            raise InsufficientDataError(
                f"Gamma-Gamma fit gave q = {q:.3f} <= 1: spend is too heavy-tailed for a finite "
                "population mean; cap outliers (winsorize) or use another model"
            )
        self.params_ = {"p": float(p), "q": float(q), "v": float(v * scale)}
        self.note_ = "maximum likelihood"
        return self

    def _constant(self, mean_spend: float, why: str) -> None:
        """The degenerate fallback: every customer spends ``mean_spend`` per purchase."""
        self.params_ = {"mean_spend": float(mean_spend)}
        self.degenerate_ = True
        self.note_ = f"constant spend {mean_spend:.6g} per purchase: {why}"

    def set_params(self, params: dict[str, float]) -> GammaGammaModel:
        """Use given ``p, q, v`` (e.g. loaded from JSON) instead of fitting; ``mean_spend``
        alone restores a degenerate (constant-spend) model."""
        if set(params) == {"mean_spend"}:
            mean_spend = float(params["mean_spend"])
            if not (np.isfinite(mean_spend) and mean_spend > 0):
                raise ConfigError(f"Gamma-Gamma mean_spend must be positive; got {mean_spend}")
            self._constant(mean_spend, "set by set_params")
            return self
        missing = {"p", "q", "v"} - set(params)
        if missing:
            raise ConfigError(f"Gamma-Gamma parameters lack {sorted(missing)}")
        values = {k: float(params[k]) for k in ("p", "q", "v")}
        if not (values["p"] > 0 and values["q"] > 1 and values["v"] > 0):
            raise ConfigError(f"Gamma-Gamma parameters need p > 0, q > 1, v > 0; got {values}")
        self.params_ = values
        self.degenerate_ = False
        self.note_ = "set by set_params"
        return self

    @property
    def population_mean(self) -> float:
        """Mean spend per transaction across customers, ``p v / (q - 1)`` (the constant spend
        of a degenerate fit)."""
        if self._is_constant():
            return self.params_["mean_spend"]
        p, q, v = (self.params_[k] for k in ("p", "q", "v"))
        return p * v / (q - 1.0)

    def expected_spend(self, frequency: ArrayLike, monetary_value: ArrayLike) -> FloatArray:
        """Conditional expected spend per transaction, ``p (v + x m) / (p x + q - 1)``.

        Rows with ``frequency == 0`` or ``monetary_value <= 0`` get the population mean; a
        degenerate fit gives every row its constant spend.
        """
        x = as_float_array("frequency", frequency)
        m = as_float_array("monetary_value", monetary_value, size=x.size)
        if self._is_constant():
            return np.full(x.size, self.params_["mean_spend"])
        p, q, v = self._params()
        usable = (x > 0) & (m > 0)
        xs, ms = np.where(usable, x, 0.0), np.where(usable, m, 0.0)
        out: FloatArray = p * (v + xs * ms) / (p * xs + q - 1.0)
        return out

    def log_likelihood(
        self, frequency: ArrayLike, monetary_value: ArrayLike, weights: ArrayLike | None = None
    ) -> float:
        """Total log-likelihood of the usable rows (``frequency > 0``, spend > 0).

        Raises
        ------
        ConfigError
            For a degenerate fit (a point mass has no finite likelihood).
        """
        if self._is_constant():
            raise ConfigError(f"a degenerate Gamma-Gamma has no likelihood ({self.note_})")
        p, q, v = self._params()
        return spend_log_likelihood(frequency, monetary_value, weights)(np.log([p, q, v]))

    def _is_constant(self) -> bool:
        return "mean_spend" in self._fitted()

    def _fitted(self) -> dict[str, float]:
        if not hasattr(self, "params_"):
            raise NotFittedError(
                "GammaGammaModel is not fitted; call fit(frequency, monetary_value)"
            )
        return self.params_

    def _per_row(self, v: FloatArray) -> GammaGammaModel:
        """Predict with ``v`` one value per row of the inputs the predictions will be given
        (covariates, :mod:`ltvcast.models.covariates`); ``params_`` keeps the population's."""
        p, q, _ = self._params()
        self._rows = (p, q, v)
        return self

    def _params(self) -> tuple[float, float, float]:
        """``p, q, v``; after :meth:`_per_row` ``v`` per row (typed as the float it stands
        for in :meth:`expected_spend`, the one formula a bound model serves)."""
        if self._rows is not None:
            return cast(tuple[float, float, float], self._rows)
        self._fitted()
        return self.params_["p"], self.params_["q"], self.params_["v"]


def spend_log_likelihood(
    frequency: ArrayLike, monetary_value: ArrayLike, weights: ArrayLike | None = None
) -> Callable[[FloatArray], float]:
    """The total log-likelihood of the usable rows (``frequency > 0``, spend > 0) as a
    function of ``log(p, q, v)``, the rows prepared once (for many evaluations: the
    covariance of :mod:`ltvcast.models.intervals`)."""
    x = as_float_array("frequency", frequency)
    m = as_float_array("monetary_value", monetary_value, size=x.size)
    w = np.ones_like(x) if weights is None else as_float_array("weights", weights, x.size)
    keep = (x > 0) & (m > 0)
    rows = _Rows(x[keep], m[keep], w[keep])

    def log_likelihood(theta: FloatArray) -> float:
        return _loglik_and_grad(theta, rows)[0]

    return log_likelihood


class _Rows:
    """What the likelihood needs of the rows ``(x, m, w)``, computed once per fit.

    Terms in ``x`` alone are summed per distinct ``x`` (special functions once per level);
    only ``log(v + x m)`` must be evaluated row by row at each parameter value.
    """

    def __init__(self, x: FloatArray, m: FloatArray, w: FloatArray) -> None:
        levels, idx = np.unique(x, return_inverse=True)
        self.levels = levels
        self.level_weight = np.bincount(idx.ravel(), weights=w, minlength=levels.size)
        self.x, self.m, self.w = x, m, w
        self.wx = w * x
        log_x, log_m = np.log(x), np.log(m)
        self.sum_w = float(w.sum())
        self.sum_wx_logxm = float(self.wx @ (log_x + log_m))
        self.sum_w_logm = float(w @ log_m)


def _loglik_and_grad(theta: FloatArray, rows: _Rows) -> tuple[float, FloatArray]:
    """Weighted total log-likelihood (marginal density of ``m``) and its gradient in
    ``log(p, q, v)``.

    Per row, ``log f = lnG(p x + q) - lnG(p x) - lnG(q) + q ln v + p x ln x
    + (p x - 1) ln m - (p x + q) ln(v + x m)``.
    """
    p, q, v = np.exp(theta)
    pl = p * rows.levels
    lw = rows.level_weight
    log_vxm = np.log(v + rows.x * rows.m)
    sum_wx_log_vxm = float(rows.wx @ log_vxm)
    sum_w_log_vxm = float(rows.w @ log_vxm)
    ll = (
        float(lw @ (gammaln(pl + q) - gammaln(pl)))
        + rows.sum_w * (q * np.log(v) - gammaln(q))
        + p * rows.sum_wx_logxm
        - rows.sum_w_logm
        - p * sum_wx_log_vxm
        - q * sum_w_log_vxm
    )
    psi_plq = digamma(pl + q)
    d_p = float(lw @ (rows.levels * (psi_plq - digamma(pl)))) + rows.sum_wx_logxm - sum_wx_log_vxm
    d_q = float(lw @ psi_plq) + rows.sum_w * (np.log(v) - digamma(q)) - sum_w_log_vxm
    d_v = rows.sum_w * q / v - float((rows.w * (p * rows.x + q)) @ (1.0 / (v + rows.x * rows.m)))
    return float(ll), np.array([d_p * p, d_q * q, d_v * v])
