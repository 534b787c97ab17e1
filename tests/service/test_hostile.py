"""Hostile requests and faults against the real ``ltvcast serve`` process on loopback."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pandas as pd
import pytest

from .conftest import LAUNCH, TOKEN, Server

AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _event(i: int, **fields: Any) -> dict[str, Any]:
    event = {"customer_id": f"h{i}", "timestamp": "2024-01-05T10:00:00Z",
             "event_type": "purchase", "amount": 10.0, "event_id": f"h-{i}"}  # fmt: skip
    return {**event, **fields}


@pytest.fixture()
def server(server_files: dict[str, Path]) -> Iterator[Server]:
    files = server_files
    running = Server(files["model"], files["db"], files["token"], files["log"])
    try:
        yield running
    finally:
        if running.process.poll() is None:
            running.stop()


def test_future_events_are_refused_and_the_clock_stays_behind_wall_time(
    server: Server, server_files: dict[str, Path]
) -> None:
    with httpx.Client(base_url=server.url, headers=AUTH, timeout=30) as client:
        untouched = client.get("/v1/customers/C00000001").json()
        body = {"events": [_event(1, timestamp="9999-12-31T00:00:00Z"),
                           _event(2, timestamp="2030-01-01T00:00:00Z"), _event(3)]}  # fmt: skip
        answer = client.post("/v1/events", json=body).json()
        assert answer["accepted"] == 1 and [r["index"] for r in answer["rejected"]] == [0, 1]
        assert "after the server's clock" in answer["rejected"][1]["reason"]
        clock = pd.Timestamp(client.get("/healthz").json()["clock"]).tz_convert(None)
        assert clock <= pd.Timestamp.now(tz="UTC").tz_localize(None)
        assert client.get("/v1/customers/C00000001").json() == untouched
    server.stop()
    # a future row already in the store (written before the rule) is not learned at start-up
    con = duckdb.connect(str(server_files["db"]))
    con.execute("INSERT INTO transactions BY NAME SELECT 'zz' AS customer_id, "
                "TIMESTAMP '9999-12-31' AS timestamp, 5.0 AS amount")  # fmt: skip
    con.close()
    again = Server(server_files["model"], server_files["db"], server_files["token"],
                   server_files["log"])  # fmt: skip
    try:
        with httpx.Client(base_url=again.url, headers=AUTH, timeout=30) as client:
            # the clock is the latest real event (the accepted one above), not 9999-12-31
            assert client.get("/healthz").json()["clock"] == "2024-01-05T10:00:00Z"
            assert client.get("/v1/customers/zz").status_code == 404
    finally:
        again.stop()


def test_junk_methods_do_not_grow_the_metrics(server: Server) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        before = client.get("/metrics").text
        for i in range(200):
            client.request(f"JUNK{i}", "/v1/events")
        after = client.get("/metrics").text
    assert 'method="other"' in after and "JUNK" not in after
    assert len(after) < len(before) + 5000


def test_an_event_id_reused_with_other_content_is_refused(server: Server) -> None:
    with httpx.Client(base_url=server.url, headers=AUTH, timeout=30) as client:
        assert client.post("/v1/events", json={"events": [_event(5)]}).json()["accepted"] == 1
        retry = client.post("/v1/events", json={"events": [_event(5)]}).json()
        assert (retry["accepted"], retry["duplicates"], retry["rejected"]) == (1, 1, [])
        other = client.post("/v1/events", json={"events": [_event(5, amount=99.0)]}).json()
        assert (
            other["accepted"] == 0
            and "stored already with other content" in (other["rejected"][0]["reason"])
        )
        batch = [_event(6), _event(6), _event(6, amount=1.0)]
        inside = client.post("/v1/events", json={"events": batch}).json()
        assert (inside["accepted"], inside["duplicates"]) == (2, 1)
        assert [r["index"] for r in inside["rejected"]] == [2]
        assert "earlier in this batch" in inside["rejected"][0]["reason"]
        assert client.get("/v1/customers/h6").json()["predicted_purchases"] >= 0


def test_ids_with_a_slash_are_readable(server: Server) -> None:
    with httpx.Client(base_url=server.url, headers=AUTH, timeout=30) as client:
        event = _event(7, customer_id="shop/a%b", event_id="slash")
        assert client.post("/v1/events", json={"events": [event]}).json()["accepted"] == 1
        for path in ("/v1/customers/shop%2Fa%25b", "/v1/customers/shop/a%25b"):
            response = client.get(path)
            assert response.status_code == 200, (path, response.text)
            assert response.json()["customer_id"] == "shop/a%b"


def test_an_oversized_chunked_body_is_413(server: Server) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(20):
            yield b" " * 1_000_000

    with httpx.Client(base_url=server.url, headers=AUTH, timeout=30) as client:
        response = client.post("/v1/events", content=chunks(),
                               headers={"content-type": "application/json"})  # fmt: skip
    assert response.status_code == 413 and "exceeds the limit" in response.json()["detail"]


def test_a_removed_store_is_503_not_an_acknowledgement(
    server: Server, server_files: dict[str, Path]
) -> None:
    db = server_files["db"]
    with httpx.Client(base_url=server.url, headers=AUTH, timeout=30) as client:
        assert client.post("/v1/events", json={"events": [_event(8)]}).status_code == 200
        db.unlink()
        Path(f"{db}.wal").unlink(missing_ok=True)
        response = client.post("/v1/events", json={"events": [_event(9)]})
        assert response.status_code == 503 and "removed or replaced" in response.json()["detail"]
        assert client.get("/healthz").status_code == 503


def _serve(model: Path, db: Path, token: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", LAUNCH, "serve", str(model), "--db", str(db), "--port", "1",
         "--token-file", str(token)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def _refused(run: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert run.returncode == 2, (run.returncode, run.stderr[-2000:])
    assert "Traceback" not in run.stderr
    lines = [line for line in run.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1, run.stderr
    for fragment in fragments:
        assert fragment in lines[0], run.stderr


def test_start_up_refusals_are_one_line_and_leave_the_file(
    server: Server, server_files: dict[str, Path], tmp_path: Path
) -> None:
    files = server_files
    _refused(_serve(files["model"], files["db"], files["token"]), "cannot open the store")
    valid = files["db"].read_bytes()
    broken = {
        "corrupt": b"not a database at all" * 100,
        "truncated": valid[:100],
        "empty": b"",
        "zeros": b"\0" * 8192,
    }
    for name, content in broken.items():
        path = tmp_path / f"{name}.duckdb"
        path.write_bytes(content)
        _refused(_serve(files["model"], path, files["token"]), str(path))
        assert hashlib.sha256(path.read_bytes()).digest() == hashlib.sha256(content).digest()
    fresh = tmp_path / "never.duckdb"
    _refused(_serve(tmp_path / "no-model", fresh, files["token"]), "not a model directory")
    assert not fresh.exists()
    shutil.rmtree(tmp_path / "no-model", ignore_errors=True)


def test_out_of_range_times_and_absurd_amounts_are_4xx(server: Server) -> None:
    with httpx.Client(base_url=server.url, headers=AUTH, timeout=30) as client:
        for stamp in ("1600-01-01T00:00:00Z", "0001-01-01T00:00:00Z"):
            score = client.post("/v1/score", json={"transactions": [{"timestamp": stamp,
                                                                      "amount": 5.0}]})  # fmt: skip
            assert score.status_code == 422, score.text
            posted = client.post("/v1/events", json={"events": [_event(20, timestamp=stamp)]})
            assert posted.status_code == 200 and posted.json()["accepted"] == 0
        huge = client.post("/v1/events", json={"events": [_event(21, amount=1e308)]})
        assert huge.status_code == 200 and huge.json()["accepted"] == 0
        assert "less than or equal" in huge.json()["rejected"][0]["reason"]
        score = client.post("/v1/score", json={"transactions": [
            {"timestamp": "2024-01-01T00:00:00Z", "amount": 1e308}]})  # fmt: skip
        assert score.status_code == 422 and "at most" in score.json()["detail"]
