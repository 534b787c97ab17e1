"""Fixtures of the service tests: a small simulated store and a real fitted model on disk."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ltvcast.data.schemas import CustomerData
from ltvcast.data.store import Store
from ltvcast.data.synthetic import simulate_store
from ltvcast.models import forecaster_class
from ltvcast.scoring.artifacts import save_model
from ltvcast.timeframe import parse_horizon

TOKEN = "test-token-0123456789"
LAUNCH = "import ltvcast.cli.serve; from ltvcast.cli._app import main; main()"


@pytest.fixture(scope="session")
def store_data() -> CustomerData:
    sim = simulate_store(300, days=365, random_state=11)
    return CustomerData(sim.transactions, sim.events, sim.profiles)


@pytest.fixture(scope="session")
def model_dirs(
    tmp_path_factory: pytest.TempPathFactory, store_data: CustomerData
) -> dict[str, Path]:
    """``baseline`` and ``btyd`` fitted on the simulated store, saved with ``save_model``."""
    root = tmp_path_factory.mktemp("models")
    as_of = store_data.last_timestamp()
    out = {}
    for name in ("baseline", "btyd"):
        model = forecaster_class(name)().fit(store_data, as_of, parse_horizon("90d"))
        out[name] = save_model(model, root / name)
    return out


@pytest.fixture()
def db_path(tmp_path: Path, store_data: CustomerData) -> Path:
    path = tmp_path / "store.duckdb"
    with Store(path) as store:
        store.replace(store_data)
    return path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Server:
    """The real ``ltvcast serve`` process on a loopback port."""

    def __init__(self, model_dir: Path, db_path: Path, token_file: Path, log: Path) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "PYTHONWARNINGS": "ignore"}
        env.pop("LTVCAST_API_TOKEN", None)
        args = ["serve", str(model_dir), "--db", str(db_path), "--port", str(self.port),
                "--token-file", str(token_file)]  # fmt: skip
        self._log = log.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-c", LAUNCH, *args], env=env, stdout=self._log, stderr=self._log
        )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"server exited early: {log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        self.stop(signal.SIGKILL)
        raise AssertionError("server did not become healthy in 90 s")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        self.process.send_signal(sig)
        self.process.wait(timeout=30)
        self._log.close()


@pytest.fixture()
def server_files(
    tmp_path: Path, model_dirs: dict[str, Path], db_path: Path
) -> Iterator[dict[str, Path]]:
    token = tmp_path / "token"
    token.write_text(TOKEN + "\n")
    model = Path(shutil.copytree(model_dirs["baseline"], tmp_path / "model"))
    yield {"model": model, "db": db_path, "token": token, "log": tmp_path / "server.log"}
