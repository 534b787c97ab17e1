"""Prediction intervals of BTYD value forecasts by parametric bootstrap.

What the intervals are: quantiles of each customer's *expected* value, ``E[purchases] x
E[spend]``, over the sampling distribution of the fitted parameters. They say how far the
forecast could move had the population parameters been estimated from another sample of the
same size: the parameter uncertainty that CLVTools' ``predict(..., uncertainty = "boots")``
reports, which it gets by refitting the model on customers resampled with replacement (minutes
on large data); here the draws come from the estimate's asymptotic normal distribution, with
no refit. They are not intervals of the spend a customer will realise, which also varies with
the model's own Poisson, dropout and spend randomness, and is far wider.

Method:

1. **Sampling covariance.** At the maximum-likelihood estimate the log-parameters are
   asymptotically normal with covariance the inverse observed information, ``(-H)^-1``,
   where ``H`` is the Hessian of the total log-likelihood, here by central differences in
   log-parameter space (:func:`observed_covariance`). The purchase model's likelihood and
   Gamma-Gamma's are separate, so each gets its own block (:func:`purchase_covariance`,
   :func:`spend_covariance`) and the blocks are independent. (M)BG/CNBD-k keeps its chosen
   ``k`` fixed. With ``penalizer_coef > 0`` the information is still that of the plain
   likelihood, around the penalised estimate.
2. **Flat directions.** Where the information is not positive definite, or nearly singular
   (:data:`FLAT_CURVATURE`), typically a fit in a limiting case that the search ends on a
   bound or a flat ridge (MBG/NBD's ``a -> 0`` or Pareto/NBD's ``s -> 0``: no dropout), the
   eigen-directions with little or no curvature are held at the estimate (zero variance) and
   the covariance's ``note`` says so. The intervals then leave out that direction's
   uncertainty, along which the likelihood, and mostly the forecasts, barely move.
3. **Draws.** Parameter sets from the multivariate normal in log space, seeded. Gamma-Gamma
   draws with ``q <= 1`` (no finite mean spend) are redrawn; a degenerate (constant-spend)
   Gamma-Gamma has nothing to draw.
4. **Quantiles.** For each draw the value of every customer, and per customer the requested
   quantiles over the draws (linear interpolation, numpy's default). Customers are first
   merged to their distinct ``(x, t_x, T)`` rows (purchases) and distinct spend rows, and
   the values are formed for blocks of distinct (purchase row, spend row) pairs at a time, so
   memory stays bounded (:data:`BLOCK_VALUES`) and 1M customers take seconds
   (``bench/bench_intervals.py``).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, Self, TypeVar

import numpy as np
import numpy.typing as npt

from ltvcast.exceptions import ConfigError
from ltvcast.models.bgnbd import (
    ArrayLike,
    BetaGeoModel,
    FloatArray,
    as_float_array,
    compress_rows,
    distinct_rows,
)
from ltvcast.models.cnbd import BetaGeoCNBDModel
from ltvcast.models.gamma_gamma import GammaGammaModel, spend_log_likelihood
from ltvcast.models.pareto_nbd import ParetoNBDModel

IntArray = npt.NDArray[np.int64]

#: Step of the central differences of the Hessian, in log-parameters.
HESSIAN_STEP = 1e-3
#: Eigenvalues of the information below this fraction of the largest count as flat (a
#: standard deviation over 100 times the best-determined direction's). Regular fits stay
#: above 1e-3 (CDNOW, 150 to 2,357 customers, every model); the flat ridges of a no-dropout
#: limit (MBG/NBD ``a -> 0``, Pareto/NBD ``s -> 0``) fall below 1e-5.
FLAT_CURVATURE = 1e-4
#: Values held at once while the quantiles are taken (draws x customer rows): 64 MB.
BLOCK_VALUES = 1 << 23
#: Purchase models with exponential (memoryless) inter-purchase times: given alive at ``T``,
#: their expected purchases depend on ``(x, T)`` only (FHL 2005 eq. 10, FHL note eq. 41:
#: P(alive) times a function of ``x`` and ``T``). (M)BG/CNBD-k is not: its phase since the
#: last purchase depends on ``t_x``.
MEMORYLESS = (BetaGeoModel, ParetoNBDModel)
#: Gamma-Gamma's parameters, in the order of its formulas.
SPEND_PARAMS = ("p", "q", "v")


class PurchaseModelLike(Protocol):
    """What the intervals need of an RFM-level purchase model (``BetaGeoModel`` and its
    siblings)."""

    params_: dict[str, float]

    @property
    def PARAMS(self) -> tuple[str, ...]: ...  # a class attribute of the models

    def set_params(self, params: dict[str, float]) -> Self: ...

    def log_likelihood(
        self,
        frequency: ArrayLike,
        recency: ArrayLike,
        T: ArrayLike,
        weights: ArrayLike | None = None,
    ) -> float: ...

    def p_alive(self, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike) -> FloatArray: ...

    def expected_purchases(
        self, t: float | ArrayLike, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
    ) -> FloatArray: ...


class _Parametrised(Protocol):
    def set_params(self, params: dict[str, float]) -> Self: ...


M = TypeVar("M", bound=_Parametrised)


@dataclass(frozen=True)
class ParameterCovariance:
    """Sampling covariance of a model's log-parameters at its estimate.

    Attributes
    ----------
    names
        The parameters, in the order of the rows of ``covariance``.
    covariance
        Covariance of their logarithms.
    note
        How it was obtained (``"observed information"``, or which directions were held).
    """

    names: tuple[str, ...]
    covariance: FloatArray
    note: str

    def standard_errors(self, params: dict[str, float]) -> dict[str, float]:
        """Standard errors of the parameters themselves (delta method: ``p sd(log p)``)."""
        sd = np.sqrt(np.diag(self.covariance))
        return {name: float(params[name] * s) for name, s in zip(self.names, sd, strict=True)}

    def draw(self, params: dict[str, float], n_draws: int, rng: np.random.Generator) -> FloatArray:
        """``n_draws`` parameter sets (rows, in ``names`` order) around ``params``."""
        centre = np.log([params[name] for name in self.names])
        log_draws = rng.multivariate_normal(centre, self.covariance, size=n_draws, method="eigh")
        out: FloatArray = np.exp(log_draws)
        return out

    def to_state(self) -> dict[str, Any]:
        """JSON-able form (lists), read back by :meth:`from_state`."""
        return {
            "names": list(self.names),
            "covariance": self.covariance.tolist(),
            "note": self.note,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> ParameterCovariance:
        """The covariance written by :meth:`to_state`.

        Raises
        ------
        ValueError
            When the matrix is not square over ``names``, not finite or not symmetric.
        """
        names = tuple(str(name) for name in state["names"])
        covariance = np.asarray(state["covariance"], dtype=np.float64)
        if covariance.shape != (len(names), len(names)) or not np.all(np.isfinite(covariance)):
            raise ValueError(f"covariance of {names} must be a finite square matrix")
        if not np.allclose(covariance, covariance.T):
            raise ValueError(f"covariance of {names} is not symmetric")
        return cls(names, covariance, str(state["note"]))


@dataclass(frozen=True)
class ParameterUncertainty:
    """The two independent blocks: purchase model and Gamma-Gamma (``None`` when its fit is
    degenerate: a constant spend has no parameter to draw)."""

    purchases: ParameterCovariance
    spend: ParameterCovariance | None

    def to_state(self) -> dict[str, Any]:
        """JSON-able form, read back by :meth:`from_state`."""
        return {
            "purchases": self.purchases.to_state(),
            "spend": None if self.spend is None else self.spend.to_state(),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> ParameterUncertainty:
        """The uncertainty written by :meth:`to_state`."""
        spend = state["spend"]
        return cls(
            ParameterCovariance.from_state(state["purchases"]),
            None if spend is None else ParameterCovariance.from_state(spend),
        )


def observed_covariance(
    log_likelihood: Callable[[FloatArray], float], theta: ArrayLike, step: float = HESSIAN_STEP
) -> tuple[FloatArray, str]:
    """Inverse observed information of the log-parameters ``theta`` (the estimate).

    The Hessian of ``log_likelihood`` (a function of the log-parameters) by central
    differences, ``(f(+i+j) - f(+i-j) - f(-i+j) + f(-i-j)) / 4h^2`` off the diagonal and
    ``(f(+i) - 2 f + f(-i)) / h^2`` on it. Eigen-directions of the information ``-H``
    whose eigenvalue is not above :data:`FLAT_CURVATURE` times the largest are held fixed
    (zero variance).

    Returns
    -------
    covariance, note
        The covariance of ``theta`` and how it was obtained.
    """
    centre = np.asarray(theta, dtype=np.float64)
    k = centre.size
    shifts = step * np.eye(k)
    value = log_likelihood(centre)
    hessian = np.empty((k, k))
    for i in range(k):
        up, down = log_likelihood(centre + shifts[i]), log_likelihood(centre - shifts[i])
        hessian[i, i] = (up - 2.0 * value + down) / step**2
        for j in range(i):
            corners = [
                log_likelihood(centre + si * shifts[i] + sj * shifts[j])
                for si, sj in ((1, 1), (1, -1), (-1, 1), (-1, -1))
            ]
            mixed = (corners[0] - corners[1] - corners[2] + corners[3]) / (4.0 * step**2)
            hessian[i, j] = hessian[j, i] = mixed
    if not np.all(np.isfinite(hessian)):
        return np.zeros((k, k)), "held at the estimate: the log-likelihood is not finite nearby"
    curvature, vectors = np.linalg.eigh(-hessian)
    kept = curvature > FLAT_CURVATURE * max(float(curvature.max()), 0.0)
    covariance: FloatArray = (vectors[:, kept] / curvature[kept]) @ vectors[:, kept].T
    if kept.all():
        return covariance, "observed information"
    held = int(np.count_nonzero(~kept))
    return covariance, (
        f"observed information; {held} of {k} directions with little or no curvature held "
        "at the estimate (a limiting case: a parameter on its bound or a flat ridge)"
    )


def purchase_covariance(
    model: PurchaseModelLike, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
) -> ParameterCovariance:
    """:func:`observed_covariance` of a fitted purchase model's ``PARAMS`` on its training
    rows (merged to distinct rows with weights).

    For (M)BG/CNBD-k the inter-purchase term of the likelihood, constant in the parameters,
    is left out (``litt = 0``) and ``k`` stays fixed.
    """
    names = tuple(model.PARAMS)
    x = as_float_array("frequency", frequency)
    (x, tx, t_cal), weights = compress_rows(
        (x, as_float_array("recency", recency, x.size), as_float_array("T", T, x.size)),
        np.ones_like(x),
    )

    def log_likelihood(theta: FloatArray) -> float:
        trial = _with_params(model, names, np.exp(theta))
        if isinstance(trial, BetaGeoCNBDModel):
            return trial.log_likelihood(x, tx, t_cal, weights, litt=np.zeros_like(weights))
        return trial.log_likelihood(x, tx, t_cal, weights)

    theta = np.log([model.params_[name] for name in names])
    covariance, note = observed_covariance(log_likelihood, theta)
    return ParameterCovariance(names, covariance, note)


def spend_covariance(
    model: GammaGammaModel, frequency: ArrayLike, monetary_value: ArrayLike
) -> ParameterCovariance | None:
    """:func:`observed_covariance` of a fitted Gamma-Gamma's ``p, q, v`` on its training
    rows; ``None`` for a degenerate (constant-spend) fit."""
    if model.degenerate_:
        return None

    rows = spend_log_likelihood(frequency, monetary_value)  # prepared once, not per step

    def log_likelihood(theta: FloatArray) -> float:
        return rows(np.log(np.exp(theta)))  # as the fitted model's own log_likelihood

    theta = np.log([model.params_[name] for name in SPEND_PARAMS])
    covariance, note = observed_covariance(log_likelihood, theta)
    return ParameterCovariance(SPEND_PARAMS, covariance, note)


def quantile_columns(quantiles: Sequence[float]) -> list[str]:
    """Column names of value quantiles: ``value_p10`` for 0.1 (``value_p2.5`` for 0.025)."""
    return [f"value_p{100.0 * q:.10g}" for q in quantiles]


def value_intervals(
    purchases: PurchaseModelLike,
    spend: GammaGammaModel,
    uncertainty: ParameterUncertainty,
    t: float,
    frequency: ArrayLike,
    recency: ArrayLike,
    T: ArrayLike,
    spend_frequency: ArrayLike,
    monetary_value: ArrayLike,
    *,
    quantiles: Sequence[float] = (0.1, 0.9),
    n_draws: int = 200,
    random_state: int | None = 0,
) -> FloatArray:
    """Per customer, quantiles of the expected value over ``t`` under parameter uncertainty.

    Parameters
    ----------
    purchases, spend
        The fitted purchase model and Gamma-Gamma.
    uncertainty
        Their sampling covariances (:func:`purchase_covariance`, :func:`spend_covariance`).
    t
        Horizon, in the time unit of ``recency`` and ``T``.
    frequency, recency, T
        The purchase model's inputs, one row per customer.
    spend_frequency, monetary_value
        Gamma-Gamma's inputs (``x`` and mean spend) for the same customers.
    quantiles
        Levels in (0, 1).
    n_draws
        Parameter sets drawn (at least 2).
    random_state
        Seed of the draws; the same seed gives the same intervals.

    Returns
    -------
    ndarray
        Shape ``(customers, len(quantiles))``.

    Raises
    ------
    ConfigError
        For levels outside (0, 1) or fewer than 2 draws.
    """
    levels = np.asarray(quantiles, dtype=np.float64)
    if levels.ndim != 1 or levels.size == 0 or not np.all((levels > 0) & (levels < 1)):
        raise ConfigError(f"quantiles must be levels in (0, 1); got {quantiles!r}")
    if isinstance(n_draws, bool) or not isinstance(n_draws, int) or n_draws < 2:
        raise ConfigError(f"n_draws must be an integer >= 2; got {n_draws!r}")
    rng = np.random.default_rng(random_state)
    sets = uncertainty.purchases.draw(purchases.params_, n_draws, rng)
    purchase_models = [_with_params(purchases, uncertainty.purchases.names, s) for s in sets]
    if uncertainty.spend is None:
        spend_models = [spend] * n_draws
    else:
        spend_sets = _spend_draws(spend, uncertainty.spend, n_draws, rng)
        spend_models = [_with_params(spend, SPEND_PARAMS, s) for s in spend_sets]
    return value_quantiles(
        purchase_models,
        spend_models,
        t,
        frequency,
        recency,
        T,
        spend_frequency,
        monetary_value,
        levels,
    )


def value_quantiles(
    purchase_models: Sequence[PurchaseModelLike],
    spend_models: Sequence[GammaGammaModel],
    t: float,
    frequency: ArrayLike,
    recency: ArrayLike,
    T: ArrayLike,
    spend_frequency: ArrayLike,
    monetary_value: ArrayLike,
    quantiles: ArrayLike,
) -> FloatArray:
    """Per customer, quantiles over the draws ``d`` of ``purchase_models[d]``'s expected
    purchases in ``t`` times ``spend_models[d]``'s expected spend.

    Each draw's models are evaluated once per distinct ``(x, t_x, T)`` and spend row, over
    blocks of distinct (purchase row, spend row) pairs of at most :data:`BLOCK_VALUES`
    values; quantiles interpolate linearly between the sorted draws (numpy's default).
    Models of :data:`MEMORYLESS` evaluate their expectation given alive once per distinct
    ``(x, T)`` and only P(alive) per row.
    """
    n_draws = len(purchase_models)
    if len(spend_models) != n_draws:
        raise ConfigError(f"{n_draws} purchase models but {len(spend_models)} spend models")
    x = as_float_array("frequency", frequency)
    columns = [as_float_array(name, values, x.size) for name, values in (
        ("recency", recency), ("T", T), ("spend_frequency", spend_frequency),
        ("monetary_value", monetary_value),
    )]  # fmt: skip
    purchase_rows, purchase_row = distinct_rows(x, columns[0], columns[1])
    (usx, um), spend_row = distinct_rows(columns[2], columns[3])
    pairs, customer_pair = np.unique(purchase_row * len(usx) + spend_row, return_inverse=True)
    pair_purchase, pair_spend = np.divmod(pairs, len(usx))
    purchases = _Purchases(purchase_models, t, *purchase_rows)
    levels = np.asarray(quantiles, dtype=np.float64)
    out = np.empty((pairs.size, levels.size))
    block = max(1, BLOCK_VALUES // n_draws)
    # Two buffers reused by every block (a fresh 64 MB array each time costs page faults).
    buffers = np.empty((2, n_draws * min(block, pairs.size)))
    for lo in range(0, pairs.size, block):
        hi = min(lo + block, pairs.size)
        first, last = int(pair_purchase[lo]), int(pair_purchase[hi - 1]) + 1
        spend_rows, spend_local = np.unique(pair_spend[lo:hi], return_inverse=True)
        spend = np.empty((n_draws, spend_rows.size))
        for d, model in enumerate(spend_models):
            spend[d] = model.expected_spend(usx[spend_rows], um[spend_rows])
        # One row of draws per pair: contiguous rows sort fastest.
        values, other = (b[: n_draws * (hi - lo)].reshape(hi - lo, n_draws) for b in buffers)
        local = pair_purchase[lo:hi] - first
        np.take(purchases.block(first, last).T.copy(), local, 0, values, "clip")
        np.take(spend.T.copy(), spend_local.ravel(), 0, other, "clip")
        values *= other
        values.sort(axis=1)
        out[lo:hi] = _sorted_quantiles(values, levels)
    result: FloatArray = out[customer_pair]
    return result


class _Purchases:
    """Each draw's expected purchases on blocks of distinct ``(x, t_x, T)`` rows (sorted)."""

    def __init__(
        self,
        models: Sequence[PurchaseModelLike],
        t: float,
        x: FloatArray,
        tx: FloatArray,
        t_cal: FloatArray,
    ) -> None:
        self.models, self.t, self.x, self.tx, self.t_cal = models, t, x, tx, t_cal
        self.given_alive: FloatArray | None = None
        if all(isinstance(model, MEMORYLESS) for model in models):
            # E[purchases | alive at T] per distinct (x, T), from the rows with t_x = T.
            (ux, ut), self.x_t_row = distinct_rows(x, t_cal)
            self.given_alive = np.stack(
                [m.expected_purchases(t, ux, ut, ut) / m.p_alive(ux, ut, ut) for m in models]
            )

    def block(self, first: int, last: int) -> FloatArray:
        """Shape ``(draws, last - first)``: rows ``first`` to ``last - 1``."""
        rows = slice(first, last)
        x, tx, t_cal = self.x[rows], self.tx[rows], self.t_cal[rows]
        out = np.empty((len(self.models), last - first))
        for d, model in enumerate(self.models):
            if self.given_alive is None:
                out[d] = model.expected_purchases(self.t, x, tx, t_cal)
            else:
                out[d] = model.p_alive(x, tx, t_cal) * self.given_alive[d, self.x_t_row[rows]]
        return out


def _with_params(model: M, names: tuple[str, ...], values: FloatArray) -> M:
    """A copy of ``model`` with parameters ``values`` (in ``names`` order)."""
    return copy.copy(model).set_params(dict(zip(names, map(float, values), strict=True)))


def _spend_draws(
    model: GammaGammaModel, covariance: ParameterCovariance, n_draws: int, rng: np.random.Generator
) -> FloatArray:
    """``n_draws`` Gamma-Gamma sets with ``q > 1``, the others redrawn (more than half pass:
    the estimate itself has ``q > 1``)."""
    q = covariance.names.index("q")
    kept = np.empty((0, len(covariance.names)))
    while len(kept) < n_draws:
        sets = covariance.draw(model.params_, n_draws, rng)
        kept = np.vstack([kept, sets[sets[:, q] > 1.0]])
    out: FloatArray = kept[:n_draws]
    return out


def _sorted_quantiles(values: FloatArray, levels: FloatArray) -> FloatArray:
    """Quantiles (columns) of each row of ``values`` (sorted along axis 1), interpolated
    linearly."""
    position = levels * (values.shape[1] - 1)
    below = np.floor(position).astype(np.int64)
    above = np.minimum(below + 1, values.shape[1] - 1)
    frac = position - below
    out: FloatArray = values[:, below] * (1.0 - frac) + values[:, above] * frac
    return out
