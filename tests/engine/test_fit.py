"""Fitting BTYD forecasters from gathered RFM summaries: the in-memory fit's parameters."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from ltvcast.data.validate import load_customer_data
from ltvcast.engine.buckets import LITT, summarise_bucket
from ltvcast.engine.fit import (
    fit_purchases,
    fit_spend,
    fits_from_summary,
    fitted,
    needs_litt,
    purchase_rows,
    spend_rows,
    summary_inputs,
)
from ltvcast.models.btyd import BTYDForecaster
from ltvcast.models.registry import create, forecaster_class
from ltvcast.timeframe import parse_horizon

from .conftest import CDNOW_COLUMNS, saved_state


@pytest.mark.parametrize(
    ("model", "fits"),
    [("btyd", True), ("pnbd", True), ("bgcnbd", True), ("mbgcnbd", True), ("btyd_cal", False),
     ("baseline", False)],
)  # fmt: skip
def test_which_models_are_fitted_from_summaries(model: str, fits: bool) -> None:
    assert fits_from_summary(forecaster_class(model)) is fits


@pytest.mark.realdata
@pytest.mark.parametrize("model", ["btyd", "pnbd", "bgcnbd"])
def test_the_summary_fit_is_the_in_memory_fit(cdnow_master: Path, model: str) -> None:
    """The summary's purchase rows (with CNBD-k's litt) give the same parameters, to the
    last bit, as the forecaster's own fit."""
    data, _ = load_customer_data(cdnow_master, columns=CDNOW_COLUMNS)
    as_of, horizon = pd.Timestamp("1997-09-30 23:59:59.999999"), parse_horizon("39w")
    forecaster = create(model)
    assert isinstance(forecaster, BTYDForecaster)
    rfm, _ = summarise_bucket(data, as_of, with_litt=needs_litt(forecaster))
    rows = purchase_rows(forecaster, rfm)
    assert (rows.litt is not None) is needs_litt(forecaster) is (LITT in rfm)
    inputs = summary_inputs(forecaster, rfm)
    purchases = fit_purchases(forecaster, rows)
    spend = fit_spend(forecaster, spend_rows(forecaster, inputs))
    ours = fitted(forecaster, purchases, spend, inputs, as_of, horizon)
    theirs = create(model).fit(data, as_of, horizon)
    assert saved_state(ours) == saved_state(theirs)
