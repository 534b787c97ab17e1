"""The BTYD side of the hybrid sequence model: calibrated BTYD forecasts at every origin.

Count-only recurrent models drift towards the cohort average on long sparse panels unless
they get persistent per-customer information (Valendin, Reutterer, Platzer & Kalcher 2022).
``hybrid="btyd_residual"`` gives the network what BTYD knows about each customer at each
origin ``t``: the calibrated MBG/NBD + Gamma-Gamma forecast (``btyd_cal``) of the horizon
after ``t``, from a model **fitted on the data up to t** (:func:`btyd_origins`). It enters
twice (:func:`wide_inputs`, :func:`residual_offsets`):

- as wide inputs of the heads' dense layer (known, ``log1p`` expected purchases,
  P(purchase in the horizon), ``log1p`` expected value), standardised on the training
  origins;
- as offsets of the horizon heads, so that at initialisation the network's ZILN mean *is*
  the BTYD value and its Poisson mean the BTYD purchases, and its curve
  (:mod:`~ltvcast.models.seq.curve`) BTYD's purchase curve from the same model
  (:func:`curve_offsets`); the network learns a correction
  (``predicted = BTYD value x exp(correction)`` in the mean) from the sequences, context,
  events and profiles. Customers BTYD knows nothing of (no purchase yet) keep the
  network's own base rates.

With ``use_aggregates`` the wide inputs also hold, at each origin, the tabular aggregates
``gbdt`` learns from (:func:`aggregates`: RFM, trailing-window purchases and spend,
inter-purchase intervals, order values, returns and behaviour-event counts): a wide-and-deep
head.

Fitting BTYD at every period would dominate the training time, so it is fitted at
``max_origins`` origins spread over the training ones (the validation origin always among
them); the network trains on those origins only.

Finally the forecast is anchored to BTYD's (:func:`anchored_blend`): ``k * anchor^(1 - w) *
network^w``, where the anchor is BTYD's value (the network's, scaled to the validation
labels, for a customer BTYD does not know) and the network's value is by default its
expected purchases times BTYD's spend per purchase (:func:`purchases_value`). The weight
``w`` is chosen on the validation origin (direct mode) or periods (rollout mode;
:func:`fit_blend`); in direct mode ``k`` then keeps the anchor's total at the as-of time.
The level comes from BTYD and the network reshapes it as far as the latest labels it did not learn
from support: in rollout mode, whose simulated paths compound their errors over a long
horizon, this keeps the rolled-out total within BTYD's.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch

from ltvcast.data.schemas import CUSTOMER_ID, CustomerData
from ltvcast.exceptions import ConfigError, InsufficientDataError
from ltvcast.features.tabular import behaviour_features, transaction_features
from ltvcast.models.btyd_cal import CalibratedBTYDForecaster
from ltvcast.models.seq.inputs import ColumnScaler
from ltvcast.models.seq.loss import inverse_softplus
from ltvcast.timeframe import Horizon

#: Values of ``SeqForecaster.hybrid``.
HYBRIDS = ("btyd_residual", "none")
#: Values of ``SeqForecaster.network_value``: the network's value in the blend.
NETWORK_VALUES = ("purchases", "ziln")
#: The BTYD forecast columns, in the order of :func:`btyd_origins`' last axis.
FORECASTS = ("predicted_value", "predicted_purchases", "p_active")
#: BTYD's wide inputs of the heads, in the network's order (the aggregates follow).
WIDE_NAMES = ("btyd_known", "btyd_log_purchases", "btyd_p_active", "btyd_log_value")
#: Prefix of the tabular aggregates among the wide inputs.
AGGREGATE_PREFIX = "agg:"
#: Tabular columns left out of the aggregates (the calendar is in the sequence context).
_NOT_AGGREGATES = ("asof_month", "asof_dayofweek")
#: Clip of P(purchase) in the offsets, away from 0 and 1.
_P_CLIP = 1e-4
#: Network weights of :func:`anchored_blend` tried on the validation origins.
BLEND_WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)


def check_hybrid(hybrid: str, network_value: str = "purchases") -> None:
    """:class:`ConfigError` unless ``hybrid`` is one of :data:`HYBRIDS` and
    ``network_value`` one of :data:`NETWORK_VALUES`."""
    if hybrid not in HYBRIDS:
        raise ConfigError(f"seq: hybrid must be one of {', '.join(HYBRIDS)}; got {hybrid!r}")
    if network_value not in NETWORK_VALUES:
        raise ConfigError(
            f"seq: network_value must be one of {', '.join(NETWORK_VALUES)}; got {network_value!r}"
        )


def origin_columns(candidates: np.ndarray, max_origins: int) -> np.ndarray:
    """At most ``max_origins`` of the sorted ``candidates`` columns, evenly spread, the last
    one always kept (sorted)."""
    if max_origins < 1:
        raise ConfigError(f"seq: btyd_origins must be >= 1; got {max_origins!r}")
    step = max(1, math.ceil(len(candidates) / max_origins))
    return np.sort(candidates[::-1][::step])


def fit_btyd(data: CustomerData, as_of: pd.Timestamp, horizon: Horizon) -> CalibratedBTYDForecaster:
    """The calibrated BTYD model (``btyd_cal``) fitted on ``data`` up to ``as_of``."""
    return CalibratedBTYDForecaster().fit(data, as_of, horizon)


def btyd_forecast(
    model: CalibratedBTYDForecaster, data: CustomerData, as_of: pd.Timestamp, customers: pd.Index
) -> np.ndarray:
    """float64 ``(len(customers), 3)``: :data:`FORECASTS` at ``as_of`` (0 for a customer
    BTYD does not know: no purchase up to ``as_of``)."""
    pred = model.predict(data, as_of).set_index("customer_id")
    return pred.reindex(customers)[list(FORECASTS)].fillna(0.0).to_numpy(np.float64)


def btyd_curve(
    model: CalibratedBTYDForecaster,
    data: CustomerData,
    as_of: pd.Timestamp,
    customers: pd.Index,
    horizons: Sequence[Horizon],
) -> np.ndarray:
    """float64 ``(len(customers), len(horizons))``: BTYD's expected purchases at each of
    ``horizons`` after ``as_of`` (:meth:`~ltvcast.models.btyd.BTYDForecaster.predict_curve`;
    0 for a customer it does not know)."""
    if not horizons:
        return np.zeros((len(customers), 0))
    table = model.predict_curve(data, as_of, horizons)
    columns = [f"purchases_{h}" for h in horizons]
    return table.reindex(customers)[columns].fillna(0.0).to_numpy(np.float64)


def btyd_origins(
    data: CustomerData,
    period_ends: pd.DatetimeIndex,
    customers: pd.Index,
    columns: np.ndarray,
    horizon: Horizon,
    curve: Sequence[Horizon] = (),
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """BTYD forecasts at the end of each of ``columns`` of a period grid.

    The origin of column ``c`` is the last instant of its last day; the model there is
    fitted on the data up to it and forecasts ``horizon`` after it, so nothing after an
    origin reaches its inputs.

    Returns
    -------
    (ndarray, ndarray, ndarray)
        float64 ``(customers, periods, 3)`` forecasts and ``(customers, periods,
        len(curve))`` expected purchases at each horizon of ``curve`` (:func:`btyd_curve`),
        both 0 outside the fitted columns, and the bool ``(periods,)`` columns where BTYD
        could be fitted.
    """
    out = np.zeros((len(customers), len(period_ends), len(FORECASTS)))
    purchases = np.zeros((len(customers), len(period_ends), len(curve)))
    fitted = np.zeros(len(period_ends), dtype=bool)
    for c in columns:  # a handful of model fits, each vectorised over the customers
        origin = period_ends[c] - pd.Timedelta(1, "ns")
        try:
            model = fit_btyd(data, origin, horizon)
        except InsufficientDataError:
            continue
        out[:, c] = btyd_forecast(model, data, origin, customers)
        purchases[:, c] = btyd_curve(model, data, origin, customers, curve)
        fitted[c] = True
    return out, purchases, fitted


def aggregates(
    data: CustomerData, as_of: pd.Timestamp, customers: pd.Index, event_types: Sequence[str]
) -> pd.DataFrame:
    """The tabular aggregates ``gbdt`` learns from, of ``customers`` at ``as_of``.

    :func:`~ltvcast.features.tabular.transaction_features` and, for ``event_types`` (none:
    no behaviour column), :func:`~ltvcast.features.tabular.behaviour_features`, calendar
    left out, as signed ``log1p`` with 0 where undefined (no purchase or event yet), named
    ``agg:<column>``.
    """
    past = data.until(as_of)
    rows = pd.RangeIndex(len(customers))  # integer ids: pandas aligns them much faster
    blocks = [transaction_features(_by_row(past.transactions, customers), rows, as_of)]
    if event_types:
        events = None if past.events is None else _by_row(past.events, customers)
        blocks.append(behaviour_features(events, rows, as_of, event_types=event_types))
    table = pd.concat(blocks, axis=1).drop(columns=list(_NOT_AGGREGATES))
    values = table.to_numpy(np.float64)
    values = np.nan_to_num(np.sign(values) * np.log1p(np.abs(values)))
    return pd.DataFrame(values, index=customers, columns=AGGREGATE_PREFIX + table.columns)


def _by_row(table: pd.DataFrame, customers: pd.Index) -> pd.DataFrame:
    """The rows of ``customers`` in ``table``, ``customer_id`` replaced by its position."""
    position = customers.get_indexer(pd.Index(table[CUSTOMER_ID]))
    return table.assign(**{CUSTOMER_ID: position}).loc[position >= 0]


def origin_aggregates(
    data: CustomerData,
    period_ends: pd.DatetimeIndex,
    customers: pd.Index,
    columns: np.ndarray,
    event_types: Sequence[str],
) -> tuple[np.ndarray, tuple[str, ...]]:
    """:func:`aggregates` at the end of each of ``columns`` of a period grid (the origins of
    :func:`btyd_origins`): float32 ``(customers, periods, k)``, 0 outside ``columns``, and
    the ``k`` names."""
    tables = [
        aggregates(data, period_ends[c] - pd.Timedelta(1, "ns"), customers, event_types)
        for c in columns  # a handful of origins, each vectorised over the customers
    ]
    names = tuple(tables[0].columns)
    out = np.zeros((len(customers), len(period_ends), len(names)), dtype=np.float32)
    for c, table in zip(columns, tables, strict=True):
        out[:, c] = table.to_numpy(np.float32)
    return out, names


def known(forecasts: np.ndarray) -> np.ndarray:
    """bool ``(...)``: where BTYD gives a positive value, purchases and P(purchase)."""
    return np.asarray((forecasts > 0).all(-1))


def wide_features(forecasts: np.ndarray) -> np.ndarray:
    """float64 ``(..., 4)``: the unscaled :data:`WIDE_NAMES` of BTYD ``forecasts``."""
    value, purchases, p_active = (forecasts[..., k] for k in range(3))
    return np.stack(
        [
            known(forecasts).astype(np.float64),
            np.log1p(np.clip(purchases, 0.0, None)),
            p_active,
            np.log1p(np.clip(value, 0.0, None)),
        ],
        -1,
    )


def wide_table(forecasts: np.ndarray, extra: np.ndarray | None) -> np.ndarray:
    """float32 ``(..., 4 + k)``: :func:`wide_features` of ``forecasts``, then the ``k``
    aggregates ``extra`` (none: ``k = 0``)."""
    parts = [wide_features(forecasts).astype(np.float32)]
    return np.concatenate(parts + ([] if extra is None else [extra]), -1)


def fit_wide_scaler(
    wide: np.ndarray, origins: np.ndarray, names: Sequence[str] = WIDE_NAMES
) -> ColumnScaler:
    """Standardisation of the wide inputs ``names`` (:func:`wide_table`) over the training
    ``origins`` (bool mask)."""
    return ColumnScaler.fit(names, wide[origins])


def wide_inputs(
    wide: np.ndarray, scaler: ColumnScaler, names: Sequence[str] = WIDE_NAMES
) -> np.ndarray:
    """float32 scaled wide inputs ``names`` of a :func:`wide_table`."""
    return scaler.transform(wide, names).astype(np.float32)


def residual_offsets(forecasts: np.ndarray, base: tuple[float, float, float, float]) -> np.ndarray:
    """float32 ``(..., 4)`` offsets of the horizon heads' logits (P(buy), mu, sigma, count).

    ``base`` holds the heads' initial logits (logit of the buying rate, mean log spend,
    sigma and log mean purchases; :func:`~ltvcast.models.seq.training.base_rates`). With the
    offsets, a head at its initial logits gives BTYD's P(purchase), ZILN mean (the BTYD
    value) and Poisson mean (the BTYD purchases); where BTYD knows nothing the offsets are 0.
    """
    logit_rate, mean_log, sigma, log_count = base
    value, purchases, p_active = (forecasts[..., k] for k in range(3))
    p = np.clip(p_active, _P_CLIP, 1.0 - _P_CLIP)
    safe_value = np.where(value > 0, value, 1.0)
    out = np.stack(
        [
            np.log(p / (1.0 - p)) - logit_rate,
            np.log(safe_value / p) - 0.5 * sigma**2 - mean_log,
            np.zeros_like(p),
            np.log(np.where(purchases > 0, purchases, 1.0)) - log_count,
        ],
        -1,
    )
    return np.where(known(forecasts)[..., None], out, 0.0).astype(np.float32)


def curve_offsets(curve: np.ndarray, position: int, steps: np.ndarray) -> np.ndarray:
    """float32 ``(..., k)`` offsets of the curve's steps from BTYD's expected purchases
    ``curve`` ``(..., k + 1)`` at its horizons (the own one at ``position``).

    ``steps`` are the heads' initial steps (:func:`~ltvcast.models.seq.training.curve_means`).
    With the offsets, a head at its initial logits gives BTYD's ratio of each horizon's
    purchases to its neighbour's towards ``position`` (at least ``exp(1e-3)``); where BTYD
    knows nothing (no positive purchases at some horizon) the offsets are 0.
    """
    safe = np.clip(curve, 1e-12, None)
    others = np.delete(safe, position, -1)
    neighbour = np.concatenate([safe[..., 1 : position + 1], safe[..., position:-1]], -1)
    ratio = np.clip(np.abs(np.log(others / neighbour)), 1e-3, None)
    out = _inverse_softplus(ratio) - _inverse_softplus(np.asarray(steps, dtype=np.float64))
    return np.where((curve > 0).all(-1, keepdims=True), out, 0.0).astype(np.float32)


def _inverse_softplus(x: np.ndarray) -> np.ndarray:
    """:func:`~ltvcast.models.seq.loss.inverse_softplus` of a float64 array."""
    out: np.ndarray = inverse_softplus(torch.from_numpy(x)).numpy()
    return out


def purchase_spend(forecasts: np.ndarray) -> float:
    """BTYD's spend per expected purchase over the customers it knows in ``forecasts``
    (``(..., 3)``): total value over total purchases (1 when it knows none)."""
    kept = forecasts[known(forecasts)]
    purchases = float(kept[:, 1].sum())
    return float(kept[:, 0].sum()) / purchases if purchases > 0 else 1.0


def purchases_value(purchases: np.ndarray, forecasts: np.ndarray, fallback: float) -> np.ndarray:
    """The network's expected ``purchases`` times BTYD's spend per purchase (Gamma-Gamma's
    expected spend: its value over its purchases in ``forecasts``, ``(n, 3)``), ``fallback``
    for a customer BTYD does not know.

    E[value] = E[purchases] x E[spend per purchase], as in BTYD with Gamma-Gamma (Fader,
    Hardie & Lee 2005): on inner backtests the network's count head ranks better than its
    ZILN mean, whose heavy log-normal tail (sigma near 3 on the simulated store) makes the
    mean noisy.
    """
    value, count = forecasts[:, 0], forecasts[:, 1]
    ok = known(forecasts)
    spend = np.divide(value, count, out=np.full(len(value), fallback), where=ok)
    out: np.ndarray = np.clip(purchases, 0.0, None) * spend
    return out


def anchor(btyd: np.ndarray, network: np.ndarray, unknown_scale: float = 1.0) -> np.ndarray:
    """BTYD's value, or where BTYD gives none (a customer it does not know: no purchase
    yet) the network's times ``unknown_scale``, negatives as 0: the anchor of
    :func:`anchored_blend`."""
    b, r = np.clip(btyd, 0.0, None), np.clip(network, 0.0, None)
    out: np.ndarray = np.where(b > 0, b, unknown_scale * r)
    return out


def anchored_blend(
    btyd: np.ndarray,
    network: np.ndarray,
    weight: float,
    factor: float,
    unknown_scale: float = 1.0,
) -> np.ndarray:
    """``factor * anchor^(1 - weight) * network^weight`` per customer (negatives count as
    0; :func:`anchor`: BTYD's value, the scaled network's for a customer BTYD does not
    know).

    ``factor`` and ``unknown_scale`` come from :func:`fit_blend`, so a customer's forecast
    does not depend on the other customers scored with it.
    """
    r = np.clip(network, 0.0, None)
    base = anchor(btyd, network, unknown_scale)
    out: np.ndarray = factor * base ** (1.0 - weight) * r**weight
    return out


def fit_blend(
    btyd: np.ndarray, network: np.ndarray, actual: np.ndarray, calibrate: bool = False
) -> tuple[float, float, float]:
    """Weight, factor and unknown scale of :func:`anchored_blend` on the validation labels
    ``actual``.

    ``unknown_scale`` is actual / network spend over the customers BTYD does not know (1
    without them): the labels set their level in the :func:`anchor`. For each weight of
    :data:`BLEND_WEIGHTS` the factor rescales the blend to the anchor's total over these
    customers (the level comes from BTYD), or with ``calibrate`` to the ``actual`` total
    (the level of the latest labels); the weight with the lowest mean absolute error wins
    (the smaller on a tie).
    """
    unknown = np.clip(btyd, 0.0, None) <= 0
    predicted = float(np.clip(network[unknown], 0.0, None).sum())
    scale = float(actual[unknown].sum()) / predicted if predicted > 0 else 1.0
    level = float(actual.sum() if calibrate else anchor(btyd, network, scale).sum())
    best: tuple[float, float, float] = (np.inf, 0.0, 1.0)
    for weight in BLEND_WEIGHTS:
        raw = anchored_blend(btyd, network, weight, 1.0, scale)
        total = float(raw.sum())
        factor = level / total if total > 0 else 1.0
        error = float(np.abs(factor * raw - actual).mean())
        if error < best[0]:
            best = (error, weight, factor)
    return best[1], best[2], scale
