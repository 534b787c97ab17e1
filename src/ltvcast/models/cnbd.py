"""(M)BG/CNBD-k: BG/NBD with Erlang-k inter-purchase times (Platzer & Reutterer 2016).

Platzer, M. & Reutterer, T. (2016). Ticking Away the Moments: Timing Regularity Helps to
Better Predict Customer Activity. *Marketing Science* 35(5), 779-799; Reutterer, T.,
Platzer, M. & Schroeder, N. (2021). Leveraging purchase regularity for predicting customer
behavior the easy way. *International Journal of Research in Marketing* 38(1), 194-215.

While alive a customer's inter-purchase times are Erlang-k with rate ``lambda ~ Gamma(r,
alpha)`` (every ``k``-th event of a Poisson process: ``k = 1`` is the BG/NBD, larger ``k``
more regular buying); after each repeat purchase (:class:`ModifiedBetaGeoCNBDModel`: after
the first purchase too, as in the MBG/NBD) they drop out for good with probability
``p ~ Beta(a, b)``. Predictions need ``(x, t_x, T)`` only. The likelihood also holds
``(k - 1) litt - x log((k - 1)!)``, where ``litt`` is the sum of the logarithms of the
customer's ``x`` inter-purchase times: it does not move ``r, alpha, a, b`` at a given ``k`` but
decides between values of ``k``, so :func:`select_k` needs it.

Conditional expectations are exact: a customer alive at ``T`` has passed ``m < k`` of the
phases towards the next purchase (weights from the "alive" term of the likelihood) and has
``lambda ~ Gamma(r + k x + m, alpha + T)``, ``p ~ Beta(a, b + x + shift)``; their ``j``-th
future purchase needs ``j k - m`` more Poisson events and ``j - 1`` survived dropouts. (The
BTYDplus R package approximates the same expectation with the BG/NBD formula at ``k alpha``,
rescaled to the cohort's unconditional expectation; the two agree closely, see the tests.)
"""

from __future__ import annotations

import numpy as np
from scipy.special import betainc, gammaln, logsumexp

from ltvcast.exceptions import ConfigError, InsufficientDataError
from ltvcast.models._population import PopulationModel
from ltvcast.models.bgnbd import (
    ArrayLike,
    FloatArray,
    _loglik_and_grad,
    _p_alive,
    _phase_times,
    as_float_array,
    check_future_rfm,
    check_rfm,
    log_phases,
    maximise_log_likelihood,
    prepare_fit,
)

#: ``k`` searched by :func:`select_k` by default (BTYDplus searches the same 1..12).
K_MAX = 12
#: Future purchases are summed over the Poisson-event counts until the probability left
#: is below ``TAIL``.
TAIL = 1e-13


