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
The Gamma-Gamma variant is :class:`~ltvcast.models.spend_covariates.GammaGammaCovariateModel`.

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

from collections.abc import Mapping
from typing import ClassVar, Self

import numpy as np

from ltvcast.models._coefficients import (
    Block,
    CoefficientModel,
    Covariates,
    check_estimable,
    covariate_matrix,
    covariate_rows,
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
from ltvcast.models.pareto_nbd import ParetoNBDModel, log_likelihood_rows

PURCHASE, DROPOUT = "purchase_covariates", "dropout_covariates"
#: Step (in log-parameters) of the Pareto/NBD's per-row central differences. Rows are
#: evaluated to about 1e-12 relative (scipy's hyp2f1), so the plain model's 1e-6 leaves
#: noise of order 1e-2 in a gradient over a few thousand heavy buyers, which the observed
#: information (a difference of gradients) would amplify; at 1e-4 the noise is below 1e-4
#: and the truncation error below 1e-8.
ROW_STEP = 1e-4


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
        return self._bound(covariate_rows(given), given)

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
