"""Horizon curves through the scoring model: the seq model's, on a slice of CDNOW."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import ltvcast
from ltvcast.data.schemas import CustomerData
from ltvcast.pipeline import ScoringModel, train_model

SMALL = {"conv_filters": 8, "lstm_hidden": 8, "head_hidden": 8, "epochs": 3, "n_threads": 1}


@pytest.fixture(scope="module")
def cdnow(cdnow_sample_tx: pd.DataFrame) -> CustomerData:
    return CustomerData(cdnow_sample_tx)


@pytest.fixture(scope="module")
def seq(cdnow: CustomerData) -> ScoringModel:
    return train_model(cdnow, horizon="13w", model="seq", as_of="1997-12-31", model_params=SMALL)


def test_seq_curve_columns_are_btyds_with_p_active(seq: ScoringModel, cdnow: CustomerData) -> None:
    table = seq.predict(cdnow, "1997-12-31", horizons="180d,30d,13w", discount_rate=0.1)
    spans = ("30d", "13w", "180d")
    names = ("purchases", "value", "p_active", "discounted_value")
    assert list(table.columns[-12:]) == [f"{n}_{h}" for h in spans for n in names]
    np.testing.assert_allclose(table["value_13w"], table["predicted_value"], rtol=1e-9)
    for name in names:
        curve = table[[f"{name}_{h}" for h in spans]].to_numpy()
        assert (np.diff(curve, axis=1) >= -1e-9).all(), name
    # the curve is learned, not a straight line through the own horizon
    ratio = table["value_180d"] / table["value_13w"].where(table["value_13w"] > 0)
    assert ratio.std() > 0 and ratio.min() >= 1.0
    with pytest.raises(ltvcast.ConfigError, match="trained for is 180d; it has no forecast for 1y"):
        seq.predict_curve(cdnow, "1997-12-31", "30d,1y")
    with pytest.raises(ltvcast.ConfigError, match="new-customer forecasts need a BTYD model"):
        seq.new_customer("30d")  # BTYD-only things stay BTYD-only
