"""``GET /v1/customers/{id}/recommendations``: the batch answer, auth, 404, and per event."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from ltvcast.data.schemas import CustomerData
from ltvcast.pipeline import load_scoring_model
from ltvcast.pipeline.recommend import recommend
from ltvcast.service import create_app

from .conftest import TOKEN

AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture()
def client(model_dirs: dict[str, Path], db_path: Path) -> Iterator[TestClient]:
    with TestClient(create_app(model_dirs["btyd"], db_path, token=TOKEN)) as test_client:
        yield test_client


def test_the_answer_is_the_batch_recommendation(
    client: TestClient, model_dirs: dict[str, Path], store_data: CustomerData
) -> None:
    batch = recommend(load_scoring_model(model_dirs["btyd"]), store_data, top=4)
    customer = str(batch["customer_id"].iloc[40])
    response = client.get(f"/v1/customers/{customer}/recommendations?top=4", headers=AUTH)
    assert response.status_code == 200, response.text
    body = response.json()
    mine = batch[batch["customer_id"] == customer]
    assert body["customer_id"] == customer and body["action"] == mine["action"].iloc[0]
    assert body["action_value"] == pytest.approx(mine["action_value"].iloc[0], rel=1e-9)
    assert body["action_reason"] == mine["action_reason"].iloc[0]
    assert [i["item_id"] for i in body["items"]] == mine["item_id"].tolist()
    assert pd.Timestamp(body["as_of"]).tz_convert(None) == store_data.last_timestamp()


def test_auth_unknown_customer_and_bad_top(client: TestClient) -> None:
    path = "/v1/customers/C00000001/recommendations"
    assert client.get(path).status_code == 401
    assert client.get(path, headers={"Authorization": "Bearer nope"}).status_code == 403
    missing = client.get("/v1/customers/nobody/recommendations", headers=AUTH)
    assert missing.status_code == 404 and "unknown customer 'nobody'" in missing.json()["detail"]
    assert client.get(f"{path}?top=0", headers=AUTH).status_code == 422


def test_a_new_purchase_moves_the_action(client: TestClient, store_data: CustomerData) -> None:
    history = store_data.transactions.groupby("customer_id")["timestamp"].max()
    customer = str(history.idxmin())  # lapsed longest: at risk or hibernating
    path = f"/v1/customers/{customer}/recommendations"
    before = client.get(path, headers=AUTH).json()
    when = store_data.last_timestamp() + pd.Timedelta(minutes=1)
    events = [
        {"customer_id": customer, "timestamp": f"{when + pd.Timedelta(seconds=i)}Z",
         "event_type": "purchase", "amount": 500.0, "event_id": f"rec{i}"}
        for i in range(5)
    ]  # fmt: skip
    assert client.post("/v1/events", json={"events": events}, headers=AUTH).status_code == 200
    after = client.get(path, headers=AUTH).json()
    assert pd.Timestamp(after["as_of"]) > pd.Timestamp(before["as_of"])
    assert (after["action"], after["action_reason"]) != (before["action"], before["action_reason"])
