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
  trained alongside as an auxiliary task.
- ``"rollout"`` (no origin leaves a full horizon, e.g. a calibration period as long as the
  horizon): the network learns the next period's purchases and spend at every period and is
  rolled forward over the horizon by simulation (:mod:`~ltvcast.models.seq.rollout`, after
  Valendin, Reutterer, Platzer & Kalcher 2022). Early stopping uses the last periods
  (time-ordered). Behaviour events are not simulated, so this mode uses transaction channels
  only.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd
import torch
from safetensors.torch import load_file, save_file

from ltvcast.data.schemas import CustomerData
from ltvcast.exceptions import ArtifactError, ConfigError
from ltvcast.features.sequence import CONTEXT_NAMES, horizon_periods
from ltvcast.features.windows import backtest_origins
from ltvcast.models.base import Forecaster
from ltvcast.models.seq.explain import explain_forecast
from ltvcast.models.seq.forward import direct_forecast, resolve_device, torch_session
from ltvcast.models.seq.inputs import SeqInputs, choose_grid, fit_inputs
from ltvcast.models.seq.network import SeqNetwork
from ltvcast.models.seq.rollout import rollout_value_scale, simulate
from ltvcast.models.seq.training import (
    TrainingSettings,
    direct_value_scale,
    init_heads,
    origin_targets,
    split_origins,
    train_network,
)
from ltvcast.timeframe import Horizon

WEIGHTS_FILE = "seq_weights.safetensors"
MODES = ("direct", "rollout")
#: Version of the ``state`` this class writes; 2: scalers keyed by column name.
STATE_VERSION = 2
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
        did not learn from.
    mode
        ``"auto"`` (direct when a full-horizon origin exists, else rollout), ``"direct"`` or
        ``"rollout"``.
    n_samples
        Simulated paths per customer in rollout mode. The mean and ``p_active`` do not rest
        on the samples alone, so few are needed.
    aux_weight
        Weight of the next-period loss in direct mode.
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
        targets = origin_targets(batch, self.horizon_periods_)
        rollout = self.mode_ == "rollout"
        train, valid = split_origins(
            batch.mask,
            rollout=rollout,
            horizon_periods=self.horizon_periods_,
            stride=grid.stride,
            period_days=grid.period_days,
            random_state=self.random_state,
        )
        settings = TrainingSettings(
            epochs=self.epochs,
            batch_size=self.batch_size,
            learning_rate=self.learning_rate,
            patience=self.patience,
            customers_per_epoch=self.customers_per_epoch,
            rollout=rollout,
            aux_weight=self.aux_weight,
            random_state=self.random_state,
        )
        with self._session():
            device = self._device()
            self.network_ = self._build_network()
            init_heads(self.network_, targets, train)
            prepared = self.inputs_.prepare(data, batch, device)
            record, origins = train_network(
                self.network_, prepared, targets, train, valid, settings
            )
            scale = 1.0
            if self.calibrate and not rollout:
                scale = direct_value_scale(self.network_, prepared, origins)
            elif self.calibrate:
                scale = rollout_value_scale(
                    self.network_,
                    self.inputs_,
                    data,
                    as_of,
                    batch,
                    valid,
                    customers_per_epoch=self.customers_per_epoch,
                    n_samples=self.n_samples,
                    random_state=self.random_state,
                    device=device,
                )
            self.training_: dict[str, Any] = {"value_scale": scale, **record}
            if self.refit:
                self.network_ = self._build_network()
                init_heads(self.network_, targets, train | valid)
                epochs = max(1, int(self.training_["best_epoch"]))
                refit = dataclasses.replace(settings, epochs=epochs)
                train_network(self.network_, prepared, targets, train | valid, None, refit)
                self.training_["refit_epochs"] = epochs

    def _check_params(self) -> None:
        if self.mode not in ("auto", *MODES):
            raise ConfigError(f"seq: mode must be auto, direct or rollout; got {self.mode!r}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ConfigError(f"seq: device must be auto, cpu or cuda; got {self.device!r}")
        for name in ("epochs", "batch_size", "n_samples", "kernel_size", "lstm_layers"):
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
        ).to(self._device())

    # ------------------------------------------------------------------ predict
    def _predict(self, data: CustomerData, as_of: pd.Timestamp) -> pd.DataFrame:
        batch = self.inputs_.batch(data, as_of)
        with self._session(), torch.inference_mode():
            prepared = self.inputs_.prepare(data, batch, self._device())
            if self.mode_ == "direct":
                columns = direct_forecast(self.network_, prepared)
            else:
                columns = simulate(
                    self.network_,
                    self.inputs_,
                    batch,
                    prepared,
                    self.horizon_periods_,
                    n_samples=self.n_samples,
                    random_state=self.random_state,
                )
        scale = float(self.training_["value_scale"])
        columns = {k: c * scale if k in _VALUE_COLUMNS else c for k, c in columns.items()}
        return pd.DataFrame(columns, index=batch.customers).reset_index()

    def explain(self, data: CustomerData, as_of: pd.Timestamp) -> pd.DataFrame:
        """Integrated-gradients drivers of ``predicted_value`` (Sundararajan et al. 2017).

        The attributed function is the expected horizon spend (direct mode) or the expected
        next-period spend (rollout mode); see :func:`~ltvcast.models.seq.explain.explain_forecast`.
        Rows are scaled to sum to ``predicted_value``: by the validation calibration in
        direct mode, by the ratio of the simulated horizon value to the next-period value in
        rollout mode.
        """
        self.check_fitted()
        past = data.until(as_of)
        batch = self.inputs_.batch(past, as_of)
        predicted = self._predict(past, as_of)["predicted_value"].to_numpy()
        head = "horizon_value" if self.mode_ == "direct" else "next_value"
        with self._session():
            prepared = self.inputs_.prepare(past, batch, self._device())
            return explain_forecast(
                self.network_, self.inputs_, batch, prepared, predicted, head=head
            )

    # ------------------------------------------------------------------ state
    def save_state(self, directory: Path) -> dict[str, Any]:
        """Weights as safetensors; grid, scalers, vocabularies and mode as JSON metadata."""
        weights = {k: v.detach().cpu().contiguous() for k, v in self.network_.state_dict().items()}
        save_file(weights, str(Path(directory) / WEIGHTS_FILE))
        return {
            "state_version": STATE_VERSION,
            "weights": WEIGHTS_FILE,
            "mode": self.mode_,
            "horizon_periods": self.horizon_periods_,
            **self.inputs_.to_dict(),
            "training": json.loads(json.dumps(self.training_)),
        }

    def load_state(self, directory: Path, state: dict[str, Any]) -> None:
        """Check the state's version and inputs, rebuild the network and load its weights."""
        source = self.state_file(directory, state.get("weights", WEIGHTS_FILE))
        version = state.get("state_version", 1)
        if version != STATE_VERSION:
            raise ArtifactError(
                f"{source}: seq model state version {version!r}; this version reads "
                f"{STATE_VERSION} (input scalers keyed by column name): retrain it"
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
        self.training_ = dict(state["training"])
        self.network_ = self._build_network()
        weights = load_file(str(source), device=str(self._device()))
        self.network_.load_state_dict(weights)
        self.network_.eval()

    def _device(self) -> torch.device:
        return resolve_device(self.device)

    def _session(self) -> contextlib.AbstractContextManager[None]:
        return torch_session(self._device(), self.random_state, self.n_threads)
