"""Pareto/NBD model of repeat purchasing (Schmittlein, Morrison & Colombo 1987).

Schmittlein, D. C., Morrison, D. G. & Colombo, R. (1987). Counting Your Customers: Who Are
They and What Will They Do Next? *Management Science* 33(1), 1-24; expressions as derived in
Fader, P. S., Hardie, B. G. S. & Lee, K. L. (2005). "A Note on Deriving the Pareto/NBD Model
and Related Expressions" (http://brucehardie.com/notes/009/).

While alive a customer buys at Poisson rate ``lambda ~ Gamma(r, alpha)``; their lifetime is
exponential with rate ``mu ~ Gamma(s, beta)``, independent of ``lambda``. Inputs are those of
the BG/NBD: ``frequency`` (x), ``recency`` (t_x) and ``T`` in one time unit.

Every expression reduces to the integral ``int_y^inf (alpha + u)^-A (beta + u)^-B du`` (the
note's ``A_0`` is a difference of two of them), evaluated in log space by
:func:`log_tail_integral` through a hypergeometric form whose value stays bounded for heavy
buyers (see there).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy.special import gammaln, hyp2f1, logit, roots_legendre

from ltvcast.models._population import Param, PopulationModel
from ltvcast.models.bgnbd import (
    ArrayLike,
    FloatArray,
    as_float_array,
    check_future_rfm,
    check_rfm,
    maximise_log_likelihood,
    prepare_fit,
)

#: Step of the central differences that give the likelihood's gradient in log-parameters.
GRADIENT_STEP = 1e-6


class ParetoNBDModel(PopulationModel):
    """Pareto/NBD model fitted by maximum likelihood (FHL 2005 note, eq. 22).

    Parameters
    ----------
    penalizer_coef
        L2 penalty on the (time-scaled) parameters added to the mean negative
        log-likelihood, as in ``lifetimes``; 0 gives the plain MLE.

    Attributes
    ----------
    params_ : dict
        ``r``, ``alpha``, ``s``, ``beta`` in the time unit of the fitted data.
    n_customers_ : float
        Total weight (customers) the model was fitted on.
    """

    _NAME = "Pareto/NBD"
    PARAMS = ("r", "alpha", "s", "beta")

    def fit(
        self,
        frequency: ArrayLike,
        recency: ArrayLike,
        T: ArrayLike,
        weights: ArrayLike | None = None,
    ) -> ParetoNBDModel:
        """Fit ``r, alpha, s, beta`` by maximising the likelihood.

        Identical ``(x, t_x, T)`` rows are merged into weights; time is rescaled so that the
        longest ``T`` is 10 units during the search (``alpha`` and ``beta`` are scaled back).
        The gradient is taken by central differences, the search is L-BFGS-B.

        Raises
        ------
        ConfigError
            For non-finite inputs, negative frequency, or recency outside ``[0, T]``.
        InsufficientDataError
            With fewer than 4 customers, no repeat purchase, or no convergence.
        """
        x, tx, t_cal, w, scale = prepare_fit(
            self._NAME, self.penalizer_coef, frequency, recency, T, weights
        )
        total = float(w.sum())
        penalty = self.penalizer_coef
        steps = GRADIENT_STEP * np.eye(4)

        def objective(theta: FloatArray) -> float:
            params = np.exp(theta)
            ll = log_likelihood_rows(tuple(params), x, tx, t_cal)
            value = -float(w @ ll) / total + penalty * float(params @ params)
            # A parameter so extreme that some row cannot be evaluated is no optimum.
            return value if np.isfinite(value) else np.inf

        def neg_loglik(theta: FloatArray) -> tuple[float, FloatArray]:
            ups = np.array([objective(theta + h) for h in steps])
            downs = np.array([objective(theta - h) for h in steps])
            grad = np.nan_to_num(
                (ups - downs) / (2.0 * GRADIENT_STEP), nan=0.0, posinf=0.0, neginf=0.0
            )
            return objective(theta), grad

        theta = maximise_log_likelihood(neg_loglik, np.zeros(4), self._NAME, method="L-BFGS-B")
        r, alpha, s, beta = np.exp(theta)
        self.params_ = {
            "r": float(r),
            "alpha": float(alpha / scale),
            "s": float(s),
            "beta": float(beta / scale),
        }
        self.n_customers_ = total
        return self

    # -------------------------------------------------------------- predictions
    def log_likelihood(
        self,
        frequency: ArrayLike,
        recency: ArrayLike,
        T: ArrayLike,
        weights: ArrayLike | None = None,
    ) -> float:
        """Total log-likelihood of the data under the fitted parameters (FHL note, eq. 22)."""
        params = self._params()
        x, tx, t_cal = check_rfm(frequency, recency, T)
        w = np.ones_like(x) if weights is None else as_float_array("weights", weights, x.size)
        return float(w @ log_likelihood_rows(params, x, tx, t_cal))

    def p_alive(self, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike) -> FloatArray:
        """P(alive at T | x, t_x, T) (FHL note, eq. 24): the "alive" term's share of the
        likelihood."""
        params = self._params()
        x, tx, t_cal = check_rfm(frequency, recency, T)
        alive, dead = _branches(params, x, tx, t_cal)
        out: FloatArray = np.exp(alive - np.logaddexp(alive, dead))
        return out

    def p_alive_at(
        self, t: float | ArrayLike, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
    ) -> FloatArray:
        """P(alive at ``T + t`` | x, t_x, T): alive at ``T``, then a lifetime past ``T + t``.

        Given alive at ``T`` the dropout rate is ``mu ~ Gamma(s, beta + T)`` (purchases do not
        move it), so the factor is ``E[exp(-mu t)] = ((beta + T) / (beta + T + t))^s``.
        """
        r, alpha, s, beta = self._params()
        x, tx, t_cal, t_arr = check_future_rfm(t, frequency, recency, T)
        alive, dead = _branches((r, alpha, s, beta), x, tx, t_cal)
        p_alive = np.exp(alive - np.logaddexp(alive, dead))
        out: FloatArray = p_alive * np.exp(-s * np.log1p(t_arr / (beta + t_cal)))
        return out

    def expected_purchases(
        self, t: float | ArrayLike, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
    ) -> FloatArray:
        """Expected purchases in ``(T, T + t]`` given ``(x, t_x, T)`` (FHL note, eq. 41).

        ``P(alive) (r + x) (beta + T) / ((alpha + T) (s - 1)) (1 - ((beta + T) / (beta + T +
        t))^(s - 1))``, with the last factor over ``s - 1`` evaluated by ``expm1`` so that
        ``s = 1`` is its limit ``log(1 + t / (beta + T))``.
        """
        r, alpha, s, beta = self._params()
        x, tx, t_cal, t_arr = check_future_rfm(t, frequency, recency, T)
        alive, dead = _branches((r, alpha, s, beta), x, tx, t_cal)
        p_alive = np.exp(alive - np.logaddexp(alive, dead))
        horizon = np.log1p(t_arr / (beta + t_cal))
        if abs(s - 1.0) < 1e-8:
            lifetime = horizon
        else:
            lifetime = -np.expm1(-(s - 1.0) * horizon) / (s - 1.0)
        out: FloatArray = p_alive * (r + x) * (beta + t_cal) / (alpha + t_cal) * lifetime
        return out

    def p_no_purchase(
        self, t: float | ArrayLike, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
    ) -> FloatArray:
        """P(no purchase in ``(T, T + t]`` | x, t_x, T).

        A customer alive at ``T`` has ``lambda ~ Gamma(r + x, alpha + T)`` and
        ``mu ~ Gamma(s, beta + T)``; they buy in the window when their next purchase comes
        before both their death and ``T + t``, with probability ``int_0^t E[lambda
        exp(-(lambda + mu) u)] du = (r + x) (alpha + T)^(r + x) (beta + T)^s int_T^(T + t)
        (alpha + u)^-(r + x + 1) (beta + u)^-s du``.
        """
        r, alpha, s, beta = self._params()
        x, tx, t_cal, t_arr = check_future_rfm(t, frequency, recency, T)
        alive, dead = _branches((r, alpha, s, beta), x, tx, t_cal)
        p_alive = np.exp(alive - np.logaddexp(alive, dead))
        shape = r + x + 1.0
        log_window = _log_integral_between(alpha, beta, shape, s, t_cal, t_cal + t_arr)
        log_buy = (
            np.log(r + x) + (r + x) * np.log(alpha + t_cal) + s * np.log(beta + t_cal) + log_window
        )
        out: FloatArray = 1.0 - p_alive * np.minimum(np.exp(log_buy), 1.0)
        return out

    # ------------------------------------------------------------------ helpers


def _branches(
    params: tuple[Param, Param, Param, Param], x: FloatArray, tx: FloatArray, t_cal: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Log of the likelihood's two terms without their common factor: "alive at T",
    ``-(r + x) log(alpha + T) - s log(beta + T)``, and "died in (t_x, T]",
    ``log(s int_(t_x)^T (alpha + u)^-(r + x) (beta + u)^-(s + 1) du)`` (the note's
    ``s / (r + s + x) A_0``)."""
    r, alpha, s, beta = params
    alive = -(r + x) * np.log(alpha + t_cal) - s * np.log(beta + t_cal)
    dead = np.log(s) + _log_integral_between(alpha, beta, r + x, s + 1.0, tx, t_cal)
    return alive, dead


