"""BTYD model diagnostics as tables: tracking, conditional expectations, frequency x recency.

The checks of Fader, Hardie & Lee (2005, figures 2-4) and the BTYDplus vignette, for any
fitted RFM-level purchase model (BG/NBD, MBG/NBD, Pareto/NBD, (M)BG/CNBD-k) or a BTYD
forecaster holding one, on a calibration period up to ``as_of`` and a holdout ``(as_of, end]``:

- :func:`tracking_table`: repeat purchases per week of calendar time, actual and expected,
  for the cohort of customers whose first purchase is up to ``as_of``;
- :func:`conditional_expectations`: mean holdout purchases by calibration frequency, actual
  and the model's conditional expectation;
- :func:`p_alive_matrix`, :func:`expected_purchases_matrix`: the model over a frequency x
  recency grid at one ``T``.

Purchases are purchase days (:func:`~ltvcast.data.purchases.purchase_days`) and time is in
units of ``time_unit_days``, as in :func:`~ltvcast.features.rfm.rfm_summary` (7: the weeks of
:class:`~ltvcast.models.btyd.BTYDForecaster`). :mod:`ltvcast.report.diagnostics` draws them.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt
import pandas as pd

from ltvcast.data.purchases import horizon_labels, purchase_days
from ltvcast.data.schemas import CUSTOMER_ID, TIMESTAMP, CustomerData
from ltvcast.exceptions import ConfigError
from ltvcast.features.rfm import rfm_summary
from ltvcast.models.base import Forecaster
from ltvcast.models.bgnbd import FloatArray
from ltvcast.models.btyd import WEEK_DAYS, BTYDForecaster, PurchaseModel
from ltvcast.models.covariates import RFMCovariateModel

#: Days per period of :func:`tracking_table`.
PERIOD_DAYS = 7
#: Columns of :func:`tracking_table`.
TRACKING_COLUMNS = (
    "period_end",
    "days",
    "holdout",
    "actual",
    "expected",
    "actual_cumulative",
    "expected_cumulative",
)


def purchase_model(model: Forecaster | PurchaseModel) -> PurchaseModel:
    """The RFM-level purchase model of ``model``: itself, or a fitted BTYD forecaster's
    ``bgnbd_`` (through :attr:`~ltvcast.models.base.Forecaster.chosen`, so an ``auto`` that
    chose a BTYD model qualifies).

    Raises
    ------
    ConfigError
        For a forecaster without one (``baseline``, ``gbdt``, ``seq``).
    NotFittedError
        For an unfitted forecaster.
    """
    if not isinstance(model, Forecaster):
        return model
    chosen = model.chosen
    if not isinstance(chosen, BTYDForecaster):
        raise ConfigError(
            f"model {chosen.name or type(chosen).__name__!r} has no BTYD purchase model; "
            "diagnostics need btyd, btyd_cal, pnbd, bgcnbd or mbgcnbd"
        )
    chosen.check_fitted()
    if isinstance(chosen.bgnbd_, RFMCovariateModel):
        raise ConfigError(
            "diagnostics of a BTYD model with covariates are not available (each customer has "
            "a curve of their own); fit the model without covariates to see them"
        )
    return chosen.bgnbd_


def expected_repeat_purchases(model: Forecaster | PurchaseModel, u: npt.ArrayLike) -> FloatArray:
    """E[X(u)]: a customer's expected repeat purchases in the ``u`` time units after their
    first purchase, before anything else is known of them.

    The conditional expectation of every purchase model at ``x = t_x = T = 0`` (FHL 2005
    eq. 9 for BG/NBD), evaluated once per distinct ``u``.
    """
    times = np.asarray(u, dtype=np.float64)
    levels, inverse = np.unique(times.ravel(), return_inverse=True)
    zeros = np.zeros_like(levels)
    values = purchase_model(model).expected_purchases(levels, zeros, zeros, zeros)
    out: FloatArray = values[inverse].reshape(times.shape)
    return out


def tracking_table(
    model: Forecaster | PurchaseModel,
    data: CustomerData,
    as_of: pd.Timestamp,
    end: pd.Timestamp,
    *,
    time_unit_days: float = WEEK_DAYS,
) -> pd.DataFrame:
    """Weekly repeat purchases of the calibration cohort, actual and expected.

    The cohort is every customer with a purchase up to ``as_of``. A customer whose first
    purchase is on day ``s`` is expected to make ``E[X((d - s) / time_unit_days)]``
    (:func:`expected_repeat_purchases`) repeat purchases by the end of day ``d``; the
    cohort's curve sums them, through the calibration and the holdout alike (the tracking
    plot of FHL 2005, fig. 2 and 3). Periods are :data:`PERIOD_DAYS` whole days, one of them
    ending on the day of ``as_of``; the last one ends on the day of ``end`` and may be
    shorter. A holdout purchase later on the day of ``as_of`` counts in the first holdout
    period.

    Parameters
    ----------
    model
        A fitted purchase model, or a fitted forecaster holding one (:func:`purchase_model`),
        in units of ``time_unit_days``.
    data
        Transactions through ``end`` (later rows are ignored).
    as_of, end
        The calibration cut-off (inclusive) and the end of the holdout (inclusive).

    Returns
    -------
    DataFrame
        One row per period, columns :data:`TRACKING_COLUMNS`: ``period_end`` (its last day),
        ``days`` (its length), ``holdout`` (bool), repeat purchases in the period (``actual``,
        ``expected``) and up to its end.
    """
    _check_window(as_of, end)
    purchases = purchase_model(model)
    tx = data.transactions
    first = rfm_summary(tx, as_of, time_unit_days=time_unit_days)["first_purchase"]
    cal = _days(tx.loc[tx[TIMESTAMP] <= as_of], first.index)
    hold = _days(tx.loc[(tx[TIMESTAMP] > as_of) & (tx[TIMESTAMP] <= end)], first.index)
    first_day = _day_numbers(first)
    cut, last = _day_number(as_of), _day_number(end)
    start = int(first_day.min()) if first_day.size else cut
    edges = _period_edges(start, cut, last)
    repeat = cal["day"].to_numpy() > first_day[cal["code"].to_numpy()]
    days = np.r_[cal["day"].to_numpy()[repeat], np.maximum(hold["day"].to_numpy(), cut + 1)]
    period = np.asarray(np.searchsorted(edges, days, side="left"))
    actual = np.bincount(period[period < len(edges)], minlength=len(edges))[1:]
    # Expected repeat purchases by the end of each day since the cohort's start: the count
    # of first purchases per day convolved with E[X] per day since a first purchase.
    span = last - start
    firsts = np.bincount(first_day - start, minlength=span + 1)
    by_day = np.convolve(
        firsts, expected_repeat_purchases(purchases, np.arange(span + 1) / time_unit_days)
    )
    cumulative = np.where(edges >= start, by_day[np.clip(edges - start, 0, span)], 0.0)
    return pd.DataFrame(
        {
            "period_end": edges[1:].astype("datetime64[D]").astype("datetime64[ns]"),
            "days": np.diff(edges),
            "holdout": edges[1:] > cut,
            "actual": actual.astype(np.float64),
            "expected": np.diff(cumulative),
            "actual_cumulative": np.cumsum(actual).astype(np.float64),
            "expected_cumulative": cumulative[1:],
        },
        columns=list(TRACKING_COLUMNS),
    )


def conditional_expectations(
    model: Forecaster | PurchaseModel,
    data: CustomerData,
    as_of: pd.Timestamp,
    end: pd.Timestamp,
    *,
    max_frequency: int = 7,
    time_unit_days: float = WEEK_DAYS,
) -> pd.DataFrame:
    """Mean holdout purchases by calibration frequency, actual and expected.

    Customers with a purchase up to ``as_of`` are grouped by their repeat purchases up to
    then (``max_frequency`` and more in the last group); ``expected`` is the mean of the
    model's conditional expectation over the ``(as_of, end]`` holdout (FHL 2005, fig. 4),
    ``actual`` the mean of their purchase days in it
    (:func:`~ltvcast.data.purchases.horizon_labels`).

    Returns
    -------
    DataFrame
        One row per non-empty group, in order: ``frequency`` (label: ``"0"``, ``"1"``, ...,
        ``"7+"``), ``customers``, ``actual``, ``expected``.
    """
    _check_window(as_of, end)
    _check_count("max_frequency", max_frequency, 1)
    rfm = rfm_summary(data.transactions, as_of, time_unit_days=time_unit_days)
    t = (end - as_of) / pd.Timedelta(days=time_unit_days)
    expected = purchase_model(model).expected_purchases(
        t, rfm["frequency"], rfm["recency"], rfm["T"]
    )
    actual = horizon_labels(data.transactions, rfm.index, as_of, end)["purchases"]
    group = np.minimum(rfm["frequency"].to_numpy(), max_frequency).astype(np.int64)
    table = (
        pd.DataFrame({"group": group, "actual": actual.to_numpy(), "expected": expected})
        .groupby("group")
        .agg(
            customers=("actual", "size"),
            actual=("actual", "mean"),
            expected=("expected", "mean"),
        )
    )
    labels = [f"{g}+" if g == max_frequency else str(g) for g in table.index]
    return table.reset_index(drop=True).assign(frequency=labels)[
        ["frequency", "customers", "actual", "expected"]
    ]


def p_alive_matrix(
    model: Forecaster | PurchaseModel,
    T: float,
    *,
    max_frequency: int = 20,
    recency_step: float = 1.0,
) -> pd.DataFrame:
    """P(alive at ``T``) over frequency ``0 .. max_frequency`` x recency ``0, step, ... <= T``.

    Cells no customer can be in (no repeat purchase but a recency, or repeat purchases at
    recency 0) are NaN.

    Returns
    -------
    DataFrame
        Index ``frequency`` (int), columns ``recency`` (float).
    """
    return _matrix(purchase_model(model).p_alive, T, max_frequency, recency_step)


def expected_purchases_matrix(
    model: Forecaster | PurchaseModel,
    T: float,
    t: float,
    *,
    max_frequency: int = 20,
    recency_step: float = 1.0,
) -> pd.DataFrame:
    """Expected purchases in ``(T, T + t]`` over the grid of :func:`p_alive_matrix`."""
    fitted = purchase_model(model)

    def expected(x: FloatArray, tx: FloatArray, t_cal: FloatArray) -> FloatArray:
        return fitted.expected_purchases(t, x, tx, t_cal)

    return _matrix(expected, T, max_frequency, recency_step)


def _matrix(
    formula: Callable[[FloatArray, FloatArray, FloatArray], FloatArray],
    T: float,
    max_frequency: int,
    recency_step: float,
) -> pd.DataFrame:
    """``formula(x, t_x, T)`` on the possible cells of the frequency x recency grid."""
    if not (np.isfinite(T) and T > 0):
        raise ConfigError(f"T must be positive and finite; got {T!r}")
    _check_count("max_frequency", max_frequency, 0)
    if not (np.isfinite(recency_step) and 0 < recency_step <= T):
        raise ConfigError(f"recency_step must be in (0, T = {T:g}]; got {recency_step!r}")
    frequency = np.arange(max_frequency + 1)
    recency = np.arange(0.0, T * (1 + 1e-12), recency_step)
    x, tx = np.meshgrid(frequency.astype(np.float64), recency, indexing="ij")
    possible = (x > 0) == (tx > 0)
    values = np.full(x.shape, np.nan)
    values[possible] = formula(x[possible], tx[possible], np.full(int(possible.sum()), float(T)))
    return pd.DataFrame(
        values,
        index=pd.Index(frequency, name="frequency"),
        columns=pd.Index(recency, name="recency"),
    )


def _check_count(name: str, value: int, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}; got {value!r}")


def _period_edges(start: int, cut: int, last: int) -> npt.NDArray[np.int64]:
    """Day numbers ending the periods of :func:`tracking_table`, after a first edge before
    ``start``: :data:`PERIOD_DAYS` apart through ``cut``, then on to ``last``."""
    back = -(-(cut - start) // PERIOD_DAYS)
    ahead = -(-(last - cut) // PERIOD_DAYS)
    return np.r_[
        cut - PERIOD_DAYS * np.arange(back, 0, -1),
        cut,
        np.minimum(cut + PERIOD_DAYS * np.arange(1, ahead + 1), last),
    ].astype(np.int64)


def _check_window(as_of: pd.Timestamp, end: pd.Timestamp) -> None:
    if end < as_of:
        raise ConfigError(f"end must not be before as_of ({as_of}); got {end}")


def _day_number(stamp: pd.Timestamp) -> int:
    """Days since the epoch of ``stamp``'s day."""
    return int(pd.Timestamp(stamp).floor("D").value // 86_400_000_000_000)


def _day_numbers(days: pd.Series) -> npt.NDArray[np.int64]:
    return days.to_numpy(dtype="datetime64[D]").astype(np.int64)


def _days(transactions: pd.DataFrame, cohort: pd.Index) -> pd.DataFrame:
    """Purchase days of the ``cohort``'s customers: ``code`` (position in ``cohort``) and
    ``day`` (days since the epoch)."""
    days = purchase_days(transactions)
    days = days.loc[days["is_purchase"]]
    code = cohort.get_indexer(pd.Index(days[CUSTOMER_ID]))
    keep = code >= 0
    return pd.DataFrame({"code": code[keep], "day": _day_numbers(days["day"])[keep]})
