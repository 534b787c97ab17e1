"""BG/NBD model of repeat purchasing (Fader, Hardie & Lee 2005).

Fader, P. S., Hardie, B. G. S. & Lee, K. L. (2005). "Counting Your Customers" the Easy Way:
An Alternative to the Pareto/NBD Model. *Marketing Science* 24(2), 275-284.

While alive a customer buys at Poisson rate ``lambda ~ Gamma(r, alpha)``; after every repeat
purchase they drop out for good with probability ``p ~ Beta(a, b)``. Inputs per customer are
``frequency`` (x, repeat purchases), ``recency`` (t_x, time of the last repeat purchase since
the first purchase) and ``T`` (time since the first purchase), all in one time unit.

:class:`ModifiedBetaGeoModel` is the MBG/NBD of Batislam, Denizel & Filiztekin (2007):
a customer may also drop out right after the *first* purchase, so a one-time buyer is not
certainly alive (BG/NBD gives every ``x = 0`` customer P(alive) = 1, however long ago they
bought). Every BG/NBD formula carries over with ``b + x`` shifted by one (see ``_SHIFT``).

The likelihood and P(alive) are written for Erlang-k inter-purchase times (the (M)BG/CNBD-k of
Platzer & Reutterer 2016, :mod:`ltvcast.models.cnbd`); ``k = 1`` is the BG/NBD itself.

This module also holds the small helpers the other BTYD models share (array and RFM checks,
the fit's minimum data, row compression and the bounded maximum-likelihood search on
log-parameters).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt
from scipy.special import betaln, digamma, gammaln, hyp2f1, logsumexp

from ltvcast.exceptions import ConfigError, InsufficientDataError
from ltvcast.models._population import Param, PopulationModel

FloatArray = npt.NDArray[np.float64]
ArrayLike = npt.ArrayLike

#: Log-parameters are searched in [-LOG_BOUND, LOG_BOUND] (parameters in [1e-6, 1e6] of the
#: scaled problem); a fit that ends on a bound is a limiting case of the model, not an error.
LOG_BOUND = float(np.log(1e6))


def as_float_array(name: str, values: ArrayLike, size: int | None = None) -> FloatArray:
    """``values`` as a finite 1-d float array, or :class:`ConfigError` naming the bad rows."""
    arr = np.atleast_1d(np.asarray(values, dtype=np.float64))
    if arr.ndim != 1:
        raise ConfigError(f"{name} must be one-dimensional; got shape {arr.shape}")
    if size is not None and arr.size != size:
        raise ConfigError(f"{name} has {arr.size} values but {size} were expected")
    bad = np.flatnonzero(~np.isfinite(arr))
    if bad.size:
        raise ConfigError(
            f"{name} must be finite; {bad.size} values are not (positions {bad[:5].tolist()})"
        )
    return arr


def check_rule(name: str, ok: FloatArray | npt.NDArray[np.bool_], rule: str) -> None:
    """Raise :class:`ConfigError` when ``ok`` is false anywhere, naming the offending rows."""
    bad = np.flatnonzero(~np.asarray(ok, dtype=bool))
    if bad.size:
        raise ConfigError(
            f"{name} must satisfy {rule}; {bad.size} rows do not (positions {bad[:5].tolist()})"
        )


def check_rfm(
    frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """``(x, t_x, T)`` as float arrays, with ``x >= 0`` and ``0 <= t_x <= T`` checked."""
    x = as_float_array("frequency", frequency)
    tx = as_float_array("recency", recency, size=x.size)
    t_cal = as_float_array("T", T, size=x.size)
    check_rule("frequency", x >= 0, ">= 0")
    check_rule("recency", (tx >= 0) & (tx <= t_cal + 1e-9), "0 <= recency <= T")
    return x, tx, t_cal


def check_future_rfm(
    t: float | ArrayLike, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """:func:`check_rfm` plus a horizon ``t`` (broadcast to the rows), checked ``>= 0`` and
    finite."""
    x, tx, t_cal = check_rfm(frequency, recency, T)
    t_arr = np.broadcast_to(np.asarray(t, dtype=np.float64), x.shape).astype(np.float64)
    check_rule("t", np.isfinite(t_arr) & (t_arr >= 0), ">= 0 and finite")
    return x, tx, t_cal, t_arr


def fit_weights(
    model: str, x: FloatArray, weights: ArrayLike | None, n_params: int = 4
) -> FloatArray:
    """Customer weights (ones by default) once the data can identify ``model``.

    Raises
    ------
    ConfigError
        For negative or non-finite weights.
    InsufficientDataError
        With fewer customers than parameters, or no repeat purchase at all.
    """
    w = np.ones_like(x) if weights is None else as_float_array("weights", weights, size=x.size)
    check_rule("weights", w >= 0, ">= 0")
    if w.sum() < n_params:
        raise InsufficientDataError(
            f"{model} needs at least {n_params} customers to fit {n_params} parameters; "
            f"got {w.sum():g}"
        )
    if not np.any((x > 0) & (w > 0)):
        raise InsufficientDataError(
            f"{model} needs at least one repeat purchase; all {w.sum():g} customers have "
            "frequency 0"
        )
    return w


def maximise_log_likelihood(
    neg_loglik: Callable[[FloatArray], tuple[float, FloatArray]],
    x0: FloatArray,
    model: str,
    method: str = "TNC",
) -> FloatArray:
    """Minimise ``neg_loglik`` (value and gradient in log-parameters) within the bounds.

    ``method`` is ``"TNC"`` (for analytic gradients) or ``"L-BFGS-B"``, which copes better
    with a finite-difference gradient along a flat ridge (the Pareto/NBD's ``s, beta``).

    Raises
    ------
    InsufficientDataError
        When the search does not converge to a finite optimum.
    """
    from scipy.optimize import minimize  # a fit's only: scoring processes never load it

    bounds = [(-LOG_BOUND, LOG_BOUND)] * len(x0)
    options: dict[str, float] = (
        {"maxfun": 2000, "ftol": 1e-13, "gtol": 1e-9}
        if method == "TNC"
        else {"maxfun": 2000, "ftol": 1e-12, "gtol": 1e-9}
    )
    res = minimize(neg_loglik, x0, jac=True, method=method, bounds=bounds, options=options)
    value, grad = neg_loglik(res.x)
    # A search may stop on a line-search failure at the optimum itself: accept a flat point.
    free = (res.x > -LOG_BOUND + 1e-8) & (res.x < LOG_BOUND - 1e-8)
    flat = bool(np.all(np.abs(grad[free]) < 1e-4))
    if not np.isfinite(value) or not np.all(np.isfinite(res.x)) or not (res.success or flat):
        raise InsufficientDataError(
            f"{model} maximum-likelihood fit did not converge ({res.message}); the data hold "
            "too little repeat-purchase information for this model"
        )
    return np.asarray(res.x, dtype=np.float64)


def distinct_rows(*columns: FloatArray) -> tuple[tuple[FloatArray, ...], npt.NDArray[np.int64]]:
    """The distinct rows of ``columns`` (sorted by the columns in order, as
    ``np.unique(axis=0)`` gives them) and each row's index among them.

    A lexsort, several times faster than ``np.unique(axis=0)`` on a million rows.
    """
    order = np.lexsort(columns[::-1])
    ordered = [c[order] for c in columns]
    starts = np.ones(order.size, dtype=bool)
    starts[1:] = np.any([c[1:] != c[:-1] for c in ordered], axis=0)
    index = np.empty(order.size, dtype=np.int64)
    index[order] = np.cumsum(starts) - 1
    return tuple(c[starts] for c in ordered), index


def compress_rows(
    columns: tuple[FloatArray, ...], weights: FloatArray
) -> tuple[tuple[FloatArray, ...], FloatArray]:
    """Collapse identical rows of ``columns`` into unique rows (sorted: see
    :func:`distinct_rows`) with summed ``weights``."""
    unique, inverse = distinct_rows(*columns)
    summed = np.bincount(inverse, weights=weights, minlength=unique[0].size).astype(np.float64)
    return unique, summed


def levels_of(x: FloatArray) -> tuple[FloatArray, npt.NDArray[np.intp]]:
    """``np.unique(x, return_inverse=True)``, in one linear pass when ``x`` is sorted (the
    rows :func:`compress_rows` gives a fit, whose likelihood asks for them at every step)."""
    if x.size and bool(np.all(x[1:] >= x[:-1])):
        starts = np.empty(x.size, dtype=bool)
        starts[0] = True
        np.not_equal(x[1:], x[:-1], out=starts[1:])
        return x[starts], np.cumsum(starts) - 1
    levels, idx = np.unique(x, return_inverse=True)
    return levels, idx.ravel()


def prepare_fit(
    model: str,
    penalizer_coef: float,
    frequency: ArrayLike,
    recency: ArrayLike,
    T: ArrayLike,
    weights: ArrayLike | None,
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, float]:
    """What every ``fit(frequency, recency, T, weights)`` starts with: checked inputs and
    weights (:func:`check_rfm`, :func:`fit_weights`), time rescaled so the longest ``T`` is 10
    units during the search (as ``lifetimes`` does), identical rows merged.

    Returns
    -------
    (x, t_x, T, weights, scale)
        The merged rows in rescaled time and the factor ``scale`` applied to time.
    """
    if penalizer_coef < 0:
        raise ConfigError(f"penalizer_coef must be >= 0; got {penalizer_coef!r}")
    x, tx, t_cal = check_rfm(frequency, recency, T)
    w = fit_weights(model, x, weights)
    scale = 10.0 / float(t_cal.max()) if t_cal.max() > 0 else 1.0
    (x, tx, t_cal), w = compress_rows((x, tx * scale, t_cal * scale), w)
    return x, tx, t_cal, w, scale


class BetaGeoModel(PopulationModel):
    """BG/NBD model fitted by maximum likelihood (FHL 2005, eq. 6).

    Parameters
    ----------
    penalizer_coef
        L2 penalty on the (time-scaled) parameters added to the mean negative
        log-likelihood, as in ``lifetimes``; 0 gives the plain MLE.

    Attributes
    ----------
    params_ : dict
        ``r``, ``alpha``, ``a``, ``b`` in the time unit of the fitted data.
    n_customers_ : float
        Total weight (customers) the model was fitted on.
    """

    #: Dropout opportunities before the first repeat purchase: 0 (BG/NBD) or 1 (MBG/NBD).
    _SHIFT = 0
    _NAME = "BG/NBD"
    PARAMS = ("r", "alpha", "a", "b")

    # ------------------------------------------------------------------ fitting
    def fit(
        self,
        frequency: ArrayLike,
        recency: ArrayLike,
        T: ArrayLike,
        weights: ArrayLike | None = None,
    ) -> BetaGeoModel:
        """Fit ``r, alpha, a, b`` by maximising the likelihood of FHL 2005 eq. 6.

        Identical ``(x, t_x, T)`` rows are merged into weights. Time is rescaled so that the
        longest ``T`` is 10 units during the search (as ``lifetimes`` does) and ``alpha`` is
        scaled back afterwards.

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

        def neg_loglik(theta: FloatArray) -> tuple[float, FloatArray]:
            ll, grad = _loglik_and_grad(theta, x, tx, t_cal, self._SHIFT)
            params = np.exp(theta)
            value = -float(np.dot(w, ll)) / total + penalty * float(params @ params)
            gradient = -(grad * w[:, None]).sum(axis=0) / total + 2.0 * penalty * params**2
            return value, gradient

        theta = maximise_log_likelihood(neg_loglik, np.zeros(4), self._NAME)
        r, alpha, a, b = np.exp(theta)
        self.params_ = {"r": float(r), "alpha": float(alpha / scale), "a": float(a), "b": float(b)}
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
        """Total log-likelihood of the data under the fitted parameters (FHL 2005 eq. 6)."""
        r, alpha, a, b = self._params()
        x, tx, t_cal = self._check(frequency, recency, T)
        w = np.ones_like(x) if weights is None else as_float_array("weights", weights, x.size)
        ll, _ = _loglik_and_grad(
            np.log([r, alpha, a, b]), x, tx, t_cal, self._SHIFT, gradient=False
        )
        return float(w @ ll)

    def p_alive(self, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike) -> FloatArray:
        """P(alive at T | x, t_x, T).

        ``1 / (1 + [x > 0] a / (b + x - 1) ((alpha + T) / (alpha + t_x))^(r + x))``; Fader,
        Hardie & Lee, note "Computing P(alive) Using the BG/NBD Model".
        """
        x, tx, t_cal = self._check(frequency, recency, T)
        return _p_alive(self._params(), x, tx, t_cal, self._SHIFT)

    def expected_purchases(
        self, t: float | ArrayLike, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
    ) -> FloatArray:
        """Expected repeat purchases in ``(T, T + t]`` given ``(x, t_x, T)`` (FHL 2005 eq. 10).

        The Gaussian hypergeometric term is evaluated after Euler's transformation,
        ``((alpha+T)/(alpha+T+t))^(r+x) 2F1(r+x, b+x; c; z) = (1-z)^(a-1)
        2F1(a+b-1-r, a-1; c; z)`` with ``c = a+b+x-1``, ``z = t/(alpha+T+t)``, whose first two
        arguments do not grow with ``x`` (no overflow for heavy buyers; :func:`_euler_term`).
        At ``a = 1`` the formula is a removable singularity; ``a`` is moved by 1e-6 there.
        """
        r, alpha, a_fit, b = self._params()
        x, tx, t_cal, t_arr = check_future_rfm(t, frequency, recency, T)
        a = np.where(np.abs(a_fit - 1.0) < 1e-6, 1.0 + 1e-6, a_fit)
        z = t_arr / (alpha + t_cal + t_arr)
        c = a + b - 1.0 + self._SHIFT  # MBG/NBD: 2F1(r+x, b+x+1; a+b+x; z) (Batislam 2007)
        unconditional_alive = (c + x) / (a - 1.0) * (1.0 - _euler_term(a - 1.0, c, r, x, z))
        alive = _p_alive((r, alpha, a, b), x, tx, t_cal, self._SHIFT)
        out: FloatArray = unconditional_alive * alive
        return out

    def p_alive_at(
        self, t: float | ArrayLike, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
    ) -> FloatArray:
        """P(alive at ``T + t`` | x, t_x, T): alive at ``T``, then no dropout at the purchases
        of ``(T, T + t]``.

        Alive at ``T``, a customer has ``lambda ~ Gamma(r + x, alpha + T)`` and ``p ~ Beta(a,
        b + x + shift)``; surviving ``Poisson(lambda t)`` purchases has probability
        ``exp(-lambda p t)``, whose expectation is ``2F1(r + x, a; a + b + x + shift; -t /
        (alpha + T))``, evaluated after Pfaff's transformation as ``((alpha + T) / (alpha + T +
        t))^a 2F1(a + b + shift - r, a; a + b + x + shift; t / (alpha + T + t))`` (arguments
        that do not grow with ``x`` but the third; :func:`_euler_term`).
        """
        r, alpha, a, b = self._params()
        x, tx, t_cal, t_arr = check_future_rfm(t, frequency, recency, T)
        alive = _p_alive((r, alpha, a, b), x, tx, t_cal, self._SHIFT)
        z = t_arr / (alpha + t_cal + t_arr)
        c = a + b + self._SHIFT
        survive = _euler_term(a, c, r, x, z)
        out: FloatArray = alive * survive
        return out

    def p_no_purchase(
        self, t: float | ArrayLike, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
    ) -> FloatArray:
        """P(no purchase in ``(T, T + t]`` | x, t_x, T).

        A customer dead at ``T`` buys nothing; one alive at ``T`` has posterior rate
        ``lambda ~ Gamma(r + x, alpha + T)`` and, dropout happening only right after a
        purchase, buys nothing with probability ``E[exp(-lambda t)]``. Hence
        ``1 - P(alive) + P(alive) ((alpha + T) / (alpha + T + t))^(r + x)``.
        """
        r, alpha, a, b = self._params()
        x, tx, t_cal, t_arr = check_future_rfm(t, frequency, recency, T)
        alive = _p_alive((r, alpha, a, b), x, tx, t_cal, self._SHIFT)
        silent = np.exp((r + x) * (np.log(alpha + t_cal) - np.log(alpha + t_cal + t_arr)))
        out: FloatArray = 1.0 - alive + alive * silent
        return out

    # ------------------------------------------------------------------ helpers
    _check = staticmethod(check_rfm)


class ModifiedBetaGeoModel(BetaGeoModel):
    """MBG/NBD (Batislam, Denizel & Filiztekin 2007): BG/NBD with a dropout chance at the
    first purchase too, so P(alive) of a one-time buyer falls as time passes without a
    repeat. Same interface and parameters (``r, alpha, a, b``) as :class:`BetaGeoModel`.
    """

    _SHIFT = 1
    _NAME = "MBG/NBD"


def _p_alive(
    params: tuple[Param, Param, Param, Param],
    x: FloatArray,
    tx: FloatArray,
    t_cal: FloatArray,
    shift: int,
    k: int = 1,
) -> FloatArray:
    """``1 / (1 + a / (b + x - 1 + shift) ((alpha + T) / (alpha + t_x))^(r + k x) / S)``; with
    ``shift = 0`` (BG/NBD) customers with ``x = 0`` are alive for sure.

    ``S = sum_m (r + k x)_m / m! ((T - t_x) / (alpha + T))^m`` over the ``m < k`` Erlang
    phases that may have passed since the last purchase (1 for ``k = 1``); Platzer &
    Reutterer (2016), P(alive) of the (M)BG/CNBD-k.
    """
    r, alpha, a, b = params
    has = (x > 0) | (shift > 0)
    xm = np.where(has, x, 1.0)
    log_ratio = np.log(a / (b + xm - 1.0 + shift)) + (r + k * xm) * (
        np.log(alpha + t_cal) - np.log(alpha + tx)
    )
    if k > 1:
        levels, idx = np.unique(xm, return_inverse=True)
        phases = log_phases(r + k * levels, k)[idx.ravel()] + _phase_times(tx, t_cal, alpha, k)
        log_ratio = log_ratio - logsumexp(phases, axis=1)
    out: FloatArray = np.where(has, 1.0 / (1.0 + np.exp(np.minimum(log_ratio, 700.0))), 1.0)
    return out


def _euler_term(e: Param, c: Param, r: float, x: FloatArray, z: FloatArray) -> FloatArray:
    """``(1 - z)^e 2F1(c - r, e; c + x; z)``, equal to ``(1 - z)^(r + x) 2F1(r + x, c + x - e;
    c + x; z)`` by Euler's transformation.

    The first form keeps the hypergeometric arguments bounded for heavy buyers (large
    ``x``). Where it under- or overflows, as when ``e`` and ``c`` run into the thousands (the
    per-customer dropout parameters of a covariate model fitted on few customers), the
    second is used.
    """
    with np.errstate(over="ignore", invalid="ignore", under="ignore"):
        first: FloatArray = (1.0 - z) ** e * hyp2f1(c - r, e, c + x, z)
        bad = ~np.isfinite(first) | (e * np.log1p(-z) < -700.0)
    if not np.any(bad):
        return first
    second = (1.0 - z) ** (r + x) * hyp2f1(r + x, c + x - e, c + x, z)
    out: FloatArray = np.where(bad, second, first)
    return out


def log_phases(shape: FloatArray, k: int) -> FloatArray:
    """``log((shape)_m / m!)`` for ``m = 0 .. k-1``, one row per value of ``shape``."""
    m = np.arange(k, dtype=np.float64)
    out: FloatArray = gammaln(shape[:, None] + m) - gammaln(shape)[:, None] - gammaln(m + 1.0)
    return out


def _phase_times(tx: FloatArray, t_cal: FloatArray, alpha: Param, k: int) -> FloatArray:
    """``m log((T - t_x) / (alpha + T))`` for ``m = 0 .. k-1`` (``-inf`` for ``m > 0`` when
    the last purchase is at ``T``)."""
    m = np.arange(k, dtype=np.float64)
    gap = np.maximum(t_cal - tx, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_u = np.log(gap) - np.log(alpha + t_cal)
        out: FloatArray = np.where(m > 0, m * log_u[:, None], 0.0)
    return out


def _loglik_and_grad(
    theta: FloatArray,
    x: FloatArray,
    tx: FloatArray,
    t_cal: FloatArray,
    shift: int,
    k: int = 1,
    *,
    gradient: bool = True,
) -> tuple[FloatArray, FloatArray]:
    """Per-row log-likelihood and its gradient in ``log(r, alpha, a, b)``
    (:func:`loglik_and_grad_rows` at ``exp(theta)``)."""
    r, alpha, a, b = np.exp(theta)
    return loglik_and_grad_rows((r, alpha, a, b), x, tx, t_cal, shift, k, gradient=gradient)


def loglik_and_grad_rows(
    params: tuple[Param, Param, Param, Param],
    x: FloatArray,
    tx: FloatArray,
    t_cal: FloatArray,
    shift: int,
    k: int = 1,
    *,
    gradient: bool = True,
) -> tuple[FloatArray, FloatArray]:
    """Per-row log-likelihood and its gradient in the logs of ``params = (r, alpha, a, b)``,
    each a float or one value per row (covariates, Fader & Hardie 2007): column ``j`` of the
    gradient is the derivative of each row's log-likelihood in the log of that row's value
    of parameter ``j``.

    BG/NBD (``shift = 0``, FHL 2005 eq. 6) or MBG/NBD (``shift = 1``, where ``b + x`` becomes
    ``b + x + 1`` and the "dead" branch exists at ``x = 0`` too). With Erlang-k inter-purchase
    times (``k > 1``, the (M)BG/CNBD-k of Platzer & Reutterer 2016) ``x`` purchases take
    ``k x`` Poisson phases, and a customer alive at ``T`` may have passed ``m < k`` phases
    since the last purchase: the "alive" branch sums over ``m``. The term
    ``(k - 1) litt - x log((k - 1)!)`` of the Erlang densities does not depend on the
    parameters and is left out here. Special functions of ``x`` and the parameters are
    evaluated once per distinct ``x`` (once per row when ``a`` or ``b`` differ by row).
    ``gradient=False`` skips the gradient (an empty ``(rows, 0)`` array): about half the work,
    for a likelihood alone.
    """
    r, alpha, a, b = params
    if np.ndim(a) or np.ndim(b):
        levels, idx = x, np.arange(x.size)
    else:
        levels, idx = levels_of(x)
    has = (x > 0) | (shift > 0)
    # The "dead" branch exists for x >= 1 only in BG/NBD (its value at x = 0 is unused).
    lev_m = levels + shift if shift else np.maximum(levels, 1.0)
    lev_s = levels + shift
    kx, lev_k = k * x, k * levels
    beta_ab = betaln(a, b)
    head = (gammaln(r + lev_k) - gammaln(r))[idx] + r * np.log(alpha)
    beta_alive = (betaln(a, b + lev_s) - beta_ab)[idx]
    beta_dead = (betaln(a + 1.0, b + lev_m - 1.0) - beta_ab)[idx]
    log_at, log_atx = np.log(alpha + t_cal), np.log(alpha + tx)
    term_alive = beta_alive - (r + kx) * log_at
    if k > 1:
        phases = log_phases(r + lev_k, k)[idx] + _phase_times(tx, t_cal, alpha, k)
        log_sum = logsumexp(phases, axis=1)
        term_alive = term_alive + log_sum
    term_dead = np.where(has, beta_dead - (r + kx) * log_atx, -np.inf)
    top = np.maximum(term_alive, term_dead)
    lse = top + np.log(np.exp(term_alive - top) + np.exp(term_dead - top))
    ll = head + lse
    if not gradient:
        return ll, np.empty((x.size, 0))
    w_alive = np.exp(term_alive - lse)
    w_dead = 1.0 - w_alive

    psi_ab = digamma(a + b)
    psi_rx, psi_abx = digamma(r + lev_k)[idx], digamma(a + b + lev_s)[idx]
    psi_bx, psi_bx1 = digamma(b + lev_s)[idx], digamma(b + lev_m - 1.0)[idx]
    d_r = psi_rx - digamma(r) + np.log(alpha) - w_alive * log_at - w_dead * log_atx
    d_alpha = r / alpha - (r + kx) * (w_alive / (alpha + t_cal) + w_dead / (alpha + tx))
    if k > 1:
        # The phase sum: d/dr log(r + kx)_m = psi(r + kx + m) - psi(r + kx); d/dalpha gives
        # -m / (alpha + T) per phase.
        share = np.exp(phases - log_sum[:, None])
        m = np.arange(k, dtype=np.float64)
        psi_m = (digamma(r + lev_k[:, None] + m) - digamma(r + lev_k)[:, None])[idx]
        d_r = d_r + w_alive * (share * psi_m).sum(axis=1)
        d_alpha = d_alpha - w_alive * (share @ m) / (alpha + t_cal)
    d_a = psi_ab - psi_abx + w_dead / a
    d_b = psi_ab - psi_abx - digamma(b) + w_alive * psi_bx + w_dead * psi_bx1
    grad = np.column_stack([d_r * r, d_alpha * alpha, d_a * a, d_b * b])
    return ll, grad
