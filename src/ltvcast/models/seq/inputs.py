"""Network inputs of the sequence model: period tensors and profiles, scaled by column name.

:func:`choose_grid` sets the period grid of a fit (:func:`~ltvcast.features.sequence.period_matrix`
on it gives the activity channels and context); :func:`fit_inputs` learns on the training data
the standardisation of every channel and context feature and the profile encoding
(:class:`~ltvcast.features.tabular.ProfileEncoder` codes for the embeddings, numerics
standardised). Every scaler is keyed by column name, so a new channel, context feature or
profile column cannot shift the scaling of another.

Steps are **left-aligned** for the network (a customer's first period at position 0, padding
at the end; :func:`left_align`) and hold the channels, then the context features.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from ltvcast.data.schemas import CUSTOMER_ID, CustomerData
from ltvcast.exceptions import ConfigError
from ltvcast.features.sequence import (
    CONTEXT_NAMES,
    LOG_SPEND,
    SequenceBatch,
    choose_period_days,
    period_matrix,
)
from ltvcast.features.tabular import ProfileEncoder
from ltvcast.timeframe import Horizon

#: The calendar part of the context (zeroed when the grid does not use the calendar).
CALENDAR_NAMES = CONTEXT_NAMES[CONTEXT_NAMES.index("year_sin") :]
#: Longest default history window, in periods, by period length in days.
_MAX_PERIODS = {1: 180, 7: 104}


@dataclass(frozen=True)
class ColumnScaler:
    """Standardisation ``(x - mean) / std`` of named columns.

    Attributes
    ----------
    moments
        ``name -> (mean, std)``; ``std`` is 1 for a constant column.
    """

    moments: dict[str, tuple[float, float]]

    @classmethod
    def fit(cls, names: Sequence[str], values: np.ndarray) -> ColumnScaler:
        """Column moments of ``values`` (``(..., len(names))``), keyed by ``names``."""
        width = len(names)
        if width == 0 or values.size == 0:  # no numeric profile column, or no customer
            mean, std = np.zeros(width), np.ones(width)
        else:
            flat = values.reshape(-1, width).astype(np.float64)
            spread = flat.std(0)
            mean, std = flat.mean(0), np.where(spread > 1e-8, spread, 1.0)
        return cls({n: (float(m), float(s)) for n, m, s in zip(names, mean, std, strict=True)})

    def arrays(self, names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """float64 means and standard deviations of ``names``, in that order."""
        missing = [n for n in names if n not in self.moments]
        if missing:
            raise KeyError(f"no scaling was fitted for column(s) {', '.join(missing)}")
        pairs = np.array([self.moments[n] for n in names], dtype=np.float64).reshape(-1, 2)
        return pairs[:, 0], pairs[:, 1]

    def transform(self, values: np.ndarray, names: Sequence[str]) -> np.ndarray:
        """Scale the columns of ``values`` (``(..., len(names))``) in their own dtype."""
        mean, std = self.arrays(names)
        return (values - mean.astype(values.dtype)) / std.astype(values.dtype)

    def to_dict(self) -> dict[str, list[float]]:
        """JSON-serialisable form (inverse of :meth:`from_dict`)."""
        return {name: [mean, std] for name, (mean, std) in self.moments.items()}

    @classmethod
    def from_dict(cls, state: dict[str, list[float]]) -> ColumnScaler:
        """Rebuild a scaler written by :meth:`to_dict`."""
        return cls({str(k): (float(v[0]), float(v[1])) for k, v in state.items()})


@dataclass(frozen=True)
class PeriodGrid:
    """The period grid of a fitted model.

    Attributes
    ----------
    period_days, n_periods
        ``n_periods`` columns of ``period_days`` days, ending with the as-of day.
    stride
        Periods per LSTM step; a customer's length is rounded up to whole blocks.
    calendar
        Whether the calendar context is kept (zeros otherwise).
    event_types
        Event types that get an activity channel.
    """

    period_days: int
    n_periods: int
    stride: int
    calendar: bool
    event_types: tuple[str, ...]

    def batch(self, data: CustomerData, as_of: pd.Timestamp) -> SequenceBatch:
        """Unscaled period tensors of the customers seen up to ``as_of``."""
        batch = period_matrix(
            data,
            as_of,
            period_days=self.period_days,
            n_periods=self.n_periods,
            event_types=self.event_types,
        )
        if not self.calendar:
            batch.context[..., [CONTEXT_NAMES.index(c) for c in CALENDAR_NAMES]] = 0.0
        s = self.stride  # whole blocks: a block starting before the first activity is zeros
        lengths = np.minimum(-(-batch.lengths // s) * s, batch.n_periods)
        return dataclasses.replace(batch, lengths=lengths)


@dataclass(frozen=True)
class NetworkInputs:
    """A batch in the form the network takes.

    Attributes
    ----------
    steps
        float32 ``(customers, periods, channels + context)``, scaled and left-aligned.
    lengths
        Real periods per customer (the first ``lengths[i]`` steps of row ``i``).
    categorical, numeric
        Embedding indices (long) and scaled numeric profile inputs, on the model's device.
    n_channels
        Activity channels at the front of each step; the context features follow.
    wide, offset
        The hybrid's per-origin wide inputs and head offsets, float32 ``(customers,
        periods, .)`` left-aligned like ``steps``, or ``(customers, .)`` at the last period
        only (``None``: the paper's network).
    """

    steps: np.ndarray
    lengths: np.ndarray
    categorical: torch.Tensor
    numeric: torch.Tensor
    n_channels: int
    wide: np.ndarray | None = None
    offset: np.ndarray | None = None

    @property
    def device(self) -> torch.device:
        """The device of the static tensors (and of every forward pass on them)."""
        return self.categorical.device


@dataclass(frozen=True)
class SeqInputs:
    """Everything that turns canonical data into network inputs, fitted on training data.

    Attributes
    ----------
    grid
        The period grid.
    channels
        Activity channels, in the order of the period tensors.
    steps
        Scaler of every channel and context feature.
    profiles
        Profile encoder (``None``: no profile inputs).
    numeric
        Scaler of the numeric profile columns (``profile_<column>``).
    """

    grid: PeriodGrid
    channels: tuple[str, ...]
    steps: ColumnScaler
    profiles: ProfileEncoder | None
    numeric: ColumnScaler

    @property
    def columns(self) -> tuple[str, ...]:
        """Names of the step features: the channels, then the context features."""
        return (*self.channels, *CONTEXT_NAMES)

    @property
    def numeric_columns(self) -> list[str]:
        """Numeric profile inputs, in the network's order."""
        return _numeric_columns(self.profiles)

    @property
    def categorical_columns(self) -> list[str]:
        """Categorical profile inputs (one embedding each), in the network's order."""
        return [] if self.profiles is None else self.profiles.categorical_features

    def cardinalities(self) -> list[int]:
        """Vocabulary size of each embedding: the codes plus missing and other."""
        encoder = self.profiles
        return [] if encoder is None else [len(v) + 2 for v in encoder.vocabularies_.values()]

    def batch(self, data: CustomerData, as_of: pd.Timestamp) -> SequenceBatch:
        """Unscaled period tensors on the fitted grid (:meth:`PeriodGrid.batch`)."""
        return self.grid.batch(data, as_of)

    def scaled_steps(self, batch: SequenceBatch) -> np.ndarray:
        """Scaled, left-aligned float32 ``(customers, periods, channels + context)``."""
        raw = np.concatenate([input_channels(batch.values, batch.channels), batch.context], -1)
        return left_align(
            self.steps.transform(raw, (*batch.channels, *CONTEXT_NAMES)), batch.lengths
        )

    def prepare(
        self,
        data: CustomerData,
        batch: SequenceBatch,
        device: torch.device,
        hybrid: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> NetworkInputs:
        """The network inputs of ``batch`` (profiles from ``data``), static ones on ``device``.

        ``hybrid``: the wide inputs and head offsets of every column of ``batch``
        (right-aligned like its tensors), or ``(customers, .)`` at the last column only
        (enough to forecast); :mod:`~ltvcast.models.seq.hybrid`.
        """
        steps = self.scaled_steps(batch)
        numeric, codes = _profile_arrays(self.profiles, data, batch.customers)
        numeric = self.numeric.transform(numeric, self.numeric_columns)
        wide, offset = (None, None) if hybrid is None else hybrid
        return NetworkInputs(
            steps=steps,
            lengths=batch.lengths,
            categorical=torch.from_numpy(codes).to(device),
            numeric=torch.from_numpy(numeric.astype(np.float32)).to(device),
            n_channels=len(batch.channels),
            wide=_aligned(wide, batch.lengths),
            offset=_aligned(offset, batch.lengths),
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable state (inverse of :meth:`from_dict`)."""
        return {
            **dataclasses.asdict(self.grid),
            "event_types": list(self.grid.event_types),
            "channels": list(self.channels),
            "scalers": {"steps": self.steps.to_dict(), "numeric": self.numeric.to_dict()},
            "profile_encoder": None if self.profiles is None else self.profiles.to_dict(),
        }

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> SeqInputs:
        """Rebuild inputs written by :meth:`to_dict`."""
        grid = PeriodGrid(
            period_days=int(state["period_days"]),
            n_periods=int(state["n_periods"]),
            stride=int(state["stride"]),
            calendar=bool(state["calendar"]),
            event_types=tuple(state["event_types"]),
        )
        encoder = state["profile_encoder"]
        return cls(
            grid=grid,
            channels=tuple(state["channels"]),
            steps=ColumnScaler.from_dict(state["scalers"]["steps"]),
            profiles=None if encoder is None else ProfileEncoder.from_dict(encoder),
            numeric=ColumnScaler.from_dict(state["scalers"]["numeric"]),
        )


def choose_grid(
    data: CustomerData,
    as_of: pd.Timestamp,
    horizon: Horizon,
    *,
    direct: bool,
    period_days: int | None,
    n_periods: int | None,
    stride: int | None,
    use_calendar: bool | None,
    use_events: bool,
) -> PeriodGrid:
    """The grid of a fit, with the ``None`` settings resolved from the training span.

    ``period_days``: :func:`~ltvcast.features.sequence.choose_period_days`; ``n_periods``:
    the span, at most 104 weeks / 180 days, rounded up to whole strides; ``stride``: 2 in
    direct mode, 1 in rollout mode (the only one it allows); ``use_calendar``: a span of two
    years or more; event channels in direct mode only.
    """
    span = pd.Timestamp(as_of) - data.first_timestamp()
    days = period_days or choose_period_days(horizon, span)
    step = stride or (2 if direct else 1)
    if not direct and step != 1:
        raise ConfigError(f"seq: rollout mode needs stride 1; got {step}")
    span_periods = max(2, math.ceil(span / pd.Timedelta(days=days)))
    periods = n_periods or min(span_periods, _MAX_PERIODS.get(days, 104))
    return PeriodGrid(
        period_days=days,
        n_periods=-(-max(periods, step) // step) * step,
        stride=step,
        calendar=span >= pd.Timedelta(days=730) if use_calendar is None else use_calendar,
        event_types=data.event_types if use_events and direct else (),
    )


def fit_inputs(
    data: CustomerData, as_of: pd.Timestamp, grid: PeriodGrid, *, use_profiles: bool
) -> tuple[SeqInputs, SequenceBatch]:
    """Fit the scalers and profile encoding on the customers seen up to ``as_of``.

    Channels and context are scaled over the customers' real periods; profiles over the
    customers. Returns the inputs and the training batch they were fitted on.
    """
    batch = grid.batch(data, as_of)
    mask = batch.mask
    raw = input_channels(batch.values, batch.channels)
    steps = ColumnScaler(
        {
            **ColumnScaler.fit(batch.channels, raw[mask]).moments,
            **ColumnScaler.fit(CONTEXT_NAMES, batch.context[mask]).moments,
        }
    )
    encoder = None
    if use_profiles and data.profiles is not None:
        known = data.profiles[data.profiles[CUSTOMER_ID].isin(batch.customers)]
        encoder = ProfileEncoder().fit(known)
    numeric, _ = _profile_arrays(encoder, data, batch.customers)
    profile_scaler = ColumnScaler.fit(_numeric_columns(encoder), numeric)
    inputs = SeqInputs(grid, batch.channels, steps, encoder, profile_scaler)
    return inputs, batch


def input_channels(values: np.ndarray, channels: Sequence[str]) -> np.ndarray:
    """Network form of the activity channels: ``log1p`` of counts, log spend as is."""
    out = np.log1p(np.clip(values, 0.0, None))
    spend = list(channels).index(LOG_SPEND)
    out[..., spend] = values[..., spend]
    return out


def channel(batch: SequenceBatch, name: str) -> np.ndarray:
    """The ``(customers, periods)`` values of channel ``name``."""
    return batch.values[..., batch.channels.index(name)]


def spend_from_log(log_spend: np.ndarray) -> np.ndarray:
    """Net spend (float64) from the signed ``log1p`` of the ``log_spend`` channel."""
    signed = log_spend.astype(np.float64)
    return np.sign(signed) * np.expm1(np.abs(signed))


def left_align(array: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Move each row's last ``lengths[i]`` columns to the front (zeros / False after)."""
    n, t = array.shape[:2]
    cols = np.arange(t)[None, :]
    source = np.minimum(cols + (t - lengths)[:, None], t - 1) + (np.arange(n) * t)[:, None]
    flat = array.reshape(n * t, -1)
    out = np.take(flat, source.ravel(), axis=0).reshape(array.shape)
    out[cols >= lengths[:, None]] = 0
    return out


def _aligned(array: np.ndarray | None, lengths: np.ndarray) -> np.ndarray | None:
    """:func:`left_align` of per-column ``array``; a last-column-only one stays as it is."""
    return array if array is None or array.ndim == 2 else left_align(array, lengths)


def _profile_arrays(
    encoder: ProfileEncoder | None, data: CustomerData, customers: pd.Index
) -> tuple[np.ndarray, np.ndarray]:
    """Numeric profile values and embedding indices (0: missing, 1..k: codes, k+1: other)."""
    if encoder is None or data.profiles is None:
        return np.zeros((len(customers), 0)), np.zeros((len(customers), 0), dtype=np.int64)
    encoded = encoder.transform(data.profiles, customers)
    numeric = encoded[_numeric_columns(encoder)].to_numpy(np.float64)
    codes = encoded[encoder.categorical_features].to_numpy(np.float64)
    return np.nan_to_num(numeric), np.where(np.isnan(codes), 0, codes + 1).astype(np.int64)


def _numeric_columns(encoder: ProfileEncoder | None) -> list[str]:
    """The encoder's numeric output columns (``profile_<column>``), in fit order."""
    return [] if encoder is None else [f"profile_{c}" for c in encoder.medians_]