def log_likelihood_rows(
    params: tuple[Param, ...], x: FloatArray, tx: FloatArray, t_cal: FloatArray
) -> FloatArray:
    """Per-row log-likelihood (FHL note, eq. 22, both ``alpha >= beta`` and ``alpha < beta``);
    each of ``params = (r, alpha, s, beta)`` a float or one value per row."""
    r, alpha, s, beta = params
    alive, dead = _branches((r, alpha, s, beta), x, tx, t_cal)
    head = gammaln(r + x) - gammaln(r) + r * np.log(alpha) + s * np.log(beta)
    out: FloatArray = head + np.logaddexp(alive, dead)
    return out


def _log_integral_between(
    alpha: Param, beta: Param, A: Param, B: Param, lower: FloatArray, upper: FloatArray
) -> FloatArray:
    """``log int_lower^upper (alpha + u)^-A (beta + u)^-B du`` (``-inf`` where the bounds meet)."""
    log_lower = log_tail_integral(alpha, beta, A, B, lower)
    log_upper = log_tail_integral(alpha, beta, A, B, upper)
    with np.errstate(divide="ignore"):
        gap = np.log(-np.expm1(np.minimum(log_upper - log_lower, 0.0)))
    out: FloatArray = np.where(upper > lower, log_lower + gap, -np.inf)
    return out


