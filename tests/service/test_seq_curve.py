"""A seq model's bundle serves the horizon curve of each customer, monotone, per event."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from ltvcast.data.schemas import CustomerData
from ltvcast.models.seq.estimator import SeqForecaster
from ltvcast.scoring.artifacts import save_model
from ltvcast.service import create_app
from ltvcast.timeframe import parse_horizon

from .conftest import TOKEN

AUTH = {"Authorization": f"Bearer {TOKEN}"}
SMALL = {"conv_filters": 8, "lstm_hidden": 8, "head_hidden": 8, "epochs": 3, "n_threads": 1}


@pytest.fixture(scope="module")
def seq_dir(tmp_path_factory: pytest.TempPathFactory, store_data: CustomerData) -> Path:
    model = SeqForecaster(**SMALL).fit(store_data, store_data.last_timestamp(),
                                       parse_horizon("90d"))  # fmt: skip
    return save_model(model, tmp_path_factory.mktemp("seq") / "seq")


def test_a_seq_bundle_serves_a_monotone_curve(
    seq_dir: Path, db_path: Path, store_data: CustomerData
) -> None:
    customer = str(store_data.transactions["customer_id"].iloc[0])
    url = f"/v1/customers/{customer}?horizons=180d,30d,60d,90d&discount_rate=0.1"
    with TestClient(create_app(seq_dir, db_path, token=TOKEN)) as client:
        body = client.get(url, headers=AUTH).json()
        event = {
            "customer_id": customer,
            "timestamp": body["as_of"],
            "event_type": "purchase",
            "amount": 500.0,
            "event_id": "seq-curve-1",
        }
        assert client.post("/v1/events", json={"events": [event]}, headers=AUTH).status_code < 300
        after = client.get(url, headers=AUTH).json()
        beyond = client.get(f"/v1/customers/{customer}?horizons=1y", headers=AUTH)
    assert [p["horizon"] for p in body["curve"]] == ["30d", "60d", "90d", "180d"]
    for key in ("purchases", "value", "p_active", "discounted_value"):
        points = [p[key] for p in body["curve"]]
        assert points == sorted(points), key
    assert all(p["p_alive"] is None for p in body["curve"])  # P(active), not BTYD's P(alive)
    assert body["curve"][2]["value"] == pytest.approx(body["predicted_value"], rel=1e-9)
    assert all(p["discounted_value"] < p["value"] for p in body["curve"] if p["value"] > 0)
    # the event reaches the curve, which stays monotone
    values = [p["value"] for p in after["curve"]]
    assert values == sorted(values) and values != [p["value"] for p in body["curve"]]
    assert beyond.status_code == 422 and "trained for is 180d" in beyond.text
