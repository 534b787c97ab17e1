"""``seq``: the founding paper's Conv1D + LSTM hybrid with ZILN outputs, trained dynamically.

Inputs (:mod:`~ltvcast.models.seq.inputs`): per-period purchases, log spend and behaviour-event
counts (:func:`~ltvcast.features.sequence.period_matrix`), per-period context (tenure,
purchases to date, recency, mean spend, calendar) and static profile inputs
(:class:`~ltvcast.features.tabular.ProfileEncoder` codes as embeddings, numerics
standardised). Scalers, vocabularies and the period grid are fitted on the training data and
stored in the artifact.

Two modes, chosen in ``fit`` and recorded in ``mode_``:

- ``"direct"`` (some backtest origin leaves a full horizon of labels): the network runs once
  over each customer's history and, at the end of **every** period ``t`` whose horizon ends
  inside the training data, is trained to give the ZILN distribution of spend and the Poisson
  mean of purchases in ``(t, t + horizon]`` (:mod:`~ltvcast.models.seq.training`). These are
  backtest origins with a one-period step (the same customer at many t, from its first period
  on), amortised in one LSTM pass. Early stopping uses the latest origin, ``as_of - horizon``;
  the model learns from origins whose horizon ends by then (time-ordered), or, when the
  history is too short for that, from the other 80 % of customers. The next-period heads are
  trained alongside as an auxiliary task, and so is a purchase curve over ``horizons``
  (:mod:`~ltvcast.models.seq.curve`: monotone by construction, each horizon trained where
  its label window ends inside the training data), which :meth:`SeqForecaster.predict_curve`
  turns into value, purchases and P(active) at each horizon, the own one's forecast
  unchanged.
- ``"rollout"`` (no origin leaves a full horizon, e.g. a calibration period as long as the
  horizon): the network learns the next period's purchases and spend at every period and is
  rolled forward over the horizon by simulation (:mod:`~ltvcast.models.seq.rollout`, after
  Valendin, Reutterer, Platzer & Kalcher 2022). Early stopping uses the last periods
  (time-ordered). Behaviour events are not simulated, so this mode uses transaction channels
  only.

The default ``hybrid="btyd_residual"`` (:mod:`~ltvcast.models.seq.hybrid`) makes it a true
hybrid: in direct mode the network sees at each origin the calibrated BTYD forecast made from
the data before it and the tabular aggregates ``gbdt`` uses (wide and deep), learns a
correction of BTYD, and its expected purchases times BTYD's spend per purchase are blended
with BTYD at BTYD's level; in rollout mode the simulated forecast is anchored to BTYD's.
``hybrid="none"`` is the paper's network alone. ``n_seeds`` averages
networks trained from several seeds.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from collections.abc import Sequence
from itertools import compress
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch
from safetensors.torch import load_file, save_file

from ltvcast.data.schemas import CUSTOMER_ID, CustomerData
from ltvcast.exceptions import ArtifactError, ConfigError, InsufficientDataError
from ltvcast.features.sequence import CONTEXT_NAMES, SequenceBatch, horizon_periods
from ltvcast.features.windows import backtest_origins
from ltvcast.models.base import Forecaster
from ltvcast.models.btyd_cal import CalibratedBTYDForecaster
from ltvcast.models.seq.curve import check_horizons, curve_columns, knots
from ltvcast.models.seq.explain import explain_forecast
from ltvcast.models.seq.forward import (
    CURVE_RATIOS,
    direct_forecast,
    resolve_device,
    torch_session,
)
from ltvcast.models.seq.hybrid import (
    WIDE_NAMES,
    aggregates,
    anchor,
    anchored_blend,
    btyd_curve,
    btyd_forecast,
    btyd_origins,
    check_hybrid,
    curve_offsets,
    fit_blend,
    fit_btyd,
    fit_wide_scaler,
    origin_aggregates,
    origin_columns,
    purchase_spend,
    purchases_value,
    residual_offsets,
    wide_inputs,
    wide_table,
)
from ltvcast.models.seq.inputs import (
    ColumnScaler,
    NetworkInputs,
    SeqInputs,
    choose_grid,
    fit_inputs,
)
from ltvcast.models.seq.network import SeqNetwork
from ltvcast.models.seq.rollout import ValidationRollout, simulate, validation_rollout
from ltvcast.models.seq.training import (
    TrainingSettings,
    base_rates,
    curve_means,
    direct_value_scale,
    init_heads,
    origin_targets,
    split_origins,
    step_aligned,
    train_network,
    validation_values,
)
from ltvcast.timeframe import Horizon, parse_horizon, parse_horizons

WEIGHTS_FILE = "seq_weights.safetensors"
MODES = ("direct", "rollout")
#: Values of ``SeqForecaster.count_loss``.
COUNT_LOSSES = ("poisson", "negbin")
#: Version of the ``state`` this class writes; 2: scalers keyed by column name; 3: several
#: networks (``n_seeds``) and the BTYD hybrid; 4: the horizon curve.
STATE_VERSION = 4
#: Forecast columns that the value calibration scales.
_VALUE_COLUMNS = ("predicted_value", "value_p10", "value_p90")


class SeqForecaster(Forecaster):
    """Conv1D -> stacked LSTM -> ZILN / Poisson heads, trained at every period of the history.

    Parameters
    ----------
    conv_filters, kernel_size, lstm_hidden, lstm_layers
        The founding paper's hybrid is (64, 3, 50, 2); the defaults halve the widths, which
        scores faster with the same accuracy on inner backtests.
    head_hidden
        Width of the dense layer before the heads.
    dropout
        Dropout between LSTM layers.
    epochs, batch_size, learning_rate, patience
        Adam training with early stopping on the time-ordered validation origin.
    customers_per_epoch
        Customers drawn afresh for each epoch, and the size of the fixed validation sample
        (``None``: all). Every customer brings all of its origins; this bounds the training
        time on large stores.
    n_periods
        History window in periods (``None``: the training span, at most 104 weeks / 180 days).
    period_days
        Period length (``None``: :func:`~ltvcast.features.sequence.choose_period_days`).
    stride
        Periods per LSTM step (the convolution's stride: the LSTM runs ``stride`` times fewer
        steps and origins fall every ``stride`` periods); ``None``: 2 in direct mode, 1 in
        rollout mode (whose simulation advances one period at a time).
    use_events, use_profiles
        Whether behaviour-event channels and profile inputs are used when the data has them.
    use_calendar
        Whether the calendar context (position in the year and week) is used; ``None``: only
        when the training history spans two years or more. With less, a season is seen at one
        age of the customer base only and the model mistakes the cohort's ageing for the
        season.
    refit
        After early stopping, retrain from scratch on the training and validation origins for
        the best number of epochs, so that the latest labels shape the model. The refitted model
        forecasts past its latest labels as the first model did over the validation periods, so
        their calibration carries over. Without it, a rollout model learns the next period only
        from the oldest periods, which misleads it when the level of a short history drifts.
    calibrate
        Scale predicted values (mean and quantiles) by actual / predicted spend on the
        validation origin (direct mode) or over the validation periods simulated from their
        start (rollout mode), so the level of the forecast matches the latest labels the model
        did not learn from. The direct hybrid keeps BTYD's level at the as-of time (the
        calibrated ``btyd_cal``; calibrating it again on the validation origin raised the
        inner-backtest MAE by 10% on CDNOW).
    mode
        ``"auto"`` (direct when a full-horizon origin exists, else rollout), ``"direct"`` or
        ``"rollout"``.
    n_samples
        Simulated paths per customer in rollout mode. The mean and ``p_active`` do not rest
        on the samples alone, so few are needed.
    aux_weight
        Weight of the next-period loss in direct mode.
    horizons
        The purchase curve's horizons in direct mode (``None``:
        :data:`~ltvcast.models.seq.curve.CURVE_HORIZONS`), the model's own always among
        them; those longer than the training history are left out, and :meth:`predict_curve`
        refuses horizons beyond the longest kept. Rollout mode forecasts its own horizon only.
    curve_weight
        Weight of each other horizon's purchase loss, relative to the own horizon's (each is
        also divided by its mean purchases over the own horizon's, so that long horizons do
        not dominate).
    count_loss
        Likelihood of the horizon and curve purchase counts in direct mode: ``"poisson"``
        or ``"negbin"`` (negative binomial, one learned size per horizon; the means, and so
        the forecasts' form, are the same).
    hybrid
        ``"btyd_residual"``: in direct mode the network also sees the calibrated BTYD
        forecast at each origin, from a BTYD model fitted on the data up to that origin, as
        wide inputs and as offsets of its horizon heads, and learns a correction of it
        (:mod:`~ltvcast.models.seq.hybrid`); ``"none"``: the paper's network alone.
    network_value
        The hybrid network's value in the blend with BTYD (direct mode): ``"purchases"``,
        its expected purchases (count head) times BTYD's spend per purchase
        (:func:`~ltvcast.models.seq.hybrid.purchases_value`), or ``"ziln"``, its
        (calibrated) ZILN mean. The quantiles keep the ZILN head's shape either way.
    use_aggregates
        Whether the hybrid's wide inputs also hold, at each origin, the tabular aggregates
        ``gbdt`` learns from (:func:`~ltvcast.models.seq.hybrid.aggregates`: a wide-and-deep
        head; behaviour columns only with ``use_events``).
    btyd_origins
        Origins at which the hybrid fits BTYD (and on which the network then trains).
    n_seeds
        Networks trained with seeds ``random_state, random_state + 1, ...`` on the same
        origins; the forecast is the average of theirs.
    device
        ``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda"``.
    n_threads
        torch CPU threads during fit/predict (``None``: leave torch's setting).
    random_state
        Seed of initialisation, batch order, hold-out and simulation.
    """

    name: ClassVar[str] = "seq"
    has_quantiles: ClassVar[bool] = True

    def __init__(
        self,
        conv_filters: int = 32,
        kernel_size: int = 3,
        lstm_hidden: int = 32,
        lstm_layers: int = 2,
        head_hidden: int = 32,
        dropout: float = 0.0,
        epochs: int = 8,
        batch_size: int = 512,
        learning_rate: float = 5e-3,
        patience: int = 2,
        customers_per_epoch: int | None = 32768,
        n_periods: int | None = None,
        period_days: int | None = None,
        stride: int | None = None,
        use_events: bool = True,
        use_profiles: bool = True,
        use_calendar: bool | None = None,
        refit: bool = True,
        calibrate: bool = True,
        mode: str = "auto",
        n_samples: int = 10,
        aux_weight: float = 0.5,
        horizons: str | tuple[str, ...] | None = None,
        curve_weight: float = 1.0,
        count_loss: str = "poisson",
        hybrid: str = "btyd_residual",
        network_value: str = "purchases",
        use_aggregates: bool = True,
        btyd_origins: int = 8,
        n_seeds: int = 1,
        device: str = "auto",
        n_threads: int | None = None,
        random_state: int = 0,
    ) -> None:
        self.conv_filters = conv_filters
        self.kernel_size = kernel_size
        self.lstm_hidden = lstm_hidden
        self.lstm_layers = lstm_layers
        self.head_hidden = head_hidden
        self.dropout = dropout
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.patience = patience
        self.customers_per_epoch = customers_per_epoch
        self.n_periods = n_periods
        self.period_days = period_days
        self.stride = stride
        self.use_events = use_events
        self.use_profiles = use_profiles
        self.use_calendar = use_calendar
        self.refit = refit
        self.calibrate = calibrate
        self.mode = mode
        self.n_samples = n_samples
        self.aux_weight = aux_weight
        self.horizons = horizons
        self.curve_weight = curve_weight
        self.count_loss = count_loss
        self.hybrid = hybrid
        self.network_value = network_value
        self.use_aggregates = use_aggregates
        self.btyd_origins = btyd_origins
        self.n_seeds = n_seeds
        self.device = device
        self.n_threads = n_threads
        self.random_state = random_state

    # ------------------------------------------------------------------ fitted grid
    @property
    def period_days_(self) -> int:
        """Days per period."""
        return self.inputs_.grid.period_days

    @property
    def n_periods_(self) -> int:
        """History window in periods (a multiple of ``stride_``)."""
        return self.inputs_.grid.n_periods

    @property
    def stride_(self) -> int:
        """Periods per LSTM step."""
        return self.inputs_.grid.stride

    @property
    def calendar_(self) -> bool:
        """Whether the calendar context is used."""
        return self.inputs_.grid.calendar

    @property
    def event_types_(self) -> tuple[str, ...]:
        """Event types with an activity channel."""
        return self.inputs_.grid.event_types

    # ------------------------------------------------------------------ fit
    def _fit(self, data: CustomerData, as_of: pd.Timestamp, horizon: Horizon) -> None:
        self._check_params()
        has_origin = bool(backtest_origins(data.first_timestamp(), as_of, horizon, max_origins=1))
        self.mode_ = self.mode if self.mode != "auto" else ("direct" if has_origin else "rollout")
        grid = choose_grid(
            data,
            as_of,
            horizon,
            direct=self.mode_ == "direct",
            period_days=self.period_days,
            n_periods=self.n_periods,
            stride=self.stride,
            use_calendar=self.use_calendar,
            use_events=self.use_events,
        )
        self.horizon_periods_ = horizon_periods(horizon, grid.period_days)
        self.inputs_, batch = fit_inputs(data, as_of, grid, use_profiles=self.use_profiles)
        rollout = self.mode_ == "rollout"
        t = batch.mask.shape[1]
        train, valid = split_origins(
            batch.mask,
            rollout=rollout,
            horizon_periods=self.horizon_periods_,
            stride=grid.stride,
            period_days=grid.period_days,
            random_state=self.random_state,
        )
        self._fit_curve(horizon, train | valid, rollout)
        targets = origin_targets(batch, self.horizon_periods_, self._curve_other_periods())
        self.btyd_: CalibratedBTYDForecaster | None = None
        self.hybrid_: dict[str, Any] | None = None
        extra, btyd_at, curve = None, None, None
        if self.hybrid == "btyd_residual" and not rollout:
            train, valid, wide, btyd_at, curve = self._fit_hybrid(
                data, as_of, horizon, batch, targets, train, valid
            )
        elif self.hybrid == "btyd_residual":
            self.btyd_, self.hybrid_ = fit_btyd(data, as_of, horizon), {}
        # the hybrid trains on the origins where BTYD could be fitted: keep the horizons
        # that some of them label
        kept = self._prune_curve(train | valid)
        targets = {k: v[..., kept] if k.startswith("curve_") else v for k, v in targets.items()}
        self.curve_steps_, curve_weights = np.zeros(0), np.zeros(0)
        if kept.any():
            position = self._curve_position()
            means, self.curve_steps_ = curve_means(targets, train, position)
            curve_weights = self.curve_weight * means[position] / np.delete(means, position)
        if btyd_at is not None and curve is not None:
            extra = (wide, self._offsets(btyd_at, curve[..., kept]))
        settings = TrainingSettings(
            epochs=self.epochs,
            batch_size=self.batch_size,
            learning_rate=self.learning_rate,
            patience=self.patience,
            customers_per_epoch=self.customers_per_epoch,
            rollout=rollout,
            aux_weight=self.aux_weight,
            random_state=self.random_state,
            curve_weights=tuple(float(w) for w in curve_weights),
            label_end=t - 1,
        )
        with self._session():
            prepared = self.inputs_.prepare(data, batch, self._device(), extra)
            self.networks_: list[SeqNetwork] = []
            records = []
            for seed in range(self.random_state, self.random_state + self.n_seeds):
                torch.manual_seed(seed)
                one = dataclasses.replace(settings, random_state=seed)
                network, record = self._train_one(
                    data, as_of, batch, prepared, targets, (train, valid), one, btyd_at
                )
                self.networks_.append(network)
                records.append(record)
        self.training_: dict[str, Any] = {
            **records[0],
            "value_scales": [r["value_scale"] for r in records],
            "best_epochs": [r["best_epoch"] for r in records],
        }
        if self.hybrid_ is not None:
            self.training_["blends"] = [r["blend"] for r in records]
            if self.mode_ == "direct":
                self.training_["blends"] = self._as_of_levels(data, as_of)

    def _train_one(
        self,
        data: CustomerData,
        as_of: pd.Timestamp,
        batch: SequenceBatch,
        prepared: NetworkInputs,
        targets: dict[str, np.ndarray],
        origins: tuple[np.ndarray, np.ndarray],
        settings: TrainingSettings,
        btyd_at: np.ndarray | None,
    ) -> tuple[SeqNetwork, dict[str, Any]]:
        """One network trained (early stopping, calibration, refit) with ``settings``' seed.

        ``btyd_at``: the hybrid's BTYD forecasts at every origin (direct mode), for the
        weight of the network against BTYD on the validation origin.
        """
        train, valid = origins
        network = self._build_network()
        init_heads(network, targets, train, self.curve_steps_)
        # until the refit, the curve reads no label after the validation origin (unless the
        # validation customers are held out: then they share its columns)
        start = int(np.flatnonzero(valid.any(0)).min())
        held_out = bool(train[:, start:].any())
        first = dataclasses.replace(settings, label_end=settings.label_end if held_out else start)
        record, aligned = train_network(network, prepared, targets, train, valid, first)
        scale = 1.0
        if self.calibrate and not settings.rollout:
            scale = direct_value_scale(network, prepared, aligned)
        if btyd_at is not None:
            value, purchases, actual = validation_values(network, prepared, aligned)
            at = step_aligned(btyd_at, prepared.lengths, self.stride_)[aligned.valid_rows]
            btyd = at[aligned.valid[aligned.valid_rows]]
            ours = self._network_value(value * scale, purchases, btyd)
            record["blend"] = fit_blend(btyd[:, 0], ours, actual, self.calibrate)
        elif settings.rollout and (self.calibrate or self.hybrid_ is not None):
            validation = validation_rollout(
                network,
                self.inputs_,
                data,
                as_of,
                batch,
                valid,
                customers_per_epoch=self.customers_per_epoch,
                n_samples=self.n_samples,
                random_state=settings.random_state,
                device=self._device(),
            )
            scale = validation.scale if self.calibrate else 1.0
            if self.hybrid_ is not None:
                record["blend"] = self._rollout_blend(data, validation, scale)
        record["value_scale"] = scale
        if self.refit:
            network = self._build_network()
            init_heads(network, targets, train | valid, self.curve_steps_)
            epochs = max(1, int(record["best_epoch"]))
            refit = dataclasses.replace(settings, epochs=epochs)
            train_network(network, prepared, targets, train | valid, None, refit)
            record["refit_epochs"] = epochs
        return network, record

    def _fit_hybrid(
        self,
        data: CustomerData,
        as_of: pd.Timestamp,
        horizon: Horizon,
        batch: SequenceBatch,
        targets: dict[str, np.ndarray],
        train: np.ndarray,
        valid: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """BTYD at ``btyd_origins`` origins and at ``as_of``: the origins kept, the hybrid's
        wide inputs of every column of ``batch``, and BTYD's forecasts and purchase curve
        (the curve's other horizons) there."""
        columns = origin_columns(np.flatnonzero((train | valid).any(0)), self.btyd_origins)
        forecasts, curve, fitted = btyd_origins(
            data, batch.period_ends, batch.customers, columns, horizon, self._curve_others()
        )
        train, valid = train & fitted, valid & fitted
        if not train.any() or not valid.any():
            raise InsufficientDataError(
                f"seq: BTYD could not be fitted at the training origins of a "
                f"{horizon.describe()} horizon (hybrid='btyd_residual'); use hybrid='none'"
            )
        base = base_rates(targets, train)
        table: np.ndarray | None = None
        names: tuple[str, ...] = ()
        if self.use_aggregates:
            at = np.flatnonzero(fitted)
            event_types = self.inputs_.grid.event_types
            table, names = origin_aggregates(
                data, batch.period_ends, batch.customers, at, event_types
            )
        wide = wide_table(forecasts, table)
        scaler = fit_wide_scaler(wide, train, (*WIDE_NAMES, *names))
        self.btyd_ = fit_btyd(data, as_of, horizon)
        self.hybrid_ = {
            "base": list(base),
            "wide_scaler": scaler.to_dict(),
            "aggregates": list(names),
            "purchase_spend": purchase_spend(forecasts[train]),
            "btyd_origins": [f"{day:%Y-%m-%d}" for day in batch.period_ends[fitted]],
        }
        return train, valid, wide_inputs(wide, scaler, self._wide_names()), forecasts, curve

    def _rollout_blend(
        self, data: CustomerData, validation: ValidationRollout, scale: float
    ) -> tuple[float, float, float]:
        """The rollout's blend with BTYD, fitted on the validation periods: BTYD fitted at
        their start and the (calibrated) rollout simulated from there."""
        window = Horizon(validation.days, "d")
        try:
            btyd = fit_btyd(data, validation.origin, window)
        except InsufficientDataError:
            return 1.0, 1.0, 1.0
        b = btyd_forecast(btyd, data, validation.origin, validation.customers)[:, 0]
        return fit_blend(b, validation.simulated * scale, validation.actual)

    def _btyd(
        self, data: CustomerData, as_of: pd.Timestamp, customers: pd.Index
    ) -> np.ndarray | None:
        """The hybrid's BTYD forecasts of ``customers`` at ``as_of`` (``None`` without)."""
        return None if self.btyd_ is None else btyd_forecast(self.btyd_, data, as_of, customers)

    def _network_value(
        self, value: np.ndarray, purchases: np.ndarray, btyd: np.ndarray
    ) -> np.ndarray:
        """The network's value in the blend (``network_value``), from its (calibrated) ZILN
        ``value`` or its expected ``purchases`` and BTYD's forecasts ``btyd`` (``(n, 3)``)."""
        if self.network_value == "ziln" or self.mode_ != "direct" or self.hybrid_ is None:
            return value
        fallback = float(self.hybrid_.get("purchase_spend", 1.0))
        return purchases_value(purchases, btyd, fallback)

    def _wide_names(self) -> tuple[str, ...]:
        """The hybrid's wide inputs in the network's order (direct mode)."""
        return (*WIDE_NAMES, *(self.hybrid_ or {}).get("aggregates", ()))

    def _hybrid_inputs(
        self,
        data: CustomerData,
        as_of: pd.Timestamp,
        customers: pd.Index,
        forecasts: np.ndarray | None,
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """The hybrid's wide inputs and offsets of ``customers`` at ``as_of`` from BTYD
        ``forecasts`` there and the aggregates (``None`` without forecasts, and in rollout
        mode, whose network takes no BTYD input)."""
        if forecasts is None or self.hybrid_ is None or self.mode_ != "direct":
            return None
        names = self._wide_names()
        table = None
        if len(names) > len(WIDE_NAMES):
            frame = aggregates(data, as_of, customers, self.inputs_.grid.event_types)
            columns = list(names[len(WIDE_NAMES) :])
            table = frame.reindex(columns=columns, fill_value=0.0).to_numpy(np.float32)
        scaler = ColumnScaler.from_dict(self.hybrid_["wide_scaler"])
        wide = wide_inputs(wide_table(forecasts, table), scaler, names)
        curve = btyd_curve(self.btyd_, data, as_of, customers, self._curve_others())  # type: ignore[arg-type]
        return wide, self._offsets(forecasts, curve)

    def _offsets(self, forecasts: np.ndarray, curve: np.ndarray) -> np.ndarray:
        """The hybrid's head offsets from BTYD's ``forecasts`` (``(..., 3)``) and its
        purchases ``curve`` at the curve's other horizons (``(..., k)``)."""
        base = tuple(float(b) for b in self.hybrid_["base"])  # type: ignore[index]
        own = residual_offsets(forecasts, base)  # type: ignore[arg-type]
        if not curve.shape[-1]:
            return own
        position = self._curve_position()
        full = np.insert(curve, position, forecasts[..., 1], axis=-1)
        return np.concatenate([own, curve_offsets(full, position, self.curve_steps_)], -1)

    # ------------------------------------------------------------------ curve
    def _fit_curve(self, horizon: Horizon, origins: np.ndarray, rollout: bool) -> None:
        """The curve's horizons and periods (direct mode; rollout: the own horizon only):
        those that some of the ``origins`` (right-aligned mask) can label."""
        self.curve_horizons_: tuple[Horizon, ...] = (horizon,)
        self.curve_periods_: tuple[int, ...] = (self.horizon_periods_,)
        if rollout:
            return
        self.curve_horizons_, self.curve_periods_ = knots(
            horizon, self.horizons, self.period_days_, origins.shape[1]
        )
        self._prune_curve(origins)

    def _prune_curve(self, origins: np.ndarray) -> np.ndarray:
        """Keep the curve's horizons that some of the ``origins`` (right-aligned mask) can
        label; bool over the other horizons (those kept)."""
        t = origins.shape[1]
        longest = t - 1 - int(np.flatnonzero(origins.any(0)).min())
        kept = np.array([p <= longest for p in self._curve_other_periods()], dtype=bool)
        own = self._curve_position()
        keep = np.insert(kept, own, True)
        self.curve_horizons_ = tuple(compress(self.curve_horizons_, keep))
        self.curve_periods_ = tuple(compress(self.curve_periods_, keep))
        return kept

    def _curve_other_periods(self) -> tuple[int, ...]:
        """Periods of the curve's horizons other than the model's own, shortest first."""
        return tuple(p for p in self.curve_periods_ if p != self.horizon_periods_)

    def _curve_position(self) -> int:
        """Index of the model's own horizon among the curve's."""
        return self.curve_periods_.index(self.horizon_periods_)

    def _curve_others(self) -> tuple[Horizon, ...]:
        """The curve's horizons other than the model's own, shortest first."""
        position = self._curve_position()
        return self.curve_horizons_[:position] + self.curve_horizons_[position + 1 :]

    def predict_curve(
        self,
        data: CustomerData,
        as_of: pd.Timestamp,
        horizons: Sequence[Horizon],
        *,
        discount_rate: float | None = None,
    ) -> pd.DataFrame:
        """Forecasts at several horizons from the one fitted model
        (:mod:`~ltvcast.models.seq.curve`).

        Per horizon ``h``: ``purchases_h``, ``value_h`` (non-decreasing in ``h`` by
        construction; at the model's own horizon, its forecast), ``p_active_h`` (P(a purchase
        in ``(as_of, as_of + h]``)) and, with a ``discount_rate``, ``discounted_value_h``;
        the mean over the seeds' networks.

        Returns
        -------
        DataFrame
            Indexed by ``customer_id`` (customers seen up to ``as_of``).

        Raises
        ------
        ConfigError
            For a horizon longer than the longest of the curve.
        """
        self.check_fitted()
        check_horizons(self.curve_horizons_[-1], horizons)
        customers, forecasts, _ = self._forecasts(data.until(as_of), as_of)
        days = [h.days for h in self.curve_horizons_]
        flat = np.ones((len(customers), 1))
        tables = [
            curve_columns(f, f.get(CURVE_RATIOS, flat), days, horizons, discount_rate)
            for f in forecasts
        ]
        mean = {k: np.mean([table[k] for table in tables], axis=0) for k in tables[0]}
        return pd.DataFrame(mean, index=pd.Index(customers, name=CUSTOMER_ID))

    def _check_params(self) -> None:
        if self.mode not in ("auto", *MODES):
            raise ConfigError(f"seq: mode must be auto, direct or rollout; got {self.mode!r}")
        check_hybrid(self.hybrid, self.network_value)
        if self.horizons is not None:
            parse_horizons(self.horizons)
        if self.count_loss not in COUNT_LOSSES:
            raise ConfigError(
                f"seq: count_loss must be one of {', '.join(COUNT_LOSSES)}; got {self.count_loss!r}"
            )
        if float(self.curve_weight) < 0:
            raise ConfigError(f"seq: curve_weight must be >= 0; got {self.curve_weight!r}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ConfigError(f"seq: device must be auto, cpu or cuda; got {self.device!r}")
        for name in (
            *("epochs", "batch_size", "n_samples", "kernel_size", "lstm_layers"),
            *("n_seeds", "btyd_origins"),
        ):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"seq: {name} must be >= 1; got {getattr(self, name)!r}")

    def _build_network(self) -> SeqNetwork:
        return SeqNetwork(
            n_inputs=len(self.inputs_.channels),
            n_context=len(CONTEXT_NAMES),
            n_numeric=len(self.inputs_.numeric_columns),
            cardinalities=self.inputs_.cardinalities(),
            conv_filters=self.conv_filters,
            kernel_size=self.kernel_size,
            lstm_hidden=self.lstm_hidden,
            lstm_layers=self.lstm_layers,
            head_hidden=self.head_hidden,
            dropout=self.dropout,
            stride=self.stride_,
            n_wide=len(self._wide_names()) if self.hybrid_ and self.mode_ == "direct" else 0,
            n_curve=len(self.curve_periods_) - 1,
            curve_position=self._curve_position(),
            negbin=self.count_loss == "negbin" and self.mode_ == "direct",
        ).to(self._device())

    # ------------------------------------------------------------------ predict
    def _predict(self, data: CustomerData, as_of: pd.Timestamp) -> pd.DataFrame:
        customers, forecasts, _ = self._forecasts(data, as_of)
        names = [k for k in forecasts[0] if k != CURVE_RATIOS]
        mean = {k: np.mean([f[k] for f in forecasts], axis=0) for k in names}
        return pd.DataFrame(mean, index=customers).reset_index()

    def _as_of_levels(self, data: CustomerData, as_of: pd.Timestamp) -> list[list[float]]:
        """The direct hybrid's blends with the factor that keeps, at ``as_of`` over the
        training customers, the total of the :func:`~ltvcast.models.seq.hybrid.anchor`
        (BTYD's level): the validation origin chose the weight, but the refitted network's
        level at ``as_of`` is not the level the validated network had there (on inner
        backtests the validation factor let Online Retail's level vary by +-20% between
        seeds)."""
        blends = [[w, 1.0, u] for w, _, u in self.training_["blends"]]
        self.training_["blends"] = blends
        _, forecasts, anchors = self._forecasts(data, as_of)
        for blend, forecast, base in zip(blends, forecasts, anchors, strict=True):
            total = float(forecast["predicted_value"].sum())
            blend[1] = float(base.sum()) / total if total > 0 else 1.0
        return blends

    def _forecasts(
        self, data: CustomerData, as_of: pd.Timestamp
    ) -> tuple[pd.Index, list[dict[str, np.ndarray]], list[np.ndarray]]:
        """The customers at ``as_of``, each network's forecast columns (the hybrid's blend
        applied) and the blend's anchor of each (empty without the hybrid)."""
        batch = self.inputs_.batch(data, as_of)
        btyd = self._btyd(data, as_of, batch.customers)
        extra = self._hybrid_inputs(data, as_of, batch.customers, btyd)
        forecasts, anchors = [], []
        blends = self.training_.get("blends") or [None] * len(self.networks_)
        with self._session(), torch.inference_mode():
            prepared = self.inputs_.prepare(data, batch, self._device(), extra)
            for network, scale, blend in zip(
                self.networks_, self.training_["value_scales"], blends, strict=True
            ):
                if self.mode_ == "direct":
                    columns = direct_forecast(network, prepared)
                else:
                    columns = simulate(
                        network,
                        self.inputs_,
                        batch,
                        prepared,
                        self.horizon_periods_,
                        n_samples=self.n_samples,
                        random_state=self.random_state,
                    )
                if btyd is not None and blend is not None:  # the hybrid: anchored to BTYD
                    raw = columns["predicted_value"]
                    purchases = columns["predicted_purchases"]
                    ours = self._network_value(raw * scale, purchases, btyd)
                    blended = anchored_blend(btyd[:, 0], ours, *blend)
                    anchors.append(anchor(btyd[:, 0], ours, blend[2]))
                    scale = np.divide(blended, raw, out=np.zeros_like(raw), where=raw > 0)
                forecasts.append(
                    {k: c * scale if k in _VALUE_COLUMNS else c for k, c in columns.items()}
                )
        return batch.customers, forecasts, anchors

    def explain(self, data: CustomerData, as_of: pd.Timestamp) -> pd.DataFrame:
        """Integrated-gradients drivers of ``predicted_value`` (Sundararajan et al. 2017).

        The attributed function is the expected horizon spend (direct mode) or the expected
        next-period spend (rollout mode) of the first seed's network, the hybrid's BTYD
        inputs held fixed (their part is in ``base_value``); see
        :func:`~ltvcast.models.seq.explain.explain_forecast`.
        Rows are scaled to sum to ``predicted_value``: by the validation calibration in
        direct mode, by the ratio of the simulated horizon value to the next-period value in
        rollout mode.
        """
        self.check_fitted()
        past = data.until(as_of)
        batch = self.inputs_.batch(past, as_of)
        predicted = self._predict(past, as_of)["predicted_value"].to_numpy()
        head = "horizon_value" if self.mode_ == "direct" else "next_value"
        btyd = self._btyd(past, as_of, batch.customers)
        extra = self._hybrid_inputs(past, as_of, batch.customers, btyd)
        with self._session():
            prepared = self.inputs_.prepare(past, batch, self._device(), extra)
            return explain_forecast(
                self.networks_[0], self.inputs_, batch, prepared, predicted, head=head
            )

    # ------------------------------------------------------------------ state
    def save_state(self, directory: Path) -> dict[str, Any]:
        """Weights as safetensors (network ``k``'s under ``k.``); grid, scalers, vocabularies,
        mode and the hybrid's BTYD parameters as JSON metadata."""
        weights = {
            f"{k}.{name}": v.detach().cpu().contiguous()
            for k, network in enumerate(self.networks_)
            for name, v in network.state_dict().items()
        }
        save_file(weights, str(Path(directory) / WEIGHTS_FILE))
        hybrid = None
        if self.btyd_ is not None and self.hybrid_ is not None:  # {} is a rollout's
            hybrid = {
                **self.hybrid_,
                "btyd": self.btyd_.save_state(directory),
                "horizon": str(self.btyd_.horizon_),
                "as_of": self.btyd_.as_of_.isoformat(),
            }
        return {
            "state_version": STATE_VERSION,
            "weights": WEIGHTS_FILE,
            "mode": self.mode_,
            "horizon_periods": self.horizon_periods_,
            "curve": {
                "horizons": [str(h) for h in self.curve_horizons_],
                "periods": list(self.curve_periods_),
                "steps": [float(x) for x in self.curve_steps_],
            },
            "n_networks": len(self.networks_),
            "hybrid": hybrid,
            **self.inputs_.to_dict(),
            "training": json.loads(json.dumps(self.training_)),
        }

    def load_state(self, directory: Path, state: dict[str, Any]) -> None:
        """Check the state's version and inputs, rebuild the networks and load their weights."""
        source = self.state_file(directory, state.get("weights", WEIGHTS_FILE))
        version = state.get("state_version", 1)
        if version != STATE_VERSION:
            raise ArtifactError(
                f"{source}: seq model state version {version!r}; this version reads "
                f"{STATE_VERSION} (seed ensembles, the BTYD hybrid and horizon curves): retrain it"
            )
        inputs = SeqInputs.from_dict(state)
        # the network reads the step features by position: the saved order must be this one
        saved = [c for c in inputs.steps.moments if c not in inputs.channels]
        if saved != list(CONTEXT_NAMES):
            raise ArtifactError(
                f"{source}: seq model saved with {len(saved)} context features "
                f"({', '.join(saved)}); this version uses {len(CONTEXT_NAMES)} "
                f"({', '.join(CONTEXT_NAMES)}): retrain it"
            )
        self.inputs_ = inputs
        self.mode_ = str(state["mode"])
        self.horizon_periods_ = int(state["horizon_periods"])
        curve = state["curve"]
        self.curve_horizons_ = tuple(parse_horizon(h) for h in curve["horizons"])
        self.curve_periods_ = tuple(int(p) for p in curve["periods"])
        self.curve_steps_ = np.asarray(curve["steps"], dtype=np.float64)
        self.training_ = dict(state["training"])
        self.btyd_, self.hybrid_ = None, None
        hybrid = state["hybrid"]
        if hybrid is not None:
            btyd = CalibratedBTYDForecaster()
            btyd.load_state(directory, hybrid["btyd"])
            btyd.horizon_ = parse_horizon(hybrid["horizon"])
            btyd.as_of_ = pd.Timestamp(hybrid["as_of"])
            self.btyd_ = btyd
            self.hybrid_ = {
                k: v for k, v in hybrid.items() if k not in ("btyd", "horizon", "as_of")
            }
        weights = load_file(str(source), device=str(self._device()))
        self.networks_ = []
        for k in range(int(state["n_networks"])):
            network = self._build_network()
            prefix = f"{k}."
            network.load_state_dict(
                {n[len(prefix) :]: v for n, v in weights.items() if n.startswith(prefix)}
            )
            self.networks_.append(network.eval())

    def _device(self) -> torch.device:
        return resolve_device(self.device)

    def _session(self) -> contextlib.AbstractContextManager[None]:
        return torch_session(self._device(), self.random_state, self.n_threads)