class BetaGeoCNBDModel(PopulationModel):
    """BG/CNBD-k model fitted by maximum likelihood at a given ``k`` (Platzer & Reutterer
    2016, eq. 9).

    Parameters
    ----------
    k
        Erlang shape of the inter-purchase times (1 = BG/NBD); :func:`select_k` chooses it by
        likelihood.
    penalizer_coef
        L2 penalty on the (time-scaled) parameters added to the mean negative
        log-likelihood, as in :class:`~ltvcast.models.bgnbd.BetaGeoModel`.

    Attributes
    ----------
    params_ : dict
        ``r``, ``alpha``, ``a``, ``b`` in the time unit of the fitted data.
    n_customers_ : float
        Total weight (customers) the model was fitted on.
    """

    #: Dropout opportunities before the first repeat purchase: 0 (BG) or 1 (MBG).
    _SHIFT = 0
    _NAME = "BG/CNBD-k"
    PARAMS = ("r", "alpha", "a", "b")

    def __init__(self, k: int = 1, penalizer_coef: float = 0.0) -> None:
        self.k = k
        self.penalizer_coef = penalizer_coef

    def fit(
        self,
        frequency: ArrayLike,
        recency: ArrayLike,
        T: ArrayLike,
        weights: ArrayLike | None = None,
    ) -> BetaGeoCNBDModel:
        """Fit ``r, alpha, a, b`` at the model's ``k``.

        The inter-purchase times (``litt``) only add a constant here; pass them to
        :meth:`log_likelihood` or :func:`select_k`. Time is rescaled so that the longest
        ``T`` is 10 units during the search, as for the BG/NBD.

        Raises
        ------
        ConfigError
            For a ``k`` that is not a positive integer, or invalid inputs.
        InsufficientDataError
            With fewer than 4 customers, no repeat purchase, or no convergence.
        """
        k = self._k()
        x, tx, t_cal, w, scale = prepare_fit(
            self._NAME, self.penalizer_coef, frequency, recency, T, weights
        )
        total = float(w.sum())
        penalty = self.penalizer_coef

        def neg_loglik(theta: FloatArray) -> tuple[float, FloatArray]:
            ll, grad = _loglik_and_grad(theta, x, tx, t_cal, self._SHIFT, k)
            params = np.exp(theta)
            value = -float(np.dot(w, ll)) / total + penalty * float(params @ params)
            gradient = -(grad * w[:, None]).sum(axis=0) / total + 2.0 * penalty * params**2
            return value, gradient

        theta = maximise_log_likelihood(neg_loglik, np.zeros(4), f"{self._NAME} (k={k})")
        r, alpha, a, b = np.exp(theta)
        self.params_ = {"r": float(r), "alpha": float(alpha / scale), "a": float(a), "b": float(b)}
        self.n_customers_ = total
        return self

    def set_params(self, params: dict[str, float]) -> BetaGeoCNBDModel:
        """Use given ``r, alpha, a, b`` (e.g. loaded from JSON) instead of fitting."""
        self._k()
        return super().set_params(params)

    def log_likelihood(
        self,
        frequency: ArrayLike,
        recency: ArrayLike,
        T: ArrayLike,
        weights: ArrayLike | None = None,
        *,
        litt: ArrayLike | None = None,
    ) -> float:
        """Total log-likelihood (Platzer & Reutterer 2016, eq. 9).

        Parameters
        ----------
        litt
            Per customer, the sum of the logarithms of the ``x`` inter-purchase times (in the
            time unit of ``recency``; 0 when ``x = 0``). Needed when ``k > 1``.
        """
        r, alpha, a, b = self._params()
        k = self._k()
        x, tx, t_cal = check_rfm(frequency, recency, T)
        w = np.ones_like(x) if weights is None else as_float_array("weights", weights, x.size)
        ll, _ = _loglik_and_grad(
            np.log([r, alpha, a, b]), x, tx, t_cal, self._SHIFT, k, gradient=False
        )
        if k > 1:
            if litt is None:
                raise ConfigError(
                    f"{self._NAME} with k={k} needs litt (the sum of log inter-purchase times "
                    "per customer) for its log-likelihood"
                )
            log_times = as_float_array("litt", litt, size=x.size)
            ll = ll + (k - 1) * log_times - x * gammaln(float(k))
        return float(w @ ll)

    def p_alive(self, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike) -> FloatArray:
        """P(alive at T | x, t_x, T) (Platzer & Reutterer 2016, eq. 11)."""
        x, tx, t_cal = check_rfm(frequency, recency, T)
        return _p_alive(self._params(), x, tx, t_cal, self._SHIFT, self._k())

    def expected_purchases(
        self, t: float | ArrayLike, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
    ) -> FloatArray:
        """Expected purchases in ``(T, T + t]`` given ``(x, t_x, T)``, exactly.

        ``P(alive) sum_m w_m sum_n P(N = n) C((n + m) // k)``: ``w_m`` is the posterior weight
        of ``m`` phases passed since the last purchase, ``N`` the Poisson events in ``t``
        (negative binomial with shape ``r + k x + m``, scale ``alpha + T``), and ``C(J) =
        sum_(j <= J) E[(1 - p)^(j - 1)]`` with ``p ~ Beta(a, b + x + shift)`` the expected
        number of the ``J`` purchases those events complete that the customer lives to make
        (see :meth:`_future_sums`).
        """
        x, tx, t_cal, t_arr = check_future_rfm(t, frequency, recency, T)
        share, shape, z, alive = self._posterior(x, tx, t_cal, t_arr)
        purchases, _ = self._future_sums(x, shape, z)
        out: FloatArray = alive * (share * purchases).sum(axis=1)
        return out

    def p_alive_at(
        self, t: float | ArrayLike, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
    ) -> FloatArray:
        """P(alive at ``T + t`` | x, t_x, T): alive at ``T``, then no dropout at the ``J =
        (N + m) // k`` purchases the window completes, ``P(alive) sum_m w_m sum_n P(N = n)
        E[(1 - p)^J]`` (terms as in :meth:`expected_purchases`)."""
        x, tx, t_cal, t_arr = check_future_rfm(t, frequency, recency, T)
        share, shape, z, alive = self._posterior(x, tx, t_cal, t_arr)
        _, survive = self._future_sums(x, shape, z)
        out: FloatArray = alive * (share * survive).sum(axis=1)
        return out

    def _future_sums(
        self, x: FloatArray, shape: FloatArray, z: FloatArray
    ) -> tuple[FloatArray, FloatArray]:
        """Per row and phase ``m`` (rows x phases): ``sum_n P(N = n) C((n + m) // k)`` and
        ``sum_n P(N = n) E[(1 - p)^((n + m) // k)]``.

        The pmf and the Beta moments are updated by their term ratios, in log space for the
        pmf; the sum stops once the pmf's mass left is below :data:`TAIL`. The sums depend on
        ``x`` and ``z`` alone, so they run once per distinct pair (customers differing only in
        ``t_x`` share them).
        """
        _, first, inverse = np.unique(
            np.column_stack([x, z]), axis=0, return_index=True, return_inverse=True
        )
        if first.size < x.size:
            total, survive = self._future_sums(x[first], shape[first], z[first])
            return total[inverse.ravel()], survive[inverse.ravel()]
        a, b = self._params()[2:]
        k = self._k()
        # Rows x phases, flattened: the n-sum runs on the entries whose mass is not complete.
        shape_f, z_f = shape.ravel(), np.repeat(z, k)
        m_f = np.tile(np.arange(k, dtype=np.float64), x.size)
        b_f = np.repeat(b + x + self._SHIFT, k)
        mean = shape_f * z_f / (1.0 - z_f)
        with np.errstate(divide="ignore"):
            log_z = np.log(z_f)
        log_pmf = shape_f * np.log1p(-z_f)  # log P(N = 0)
        mass = np.exp(log_pmf)
        total = np.zeros_like(shape_f)
        survive = mass.copy()  # N = 0 completes no purchase: E[(1 - p)^0] = 1
        reached = np.zeros_like(shape_f)  # C(J) of the purchases completed so far
        following = np.ones_like(shape_f)  # E[(1 - p)^J], the next purchase's term
        active = np.flatnonzero((z_f > 0) & (mass < 1.0 - TAIL))
        n = 0
        while active.size:
            n += 1
            log_pmf[active] += log_z[active] + np.log(shape_f[active] + n - 1.0) - np.log(n)
            completes = active[(n + m_f[active]) % k == 0]
            j = (n + m_f[completes]) // k  # purchase j needs its (j k - m)-th event
            reached[completes] += following[completes]
            b_c = b_f[completes]
            following[completes] *= (b_c + j - 1.0) / (a + b_c + j - 1.0)
            pmf = np.exp(log_pmf[active])
            total[active] += pmf * reached[active]
            survive[active] += pmf * following[active]
            mass[active] += pmf
            # Past the mean a vanishing pmf also ends the sum (rounding may keep the mass
            # a hair below 1 - TAIL).
            keep = (mass[active] < 1.0 - TAIL) & ((n <= mean[active]) | (pmf > 1e-30))
            active = active[keep]
        return total.reshape(x.size, k), survive.reshape(x.size, k)

    def p_no_purchase(
        self, t: float | ArrayLike, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
    ) -> FloatArray:
        """P(no purchase in ``(T, T + t]`` | x, t_x, T).

        ``1 - P(alive) sum_m w_m P(N >= k - m)``: an alive customer buys once the ``k - m``
        phases left to their next purchase have passed.
        """
        x, tx, t_cal, t_arr = check_future_rfm(t, frequency, recency, T)
        share, shape, z, alive = self._posterior(x, tx, t_cal, t_arr)
        k = self._k()
        events = k - np.arange(k, dtype=np.float64)
        buys = betainc(np.broadcast_to(events, shape.shape), shape, z[:, None])
        out: FloatArray = 1.0 - alive * (share * buys).sum(axis=1)
        return out

    # ------------------------------------------------------------------ helpers
    def _posterior(
        self, x: FloatArray, tx: FloatArray, t_cal: FloatArray, t_arr: FloatArray
    ) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
        """Phase weights ``w_m`` and NBD shapes ``r + k x + m`` (rows x phases), the NBD's
        ``z = t / (alpha + T + t)``, and P(alive)."""
        params = self._params()
        r, alpha = params[0], params[1]
        k = self._k()
        levels, idx = np.unique(x, return_inverse=True)
        phases = log_phases(r + k * levels, k)[idx.ravel()] + _phase_times(tx, t_cal, alpha, k)
        share = np.exp(phases - logsumexp(phases, axis=1, keepdims=True))
        shape = r + k * x[:, None] + np.arange(k, dtype=np.float64)
        z = t_arr / (alpha + t_cal + t_arr)
        alive = _p_alive(params, x, tx, t_cal, self._SHIFT, k)
        return share, shape, z, alive

    def _k(self) -> int:
        k = self.k
        if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
            raise ConfigError(f"k must be a positive integer; got {k!r}")
        return int(k)