def log_tail_integral(alpha: Param, beta: Param, A: Param, B: Param, y: ArrayLike) -> FloatArray:
    """``log int_y^inf (alpha + u)^-A (beta + u)^-B du`` for ``A + B > 1``, ``y >= 0`` (all
    broadcast together: ``alpha, beta`` may differ by row).

    With ``M = max(alpha, beta)``, ``m = min(alpha, beta)``, ``P`` and ``Q`` the exponents of
    ``M + u`` and ``m + u``, ``c = A + B`` and ``z = (M - m) / (M + y)``, the integral is
    ``(M + y)^(1 - c) / (c - 1) 2F1(c - 1, Q; c; z)`` (FHL note, eqs. 19-20), evaluated after
    Euler's transformation as ``(1 - z)^(1 - Q) 2F1(1, P; c; z)``: its first parameter does
    not grow with the purchase count, so the heavy buyers' ``(1 - z)^-Q`` growth of the
    plain form never overflows. Where scipy's ``hyp2f1`` still fails (``c`` above ~180 with
    ``z`` near 1) the power series is summed directly (:func:`_log_hyp2f1_series`; it
    converges fast for heavy buyers), and where that is slow too (``P`` large, ``Q`` small:
    heavy buyers whose ``alpha`` is many times ``beta + T``, reached only by far-off trial
    parameters) the integral is taken by quadrature (:func:`_log_tail_quadrature`).
    """
    alpha_arr, beta_arr, A_arr, B_arr, y_arr = np.broadcast_arrays(
        *(np.asarray(v, dtype=np.float64) for v in (alpha, beta, A, B, y))
    )
    big, small = np.maximum(alpha_arr, beta_arr), np.minimum(alpha_arr, beta_arr)
    swap = alpha_arr < beta_arr
    P, Q = np.where(swap, B_arr, A_arr), np.where(swap, A_arr, B_arr)
    c = A_arr + B_arr
    z = (big - small) / (big + y_arr)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        log_f = (1.0 - Q) * np.log1p(-z) + np.log(hyp2f1(1.0, P, c, z))
        out = -(c - 1.0) * np.log(big + y_arr) - np.log(c - 1.0) + log_f
    failed = np.flatnonzero(~np.isfinite(out))
    if failed.size:
        out = np.array(out, dtype=np.float64)
        log_series, converged = _log_hyp2f1_series(P[failed], c[failed], z[failed])
        done, rest = failed[converged], failed[~converged]
        out[done] = (
            -(c[done] - 1.0) * np.log(big[done] + y_arr[done])
            - np.log(c[done] - 1.0)
            + (1.0 - Q[done]) * np.log1p(-z[done])
            + log_series[converged]
        )
        if rest.size:
            out[rest] = _log_tail_quadrature(big[rest], small[rest], P[rest], Q[rest], y_arr[rest])
    result: FloatArray = out
    return result


