"""Network inputs: scalers keyed by column name, the period grid, alignment, state."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from ltvcast.data.schemas import CustomerData
from ltvcast.exceptions import ConfigError
from ltvcast.features.sequence import CONTEXT_NAMES
from ltvcast.models.seq.inputs import (
    CALENDAR_NAMES,
    ColumnScaler,
    PeriodGrid,
    SeqInputs,
    choose_grid,
    fit_inputs,
    input_channels,
    left_align,
    spend_from_log,
)
from ltvcast.timeframe import parse_horizon

from .conftest import WEEKLY_AS_OF


def _grid(events: tuple[str, ...] = ("view",), calendar: bool = True) -> PeriodGrid:
    return PeriodGrid(period_days=7, n_periods=10, stride=2, calendar=calendar, event_types=events)


def test_scaler_moments_by_name() -> None:
    values = np.array([[1.0, 5.0, 2.0], [3.0, 5.0, 4.0], [5.0, 5.0, 9.0]])
    scaler = ColumnScaler.fit(["a", "const", "b"], values)
    assert scaler.moments["a"] == pytest.approx((3.0, np.std([1.0, 3.0, 5.0])))
    assert scaler.moments["const"] == (5.0, 1.0)  # constant: std 1
    mean, std = scaler.arrays(["b", "a"])
    np.testing.assert_allclose(mean, [5.0, 3.0])
    np.testing.assert_allclose(std, [np.std([2.0, 4.0, 9.0]), np.std([1.0, 3.0, 5.0])])
    # the columns are scaled by name, whatever their order in the array
    swapped = scaler.transform(values[:, [2, 0]], ["b", "a"])
    np.testing.assert_allclose(swapped, scaler.transform(values, ["a", "const", "b"])[:, [2, 0]])
    with pytest.raises(KeyError, match="new"):
        scaler.arrays(["a", "new"])
    assert ColumnScaler.from_dict(scaler.to_dict()) == scaler
    assert ColumnScaler.fit([], np.zeros((3, 0))).moments == {}


def test_input_channels_keep_log_spend_by_name() -> None:
    values = np.array([[[2.0, 3.5, 4.0]]], dtype=np.float32)
    out = input_channels(values, ("purchases", "event:view", "log_spend"))
    np.testing.assert_allclose(out[0, 0], [np.log1p(2.0), np.log1p(3.5), 4.0], rtol=1e-6)
    np.testing.assert_allclose(spend_from_log(np.log1p(np.array([0.0, 9.0]))), [0.0, 9.0])
    np.testing.assert_allclose(spend_from_log(-np.log1p(np.array([4.0]))), [-4.0])


def test_left_align_moves_history_to_the_front() -> None:
    array = np.arange(8.0).reshape(2, 4)
    np.testing.assert_array_equal(
        left_align(array, np.array([2, 4])), [[2.0, 3.0, 0.0, 0.0], [4.0, 5.0, 6.0, 7.0]]
    )


def test_an_extra_channel_does_not_shift_the_other_scalers(weekly: CustomerData) -> None:
    with_events, batch = fit_inputs(weekly, WEEKLY_AS_OF, _grid(), use_profiles=True)
    without, plain = fit_inputs(weekly, WEEKLY_AS_OF, _grid(events=()), use_profiles=True)
    assert with_events.columns == ("purchases", "log_spend", "event:view", *CONTEXT_NAMES)
    assert without.channels == ("purchases", "log_spend")
    for name, moments in without.steps.moments.items():
        assert with_events.steps.moments[name] == moments
    # the scaled steps agree column by column, named, not by position
    steps, other = with_events.scaled_steps(batch), without.scaled_steps(plain)
    keep = [with_events.columns.index(c) for c in without.columns]
    np.testing.assert_array_equal(steps[..., keep], other)
    assert with_events.numeric_columns == ["profile_age"]
    assert with_events.categorical_columns == ["profile_tier"]
    assert with_events.cardinalities() == [4]  # gold, basic, missing, other


def test_profiles_are_optional(weekly: CustomerData) -> None:
    inputs, batch = fit_inputs(weekly, WEEKLY_AS_OF, _grid(), use_profiles=False)
    assert inputs.profiles is None and inputs.numeric_columns == [] and inputs.cardinalities() == []
    prepared = inputs.prepare(weekly, batch, torch.device("cpu"))
    assert prepared.categorical.shape == (12, 0) and prepared.numeric.shape == (12, 0)
    assert prepared.n_channels == 3 and prepared.steps.shape == (12, 10, 3 + len(CONTEXT_NAMES))


def test_grid_without_calendar_zeroes_only_the_calendar(weekly: CustomerData) -> None:
    on, off = _grid().batch(weekly, WEEKLY_AS_OF), _grid(calendar=False).batch(weekly, WEEKLY_AS_OF)
    calendar = [CONTEXT_NAMES.index(c) for c in CALENDAR_NAMES]
    rest = [k for k in range(len(CONTEXT_NAMES)) if k not in calendar]
    assert not off.context[..., calendar].any() and on.context[..., calendar].any()
    np.testing.assert_array_equal(off.context[..., rest], on.context[..., rest])
    assert (on.lengths % 2 == 0).all()  # whole strides


def test_choose_grid_resolves_the_defaults(weekly: CustomerData) -> None:
    horizon = parse_horizon("6w")
    common = {"period_days": None, "n_periods": None, "stride": None, "use_calendar": None}
    grid = choose_grid(weekly, WEEKLY_AS_OF, horizon, direct=True, use_events=True, **common)
    assert grid == PeriodGrid(7, 10, 2, False, ("view",))  # 69.5 days: 10 weeks, no calendar
    rollout = choose_grid(weekly, WEEKLY_AS_OF, horizon, direct=False, use_events=True, **common)
    assert rollout.stride == 1 and rollout.event_types == ()
    with pytest.raises(ConfigError, match="rollout mode needs stride 1; got 2"):
        choose_grid(
            weekly, WEEKLY_AS_OF, horizon, direct=False, use_events=True, **{**common, "stride": 2}
        )


def test_state_round_trip(weekly: CustomerData) -> None:
    inputs, batch = fit_inputs(weekly, WEEKLY_AS_OF, _grid(), use_profiles=True)
    state = inputs.to_dict()
    assert list(state["scalers"]["numeric"]) == ["profile_age"]
    again = SeqInputs.from_dict(json.loads(json.dumps(state)))
    assert again.to_dict() == state and again.grid == inputs.grid
    np.testing.assert_array_equal(again.scaled_steps(batch), inputs.scaled_steps(batch))
