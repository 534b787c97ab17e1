"""``ltvcast serve``: option checks in-process, and the real server process killed with
SIGKILL mid-stream, restarted, and checked to hold every acknowledged event exactly once."""

from __future__ import annotations

import shutil
import signal
import threading
import time
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pytest
import uvicorn

import ltvcast.cli.serve  # noqa: F401  (registers the command)
from ltvcast.cli._app import run_app

from .conftest import TOKEN, Server

AUTH = {"Authorization": f"Bearer {TOKEN}"}


def test_serve_needs_a_token_or_insecure(
    model_dirs: dict[str, Path], db_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    monkeypatch.delenv("LTVCAST_API_TOKEN", raising=False)
    model = str(model_dirs["baseline"])
    assert run_app(["serve", model, "--db", str(db_path)]) == 2
    assert "no API token" in capsys.readouterr().err
    empty = tmp_path / "token"
    empty.write_text("\n")
    assert run_app(["serve", model, "--db", str(db_path), "--token-file", str(empty)]) == 2
    assert "the file is empty" in capsys.readouterr().err
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.append(kw))
    assert run_app(["serve", model, "--db", str(db_path), "--insecure"]) == 0
    assert "WITHOUT authentication" in capsys.readouterr().err
    assert calls[-1]["host"] == "127.0.0.1" and calls[-1]["port"] == 8000
    monkeypatch.setenv("LTVCAST_API_TOKEN", TOKEN)
    assert run_app(["serve", model, "--db", str(db_path), "--port", "9001"]) == 0
    assert "WITHOUT" not in capsys.readouterr().err and calls[-1]["port"] == 9001


def _batch(start: int, size: int) -> dict[str, Any]:
    return {
        "events": [
            {
                "customer_id": f"k{i}",
                "timestamp": "2024-01-05T10:00:00Z",
                "event_type": "purchase",
                "amount": float(i),
                "event_id": f"kill-{i}",
            }
            for i in range(start, start + size)
        ]
    }


@pytest.mark.slow
def test_sigkill_loses_no_acknowledged_event(
    server_files: dict[str, Path], model_dirs: dict[str, Path]
) -> None:
    files = server_files
    server = Server(files["model"], files["db"], files["token"], files["log"])
    acked: list[int] = []
    stop = threading.Event()

    def send() -> None:
        with httpx.Client(base_url=server.url, headers=AUTH, timeout=10) as client:
            start = 0
            while not stop.is_set():
                try:
                    response = client.post("/v1/events", json=_batch(start, 25))
                except httpx.HTTPError:
                    return  # the server died mid-request: those events were never acknowledged
                assert response.status_code == 200, response.text
                assert response.json()["accepted"] == 25
                acked.extend(range(start, start + 25))
                start += 25

    sender = threading.Thread(target=send)
    sender.start()
    deadline = time.monotonic() + 60
    while len(acked) < 500 and time.monotonic() < deadline:
        time.sleep(0.01)
    server.stop(signal.SIGKILL)  # while the sender is still posting
    stop.set()
    sender.join(timeout=30)
    assert len(acked) >= 500

    restarted = Server(files["model"], files["db"], files["token"], files["log"])
    try:
        with httpx.Client(base_url=restarted.url, headers=AUTH, timeout=30) as client:
            last = acked[-1]
            body = client.get(f"/v1/customers/k{last}").json()
            assert body["last_event_at"] == "2024-01-05T10:00:00Z"  # state rebuilt from the store
            retry = client.post("/v1/events", json=_batch(acked[0], len(acked))).json()
            assert retry["duplicates"] == len(acked)  # idempotent across the crash
            # SIGHUP swaps in the model now in the directory
            shutil.rmtree(files["model"])
            shutil.copytree(model_dirs["btyd"], files["model"])
            restarted.process.send_signal(signal.SIGHUP)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                if client.get("/healthz").json()["model_version"].startswith("btyd-"):
                    break
                time.sleep(0.2)
            assert client.get(f"/v1/customers/k{last}").json()["model_version"].startswith("btyd-")
    finally:
        restarted.stop()

    con = duckdb.connect(str(files["db"]), read_only=True)
    try:
        logged = con.execute(
            "SELECT event_id FROM events_ingested WHERE event_id LIKE 'kill-%'"
        ).fetchall()
        stored = {int(r[0].removeprefix("kill-")) for r in logged}
        tx = con.execute(
            "SELECT customer_id, count(*) FROM transactions WHERE customer_id LIKE 'k%' "
            "GROUP BY customer_id"
        ).fetchall()
    finally:
        con.close()
    counts = {int(c.removeprefix("k")): n for c, n in tx}
    assert set(acked) <= stored
    assert all(counts[i] == 1 for i in acked)  # every acknowledged event, exactly once
    assert set(counts) == stored  # the log and the transactions agree