class ModifiedBetaGeoCNBDModel(BetaGeoCNBDModel):
    """MBG/CNBD-k (Platzer & Reutterer 2016): the BG/CNBD-k with a dropout chance at the
    first purchase too, as in the MBG/NBD. Same interface and parameters."""

    _SHIFT = 1
    _NAME = "MBG/CNBD-k"


def select_k(
    frequency: ArrayLike,
    recency: ArrayLike,
    T: ArrayLike,
    litt: ArrayLike,
    *,
    weights: ArrayLike | None = None,
    model: type[BetaGeoCNBDModel] = BetaGeoCNBDModel,
    k_max: int = K_MAX,
    penalizer_coef: float = 0.0,
) -> tuple[BetaGeoCNBDModel, dict[int, float]]:
    """Fit ``model`` at ``k = 1, 2, ...`` and keep the ``k`` of the highest log-likelihood.

    As in BTYDplus (``mbgcnbd.EstimateParameters``), the search stops early once the
    log-likelihood has fallen twice in a row, and at the first ``k`` that cannot be fitted.

    Parameters
    ----------
    litt
        Per customer, the sum of the logarithms of the inter-purchase times, in the time
        unit of ``recency`` (0 when ``frequency == 0``).
    model
        :class:`BetaGeoCNBDModel` or :class:`ModifiedBetaGeoCNBDModel`.

    Returns
    -------
    model, log_likelihoods
        The fitted model at the chosen ``k``, and the log-likelihood of every ``k`` tried.

    Raises
    ------
    InsufficientDataError
        When not even ``k = 1`` can be fitted.
    """
    if isinstance(k_max, bool) or not isinstance(k_max, int) or k_max < 1:
        raise ConfigError(f"k_max must be a positive integer; got {k_max!r}")
    fits: dict[int, BetaGeoCNBDModel] = {}
    lls: dict[int, float] = {}
    for k in range(1, k_max + 1):
        try:
            fitted = model(k, penalizer_coef).fit(frequency, recency, T, weights)
        except InsufficientDataError:
            if k == 1:
                raise
            break
        fits[k] = fitted
        lls[k] = fitted.log_likelihood(frequency, recency, T, weights, litt=litt)
        if k > 2 and lls[k] < lls[k - 1] < lls[k - 2]:
            break
    best = max(lls, key=lls.__getitem__)
    return fits[best], lls
