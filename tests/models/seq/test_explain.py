"""Integrated gradients: completeness, and no credit for inputs the network ignores."""

from __future__ import annotations

import numpy as np
import torch

from ltvcast.data.schemas import CustomerData
from ltvcast.features.sequence import CONTEXT_NAMES
from ltvcast.models.seq.explain import explain_forecast
from ltvcast.models.seq.forward import last_outputs
from ltvcast.models.seq.inputs import PeriodGrid, fit_inputs
from ltvcast.models.seq.loss import ziln_mean
from ltvcast.models.seq.network import SeqNetwork

from .conftest import WEEKLY_AS_OF


def test_rows_sum_to_the_forecast_and_ignored_inputs_get_nothing(weekly: CustomerData) -> None:
    grid = PeriodGrid(period_days=7, n_periods=10, stride=2, calendar=True, event_types=("view",))
    inputs, batch = fit_inputs(weekly, WEEKLY_AS_OF, grid, use_profiles=True)
    torch.manual_seed(0)
    net = SeqNetwork(
        len(inputs.channels),
        len(CONTEXT_NAMES),
        len(inputs.numeric_columns),
        inputs.cardinalities(),
        conv_filters=6,
        lstm_hidden=5,
        head_hidden=4,
        stride=2,
    ).eval()
    ignored = ("event:view", "log_recency")
    with torch.no_grad():  # the network never reads the views or the recency
        for name in ignored:
            k = inputs.columns.index(name)
            net.conv.weight[:, k] = 0.0
            if name in CONTEXT_NAMES:
                net.trunk[0].weight[:, net.lstm.hidden_size + CONTEXT_NAMES.index(name)] = 0.0
    prepared = inputs.prepare(weekly, batch, torch.device("cpu"))
    with torch.no_grad():
        heads, _, _ = last_outputs(net, prepared, np.arange(12))
        f_x = ziln_mean(heads["horizon_value"]).double().numpy()
    table = explain_forecast(net, inputs, batch, prepared, 2.0 * f_x, head="horizon_value")
    assert list(table.columns) == [
        *inputs.columns,
        "profile_age",
        "profile_tier",
        "base_value",
    ]
    assert list(table.index) == list(batch.customers)
    np.testing.assert_allclose(table.sum(axis=1), 2.0 * f_x, rtol=1e-5)
    for name in ignored:
        np.testing.assert_array_equal(table[name], 0.0)
    assert (table["log_spend"] != 0).all() and (table["base_value"] > 0).all()
