"""The HTTP service in-process: every endpoint, auth, validation, idempotency, reload."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from ltvcast.data.schemas import CustomerData
from ltvcast.features.rfm import customer_history
from ltvcast.scoring.artifacts import load_model
from ltvcast.scoring.single import parse_score_request
from ltvcast.service import create_app
from ltvcast.service.bundle import ANSWER_FIELDS
from ltvcast.timeframe import parse_horizons

from .conftest import TOKEN

AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture()
def model_dir(tmp_path: Path, model_dirs: dict[str, Path]) -> Path:
    """A private copy of the baseline model directory (reload tests rewrite it)."""
    return Path(shutil.copytree(model_dirs["baseline"], tmp_path / "model"))


@pytest.fixture()
def client(model_dir: Path, db_path: Path) -> Iterator[TestClient]:
    app = create_app(model_dir, db_path, token=TOKEN, max_body_bytes=200_000, max_batch=50)
    with TestClient(app) as test_client:
        yield test_client


def _event(i: int, customer: str = "C00000001", **extra: Any) -> dict[str, Any]:
    return {
        "customer_id": customer,
        "timestamp": "2024-01-05T10:00:00Z",
        "event_type": "purchase",
        "amount": 40.0 + i,
        "event_id": f"e{i}",
        **extra,
    }


def test_customer_forecast_matches_batch(
    client: TestClient, model_dir: Path, store_data: CustomerData
) -> None:
    forecaster, _ = load_model(model_dir)
    as_of = store_data.last_timestamp()
    batch = forecaster.predict(store_data, as_of).set_index("customer_id")
    customer = batch.index[5]
    body = client.get(f"/v1/customers/{customer}", headers=AUTH).json()
    assert body["customer_id"] == customer
    assert body["predicted_value"] == pytest.approx(
        batch.loc[customer, "predicted_value"], rel=1e-9
    )
    assert body["p_active"] == pytest.approx(batch.loc[customer, "p_active"], rel=1e-9)
    assert body["value_p10"] is None and body["value_p90"] is None  # baseline has no quantiles
    assert body["segment"] in {
        "champions",
        "high_value_at_risk",
        "promising_new",
        "steady",
        "hibernating",
        "low_value",
    }
    assert body["model_version"].startswith("baseline-")
    assert pd.Timestamp(body["as_of"]).tz_convert(None) == as_of
    history = store_data.transactions[store_data.transactions["customer_id"] == customer]
    assert store_data.events is not None
    events = store_data.events[store_data.events["customer_id"] == customer]
    last = max(history["timestamp"].max(), events["timestamp"].max())
    assert pd.Timestamp(body["last_event_at"]).tz_convert(None) == last
    missing = client.get("/v1/customers/nobody", headers=AUTH)
    assert missing.status_code == 404 and "unknown customer 'nobody'" in missing.json()["detail"]


def test_auth_is_required_on_v1_routes(client: TestClient) -> None:
    routes = [("get", "/v1/customers/C00000001"), ("post", "/v1/events"), ("post", "/v1/score"),
              ("post", "/v1/admin/reload")]  # fmt: skip
    for method, path in routes:
        missing = client.request(method, path, json={})
        assert missing.status_code == 401, path
        assert missing.headers["www-authenticate"] == "Bearer"
        wrong = client.request(method, path, json={}, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 403, path
    assert client.get("/healthz").status_code == 200  # ops routes stay open
    assert client.get("/metrics").status_code == 200


def test_events_are_stored_learned_and_idempotent(client: TestClient, db_path: Path) -> None:
    before = client.get("/v1/customers/C00000001", headers=AUTH).json()
    batch = {"events": [_event(1), _event(2, event_type="view", amount=None), _event(3)]}
    batch["events"][1].pop("amount")
    first = client.post("/v1/events", json=batch, headers=AUTH)
    assert first.status_code == 200
    assert first.json() == {"accepted": 3, "duplicates": 0, "rejected": []}
    retry = client.post("/v1/events", json=batch, headers=AUTH).json()
    assert retry == {"accepted": 3, "duplicates": 3, "rejected": []}
    after = client.get("/v1/customers/C00000001", headers=AUTH).json()
    assert after["last_event_at"] == "2024-01-05T10:00:00Z"
    assert after["as_of"] == "2024-01-05T10:00:00Z"  # the stream clock moved
    assert after["predicted_value"] != before["predicted_value"]
    # customers without new events keep their batch forecast (and say as of when) until a
    # reload rescores everyone at the stream clock
    other = client.get("/v1/customers/C00000002", headers=AUTH).json()
    assert other["as_of"] == before["as_of"]
    assert client.post("/v1/admin/reload", headers=AUTH).status_code == 200
    other = client.get("/v1/customers/C00000002", headers=AUTH).json()
    assert other["as_of"] == "2024-01-05T10:00:00Z"
    # a brand-new customer becomes known at once
    client.post("/v1/events", json={"events": [_event(9, customer="newbie")]}, headers=AUTH)
    assert client.get("/v1/customers/newbie", headers=AUTH).status_code == 200
    con = client.app.state.service.store.connection  # type: ignore[attr-defined]
    ids = con.execute("SELECT event_id FROM events_ingested ORDER BY 1").fetchall()
    assert [r[0] for r in ids] == ["e1", "e2", "e3", "e9"]
    tx = con.execute(
        "SELECT count(*), sum(amount) FROM transactions WHERE timestamp = '2024-01-05 10:00:00'"
    ).fetchone()
    assert tx == (3, 41.0 + 43.0 + 49.0)
    views = con.execute("SELECT count(*) FROM events WHERE timestamp = '2024-01-05 10:00:00'")
    assert views.fetchone() == (4,)  # every event, purchases included


def test_bad_items_are_rejected_with_reasons_and_good_ones_kept(client: TestClient) -> None:
    items = [
        _event(1),
        _event(2, amount="12"),
        _event(3, timestamp="last tuesday"),
        {**_event(4), "amount": None},
        _event(5, event_type="view"),
        _event(6, colour="red"),
        "not an object",
        _event(7, amount=float("inf")),
        _event(8, customer=""),
    ]
    raw = json.dumps({"events": items})  # Python's json writes inf as Infinity
    body = client.post(
        "/v1/events", content=raw, headers={**AUTH, "content-type": "application/json"}
    )
    assert body.status_code == 200
    out = body.json()
    assert out["accepted"] == 1 and out["duplicates"] == 0
    reasons = {r["index"]: r["reason"] for r in out["rejected"]}
    assert sorted(reasons) == [1, 2, 3, 4, 5, 6, 7, 8]
    assert reasons[1].startswith("amount: Input should be a valid number")
    assert reasons[2].startswith("timestamp: ")
    assert reasons[3] == "amount: a purchase needs an amount"
    assert reasons[4] == "amount: only purchase events carry an amount, not 'view'"
    assert reasons[5].startswith("colour: Extra inputs are not permitted")
    assert "valid dictionary" in reasons[6]
    assert reasons[7].startswith("amount: ")
    assert reasons[8].startswith("customer_id: ")


def test_request_validation_and_limits(client: TestClient) -> None:
    wrong_shape = client.post("/v1/events", json={"evnts": []}, headers=AUTH)
    assert wrong_shape.status_code == 422
    assert "body.events: Field required" in wrong_shape.json()["detail"]
    not_json = client.post(
        "/v1/events", content=b"{", headers={**AUTH, "content-type": "application/json"}
    )
    assert not_json.status_code == 422 and "Traceback" not in not_json.text
    too_many = client.post(
        "/v1/events", json={"events": [_event(i) for i in range(51)]}, headers=AUTH
    )
    assert too_many.status_code == 413 and "batch limit of 50" in too_many.json()["detail"]
    huge = client.post(
        "/v1/score", content=b"x" * 200_001, headers={**AUTH, "content-type": "application/json"}
    )
    assert huge.status_code == 413 and "200000 bytes" in huge.json()["detail"]


def test_score_without_storing(
    client: TestClient, model_dir: Path, paper_request: dict[str, Any]
) -> None:
    payload = paper_request
    response = client.post("/v1/score", json=payload, headers=AUTH)
    assert response.status_code == 200
    body = response.json()
    forecaster, _ = load_model(model_dir)
    data, as_of = parse_score_request(payload)
    assert as_of is not None
    expected = forecaster.predict(data, as_of).iloc[0]
    assert body["predicted_value"] == pytest.approx(expected["predicted_value"], rel=1e-9)
    assert body["predicted_value"] > 0 and 0 < body["p_active"] <= 1
    assert "customer_id" not in body and body["segment"]
    assert client.get("/v1/customers/request", headers=AUTH).status_code == 404  # not stored
    bad = client.post(
        "/v1/score",
        json={"transactions": [{"timestamp": "2024-01-01", "amount": "x"}]},
        headers=AUTH,
    )
    assert bad.status_code == 422
    assert bad.json() == {"detail": "transactions[0].amount: must be a number; got 'x'"}
    early = client.post("/v1/score", json={**payload, "as_of": "2020-01-01"}, headers=AUTH)
    assert early.status_code == 422 and "no transaction or event up to 2020-01-01" in early.text


def test_reload_good_and_bad(
    client: TestClient, model_dir: Path, model_dirs: dict[str, Path]
) -> None:
    old = client.get("/healthz").json()["model_version"]
    (model_dir / "manifest.json").write_text("{not json", encoding="utf-8")
    failed = client.post("/v1/admin/reload", headers=AUTH)
    assert failed.status_code == 409
    assert f"still serving {old}" in failed.json()["detail"]
    assert "unreadable manifest" in failed.json()["detail"]
    assert client.get("/v1/customers/C00000001", headers=AUTH).json()["model_version"] == old
    shutil.rmtree(model_dir)
    shutil.copytree(model_dirs["btyd"], model_dir)
    done = client.post("/v1/admin/reload", headers=AUTH)
    assert done.status_code == 200
    new = done.json()["model_version"]
    assert new.startswith("btyd-") and new != old and done.json()["customers"] == 300
    assert client.get("/v1/customers/C00000001", headers=AUTH).json()["model_version"] == new
    metrics = client.get("/metrics").text
    assert "ltvcast_model_reloads_total 1" in metrics
    assert "ltvcast_model_reload_failures_total 1" in metrics


def test_metrics_and_docs(client: TestClient) -> None:
    client.post("/v1/events", json={"events": [_event(1), _event(2, amount="x")]}, headers=AUTH)
    client.get("/v1/customers/C00000001", headers=AUTH)
    text = client.get("/metrics").text
    assert 'ltvcast_http_requests_total{method="POST",route="/v1/events",status="200"} 1' in text
    route = 'method="GET",route="/v1/customers/{customer_id}"'
    assert f"ltvcast_http_request_duration_seconds_count{{{route}}} 1" in text
    assert "ltvcast_events_ingested_total 1" in text
    assert "ltvcast_events_rejected_total 1" in text
    assert "ltvcast_customers 300" in text
    assert client.get("/docs").status_code == 200
    schema = client.get("/openapi.json").json()
    assert {"/v1/events", "/v1/customers/{customer_id}", "/v1/score", "/healthz"} <= set(
        schema["paths"]
    )


def test_no_token_means_no_auth(model_dir: Path, db_path: Path) -> None:
    with TestClient(create_app(model_dir, db_path, token=None)) as open_client:
        assert open_client.get("/v1/customers/C00000001").status_code == 200


def test_state_is_rebuilt_from_the_store(model_dir: Path, db_path: Path) -> None:
    with TestClient(create_app(model_dir, db_path, token=TOKEN)) as first:
        first.post("/v1/events", json={"events": [_event(1, customer="fresh")]}, headers=AUTH)
        expected = first.get("/v1/customers/fresh", headers=AUTH).json()
    with TestClient(create_app(model_dir, db_path, token=TOKEN)) as second:
        again = second.get("/v1/customers/fresh", headers=AUTH).json()
        assert again == expected
        retry = second.post(
            "/v1/events", json={"events": [_event(1, customer="fresh")]}, headers=AUTH
        )
        assert retry.json()["duplicates"] == 1


def test_empty_store_and_segment_cuts_from_the_manifest(tmp_path: Path, model_dir: Path) -> None:
    event = _event(1, customer="solo")
    with TestClient(create_app(model_dir, tmp_path / "empty.duckdb", token=None)) as fresh:
        assert fresh.get("/healthz").json()["customers"] == 0
        assert fresh.post("/v1/events", json={"events": [event]}).json()["accepted"] == 1
        body = fresh.get("/v1/customers/solo").json()
        assert body["segment"] == "unsegmented"  # no cuts in the manifest, no population
    manifest = json.loads((model_dir / "manifest.json").read_text())
    manifest["segment_rules"] = {"high_value_cut": 1e9, "low_value_cut": 1e9, "active_cut": 0.0,
                                 "new_tenure_days": 0.0, "new_max_purchases": 0.0}  # fmt: skip
    (model_dir / "manifest.json").write_text(json.dumps(manifest))
    with TestClient(create_app(model_dir, tmp_path / "empty.duckdb", token=None)) as again:
        assert again.get("/v1/customers/solo").json()["segment"] == "low_value"


@pytest.mark.parametrize("name", ["baseline", "btyd"])  # predict / running summaries
def test_touched_customers_are_rescored_together(
    name: str, model_dirs: dict[str, Path], db_path: Path
) -> None:
    model_dir = model_dirs[name]
    events = [_event(i, customer=f"C{i:08d}") for i in range(1, 41)]
    views = [_event(i, customer=f"C{i:08d}", event_type="view") for i in range(41, 50)]
    for event in views:
        event.pop("amount")
    events += views
    app = create_app(model_dir, db_path, token=TOKEN, max_body_bytes=200_000, max_batch=50)
    with TestClient(app) as client:
        assert client.post("/v1/events", json={"events": events}, headers=AUTH).status_code == 200
        service = client.app.state.service  # type: ignore[attr-defined]
        assert service.model.scorer.fast_path == (name == "btyd")
        deadline = time.monotonic() + 20
        while service.metrics.counters["customers_rescored"] < 49 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert service.metrics.counters["customers_rescored"] == 49
        data = service.model.scorer.history.to_data()
        as_of = pd.Timestamp("2024-01-05 10:00")
        forecaster, _ = load_model(model_dir)
        expected = forecaster.predict(data, as_of).set_index("customer_id")
        history = customer_history(data, as_of).set_index("customer_id")
        for i in range(1, 50, 6):
            customer = f"C{i:08d}"
            version, cached = service.model.answers[customer]
            assert version == service.model.scorer.history.version(customer)  # from cache
            body = client.get(f"/v1/customers/{customer}", headers=AUTH).json()
            for column in ("predicted_value", "predicted_purchases", "p_active"):
                assert body[column] == pytest.approx(expected.loc[customer, column], rel=1e-6)
            cached_value = cached[ANSWER_FIELDS.index("predicted_value")]
            assert body["predicted_value"] == pytest.approx(cached_value, rel=1e-12)
            stats = history.loc[customer]
            segment = service.model.rules.label(
                body["predicted_value"], body["p_active"], stats["tenure_days"], stats["purchases"]
            )
            assert body["segment"] == segment


def test_partial_retry_and_time_zones(client: TestClient) -> None:
    """A batch mixing stored and new ids stores only the new ones; zoned times become UTC."""
    assert client.post("/v1/events", json={"events": [_event(1)]}, headers=AUTH).status_code == 200
    mixed = [_event(1), _event(2, timestamp="2024-01-05T12:30:00+02:00")]
    body = client.post("/v1/events", json={"events": mixed}, headers=AUTH).json()
    assert body == {"accepted": 2, "duplicates": 1, "rejected": []}
    con = client.app.state.service.store.connection  # type: ignore[attr-defined]
    rows = con.execute("SELECT event_id, timestamp FROM events_ingested ORDER BY 1").fetchall()
    assert [(r[0], str(r[1])) for r in rows] == [
        ("e1", "2024-01-05 10:00:00"),
        ("e2", "2024-01-05 10:30:00"),
    ]
    last = client.get("/v1/customers/C00000001", headers=AUTH).json()["last_event_at"]
    assert last == "2024-01-05T10:30:00Z"


def test_customer_drivers_on_request(
    client: TestClient, model_dirs: dict[str, Path], db_path: Path, store_data: CustomerData
) -> None:
    customer = str(store_data.transactions["customer_id"].iloc[0])
    refused = client.get(f"/v1/customers/{customer}?explain=3", headers=AUTH)
    assert refused.status_code == 422 and "does not provide explanations" in refused.text
    assert "drivers" not in client.get(f"/v1/customers/{customer}", headers=AUTH).json() or (
        client.get(f"/v1/customers/{customer}", headers=AUTH).json()["drivers"] is None
    )
    app = create_app(model_dirs["btyd"], db_path, token=TOKEN)
    with TestClient(app) as btyd_client:
        body = btyd_client.get(f"/v1/customers/{customer}?explain=2", headers=AUTH).json()
    forecaster, _ = load_model(model_dirs["btyd"])
    expected = forecaster.explain(store_data, store_data.last_timestamp()).loc[customer]
    assert body["base_value"] == pytest.approx(expected["base_value"], rel=1e-9)
    assert len(body["drivers"]) == 2
    strongest = expected.drop("base_value").abs().sort_values(ascending=False).index[:2]
    assert [d["feature"] for d in body["drivers"]] == list(strongest)
    assert expected.sum() == pytest.approx(body["predicted_value"], rel=1e-6)


def test_out_of_memory_is_one_line_and_503(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = client.app.state.service  # type: ignore[attr-defined]

    def exhausted(payload: dict[str, Any]) -> None:
        raise MemoryError

    monkeypatch.setattr(service, "score", exhausted)
    answer = TestClient(client.app, raise_server_exceptions=False).post(
        "/v1/score", json={"transactions": []}, headers=AUTH
    )
    assert answer.status_code == 503
    assert answer.json() == {"detail": "out of memory: the server cannot answer now"}


def test_customer_curve_and_new_customer_on_request(
    client: TestClient, model_dirs: dict[str, Path], db_path: Path, store_data: CustomerData
) -> None:
    customer = str(store_data.transactions["customer_id"].iloc[0])
    refused = client.get(f"/v1/customers/{customer}?horizons=30d", headers=AUTH)
    assert refused.status_code == 422 and "need a BTYD model" in refused.text
    no_bands = client.get(f"/v1/customers/{customer}?intervals=true", headers=AUTH)
    assert no_bands.status_code == 422 and "prediction intervals" in no_bands.text
    assert client.get("/v1/new-customer", headers=AUTH).status_code == 422
    app = create_app(model_dirs["btyd"], db_path, token=TOKEN)
    with TestClient(app) as btyd_client:
        url = f"/v1/customers/{customer}?horizons=1y,30d,90d&discount_rate=0.1&intervals=true"
        body = btyd_client.get(url, headers=AUTH).json()
        fresh = btyd_client.get("/v1/new-customer?horizons=30d,1y", headers=AUTH).json()
        bad = [
            btyd_client.get(f"/v1/customers/{customer}?horizons={h}", headers=AUTH)
            for h in ("30d,30d", "soon", ",".join(["1d"] * 30))
        ]
        rates = [
            btyd_client.get(f"/v1/new-customer?discount_rate={r}", headers=AUTH).status_code
            for r in ("-1", "nan", "inf", "11")
        ]
    forecaster, _ = load_model(model_dirs["btyd"])
    as_of = pd.Timestamp(body["as_of"].rstrip("Z"))
    spans = parse_horizons("30d,90d,1y")
    expected = forecaster.predict_curve(store_data, as_of, spans, discount_rate=0.1).loc[customer]
    assert [p["horizon"] for p in body["curve"]] == ["30d", "90d", "1y"]
    for point in body["curve"]:
        for key in ("purchases", "value", "p_alive", "discounted_value"):
            assert point[key] == pytest.approx(expected[f"{key}_{point['horizon']}"], rel=1e-9)
    assert body["curve"][1]["value"] == pytest.approx(body["predicted_value"], rel=1e-9)
    bands = forecaster.value_intervals(store_data, as_of).loc[customer]
    assert body["value_p10"] == pytest.approx(bands["value_p10"], rel=1e-9)
    assert body["value_p10"] <= body["predicted_value"] <= body["value_p90"]
    table = forecaster.new_customer(parse_horizons("30d,1y"))
    assert [p["value"] for p in fresh["curve"]] == pytest.approx(table["value"].tolist(), rel=1e-12)
    assert all(p["discounted_value"] is None for p in fresh["curve"])
    assert [r.status_code for r in bad] == [422, 422, 422]
    assert rates == [422, 422, 422, 422]
