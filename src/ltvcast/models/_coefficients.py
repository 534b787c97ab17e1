"""What the covariate models share (:mod:`ltvcast.models.covariates`): the covariate checks,
the log-linear link from covariates to a parameter, the maximum-likelihood search over the
population parameters and coefficients, the observed information and the coefficient table.

A block of coefficients ``g`` ties a covariate argument ``z_i`` to one population parameter:
``theta_i = theta exp(sign g'z_i)`` (Fader & Hardie 2007). The search runs on standardised
covariates (centred on their weighted mean, divided by their standard deviation), where the
start (every coefficient 0, the population parameters of the plain fit) is the plain model's
optimum; the result is mapped back to the user's units, a linear map of the log-parameters
and coefficients, which also carries the covariance over exactly.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any, ClassVar, Self

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy.special import ndtr

from ltvcast.exceptions import ConfigError, NotFittedError
from ltvcast.models._population import Param
from ltvcast.models.bgnbd import LOG_BOUND, FloatArray, maximise_log_likelihood

#: Covariates of one argument: a DataFrame, a 2-d array (columns ``x0, x1 ...``), a 1-d array
#: (one covariate), or None (none).
Covariates = pd.DataFrame | npt.ArrayLike | None
#: Rows' log-parameters -> per-row log-likelihood and its gradient in them (rows x params).
RowLikelihood = Callable[[list[Param]], tuple[FloatArray, FloatArray]]
#: Step of the central differences of the gradient that give the observed information.
HESSIAN_STEP = 1e-3
#: A parameter whose weight in a flat direction of the information (a unit eigenvector)
#: reaches this has no standard error.
FLAT_LOADING = 1e-2


@dataclass(frozen=True)
class Block:
    """Coefficients of one covariate argument on one population parameter.

    ``name`` prefixes the coefficients' names (``"purchase:age"``), ``source`` is the
    argument holding the covariates, ``param`` the index of the parameter in ``PARAMS`` and
    ``sign`` the link: the parameter of customer ``i`` is ``theta exp(sign g'z_i)``.
    """

    name: str
    source: str
    param: int
    sign: float


def covariate_matrix(
    argument: str, values: Covariates, n_rows: int, names: Sequence[str] | None = None
) -> tuple[FloatArray, tuple[str, ...]]:
    """``values`` as a finite float matrix with ``n_rows`` rows, and its column names.

    ``values`` is a DataFrame (columns named after its own; with ``names``, those columns in
    that order), a 2-d array (columns ``x0, x1 ...``, or ``names``) or a 1-d array (one
    column); ``None`` is no covariate.

    Raises
    ------
    ConfigError
        For a wrong shape or row count, a missing, non-numeric or non-finite column (the
        message names the column).
    """
    if values is None:
        if names:
            raise ConfigError(f"{argument} is missing; the model was fitted with {list(names)}")
        return np.zeros((n_rows, 0)), ()
    columns = getattr(values, "columns", None)
    if columns is not None:
        own = tuple(str(c) for c in columns)
        wanted = own if names is None else tuple(names)
        missing = [name for name in wanted if name not in own]
        if missing:
            raise ConfigError(f"{argument} lacks the column(s) {missing}; it has {list(own)}")
        frame: Any = values
        raw = [frame[columns[own.index(name)]] for name in wanted]
    else:
        array = np.asarray(values)
        if array.ndim == 1:
            array = array[:, None]
        if array.ndim != 2:
            raise ConfigError(f"{argument} must be 1- or 2-dimensional; got shape {array.shape}")
        wanted = (
            tuple(names) if names is not None else tuple(f"x{j}" for j in range(array.shape[1]))
        )
        if array.shape[1] != len(wanted):
            raise ConfigError(
                f"{argument} has {array.shape[1]} columns; the model was fitted with "
                f"{len(wanted)} ({list(wanted)})"
            )
        raw = [array[:, j] for j in range(array.shape[1])]
    if len(set(wanted)) < len(wanted):
        raise ConfigError(f"{argument} column names must be unique; got {list(wanted)}")
    out = np.zeros((n_rows, len(wanted)))
    for j, (name, column) in enumerate(zip(wanted, raw, strict=True)):
        try:
            numbers = np.asarray(column, dtype=np.float64)
        except (TypeError, ValueError):
            raise ConfigError(
                f"{argument} column {name!r} must be numeric; encode categories as 0/1 "
                "columns first (BTYDForecaster(covariates=...) does so from profiles)"
            ) from None
        if numbers.shape != (n_rows,):
            raise ConfigError(f"{argument} has {numbers.size} rows but {n_rows} were expected")
        bad = np.flatnonzero(~np.isfinite(numbers))
        if bad.size:
            raise ConfigError(
                f"{argument} column {name!r} must be finite; {bad.size} rows are not "
                f"(positions {bad[:5].tolist()})"
            )
        out[:, j] = numbers
    return out, wanted


def covariate_rows(values: Mapping[str, Covariates]) -> int:
    """Rows of the first covariate argument given (0 when none is)."""
    given = [v for v in values.values() if v is not None]
    return int(np.shape(given[0])[0]) if given else 0


def check_estimable(argument: str, matrix: FloatArray, names: Sequence[str]) -> None:
    """Refuse covariates whose coefficients the data cannot identify: a constant column (its
    effect is the population parameter's) or one that is a linear combination of the others
    (e.g. every level of a one-hot encoding)."""
    for j, name in enumerate(names):
        if np.ptp(matrix[:, j]) == 0:
            raise ConfigError(
                f"{argument} column {name!r} is constant ({matrix[0, j]:g} for every customer "
                "fitted): its effect cannot be told apart from the population's parameter; "
                "drop it"
            )
    scaled = (matrix - matrix.mean(axis=0)) / matrix.std(axis=0)
    for j, name in enumerate(names):
        if np.linalg.matrix_rank(scaled[:, : j + 1]) <= j:
            raise ConfigError(
                f"{argument} column {name!r} is a linear combination of the columns before "
                f"it ({list(names[:j])}), as every level of a one-hot encoding is of the "
                "others; drop one"
            )


class CoefficientModel:
    """Base of the covariate models: population parameters ``PARAMS`` and the coefficients of
    ``_BLOCKS``, fitted by :meth:`_search`.

    Parameters
    ----------
    penalizer_coef
        L2 penalty added to the mean negative log-likelihood, on the (rescaled) population
        parameters as in the plain models, and on the coefficients of the standardised
        covariates; 0 for none.
    prior_sd
        Standard deviation of a normal prior on the coefficients of the standardised
        covariates (PyMC-Marketing's default prior is the same ``Normal(0, 1)``): the fit is
        the posterior mode, within ``O(1/n)`` of the maximum likelihood where the data
        identify a coefficient, and near 0 where they do not (such as dropout coefficients
        on data where hardly anyone drops out), instead of a search that runs off to
        infinity along a flat ridge. ``np.inf`` gives the maximum likelihood.

    Attributes
    ----------
    params_ : dict
        The population's parameters (those of a customer whose covariates are all 0), then
        the coefficients, named ``"<block>:<column>"``.
    covariance_ : ndarray
        Covariance of the estimates, from the observed information at the fit, over the
        logs of the population's parameters and the coefficients, in the order of
        ``params_`` (NaN where the information matrix is singular or a parameter is on its
        search bound).
    log_likelihood_, null_log_likelihood_ : float
        Log-likelihood of the fitted data at the fit, and under the plain model's fit (no
        covariate): twice their difference is the likelihood-ratio statistic, with as many
        degrees of freedom as coefficients.
    """

    PARAMS: ClassVar[tuple[str, ...]]
    _NAME: ClassVar[str]
    _BLOCKS: ClassVar[tuple[Block, ...]]
    _FIT_CALL: ClassVar[str]
    params_: dict[str, float]
    covariance_: FloatArray

    def __init__(self, penalizer_coef: float = 0.0, prior_sd: float = 1.0) -> None:
        self.penalizer_coef = penalizer_coef
        self.prior_sd = prior_sd

    @property
    def covariate_names_(self) -> dict[str, tuple[str, ...]]:
        """Column names of each covariate argument, as fitted (empty when not used)."""
        return self._names_of(self._fitted())

    def set_params(
        self, params: Mapping[str, float], covariance: Sequence[Sequence[float]] | None = None
    ) -> Self:
        """Use given parameters and coefficients (``params_`` as written to JSON) instead of
        fitting, and optionally their ``covariance_``.

        Raises
        ------
        ConfigError
            For a missing or non-positive population parameter, or a coefficient that names
            no block of the model.
        """
        missing = [k for k in self.PARAMS if k not in params]
        if missing:
            raise ConfigError(f"{self._NAME} parameters lack {missing}")
        bad = {k: params[k] for k in self.PARAMS if not float(params[k]) > 0}
        if bad:
            raise ConfigError(f"{self._NAME} parameters must be positive; got {bad}")
        blocks = {b.name for b in self._BLOCKS}
        unknown = [k for k in params if k not in self.PARAMS and k.split(":")[0] not in blocks]
        if unknown:
            raise ConfigError(
                f"{self._NAME} has no parameter {unknown[0]!r} (coefficients are named "
                f"'<block>:<column>' with a block among {sorted(blocks)})"
            )
        values = {k: float(params[k]) for k in self.PARAMS}
        values.update({k: float(v) for k, v in params.items() if k not in self.PARAMS})
        self._names_of(values)
        size = len(values)
        matrix = np.full((size, size), np.nan) if covariance is None else np.asarray(covariance)
        if matrix.shape != (size, size):
            raise ConfigError(
                f"{self._NAME} covariance must be {size} x {size} (the parameters); got "
                f"shape {matrix.shape}"
            )
        self.params_ = values
        self.covariance_ = matrix.astype(np.float64)
        return self

    def coefficient_table(self) -> pd.DataFrame:
        """Estimates with standard errors from the observed information matrix.

        Population parameters get the delta-method error of the parameter (the estimate
        times the error of its log); coefficients also get the Wald ``z`` and its two-sided
        ``p_value``. The errors are those of the likelihood at the estimates, without the
        prior (``prior_sd``) or a ``penalizer_coef``: where the data identify a coefficient
        they barely move it; where they do not, it stays near 0 without an error.

        Returns
        -------
        DataFrame
            Indexed like ``params_``: ``estimate``, ``std_error``, ``z``, ``p_value``.
        """
        params = self._fitted()
        names = list(params)
        estimate = np.array([params[k] for k in names])
        with np.errstate(invalid="ignore"):
            error = np.sqrt(np.diag(self.covariance_))
        base = len(self.PARAMS)
        error[:base] = estimate[:base] * error[:base]
        z = np.full(len(names), np.nan)
        z[base:] = estimate[base:] / error[base:]
        return pd.DataFrame(
            {"estimate": estimate, "std_error": error, "z": z, "p_value": 2.0 * ndtr(-np.abs(z))},
            index=pd.Index(names, name="parameter"),
        )

    # ------------------------------------------------------------------ helpers
    def _names_of(self, params: Mapping[str, float]) -> dict[str, tuple[str, ...]]:
        """Per covariate argument, the columns its coefficients in ``params`` name (blocks
        of one argument must name the same)."""
        out: dict[str, tuple[str, ...]] = {}
        for block in self._BLOCKS:
            prefix = f"{block.name}:"
            names = tuple(k[len(prefix) :] for k in params if k.startswith(prefix))
            if out.setdefault(block.source, names) != names:
                raise ConfigError(
                    f"{self._NAME} coefficients of {block.source} name different columns: "
                    f"{list(out[block.source])} and {list(names)}"
                )
        return out

    def _fitted(self) -> dict[str, float]:
        if not hasattr(self, "params_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted; call {self._FIT_CALL}")
        return self.params_

    def _row_log_params(self, n_rows: int, covariates: Mapping[str, Covariates]) -> list[Param]:
        """Each customer's log-parameters (``PARAMS`` order; floats where no covariate acts)."""
        params = self._fitted()
        names = self.covariate_names_
        for source, values in covariates.items():
            if values is not None and not names.get(source):
                raise ConfigError(f"{self._NAME} was fitted without {source}")
        out: list[Param] = [float(np.log(params[k])) for k in self.PARAMS]
        for block in self._BLOCKS:
            columns = names[block.source]
            if columns:
                matrix, _ = covariate_matrix(
                    block.source, covariates[block.source], n_rows, columns
                )
                coefs = np.array([params[f"{block.name}:{c}"] for c in columns])
                out[block.param] = out[block.param] + block.sign * (matrix @ coefs)
        return out

    def _search(
        self,
        row_likelihood: RowLikelihood,
        start: FloatArray,
        matrices: Mapping[str, FloatArray],
        names: Mapping[str, tuple[str, ...]],
        weights: FloatArray,
        *,
        log_scale: FloatArray,
        method: str = "TNC",
    ) -> None:
        """Maximise the likelihood from the plain fit ``start`` (log-parameters, in the
        search's units) and set ``params_`` and ``covariance_``.

        ``matrices`` hold each argument's covariates on the (merged) rows of ``weights``;
        ``log_scale`` is added to each log-parameter to go back to the user's units (time
        and money are rescaled during the search).
        """
        n_base = len(self.PARAMS)
        total = float(weights.sum())
        mean = {s: np.average(z, axis=0, weights=weights) for s, z in matrices.items()}
        sd = {
            s: np.sqrt(np.average((z - mean[s]) ** 2, axis=0, weights=weights))
            for s, z in matrices.items()
        }
        standard = {s: (z - mean[s]) / sd[s] for s, z in matrices.items()}
        blocks = [b for b in self._BLOCKS if names[b.source]]
        sizes = [len(names[b.source]) for b in blocks]
        edges = np.cumsum([n_base, *sizes])
        slices = [slice(lo, hi) for lo, hi in pairwise(edges)]

        def log_params(theta: FloatArray) -> list[Param]:
            """The rows' log-parameters, held within the plain search's bounds (past them
            the formulas lose their precision; a row held there has no gradient)."""
            out: list[Param] = [float(v) for v in theta[:n_base]]
            for block, part in zip(blocks, slices, strict=True):
                offset = block.sign * (standard[block.source] @ theta[part])
                out[block.param] = out[block.param] + offset
            return [v if np.ndim(v) == 0 else np.clip(v, -LOG_BOUND, LOG_BOUND) for v in out]

        def loglik(theta: FloatArray) -> tuple[float, FloatArray]:
            rows = log_params(theta)
            ll, grad = row_likelihood(rows)
            for j, v in enumerate(rows):
                if np.ndim(v):
                    grad[np.abs(v) >= LOG_BOUND, j] = 0.0
            weighted = grad * weights[:, None]
            parts = [weighted.sum(axis=0)] + [
                block.sign * (standard[block.source].T @ weighted[:, block.param])
                for block in blocks
            ]
            return float(weights @ ll), np.concatenate(parts)

        penalty = self.penalizer_coef
        if not self.prior_sd > 0:
            raise ConfigError(f"prior_sd must be > 0 (inf: no prior); got {self.prior_sd!r}")
        # The prior's -log density, 1/2 (g' / sd)^2 on the total, per customer as the rest.
        prior = 1.0 / (self.prior_sd**2 * total)

        def objective(theta: FloatArray) -> tuple[float, FloatArray]:
            ll, grad = loglik(theta)
            if not np.isfinite(ll):  # a parameter so extreme that some row cannot be evaluated
                return np.inf, np.zeros_like(theta)
            params, coefs = np.exp(theta[:n_base]), theta[n_base:]
            value = -ll / total + penalty * float(params @ params + coefs @ coefs)
            value += 0.5 * prior * float(coefs @ coefs)
            shrink = np.concatenate([params**2, coefs])
            gradient = np.nan_to_num(-grad / total) + 2.0 * penalty * shrink
            gradient[n_base:] += prior * coefs
            return value, gradient

        x0 = np.concatenate([start, np.zeros(int(edges[-1]) - n_base)])
        theta = maximise_log_likelihood(objective, x0, self._NAME, method=method)
        covariance = _inverse_information(loglik, theta)
        # Back to the user's units: g = g' / sd, log theta = log theta' - sign (mean / sd)'g'.
        to_user = np.eye(theta.size)
        for block, part in zip(blocks, slices, strict=True):
            to_user[part, part] = np.diag(1.0 / sd[block.source])
            to_user[block.param, part] -= block.sign * mean[block.source] / sd[block.source]
        user = to_user @ theta
        user[:n_base] += log_scale
        # A parameter without an error (on its bound) leaves those it enters without one.
        known = ~np.isnan(np.diag(covariance))
        unknown = (to_user[:, ~known] != 0).any(axis=1)
        covariance = to_user @ np.where(np.isnan(covariance), 0.0, covariance) @ to_user.T
        covariance[unknown, :] = np.nan
        covariance[:, unknown] = np.nan
        self.params_ = {k: float(np.exp(v)) for k, v in zip(self.PARAMS, user, strict=False)}
        for block, part in zip(blocks, slices, strict=True):
            for column, value in zip(names[block.source], user[part], strict=True):
                self.params_[f"{block.name}:{column}"] = float(value)
        self.covariance_ = covariance


def _inverse_information(
    loglik: Callable[[FloatArray], tuple[float, FloatArray]], theta: FloatArray
) -> FloatArray:
    """Inverse of the observed information (minus the Hessian of the log-likelihood, by
    central differences of its gradient), NaN for the parameters it cannot give an error.

    Those are the parameters on their search bound, and those along a direction the data
    leave flat: an eigenvalue of the information no larger than the differences' noise (the
    asymmetry of the raw Hessian), such as the ridge of Pareto/NBD's ``s`` and ``beta`` when
    dropout is rare. The other errors come from the inverse on the remaining directions
    (the flat ones barely involve them; see :data:`FLAT_LOADING`).
    """
    free = np.flatnonzero(np.abs(theta) < LOG_BOUND - 1e-6)
    hessian = np.zeros((free.size, free.size))
    for col, j in enumerate(free):
        step = np.zeros_like(theta)
        step[j] = HESSIAN_STEP
        up, down = loglik(theta + step)[1], loglik(theta - step)[1]
        hessian[:, col] = (up - down)[free] / (2.0 * HESSIAN_STEP)
    out = np.full((theta.size, theta.size), np.nan)
    if not np.all(np.isfinite(hessian)):
        return out
    information = -0.5 * (hessian + hessian.T)
    noise = float(np.max(np.abs(hessian - hessian.T), initial=0.0))
    values, vectors = np.linalg.eigh(information)
    flat = values <= max(noise, 1e-9 * float(values.max(initial=0.0)))
    inverse = (vectors[:, ~flat] / values[~flat]) @ vectors[:, ~flat].T
    known = np.all(np.abs(vectors[:, flat]) < FLAT_LOADING, axis=1)
    rows = free[known]
    out[np.ix_(rows, rows)] = inverse[np.ix_(known, known)]
    return out
