"""Time-invariant covariates on the Pareto/NBD, (M)BG/NBD and Gamma-Gamma models.

Fader, P. S. & Hardie, B. G. S. (2007). "Incorporating Time-Invariant Covariates into the
Pareto/NBD and BG/NBD Models" (note, http://brucehardie.com/notes/019/).

Customer ``i``'s covariates ``z_i`` scale the population's mixing distributions:

- purchase (both models): ``alpha_i = alpha exp(-g'z_i)``, so the mean purchase rate
  ``r / alpha_i`` is multiplied by ``exp(g'z_i)``;
- dropout, Pareto/NBD: ``beta_i = beta exp(-g'z_i)`` (mean dropout rate ``s / beta_i``);
- dropout, (M)BG/NBD: ``a_i = a exp(g_a'z_i)`` and ``b_i = b exp(g_b'z_i)`` (the mean dropout
  probability ``a_i / (a_i + b_i)`` rises with ``g_a'z_i`` and falls with ``g_b'z_i``);
- spend, Gamma-Gamma (not in the note; the same construction): ``v_i = v exp(g'z_i)``, the
  scale of the spend rate ``nu ~ Gamma(q, v_i)``, so the mean spend per transaction
  ``p v_i / (q - 1)`` is multiplied by ``exp(g'z_i)``.

A positive coefficient thus means more purchasing, more dropout (``dropout_b``: less) or more
spend; the shapes ``r, s, p, q`` are the population's. Given its parameters, every expression
of the plain model holds for customer ``i`` (the note's point), so the predictions are the
plain models' formulas at per-customer parameters (:meth:`~RFMCovariateModel.for_customers`).

Purchase and dropout covariates are separate arguments (as PyMC-Marketing's
``purchase_covariate_cols`` and ``dropout_covariate_cols``): pass the same columns to both, or
a column to one process only. ``params_`` holds the population's parameters, those of a
customer whose covariates are all 0 (centre them to make that the average customer), then the
coefficients named ``"<block>:<column>"`` with the blocks ``purchase``, ``dropout``
(Pareto/NBD), ``dropout_a``, ``dropout_b`` ((M)BG/NBD) and ``spend`` (Gamma-Gamma);
:meth:`~ltvcast.models._coefficients.CoefficientModel.coefficient_table` gives their standard
errors.

The search starts from the plain model's fit (every coefficient 0) and maximises the
likelihood times a ``Normal(0, prior_sd)`` prior on the coefficients of the standardised
covariates (``prior_sd=np.inf``: the plain maximum likelihood). Gradients: (M)BG/NBD and
Gamma-Gamma analytic, per row; Pareto/NBD by central differences per row (two evaluations of
the rows per parameter of the formulas, whatever the number of coefficients), with L-BFGS-B.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar, Self

import numpy as np
from scipy.special import digamma, gammaln

from ltvcast.exceptions import ConfigError, InsufficientDataError
from ltvcast.models._coefficients import (
    Block,
    CoefficientModel,
    Covariates,
    check_estimable,
    covariate_matrix,
)
from ltvcast.models._population import Param
from ltvcast.models.bgnbd import (
    ArrayLike,
    BetaGeoModel,
    FloatArray,
    ModifiedBetaGeoModel,
    as_float_array,
    check_rfm,
    compress_rows,
    fit_weights,
    loglik_and_grad_rows,
)
from ltvcast.models.gamma_gamma import GammaGammaModel
from ltvcast.models.pareto_nbd import ParetoNBDModel, log_likelihood_rows

PURCHASE, DROPOUT, SPEND = "purchase_covariates", "dropout_covariates", "covariates"
#: Step (in log-parameters) of the Pareto/NBD's per-row central differences. Rows are
#: evaluated to about 1e-12 relative (scipy's hyp2f1), so the plain model's 1e-6 leaves
#: noise of order 1e-2 in a gradient over a few thousand heavy buyers, which the observed
#: information (a difference of gradients) would amplify; at 1e-4 the noise is below 1e-4
#: and the truncation error below 1e-8.
ROW_STEP = 1e-4


def _n_rows(values: Mapping[str, Covariates]) -> int:
    """Rows of the first covariate argument given (0 when none is)."""
    given = [v for v in values.values() if v is not None]
    return int(np.shape(given[0])[0]) if given else 0


class RFMCovariateModel(CoefficientModel):
    """A purchase model with purchase and dropout covariates: the plain model ``_PLAIN``'s
    interface with ``purchase_covariates`` and ``dropout_covariates`` keywords.

    Parameters
    ----------
    penalizer_coef, prior_sd
        See :class:`~ltvcast.models._coefficients.CoefficientModel`.

    Attributes
    ----------
    params_ : dict
        Population parameters (time unit of the data), then the coefficients.
    covariance_, log_likelihood_, null_log_likelihood_
        See :class:`~ltvcast.models._coefficients.CoefficientModel`.
    n_customers_ : float
        Total weight (customers) the model was fitted on.
    """

    _PLAIN: ClassVar[type[BetaGeoModel] | type[ParetoNBDModel]]
    #: Indices in ``PARAMS`` of the parameters in time units (rescaled during the search).
    _TIME_PARAMS: ClassVar[tuple[int, ...]] = (1,)
    _METHOD: ClassVar[str] = "TNC"
    _FIT_CALL = "fit(frequency, recency, T, purchase_covariates=..., dropout_covariates=...)"

    def fit(
        self,
        frequency: ArrayLike,
        recency: ArrayLike,
        T: ArrayLike,
        weights: ArrayLike | None = None,
        *,
        purchase_covariates: Covariates = None,
        dropout_covariates: Covariates = None,
    ) -> Self:
        """Fit the population parameters and coefficients by maximum likelihood.

        Parameters
        ----------
        purchase_covariates, dropout_covariates
            Per customer, the covariates of each process: a DataFrame (coefficients named
            after its columns), a 2-d array (``x0, x1 ...``) or a 1-d array (one covariate),
            in the rows of ``frequency``; None for none.

        Raises
        ------
        ConfigError
            For invalid RFM inputs, or a covariate column that is non-numeric, non-finite,
            constant or a linear combination of the others (the message names it).
        InsufficientDataError
            With fewer customers than parameters, no repeat purchase, or no convergence.
        """
        x, tx, t_cal = check_rfm(frequency, recency, T)
        given = {PURCHASE: purchase_covariates, DROPOUT: dropout_covariates}
        matrices, names = {}, {}
        for source, values in given.items():
            matrices[source], names[source] = covariate_matrix(source, values, x.size)
        n_coefs = sum(len(names[b.source]) for b in self._BLOCKS)
        w = fit_weights(self._NAME, x, weights, n_params=len(self.PARAMS) + n_coefs)
        for source in given:
            check_estimable(source, matrices[source][w > 0], names[source])
        plain = self._PLAIN(self.penalizer_coef).fit(x, tx, t_cal, w)
        scale = 10.0 / float(t_cal.max()) if t_cal.max() > 0 else 1.0
        log_scale = np.zeros(len(self.PARAMS))
        log_scale[list(self._TIME_PARAMS)] = -np.log(scale)
        start = np.log([plain.params_[k] for k in self.PARAMS]) - log_scale
        widths = np.cumsum([0] + [matrices[s].shape[1] for s in given])
        stacked = np.hstack(list(matrices.values()))
        rows, w_rows = compress_rows((x, tx * scale, t_cal * scale, *stacked.T), w)
        merged = np.column_stack(rows[3:]) if stacked.shape[1] else np.zeros((rows[0].size, 0))
        per_source = {
            s: merged[:, lo:hi] for s, lo, hi in zip(given, widths[:-1], widths[1:], strict=True)
        }
        x_m, tx_m, t_m = rows[:3]

        def row_likelihood(log_params: list[Param]) -> tuple[FloatArray, FloatArray]:
            return self._row_likelihood(log_params, x_m, tx_m, t_m)

        self._search(
            row_likelihood,
            start,
            per_source,
            names,
            w_rows,
            log_scale=log_scale,
            method=self._METHOD,
        )
        self.log_likelihood_ = self.log_likelihood(x, tx, t_cal, w, **given)
        self.null_log_likelihood_ = plain.log_likelihood(x, tx, t_cal, w)
        self.n_customers_ = float(w.sum())
        return self

    # -------------------------------------------------------------- predictions
    def for_customers(
        self, purchase_covariates: Covariates = None, dropout_covariates: Covariates = None
    ) -> BetaGeoModel | ParetoNBDModel:
        """The plain model whose parameters are these customers' own (one row each, in the
        rows of the covariates): every prediction method of the plain model, applied to
        inputs in the same rows, gives these customers' predictions.

        The returned model predicts only (its ``params_`` are the population's); the
        log-likelihood is :meth:`log_likelihood`'s.
        """
        given = {PURCHASE: purchase_covariates, DROPOUT: dropout_covariates}
        return self._bound(_n_rows(given), given)

    def log_likelihood(
        self,
        frequency: ArrayLike,
        recency: ArrayLike,
        T: ArrayLike,
        weights: ArrayLike | None = None,
        *,
        purchase_covariates: Covariates = None,
        dropout_covariates: Covariates = None,
    ) -> float:
        """Total log-likelihood of the data given each customer's covariates."""
        x, tx, t_cal = check_rfm(frequency, recency, T)
        w = np.ones_like(x) if weights is None else as_float_array("weights", weights, x.size)
        given = {PURCHASE: purchase_covariates, DROPOUT: dropout_covariates}
        ll = self._row_loglik(self._row_log_params(x.size, given), x, tx, t_cal)
        return float(w @ ll)

    def p_alive(
        self,
        frequency: ArrayLike,
        recency: ArrayLike,
        T: ArrayLike,
        *,
        purchase_covariates: Covariates = None,
        dropout_covariates: Covariates = None,
    ) -> FloatArray:
        """P(alive at T | x, t_x, T, z): the plain model's at each customer's parameters."""
        model = self._rows_of(frequency, purchase_covariates, dropout_covariates)
        return model.p_alive(frequency, recency, T)

    def expected_purchases(
        self,
        t: float | ArrayLike,
        frequency: ArrayLike,
        recency: ArrayLike,
        T: ArrayLike,
        *,
        purchase_covariates: Covariates = None,
        dropout_covariates: Covariates = None,
    ) -> FloatArray:
        """Expected purchases in ``(T, T + t]`` given ``(x, t_x, T)`` and the covariates."""
        model = self._rows_of(frequency, purchase_covariates, dropout_covariates)
        return model.expected_purchases(t, frequency, recency, T)

    def p_no_purchase(
        self,
        t: float | ArrayLike,
        frequency: ArrayLike,
        recency: ArrayLike,
        T: ArrayLike,
        *,
        purchase_covariates: Covariates = None,
        dropout_covariates: Covariates = None,
    ) -> FloatArray:
        """P(no purchase in ``(T, T + t]`` | x, t_x, T, z)."""
        model = self._rows_of(frequency, purchase_covariates, dropout_covariates)
        return model.p_no_purchase(t, frequency, recency, T)

    def p_alive_at(
        self,
        t: float | ArrayLike,
        frequency: ArrayLike,
        recency: ArrayLike,
        T: ArrayLike,
        *,
        purchase_covariates: Covariates = None,
        dropout_covariates: Covariates = None,
    ) -> FloatArray:
        """P(alive at ``T + t`` | x, t_x, T, z)."""
        model = self._rows_of(frequency, purchase_covariates, dropout_covariates)
        return model.p_alive_at(t, frequency, recency, T)

    # ------------------------------------------------------------------ helpers
    def _rows_of(
        self, frequency: ArrayLike, purchase: Covariates, dropout: Covariates
    ) -> BetaGeoModel | ParetoNBDModel:
        """:meth:`for_customers`, with the covariates checked against the rows of
        ``frequency``."""
        n_rows = as_float_array("frequency", frequency).size
        return self._bound(n_rows, {PURCHASE: purchase, DROPOUT: dropout})

    def _bound(
        self, n_rows: int, covariates: Mapping[str, Covariates]
    ) -> BetaGeoModel | ParetoNBDModel:
        log_params = self._row_log_params(n_rows, covariates)
        population = {k: self.params_[k] for k in self.PARAMS}
        rows = [
            np.exp(v) if np.ndim(v) else population[k]
            for k, v in zip(self.PARAMS, log_params, strict=True)
        ]
        return self._PLAIN(self.penalizer_coef).set_params(population)._per_row(rows)

    def _row_loglik(
        self, log_params: list[Param], x: FloatArray, tx: FloatArray, t_cal: FloatArray
    ) -> FloatArray:
        """Per-row log-likelihood at the rows' log-parameters."""
        raise NotImplementedError

    def _row_likelihood(
        self, log_params: list[Param], x: FloatArray, tx: FloatArray, t_cal: FloatArray
    ) -> tuple[FloatArray, FloatArray]:
        """Per-row log-likelihood and its gradient in the rows' log-parameters."""
        raise NotImplementedError


class BetaGeoCovariateModel(RFMCovariateModel):
    """BG/NBD with covariates on the purchase rate (``alpha``) and the dropout
    probability (``a``, ``b``), Fader & Hardie (2007) section 3; fitted by maximum
    likelihood (FHL 2005 eq. 6 per customer) with the analytic gradient."""

    _PLAIN = BetaGeoModel
    _NAME = "BG/NBD with covariates"
    PARAMS = BetaGeoModel.PARAMS
    _BLOCKS = (
        Block("purchase", PURCHASE, 1, -1.0),
        Block("dropout_a", DROPOUT, 2, 1.0),
        Block("dropout_b", DROPOUT, 3, 1.0),
    )

    def _row_likelihood(
        self, log_params: list[Param], x: FloatArray, tx: FloatArray, t_cal: FloatArray
    ) -> tuple[FloatArray, FloatArray]:
        r, alpha, a, b = (np.exp(v) for v in log_params)
        return loglik_and_grad_rows((r, alpha, a, b), x, tx, t_cal, self._PLAIN._SHIFT)

    def _row_loglik(
        self, log_params: list[Param], x: FloatArray, tx: FloatArray, t_cal: FloatArray
    ) -> FloatArray:
        return self._row_likelihood(log_params, x, tx, t_cal)[0]


class ModifiedBetaGeoCovariateModel(BetaGeoCovariateModel):
    """MBG/NBD (Batislam et al. 2007) with covariates, as :class:`BetaGeoCovariateModel`."""

    _PLAIN = ModifiedBetaGeoModel
    _NAME = "MBG/NBD with covariates"


class ParetoNBDCovariateModel(RFMCovariateModel):
    """Pareto/NBD with covariates on the purchase rate (``alpha``) and the dropout rate
    (``beta``), Fader & Hardie (2007) section 2; the likelihood (FHL note eq. 22 per
    customer) is maximised by L-BFGS-B on central-difference gradients."""

    _PLAIN = ParetoNBDModel
    _NAME = "Pareto/NBD with covariates"
    PARAMS = ParetoNBDModel.PARAMS
    _BLOCKS = (Block("purchase", PURCHASE, 1, -1.0), Block("dropout", DROPOUT, 3, -1.0))
    _TIME_PARAMS = (1, 3)
    _METHOD = "L-BFGS-B"

    def _row_loglik(
        self, log_params: list[Param], x: FloatArray, tx: FloatArray, t_cal: FloatArray
    ) -> FloatArray:
        return log_likelihood_rows(tuple(np.exp(v) for v in log_params), x, tx, t_cal)

    def _row_likelihood(
        self, log_params: list[Param], x: FloatArray, tx: FloatArray, t_cal: FloatArray
    ) -> tuple[FloatArray, FloatArray]:
        grad = np.zeros((x.size, len(log_params)))
        for j in range(len(log_params)):
            up, down = list(log_params), list(log_params)
            up[j] = up[j] + ROW_STEP
            down[j] = down[j] - ROW_STEP
            diff = self._row_loglik(up, x, tx, t_cal) - self._row_loglik(down, x, tx, t_cal)
            grad[:, j] = diff / (2.0 * ROW_STEP)
        grad = np.nan_to_num(grad, nan=0.0, posinf=0.0, neginf=0.0)
        return self._row_loglik(log_params, x, tx, t_cal), grad


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
            For invalid inputs or covariates (see :class:`BetaGeoCovariateModel`).
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
        self.note_ = "maximum likelihood"
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
        super().set_params(params, covariance)
        if not self.params_["q"] > 1:
            raise ConfigError(f"Gamma-Gamma needs q > 1; got {self.params_['q']}")
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
        return self._bound(_n_rows({SPEND: covariates}), covariates)

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