def _log_hyp2f1_series(
    P: FloatArray, c: FloatArray, z: FloatArray, max_terms: int = 1000
) -> tuple[FloatArray, npt.NDArray[np.bool_]]:
    """``log 2F1(1, P; c; z)`` by its power series, and where it converged in ``max_terms``.

    The terms ``(P)_n / (c)_n z^n`` fall at least by ``z (P + n) / (c + n)`` each, fast when
    ``c - P`` (the heavy buyer's ``r + x``) is large even as ``z`` nears 1: the case of a
    population whose lifetimes (``beta``) are long against ``alpha + T``, where scipy's
    transformations overflow.
    """
    total = np.ones_like(z)
    term = np.ones_like(z)
    # The ratios grow towards z, so what is left after a term is below term z / (1 - z).
    tail = z / (1.0 - z)
    for n in range(max_terms):
        term = term * z * (P + n) / (c + n)
        total += term
        if np.all(term * tail < 1e-17 * total):
            break
    converged = term * tail < 1e-16 * total
    return np.log(total), converged


#: Gauss-Legendre rule of the quadrature fallback: panels x nodes per panel.
_PANELS, _NODES = 16, 24
#: The quadrature covers where the integrand is within ``exp(-_DROP)`` of its maximum.
_DROP = 60.0


def _log_tail_quadrature(
    big: Param, small: Param, P: FloatArray, Q: FloatArray, y: FloatArray
) -> FloatArray:
    """:func:`log_tail_integral` by composite Gauss-Legendre quadrature in ``v = log(m + u)``.

    There the log-integrand ``h(v) = (1 - Q) v - P log(M - m + e^v)`` is concave, so the
    points where it is within ``exp(-60)`` of its maximum form one interval, found by
    bisection; the rest contributes less than ``1e-26`` relative.
    """
    with np.errstate(divide="ignore"):
        log_gap = np.broadcast_to(np.log(np.subtract(big, small)), P.shape)

    def h(v: FloatArray) -> FloatArray:
        """The log-integrand at ``v`` (one row per element, any number of columns)."""
        shape = (-1, *[1] * (v.ndim - 1))
        q, p, gap = Q.reshape(shape), P.reshape(shape), log_gap.reshape(shape)
        out: FloatArray = (1.0 - q) * v - p * np.logaddexp(gap, v)
        return out

    start = np.log(small + y)
    # The maximum: at the lower end, or where h' = (1 - Q) - P expit(v - log_gap) is 0.
    with np.errstate(divide="ignore", invalid="ignore"):
        interior = log_gap + logit(np.clip((1.0 - Q) / P, 1e-300, 1.0 - 1e-16))
    top = np.where(Q < 1.0, np.maximum(start, np.nan_to_num(interior, nan=-np.inf)), start)
    floor = h(top) - _DROP
    # Right end: double the step until below the floor, then bisect.
    step = np.ones_like(top)
    for _ in range(60):
        grow = h(top + step) > floor
        if not grow.any():
            break
        step = np.where(grow, 2.0 * step, step)
    lo, hi = top.copy(), top + step
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        above = h(mid) > floor
        lo, hi = np.where(above, mid, lo), np.where(above, hi, mid)
    right = hi
    # Left end (an interior maximum only): bisect between the lower limit and the maximum.
    lo, hi = start.copy(), top.copy()
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        above = h(mid) > floor
        lo, hi = np.where(above, lo, mid), np.where(above, mid, hi)
    left = np.where(h(start) > floor, start, lo)
    nodes, weights = roots_legendre(_NODES)
    edges = left[:, None] + (right - left)[:, None] * np.linspace(0.0, 1.0, _PANELS + 1)
    half = 0.5 * (edges[:, 1:] - edges[:, :-1])
    mids = 0.5 * (edges[:, 1:] + edges[:, :-1])
    points = mids[:, :, None] + half[:, :, None] * nodes
    logs = h(points.reshape(len(top), -1)) + np.log(np.repeat(half, _NODES, axis=1))
    peak = logs.max(axis=1)
    total = np.exp(logs - peak[:, None]) @ np.tile(weights, _PANELS)
    out: FloatArray = peak + np.log(total)
    return out
