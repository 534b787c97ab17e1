"""``seq``: the founding paper's Conv1D + LSTM hybrid with ZILN outputs, trained dynamically.

Inputs (:func:`~ltvcast.features.sequence.period_matrix`): per-period purchases, log spend and
behaviour-event counts, per-period context (tenure, purchases to date, recency, calendar) and
static profile inputs (:class:`~ltvcast.features.tabular.ProfileEncoder` codes as embeddings,
numerics standardised). Scalers, vocabularies and the period grid are fitted on the training
data and stored in the artifact.

Two modes, chosen in ``fit`` and recorded in ``mode_``:

- ``"direct"`` (some backtest origin leaves a full horizon of labels): the network runs once
  over each customer's history and, at the end of **every** period ``t`` whose horizon ends
  inside the training data, is trained to give the ZILN distribution of spend and the Poisson
  mean of purchases in ``(t, t + horizon]``. These are backtest origins with a one-period step
  (the same customer at many t, from its first period on), amortised in one LSTM pass. Early
  stopping uses the latest origin, ``as_of - horizon``; the model learns from origins whose
  horizon ends by then (time-ordered), or, when the history is too short for that, from the
  other 80 % of customers. The next-period heads are trained alongside as an auxiliary task.
- ``"rollout"`` (no origin leaves a full horizon, e.g. CDNOW's 39-week calibration with a
  39-week horizon): the network learns the next period's purchases and spend at every period
  and is rolled forward over the horizon by simulation (Valendin, Reutterer, Platzer &
  Kalcher 2022, "Customer base analysis with recurrent neural networks"): ``n_samples`` paths
  per customer feed sampled purchases and spend back as inputs. The expected value and
  purchases are Rao-Blackwellised (each step adds the expected spend of the next period given
  the path, not the sampled one); ``p_active`` is exact given the model (one extra path with no
  purchase: ``1 - prod(1 - p_t)``); ``value_p10``/``value_p90`` are those of a zero-inflated
  lognormal with that ``p_active`` and mean whose log-scale comes from the sampled path totals
  (:func:`_path_quantiles`). Early stopping uses the last periods (time-ordered). Behaviour
  events are not simulated, so this mode uses transaction channels only.

Measured (``bench/bench_seq.py``, full CDNOW master, 2 shared CPU threads, defaults, load
average 2): 39-week calibration / 39 weeks (rollout): normalized Gini 0.709 vs lifetimes'
BG/NBD + Gamma-Gamma 0.672, MAE 37.6 vs 32.7, total +10 %, fit 28 s, 1,700 customers/s (with
the rollout refit, a single run: Gini 0.715, MAE 32.4, total -35 %, fit 42 s); as of
1998-03-31 / 13 weeks (direct): Gini 0.782 vs 0.769, MAE 11.14 vs 11.09, total +10 %, fit 31 s,
24,000 customers/s (features included). The MAE gap is on the customers who buy nothing: the
expected value spreads over them where BG/NBD's P(alive) pushes them towards zero (inner
backtest as of 1997-12-31: 7.3 of the MAE comes from non-buyers vs 4.7 for BTYD; 7.5 from buyers
vs 7.7).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch
from safetensors.torch import load_file, save_file

from ltvcast.data.schemas import CUSTOMER_ID, PREDICTION_COLUMNS, QUANTILE_COLUMNS, CustomerData
from ltvcast.exceptions import ArtifactError, ConfigError
from ltvcast.features.sequence import (
    CONTEXT_NAMES,
    SequenceBatch,
    calendar_features,
    choose_period_days,
    horizon_periods,
    period_matrix,
)
from ltvcast.features.tabular import ProfileEncoder
from ltvcast.features.windows import backtest_origins
from ltvcast.models.base import Forecaster
from ltvcast.models.seq.loss import (
    MIN_SIGMA,
    ziln_mean,
    ziln_nll,
    ziln_params,
    ziln_quantiles,
)
from ltvcast.models.seq.network import SeqNetwork, State
from ltvcast.timeframe import Horizon

WEIGHTS_FILE = "seq_weights.safetensors"
MODES = ("direct", "rollout")
#: Longest default history window, in periods, by period length in days.
_MAX_PERIODS = {1: 180, 7: 104}
_IG_STEPS = 16
_CALENDAR = slice(CONTEXT_NAMES.index("year_sin"), len(CONTEXT_NAMES))


class SeqForecaster(Forecaster):
    """Conv1D -> stacked LSTM -> ZILN / Poisson heads, trained at every period of the history.

    Parameters
    ----------
    conv_filters, kernel_size, lstm_hidden, lstm_layers
        The founding paper's hybrid is (64, 3, 50, 2); the defaults halve the widths, which
        scores twice as fast with the same accuracy (inner backtests, CDNOW as of 1997-12-31,
        13 weeks, direct: normalized Gini 0.736 both, MAE 14.8 vs 14.5; as of 1997-06-30,
        13 weeks, rollout: Gini 0.666 vs 0.662, MAE 16.6 vs 16.8).
    head_hidden
        Width of the dense layer before the heads.
    dropout
        Dropout between LSTM layers.
    epochs, batch_size, learning_rate, patience
        Adam training with early stopping on the time-ordered validation origin.
    customers_per_epoch
        Customers drawn afresh for each epoch, and the size of the fixed validation sample
        (``None``: all). Every customer brings all of its origins; this bounds the training
        time on large stores. All of CDNOW's 23,570 beat a 4,096 sample on every seed of the
        inner backtests (as of 1997-12-31, 13 weeks, direct, seeds 0-3: mean MAE 15.3 ->
        14.6; as of 1997-06-30, 13 weeks, rollout, seeds 0-2: 17.3 -> 16.2; Gini unchanged).
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
        season (inner backtest, CDNOW as of 1997-12-31, 13 weeks: total-value error +59 %
        with the calendar, +32 % without; MAE 18.4 vs 16.0; normalized Gini 0.701 vs 0.702).
    refit
        After early stopping, retrain from scratch on the training and validation origins for
        the best number of epochs, so that the latest labels shape the model. The refitted model
        forecasts past its latest labels as the first model did over the validation periods, so
        their calibration carries over. Direct mode (inner backtest, CDNOW as of 1997-12-31, 13
        weeks, seeds 0-3): mean MAE 16.0 -> 15.3, same Gini; the level still moves with the seed
        (total-value error -3 % to +42 %). Rollout mode: a short history whose level drifts
        (Online Retail, as of 2011-03-08, 96 days, 14 weeks of history, seeds 0-2): MAE 689, 773,
        759 -> 591, 514, 588, total-value error +25, +45, +36 % -> -5, -16, +6 %, normalized
        Gini 0.741, 0.750, 0.744 -> 0.752, 0.752, 0.738; without it the model learns the next
        week only from the oldest weeks (there, December's peak), and even one-step forecasts on
        the true history run 1.4-2.6 times the actual spend. CDNOW as of 1997-06-30, 13 weeks
        (seeds 0-2): MAE 15.7, 16.3, 16.7 -> 16.1, 16.0, 15.7, Gini 0.663, 0.664, 0.660 ->
        0.668, 0.666, 0.664, total-value error +5, +13, +21 % -> +5, +4, +3 %.
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
        on the samples alone, so few are needed (inner backtest, CDNOW as of 1997-06-30, 13
        weeks: normalized Gini 0.664 with 10 paths, 0.667 with 40; p90 within 15 % of the
        40-path value on average, the 40-path value itself moving 12 % between seeds).
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

    # ------------------------------------------------------------------ fit
    def _fit(self, data: CustomerData, as_of: pd.Timestamp, horizon: Horizon) -> None:
        self._check_params()
        first = data.first_timestamp()
        span = pd.Timestamp(as_of) - first
        self.period_days_ = self.period_days or choose_period_days(horizon, span)
        self.horizon_periods_ = horizon_periods(horizon, self.period_days_)
        self.calendar_ = (
            span >= pd.Timedelta(days=730) if self.use_calendar is None else self.use_calendar
        )
        has_origin = bool(backtest_origins(first, as_of, horizon, max_origins=1))
        self.mode_ = self.mode if self.mode != "auto" else ("direct" if has_origin else "rollout")
        self.stride_ = self.stride or (2 if self.mode_ == "direct" else 1)
        if self.mode_ == "rollout" and self.stride_ != 1:
            raise ConfigError(f"seq: rollout mode needs stride 1; got {self.stride_}")
        span_periods = max(2, math.ceil(span / pd.Timedelta(days=self.period_days_)))
        periods = self.n_periods or min(span_periods, _MAX_PERIODS.get(self.period_days_, 104))
        self.n_periods_ = -(-max(periods, self.stride_) // self.stride_) * self.stride_
        self.event_types_ = data.event_types if self.use_events and self.mode_ == "direct" else ()
        batch = self._batch(data, as_of)
        raw = _input_channels(batch.values)
        mask = batch.mask
        self.input_mean_, self.input_std_ = _moments(raw[mask])
        self.context_mean_, self.context_std_ = _moments(batch.context[mask])
        self._fit_profiles(data, batch.customers)
        targets = _targets(batch, self.horizon_periods_)
        train, valid = self._split(mask, batch.customers)
        with self._session():
            self.network_ = self._build_network()
            self._init_heads(targets, train)
            static = self._static_tensors(data, batch.customers)
            self.training_ = self._train(batch, static, targets, train, valid, self.epochs)
            if self.mode_ == "rollout" and self.calibrate:
                self.training_["value_scale"] = self._rollout_scale(data, as_of, batch, valid)
            if self.refit:
                self.network_ = self._build_network()
                self._init_heads(targets, train | valid)
                epochs = max(1, int(self.training_["best_epoch"]))
                self._train(batch, static, targets, train | valid, None, epochs)
                self.training_["refit_epochs"] = epochs

    def _check_params(self) -> None:
        if self.mode not in ("auto", *MODES):
            raise ConfigError(f"seq: mode must be auto, direct or rollout; got {self.mode!r}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ConfigError(f"seq: device must be auto, cpu or cuda; got {self.device!r}")
        for name in ("epochs", "batch_size", "n_samples", "kernel_size", "lstm_layers"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"seq: {name} must be >= 1; got {getattr(self, name)!r}")

    def _fit_profiles(self, data: CustomerData, customers: pd.Index) -> None:
        self.profile_encoder_: ProfileEncoder | None = None
        self.numeric_mean_ = np.zeros(0)
        self.numeric_std_ = np.ones(0)
        if not self.use_profiles or data.profiles is None:
            return
        known = data.profiles[data.profiles[CUSTOMER_ID].isin(customers)]
        self.profile_encoder_ = ProfileEncoder().fit(known)
        numeric, _ = self._profile_arrays(data, customers)
        self.numeric_mean_, self.numeric_std_ = _moments(numeric)

    def _split(self, mask: np.ndarray, customers: pd.Index) -> tuple[np.ndarray, np.ndarray]:
        """Boolean ``(customers, periods)`` masks of training and validation origins."""
        t, h, s = mask.shape[1], self.horizon_periods_, self.stride_
        cols = np.arange(t)[None, :]
        if self.mode_ == "direct":
            last_origin = t - 1 - s * math.ceil(h / s)  # origins end a block of ``s`` periods
            mask = mask & ((t - 1 - cols) % s == 0)
            valid = mask & (cols == last_origin)
            train = mask & (cols <= last_origin - h)
            usable = mask & (cols <= last_origin)
        else:
            n_valid = max(1, min(h, (t - 1) // 4))
            valid = mask & (cols >= t - 1 - n_valid) & (cols <= t - 2)
            train = mask & (cols < t - 1 - n_valid)
            usable = mask & (cols <= t - 2)
        if train.sum() < 0.2 * valid.sum() or not train.any():
            held = np.random.default_rng(self.random_state).random(len(customers)) < 0.2
            train = usable & ~held[:, None] & ~valid
            valid = valid & held[:, None]
        if not train.any() or not valid.any():
            raise ConfigError(
                f"seq: too little history to train ({mask.sum()} customer-periods of "
                f"{self.period_days_} days for a {self.horizon_periods_}-period horizon)"
            )
        return train, valid

    def _build_network(self) -> SeqNetwork:
        return SeqNetwork(
            n_inputs=len(self.input_mean_),
            n_context=len(CONTEXT_NAMES),
            n_numeric=len(self.numeric_mean_),
            cardinalities=self._cardinalities(),
            conv_filters=self.conv_filters,
            kernel_size=self.kernel_size,
            lstm_hidden=self.lstm_hidden,
            lstm_layers=self.lstm_layers,
            head_hidden=self.head_hidden,
            dropout=self.dropout,
            stride=self.stride_,
        ).to(self._device())

    def _init_heads(self, targets: dict[str, np.ndarray], train: np.ndarray) -> None:
        """Start each head at the training base rates (fast, stable convergence)."""
        net = self.network_
        with torch.no_grad():
            for prefix, value_key, count_key in (
                ("horizon", "value", "purchases"),
                ("next", "next_value", "next_extra"),
            ):
                values = targets[value_key][train]
                positive = values[values > 0]
                rate = np.clip(positive.size / max(values.size, 1), 1e-4, 1 - 1e-4)
                logs = np.log(positive) if positive.size else np.zeros(1)
                sigma = max(float(logs.std()), 0.1)
                net.head(f"{prefix}_value").weight.mul_(0.1)
                net.head(f"{prefix}_value").bias.copy_(
                    torch.tensor(
                        [
                            math.log(rate / (1 - rate)),
                            logs.mean(),
                            sigma + math.log(-math.expm1(-sigma)),
                        ]
                    )
                )
                counts = targets[count_key][train]
                if prefix == "next":
                    counts = counts[values > 0] if (values > 0).any() else counts
                net.head(f"{prefix}_count").bias.fill_(math.log(max(float(counts.mean()), 1e-4)))

    def _train(
        self,
        batch: SequenceBatch,
        static: tuple[torch.Tensor, torch.Tensor],
        targets: dict[str, np.ndarray],
        train: np.ndarray,
        valid: np.ndarray | None,
        epochs: int,
    ) -> dict[str, Any]:
        """Adam on ``train`` origins; early stopping on ``valid`` (fixed ``epochs`` without)."""
        device = self._device()
        lengths = batch.lengths
        steps = self._steps(batch)
        categorical, numeric = static
        ends = slice(self.stride_ - 1, None, self.stride_)  # left-aligned block ends
        aligned = {k: _left_align(v, lengths)[:, ends] for k, v in targets.items()}
        train_l = _left_align(train, lengths)[:, ends]
        valid_l = _left_align(np.zeros_like(train) if valid is None else valid, lengths)[:, ends]
        rows = np.flatnonzero(train_l.any(axis=1))
        valid_rows = np.flatnonzero(valid_l.any(axis=1))
        generator = np.random.default_rng(self.random_state)
        cap = self.customers_per_epoch or len(rows)
        if len(valid_rows) > cap:
            valid_rows = np.sort(generator.choice(valid_rows, cap, replace=False))

        def tensors(idx: np.ndarray, which: np.ndarray) -> dict[str, torch.Tensor]:
            out = {k: torch.from_numpy(v[idx]).to(device) for k, v in aligned.items()}
            out["mask"] = torch.from_numpy(which[idx]).to(device)
            return out

        optimiser = torch.optim.Adam(self.network_.parameters(), lr=self.learning_rate)
        best, best_loss, best_epoch, history = (
            copy.deepcopy(self.network_.state_dict()),
            math.inf,
            0,
            [],
        )
        for epoch in range(1, epochs + 1):
            self.network_.train()
            drawn = generator.permutation(rows)[:cap]
            for idx in np.array_split(drawn, max(1, len(drawn) // self.batch_size)):
                out = self._forward_all(steps, lengths, categorical, numeric, idx)
                loss = self._loss(out, tensors(idx, train_l))
                optimiser.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(self.network_.parameters(), 5.0)
                optimiser.step()
            self.network_.eval()
            if valid is None:
                best, best_epoch = copy.deepcopy(self.network_.state_dict()), epoch
                continue
            with torch.no_grad():
                total, weight = 0.0, 0.0
                for idx in np.array_split(valid_rows, max(1, len(valid_rows) // 4096)):
                    target = tensors(idx, valid_l)
                    n = float(target["mask"].sum())
                    total += (
                        float(
                            self._loss(
                                self._forward_all(steps, lengths, categorical, numeric, idx), target
                            )
                        )
                        * n
                    )
                    weight += n
            val_loss = total / max(weight, 1.0)
            history.append(round(val_loss, 6))
            if val_loss < best_loss - 1e-5:
                best, best_loss, best_epoch = (
                    copy.deepcopy(self.network_.state_dict()),
                    val_loss,
                    epoch,
                )
            elif epoch - best_epoch >= self.patience:
                break
        self.network_.load_state_dict(best)
        self.network_.eval()
        scale = 1.0
        if valid is not None and self.calibrate and self.mode_ == "direct":
            key, head = "value", "horizon_value"
            predicted, actual = 0.0, 0.0
            with torch.no_grad():
                for idx in np.array_split(valid_rows, max(1, len(valid_rows) // 4096)):
                    heads = self._forward_all(steps, lengths, categorical, numeric, idx)
                    at = torch.from_numpy(valid_l[idx]).to(device).float()
                    spend = torch.from_numpy(aligned[key][idx]).to(device).clamp_min(0.0)
                    predicted += float((ziln_mean(heads[head]) * at).sum())
                    actual += float((spend * at).sum())
            scale = actual / predicted if predicted > 0 and actual > 0 else 1.0
        return {
            "value_scale": scale,
            "best_epoch": best_epoch,
            "epochs_run": len(history),
            "validation_loss": history,
            "train_origins": int(train.sum()),
            "validation_origins": 0 if valid is None else int(valid.sum()),
        }

    def _loss(self, out: dict[str, torch.Tensor], target: dict[str, torch.Tensor]) -> torch.Tensor:
        mask = target["mask"]
        weight = mask.float()
        bought = weight * (target["next_value"] > 0).float()
        next_loss = (
            ziln_nll(out["next_value"], target["next_value"]) * weight
            + _poisson_nll(out["next_count"][..., 0], target["next_extra"]) * bought
        )
        if self.mode_ == "rollout":
            total = next_loss
        else:
            horizon_loss = ziln_nll(out["horizon_value"], target["value"]) + _poisson_nll(
                out["horizon_count"][..., 0], target["purchases"]
            )
            total = horizon_loss * weight + self.aux_weight * next_loss
        return total.sum() / weight.sum().clamp_min(1.0)

    # -------------------------------------------------------------- network inputs
    def _steps(self, batch: SequenceBatch) -> np.ndarray:
        """Scaled, left-aligned ``(customers, periods, inputs + context)`` float32."""
        steps = np.concatenate([_input_channels(batch.values), batch.context], axis=-1)
        steps -= np.concatenate([self.input_mean_, self.context_mean_]).astype(np.float32)
        steps /= np.concatenate([self.input_std_, self.context_std_]).astype(np.float32)
        return _left_align(steps, batch.lengths)

    def _profile_arrays(
        self, data: CustomerData, customers: pd.Index
    ) -> tuple[np.ndarray, np.ndarray]:
        """Numeric profile values and embedding indices (0: missing, 1..k: codes, k+1: other)."""
        encoder = self.profile_encoder_
        if encoder is None or data.profiles is None:
            return np.zeros((len(customers), 0)), np.zeros((len(customers), 0), dtype=np.int64)
        encoded = encoder.transform(data.profiles, customers)
        numeric = encoded[[f"profile_{c}" for c in encoder.medians_]].to_numpy(np.float64)
        codes = encoded[encoder.categorical_features].to_numpy(np.float64)
        return np.nan_to_num(numeric), np.where(np.isnan(codes), 0, codes + 1).astype(np.int64)

    def _static_tensors(
        self, data: CustomerData, customers: pd.Index
    ) -> tuple[torch.Tensor, torch.Tensor]:
        numeric, codes = self._profile_arrays(data, customers)
        numeric = (numeric - self.numeric_mean_) / self.numeric_std_
        device = self._device()
        return torch.from_numpy(codes).to(device), torch.from_numpy(numeric.astype(np.float32)).to(
            device
        )

    def _cardinalities(self) -> list[int]:
        encoder = self.profile_encoder_
        return [] if encoder is None else [len(v) + 2 for v in encoder.vocabularies_.values()]

    def _forward_all(
        self,
        steps: np.ndarray,
        lengths: np.ndarray,
        categorical: torch.Tensor,
        numeric: torch.Tensor,
        idx: np.ndarray,
    ) -> dict[str, torch.Tensor]:
        device = self._device()
        x = torch.from_numpy(steps[idx]).to(device)
        hidden = self.network_.encode(x)
        context = x[:, self.stride_ - 1 :: self.stride_, -len(CONTEXT_NAMES) :]
        index = torch.from_numpy(idx).to(device)
        static = self.network_.static(categorical[index], numeric[index])
        return self.network_.forward_heads(hidden, context, static)

    # -------------------------------------------------------------- predict
    def _predict(self, data: CustomerData, as_of: pd.Timestamp) -> pd.DataFrame:
        batch = self._batch(data, as_of)
        with self._session(), torch.inference_mode():
            steps = self._steps(batch)
            categorical, numeric = self._static_tensors(data, batch.customers)
            if self.mode_ == "direct":
                columns = self._predict_direct(steps, batch.lengths, categorical, numeric)
            else:
                columns = self._predict_rollout(
                    batch, steps, categorical, numeric, self.horizon_periods_
                )
        scale = float(self.training_["value_scale"])
        columns = [c * scale if k in (0, 3, 4) else c for k, c in enumerate(columns)]
        names = [*PREDICTION_COLUMNS[1:], *QUANTILE_COLUMNS]
        out = pd.DataFrame(dict(zip(names, columns, strict=True)), index=batch.customers)
        return out.reset_index()

    def _batch(self, data: CustomerData, as_of: pd.Timestamp) -> SequenceBatch:
        batch = period_matrix(
            data,
            as_of,
            period_days=self.period_days_,
            n_periods=self.n_periods_,
            event_types=self.event_types_,
        )
        if not self.calendar_:
            batch.context[..., _CALENDAR] = 0.0
        s = self.stride_  # whole blocks: a block starting before the first activity is zeros
        lengths = np.minimum(-(-batch.lengths // s) * s, batch.n_periods)
        return dataclasses.replace(batch, lengths=lengths)

    def _chunks(self, n: int, size: int) -> Iterator[np.ndarray]:
        for start in range(0, n, size):
            yield np.arange(start, min(start + size, n))

    def _last_outputs(
        self,
        steps: np.ndarray,
        lengths: np.ndarray,
        categorical: torch.Tensor,
        numeric: torch.Tensor,
        idx: np.ndarray,
        with_state: bool = False,
    ) -> tuple[dict[str, torch.Tensor], State | None, torch.Tensor]:
        """Heads, LSTM state (when asked) and static inputs at each customer's last period."""
        device = self._device()
        length = torch.from_numpy(lengths[idx])
        x = torch.from_numpy(steps[idx, : int(length.max())]).to(device)
        last = (length - 1).to(device)
        rows = torch.arange(len(idx), device=device)
        state = self.network_.encode_state(x, length) if with_state else None
        block = torch.div(last, self.stride_, rounding_mode="floor")
        hidden = state[0][-1] if state is not None else self.network_.encode(x)[rows, block]
        context = x[rows, last, -len(CONTEXT_NAMES) :]
        index = torch.from_numpy(idx).to(device)
        static = self.network_.static(categorical[index], numeric[index])
        return self.network_.forward_heads(hidden, context, static), state, static

    def _predict_direct(
        self,
        steps: np.ndarray,
        lengths: np.ndarray,
        categorical: torch.Tensor,
        numeric: torch.Tensor,
    ) -> list[np.ndarray]:
        parts = []
        for idx in self._chunks(len(lengths), 16384):
            out, _, _ = self._last_outputs(steps, lengths, categorical, numeric, idx)
            logits = out["horizon_value"]
            p, _, _ = ziln_params(logits)
            purchases = torch.maximum(torch.exp(out["horizon_count"][:, 0]), p)
            parts.append(
                torch.stack(
                    [ziln_mean(logits), purchases, p, *ziln_quantiles(logits).unbind(-1)], 1
                )
                .double()
                .cpu()
                .numpy()
            )
        return list(np.concatenate(parts).T)

    def _rollout_scale(
        self, data: CustomerData, as_of: pd.Timestamp, batch: SequenceBatch, valid: np.ndarray
    ) -> float:
        """Actual / simulated spend over the validation periods, simulated from their start.

        One-step calibration misses how errors compound along a simulated path, so the
        rollout itself is run from the first validation origin over the validation periods
        (for at most ``customers_per_epoch`` of the validation customers).
        """
        periods = batch.n_periods - 1 - int(np.argmax(valid.any(axis=0)))
        origin = pd.Timestamp(as_of) - pd.Timedelta(days=periods * self.period_days_)
        start = self._batch(data, origin)
        rows = batch.customers.get_indexer(start.customers)
        chosen = np.flatnonzero(valid[rows].any(axis=1))
        cap = self.customers_per_epoch or len(chosen)
        if len(chosen) > cap:
            generator = np.random.default_rng(self.random_state)
            chosen = np.sort(generator.choice(chosen, cap, replace=False))
        if not len(chosen):
            return 1.0
        sub = dataclasses.replace(
            start,
            customers=start.customers[chosen],
            values=start.values[chosen],
            lengths=start.lengths[chosen],
            context=start.context[chosen],
        )
        log_spend = batch.values[rows[chosen], -periods:, 1].astype(np.float64)
        actual = np.clip(np.sign(log_spend) * np.expm1(np.abs(log_spend)), 0.0, None).sum()
        with torch.inference_mode():
            categorical, numeric = self._static_tensors(data, sub.customers)
            simulated = self._predict_rollout(sub, self._steps(sub), categorical, numeric, periods)[
                0
            ].sum()
        return float(actual / simulated) if simulated > 0 and actual > 0 else 1.0

    def _predict_rollout(
        self,
        batch: SequenceBatch,
        steps: np.ndarray,
        categorical: torch.Tensor,
        numeric: torch.Tensor,
        periods: int,
    ) -> list[np.ndarray]:
        device = self._device()
        generator = torch.Generator(device=device).manual_seed(self.random_state)
        lengths = batch.lengths
        paths = self.n_samples + 1  # the last path never buys: P(no purchase) exactly
        chunk = max(1, 65536 // paths)
        calendar = torch.from_numpy(
            calendar_features(
                batch.period_ends[-1]
                - pd.Timedelta(days=1)
                + pd.to_timedelta(np.arange(periods) * self.period_days_, unit="D")
            ).astype(np.float32)
            * float(self.calendar_)
        ).to(device)
        parts = []
        for idx in self._chunks(len(lengths), chunk):
            _, state, static = self._last_outputs(
                steps, lengths, categorical, numeric, idx, with_state=True
            )
            assert state is not None
            h, c = state
            x = torch.from_numpy(steps[idx]).to(device)
            n = len(idx)
            k = self.kernel_size - 1
            pos = (
                torch.from_numpy(lengths[idx]).to(device)[:, None]
                - k
                + torch.arange(k, device=device)
            )
            window = torch.gather(x, 1, pos.clamp_min(0)[..., None].expand(-1, -1, x.shape[-1]))
            window = window * (pos >= 0)[..., None]
            last_ctx = torch.from_numpy(batch.context[idx, -1, : _CALENDAR.start]).to(device)
            window, static = window.repeat_interleave(paths, 0), static.repeat_interleave(paths, 0)
            state = (h.repeat_interleave(paths, 1), c.repeat_interleave(paths, 1))
            tenure, to_date, recency, mean_spend = (
                torch.expm1(last_ctx).repeat_interleave(paths, 0).unbind(1)
            )
            spent = mean_spend * to_date.clamp_min(1.0)
            hidden = state[0][-1]
            last = torch.from_numpy(lengths[idx] - 1).to(device)
            context = x[torch.arange(n, device=device), last, -len(CONTEXT_NAMES) :]
            context = context.repeat_interleave(paths, 0)
            never = (torch.arange(n * paths, device=device) % paths) == paths - 1
            total = torch.zeros(n * paths, device=device)
            expected = torch.zeros_like(total)
            purchases = torch.zeros_like(total)
            no_buy = torch.ones_like(total)
            spread, weight = torch.zeros_like(total), torch.zeros_like(total)
            for s in range(periods):
                heads = self.network_.forward_heads(hidden, context, static)
                p, mu, sigma = ziln_params(heads["next_value"])
                extra = torch.exp(heads["next_count"][:, 0])
                expected += p * torch.exp(mu + 0.5 * sigma**2)
                spread, weight = spread + p * sigma**2, weight + p
                purchases += p * (1.0 + extra)
                buy = (torch.rand(p.shape, generator=generator, device=device) < p) & ~never
                if self.n_samples and buy.any():
                    z = torch.randn(p.shape, generator=generator, device=device)
                    spend = torch.where(buy, torch.exp(mu + sigma * z), torch.zeros_like(mu))
                    count = torch.where(
                        buy, 1.0 + torch.poisson(extra, generator=generator), torch.zeros_like(mu)
                    )
                else:
                    spend, count = torch.zeros_like(mu), torch.zeros_like(mu)
                no_buy = no_buy * torch.where(never, 1.0 - p, torch.ones_like(p))
                total = total + spend
                if s == periods - 1:
                    break
                tenure, to_date, spent = tenure + 1.0, to_date + count, spent + spend
                mean_spend = spent / to_date.clamp_min(1.0)
                recency = torch.where(
                    buy, torch.zeros_like(recency), torch.minimum(recency + 1.0, tenure)
                )
                raw = torch.stack([torch.log1p(count), torch.log1p(spend)], 1)
                ctx = torch.cat(
                    [
                        torch.log1p(torch.stack([tenure, to_date, recency, mean_spend], 1)),
                        calendar[s + 1].expand(len(raw), -1),
                    ],
                    1,
                )
                new = torch.cat(
                    [
                        (raw - _t(self.input_mean_, device)) / _t(self.input_std_, device),
                        (ctx - _t(self.context_mean_, device)) / _t(self.context_std_, device),
                    ],
                    1,
                )
                window = torch.cat([window, new[:, None]], 1)
                hidden, state = self.network_.step(window, state)
                window, context = window[:, 1:], new[:, -len(CONTEXT_NAMES) :]
            sampled = ~never
            value = expected[sampled].view(n, -1).mean(1)
            p_active = 1.0 - no_buy[never]
            prior = (spread / weight.clamp_min(1e-12))[sampled].view(n, -1).mean(1)
            q = _path_quantiles(value, p_active, total[sampled].view(n, -1), prior)
            parts.append(
                torch.stack(
                    [value, purchases[sampled].view(n, -1).mean(1), p_active, *q.unbind(-1)], 1
                )
                .double()
                .cpu()
                .numpy()
            )
        return list(np.concatenate(parts).T)

    # -------------------------------------------------------------- explain
    def explain(self, data: CustomerData, as_of: pd.Timestamp) -> pd.DataFrame:
        """Integrated-gradients drivers of ``predicted_value`` (Sundararajan et al. 2017).

        The attributed function is the expected horizon spend (direct mode) or the expected
        next-period spend (rollout mode). Baseline: the same customer with no activity (raw
        zero channels), average context and average profile. Attributions are summed per
        activity channel (over periods), context feature and profile column; the Riemann
        approximation gap is spread over them in proportion to their size, so each row sums
        to ``f(x) - f(baseline)`` exactly; ``base_value`` is ``f(baseline)``. Every number is then
        scaled by ``predicted_value / f(x)`` (the validation calibration in direct mode; the
        ratio of the simulated horizon value to the next-period value in rollout mode), so that
        rows sum to ``predicted_value``.
        """
        self.check_fitted()
        past = data.until(as_of)
        batch = self._batch(past, as_of)
        predicted = self._predict(past, as_of)["predicted_value"].to_numpy()
        n_inputs = len(self.input_mean_)
        names = [*batch.channels, *CONTEXT_NAMES]
        encoder = self.profile_encoder_
        numeric_names = [] if encoder is None else [f"profile_{c}" for c in encoder.medians_]
        categorical_names = [] if encoder is None else encoder.categorical_features
        parts = []
        with self._session():
            steps = self._steps(batch)
            categorical, numeric = self._static_tensors(past, batch.customers)
            zero = torch.from_numpy((-self.input_mean_ / self.input_std_).astype(np.float32))
            for idx in self._chunks(len(batch.lengths), 1024):
                parts.append(
                    self._integrated_gradients(
                        steps, batch.lengths, categorical, numeric, idx, zero, n_inputs
                    )
                )
        table = np.concatenate(parts)
        base, contributions = table[:, 0], table[:, 1:]
        scale = predicted / np.maximum(base + contributions.sum(1), 1e-12)
        base, contributions = base * scale, contributions * scale[:, None]
        out = pd.DataFrame(
            contributions,
            index=batch.customers,
            columns=[*names, *numeric_names, *categorical_names],
        )
        out["base_value"] = base
        return out

    def _integrated_gradients(
        self,
        steps: np.ndarray,
        lengths: np.ndarray,
        categorical: torch.Tensor,
        numeric: torch.Tensor,
        idx: np.ndarray,
        zero: torch.Tensor,
        n_inputs: int,
    ) -> np.ndarray:
        device = self._device()
        net = self.network_
        x = torch.from_numpy(steps[idx]).to(device)
        length = torch.from_numpy(lengths[idx])
        valid = (torch.arange(x.shape[1])[None, :] < length[:, None]).to(device)[..., None]
        x0 = (
            torch.cat(
                [
                    zero.to(device).expand(*x.shape[:2], n_inputs),
                    torch.zeros_like(x[..., n_inputs:]),
                ],
                -1,
            )
            * valid
        )
        index = torch.from_numpy(idx).to(device)
        cat = categorical[index]
        embedded = [emb(cat[:, k]) for k, emb in enumerate(net.embeddings)]
        means = [net.embedding(k).weight.mean(0).expand_as(e) for k, e in enumerate(embedded)]
        s = torch.cat([*embedded, numeric[index]], -1).detach()
        s0 = torch.cat([*means, torch.zeros_like(numeric[index])], -1).detach()
        head = "horizon_value" if self.mode_ == "direct" else "next_value"
        last = torch.arange(len(idx), device=device), (length - 1).to(device)

        block = last[0], torch.div(last[1], self.stride_, rounding_mode="floor")

        def value(xs: torch.Tensor, ss: torch.Tensor) -> torch.Tensor:
            hidden = net.encode(xs)[block]
            context = xs[last[0], last[1], -len(CONTEXT_NAMES) :]
            return ziln_mean(net.forward_heads(hidden, context, ss)[head])

        grads_x, grads_s = torch.zeros_like(x), torch.zeros_like(s)
        for alpha in (np.arange(_IG_STEPS) + 0.5) / _IG_STEPS:
            xs = (x0 + float(alpha) * (x - x0)).requires_grad_(True)
            ss = (s0 + float(alpha) * (s - s0)).requires_grad_(True)
            gx, gs = torch.autograd.grad(value(xs, ss).sum(), (xs, ss))
            grads_x, grads_s = grads_x + gx, grads_s + gs
        with torch.no_grad():
            attr_x = ((x - x0) * grads_x / _IG_STEPS).sum(1)
            attr_s = (s - s0) * grads_s / _IG_STEPS
            widths = [e.shape[1] for e in embedded]
            emb_parts = list(torch.split(attr_s[:, : sum(widths)], widths, 1)) if widths else []
            attr = torch.cat(
                [attr_x, attr_s[:, sum(widths) :], *(p.sum(1, keepdim=True) for p in emb_parts)], 1
            )
            f_x, f_0 = value(x, s), value(x0, s0)
            gap = (f_x - f_0) - attr.sum(1)
            size = attr.abs()
            attr = attr + gap[:, None] * size / size.sum(1, keepdim=True).clamp_min(1e-12)
            attr[:, 0] += torch.where(size.sum(1) > 0, torch.zeros_like(gap), gap)
            return torch.cat([f_0[:, None], attr], 1).double().cpu().numpy()

    # -------------------------------------------------------------- state
    def save_state(self, directory: Path) -> dict[str, Any]:
        """Weights as safetensors; scalers, vocabularies, grid and mode as JSON metadata."""
        weights = {k: v.detach().cpu().contiguous() for k, v in self.network_.state_dict().items()}
        save_file(weights, str(Path(directory) / WEIGHTS_FILE))
        return {
            "weights": WEIGHTS_FILE,
            "mode": self.mode_,
            "calendar": self.calendar_,
            "period_days": self.period_days_,
            "n_periods": self.n_periods_,
            "stride": self.stride_,
            "horizon_periods": self.horizon_periods_,
            "event_types": list(self.event_types_),
            "input_mean": self.input_mean_.tolist(),
            "input_std": self.input_std_.tolist(),
            "context_mean": self.context_mean_.tolist(),
            "context_std": self.context_std_.tolist(),
            "numeric_mean": self.numeric_mean_.tolist(),
            "numeric_std": self.numeric_std_.tolist(),
            "profile_encoder": None
            if self.profile_encoder_ is None
            else self.profile_encoder_.to_dict(),
            "training": json.loads(json.dumps(self.training_)),
        }

    def load_state(self, directory: Path, state: dict[str, Any]) -> None:
        """Rebuild the network and load its safetensors weights."""
        if len(state["context_mean"]) != len(CONTEXT_NAMES):
            raise ArtifactError(
                f"{Path(directory) / state['weights']}: seq model saved with "
                f"{len(state['context_mean'])} context features; this version uses "
                f"{len(CONTEXT_NAMES)} ({', '.join(CONTEXT_NAMES)}): retrain it"
            )
        self.mode_ = str(state["mode"])
        self.calendar_ = bool(state["calendar"])
        self.period_days_ = int(state["period_days"])
        self.n_periods_ = int(state["n_periods"])
        self.stride_ = int(state["stride"])
        self.horizon_periods_ = int(state["horizon_periods"])
        self.event_types_ = tuple(state["event_types"])
        for key in (
            "input_mean",
            "input_std",
            "context_mean",
            "context_std",
            "numeric_mean",
            "numeric_std",
        ):
            setattr(self, f"{key}_", np.asarray(state[key], dtype=np.float64))
        encoder = state["profile_encoder"]
        self.profile_encoder_ = None if encoder is None else ProfileEncoder.from_dict(encoder)
        self.training_ = dict(state["training"])
        self.network_ = self._build_network()
        weights = load_file(str(Path(directory) / state["weights"]), device=str(self._device()))
        self.network_.load_state_dict(weights)
        self.network_.eval()

    # -------------------------------------------------------------- helpers
    def _device(self) -> torch.device:
        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return torch.device(self.device)

    @contextlib.contextmanager
    def _session(self) -> Iterator[None]:
        """Seeded, deterministic torch settings for the duration of a fit or predict."""
        threads = torch.get_num_threads()
        deterministic = torch.are_deterministic_algorithms_enabled()
        devices = [torch.cuda.current_device()] if self._device().type == "cuda" else []
        try:
            if self.n_threads:
                torch.set_num_threads(self.n_threads)
            torch.use_deterministic_algorithms(True, warn_only=True)
            with torch.random.fork_rng(devices=devices):
                torch.manual_seed(self.random_state)
                yield
        finally:
            torch.set_num_threads(threads)
            torch.use_deterministic_algorithms(deterministic)


def _t(array: np.ndarray, device: torch.device) -> torch.Tensor:
    return torch.as_tensor(array, dtype=torch.float32, device=device)


def _path_quantiles(
    value: torch.Tensor, p_active: torch.Tensor, totals: torch.Tensor, prior: torch.Tensor
) -> torch.Tensor:
    """``value_p10``/``value_p90`` of a horizon total, ``(n, 2)``.

    The total is taken as zero-inflated lognormal with the exact ``p_active`` and mean
    ``value``; only its log-scale comes from the sampled path ``totals`` ``(n, paths)``: the
    variance of the positive totals' logs, shrunk towards ``prior`` (the model's per-period
    log-variance) with the weight of two paths. Empirical quantiles of a few paths straddle
    the jump from zero and are unstable (CDNOW, 1997-06-30 + 13 weeks: p90 moved by 50 % of
    its mean between two seeds of 40 paths each).
    """
    positive = totals > 0
    k = positive.sum(1).to(totals.dtype)
    logs = torch.where(positive, torch.log(totals.clamp_min(1e-12)), torch.zeros_like(totals))
    mean = logs.sum(1) / k.clamp_min(1.0)
    squares = (torch.where(positive, logs - mean[:, None], torch.zeros_like(logs)) ** 2).sum(1)
    variance = (squares + 2.0 * prior) / ((k - 1.0).clamp_min(0.0) + 2.0)
    p = p_active.clamp(1e-6, 1.0 - 1e-6)
    sigma = variance.sqrt().clamp_min(MIN_SIGMA)
    mu = torch.log(value.clamp_min(1e-12) / p) - 0.5 * variance
    logits = torch.stack([torch.logit(p), mu, sigma + torch.log(-torch.expm1(-sigma))], -1)
    return ziln_quantiles(logits)


def _poisson_nll(log_rate: torch.Tensor, count: torch.Tensor) -> torch.Tensor:
    """Poisson negative log-likelihood without the constant ``log(count!)``."""
    return torch.exp(log_rate) - count * log_rate


def _input_channels(values: np.ndarray) -> np.ndarray:
    """Network form of the activity channels: ``log1p`` of counts, log spend as is."""
    out = np.log1p(np.clip(values, 0.0, None))
    out[..., 1] = values[..., 1]
    return out


def _moments(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column means and standard deviations (1 where constant) of a 2-D array."""
    width = x.shape[-1]
    if width == 0 or x.size == 0:  # no numeric profile column, or no customer
        return np.zeros(width), np.ones(width)
    flat = x.reshape(-1, width).astype(np.float64)
    std = flat.std(0)
    return flat.mean(0), np.where(std > 1e-8, std, 1.0)


def _left_align(array: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Move each row's last ``lengths[i]`` columns to the front (zeros / False after)."""
    n, t = array.shape[:2]
    cols = np.arange(t)[None, :]
    source = np.minimum(cols + (t - lengths)[:, None], t - 1) + (np.arange(n) * t)[:, None]
    flat = array.reshape(n * t, -1)
    out = np.take(flat, source.ravel(), axis=0).reshape(array.shape)
    out[cols >= lengths[:, None]] = 0
    return out


def _targets(batch: SequenceBatch, h: int) -> dict[str, np.ndarray]:
    """Labels of the origin at the end of every column (right-aligned, zero where undefined).

    ``value``/``purchases``: spend and purchase days of the next ``h`` columns;
    ``next_value``: the next column's spend; ``next_extra``: its purchase days beyond one.
    """
    spend = np.sign(batch.values[..., 1]) * np.expm1(
        np.abs(batch.values[..., 1].astype(np.float64))
    )
    count = batch.values[..., 0].astype(np.float64)
    n, t = spend.shape

    def ahead(x: np.ndarray) -> np.ndarray:
        cum = np.concatenate([np.zeros((n, 1)), np.cumsum(x, axis=1)], axis=1)
        out = np.zeros((n, t))
        if t - h > 0:
            out[:, : t - h] = cum[:, h + 1 :] - cum[:, 1 : t - h + 1]
        return out

    def shifted(x: np.ndarray) -> np.ndarray:
        out = np.zeros((n, t))
        out[:, :-1] = x[:, 1:]
        return out

    targets = {
        "value": ahead(spend),
        "purchases": ahead(count),
        "next_value": shifted(spend),
        "next_extra": np.clip(shifted(count) - 1.0, 0.0, None),
    }
    return {k: v.astype(np.float32) for k, v in targets.items()}
