"""Load benchmark of ``ltvcast serve`` on loopback (bounded in requests and time).

Builds a simulated store (default 100,000 customers), trains a model on it, starts the real
server process on a free 127.0.0.1 port and measures:

- ``GET /v1/customers/{id}`` at a fixed 200 requests/s (open loop), with the forecasts cached
  from start-up and again after ingestion moved the stream clock (each forecast recomputed);
- ``POST /v1/score`` (the founding paper's example customer), back to back;
- event ingestion in batches of 1,000 (``POST /v1/events``, bodies JSON-encoded before the
  clock starts), back to back;
- ``GET`` at the same rate while another client ingests batches of 1,000 back to back (the
  mixed-load row: its name gives the events/s reached while the GETs ran);
- the delay from an event's acknowledgement until ``GET`` returns a forecast that reflects it.

Prints a markdown snippet and writes it to ``bench/out/service.md``.

``--scale`` measures the service at scale instead: a transactions-only store of about
1,000,000 customers (``--scale-customers`` simulated over a year; not every simulated
customer buys), a btyd model, and ``ltvcast serve`` on it: start-up seconds (until
``/healthz`` answers), the server's peak resident memory (``VmHWM``), and p50/p99 of
``GET /v1/customers/{id}`` (uniformly drawn customers, so nearly every read is the first
for its customer) and of ``POST /v1/events`` batches, against the targets (start-up under
60 s, memory under 4 GB). It writes ``bench/out/service_scale.md``.

Usage: ``python bench/bench_service.py [--customers 100000] [--model btyd] [--scale]``
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd

from ltvcast.data.schemas import AMOUNT, CUSTOMER_ID, TIMESTAMP, CustomerData
from ltvcast.data.store import Store
from ltvcast.data.synthetic import simulate_store, write_simulated_store
from ltvcast.models import forecaster_class
from ltvcast.scoring.artifacts import save_model
from ltvcast.timeframe import parse_horizon

from protocols import write_section

OUT = Path(__file__).resolve().parent / "out" / "service.md"
SCALE_OUT = OUT.with_name("service_scale.md")
#: Targets of the scale run (issue 12): start-up seconds and peak resident GiB of the server.
SCALE_STARTUP_S = 60.0
SCALE_PEAK_GIB = 4.0
#: The founding paper's example customer (the README's score request).
PAPER_REQUEST = Path(__file__).resolve().parents[1] / "docs" / "examples" / "score_request.json"
TOKEN = "bench-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
JSON = {"content-type": "application/json"}
LAUNCH = "import ltvcast.cli.serve; from ltvcast.cli._app import main; main()"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=101_000)
    parser.add_argument("--model", default="btyd")
    parser.add_argument("--rate", type=float, default=200.0, help="GET requests per second")
    parser.add_argument("--get-seconds", type=float, default=10.0)
    parser.add_argument("--score-requests", type=int, default=300)
    parser.add_argument("--batches", type=int, default=30, help="ingestion batches of 1,000")
    parser.add_argument("--delay-trials", type=int, default=50)
    parser.add_argument(
        "--mixed-batches", type=int, default=400, help="most batches of the mixed-load row"
    )
    parser.add_argument("--scale", action="store_true", help="the 1M-customer run instead")
    parser.add_argument(
        "--scale-customers", type=int, default=1_400_000, help="customers simulated by --scale"
    )
    args = parser.parse_args()
    if args.scale:
        scale(args)
        return

    work = Path(tempfile.mkdtemp(prefix="ltvcast-bench-"))
    load_start = os.getloadavg()[0]
    rows: list[tuple[str, str]] = []
    t0 = time.perf_counter()
    sim = simulate_store(args.customers, days=365, random_state=0)
    data = CustomerData(sim.transactions, sim.events, sim.profiles)
    setup = time.perf_counter() - t0
    as_of = data.last_timestamp()
    t0 = time.perf_counter()
    model = forecaster_class(args.model)().fit(data, as_of, parse_horizon("90d"))
    fit_s = time.perf_counter() - t0
    save_model(model, work / "model")
    with Store(work / "store.duckdb") as store:
        store.replace(data)
    assert data.events is not None
    print(
        f"store: {args.customers:,} customers, {len(data.transactions):,} transactions, "
        f"{len(data.events):,} events (simulated in {setup:.1f} s); {args.model} fit {fit_s:.1f} s",
        flush=True,
    )
    (work / "token").write_text(TOKEN)
    t0 = time.perf_counter()
    server = _start(work)
    startup = time.perf_counter() - t0
    try:
        with httpx.Client(base_url=server[1], headers=AUTH, timeout=30) as client:
            health = client.get("/healthz").json()
            customers = np.array(data.customers().tolist())
            rng = np.random.default_rng(0)
            print(f"server up in {startup:.1f} s: {health}", flush=True)
            fill = _wait_filled(client)
            pid = server[0].pid
            cpu = _cpu_seconds(pid)
            warm = _paced_gets(server[1], customers, rng, args.rate, args.get_seconds)
            cpu = _add(
                rows, f"GET /v1/customers/{{id}} at {args.rate:.0f}/s, cached", warm, pid, cpu
            )
            score = _sequential(
                lambda: client.post("/v1/score", json=json.loads(PAPER_REQUEST.read_text())),
                args.score_requests,
            )
            cpu = _add(rows, "POST /v1/score (paper example)", score, pid, cpu)
            payloads = _payloads(customers, rng, as_of, args.batches, "bench")
            ingest, events_per_s = _ingest(client, payloads)
            cpu = _add(rows, "POST /v1/events, batches of 1,000", ingest, pid, cpu)
            cold = _paced_gets(server[1], customers, rng, args.rate, args.get_seconds)
            name = f"GET /v1/customers/{{id}} at {args.rate:.0f}/s, after ingestion"
            cpu = _add(rows, name, cold, pid, cpu)
            later = as_of + pd.Timedelta(seconds=args.batches * 1000)
            mixed_payloads = _payloads(customers, rng, later, args.mixed_batches, "mixed")
            mixed, mixed_rate = _mixed(
                server[1], customers, rng, args.rate, args.get_seconds, mixed_payloads
            )
            name = (
                f"GET /v1/customers/{{id}} at {args.rate:.0f}/s while ingesting "
                f"{mixed_rate:,.0f} events/s"
            )
            cpu = _add(rows, name, mixed, pid, cpu)
            delays = _reflect_delay(client, customers, rng, args.delay_trials)
            cpu = _add(rows, "event ack -> forecast reflects it (POST + GETs)", delays, pid, cpu)
            server_side = _server_side(client.get("/metrics").text)
    finally:
        server[0].send_signal(signal.SIGTERM)
        server[0].wait(timeout=60)
    n_known = health["customers"]
    rows.append(("(server-side time of all GETs, from /metrics)", server_side))
    load = (load_start, os.getloadavg()[0])
    text = _markdown(args, rows, events_per_s, (startup, fill), n_known, len(data.events), load)
    write_section(text, OUT)
    print(f"written {OUT}")


def scale(args: argparse.Namespace) -> None:
    """The ``--scale`` run (see the module docstring)."""
    work = Path(tempfile.mkdtemp(prefix="ltvcast-bench-scale-"))
    load = os.getloadavg()
    t0 = time.perf_counter()
    write_simulated_store(work, args.scale_customers, fmt="parquet", days=365, events=False,
                          random_state=0)  # fmt: skip
    tx = pd.read_parquet(work / "transactions.parquet", columns=[CUSTOMER_ID, TIMESTAMP, AMOUNT])
    data = CustomerData(tx, None, None)
    as_of = data.last_timestamp()
    model = forecaster_class("btyd")().fit(data, as_of, parse_horizon("90d"))
    save_model(model, work / "model")
    with Store(work / "store.duckdb") as store:
        store.replace(data)
    customers = np.array(data.customers().tolist())
    del data, tx, model
    print(f"scale store: {len(customers):,} customers (built in {time.perf_counter() - t0:.0f} s)",
          flush=True)  # fmt: skip
    (work / "token").write_text(TOKEN)
    t0 = time.perf_counter()
    proc, url = _start(work)
    startup = time.perf_counter() - t0
    started_gib = _resident_gib(proc.pid, "VmRSS")
    rng = np.random.default_rng(0)
    rows: list[tuple[str, str]] = []
    get = f"GET /v1/customers/{{id}} at {args.rate:.0f}/s"
    try:
        with httpx.Client(base_url=url, headers=AUTH, timeout=60) as client:
            served = client.get("/healthz").json()["customers"]
            began = time.perf_counter()
            cpu = _cpu_seconds(proc.pid)
            during = _paced_gets(url, customers, rng, args.rate, args.get_seconds)
            name = f"{get}, right after start-up (first reads, the fill running)"
            _add(rows, name, during, proc.pid, cpu)
            filled = _wait_filled(client) + time.perf_counter() - began
            cpu = _cpu_seconds(proc.pid)
            gets = _paced_gets(url, customers, rng, args.rate, args.get_seconds)
            cpu = _add(rows, f"{get}, filled", gets, proc.pid, cpu)
            payloads = _payloads(customers, rng, as_of, args.batches, "scale")
            posts, events_per_s = _ingest(client, payloads)
            name = f"POST /v1/events, batches of 1,000 ({events_per_s:,.0f} events/s)"
            cpu = _add(rows, name, posts, proc.pid, cpu)
            after = _paced_gets(url, customers, rng, args.rate, args.get_seconds)
            _add(rows, f"{get}, after ingestion", after, proc.pid, cpu)
            rows.append(("(server-side time of all GETs, from /metrics)",
                         _server_side(client.get("/metrics").text)))  # fmt: skip
        peak = _resident_gib(proc.pid, "VmHWM")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        shutil.rmtree(work, ignore_errors=True)  # the 1M store: a few hundred MB
    verdict = {True: "PASS", False: "FAIL"}
    lines = [
        f"### Service at scale ({served:,} customers, transactions only, model `btyd`, "
        f"{os.cpu_count()} CPUs)",
        "",
        "| measurement | value | target | |",
        "|---|---:|---:|---|",
        f"| start-up until /healthz answers | {startup:.1f} s | < {SCALE_STARTUP_S:.0f} s | "
        f"{verdict[startup < SCALE_STARTUP_S]} |",
        f"| server peak resident memory (VmHWM) | {peak:.2f} GiB | < {SCALE_PEAK_GIB:.0f} GiB | "
        f"{verdict[peak < SCALE_PEAK_GIB]} |",
        f"| server resident memory after start-up | {started_gib:.2f} GiB | | |",
        f"| everyone's forecast filled in the background, after start-up | {filled:.1f} s | | |",
        "",
        "| measurement | requests | p50 ms | p99 ms | max ms | serial req/s | server CPU ms/req |",
        "|---|---:|---:|---:|---:|---:|---:|",
        *(f"| {name} | {cells} |" for name, cells in rows),
        "",
        f"- Command: `python bench/bench_service.py --scale` ({args.scale_customers:,} simulated "
        "customers over 365 days; those with a transaction are the store's customers).",
        "- Start-up reads per-customer running aggregates from DuckDB (no row kept in memory, "
        "nobody scored) and indexes the store on `customer_id` (once per file); forecasts are "
        "then filled into numpy columns in the background. A read before its customer is "
        "filled scores that customer alone (milliseconds: queueing at this rate while the fill "
        "runs), after that a read is a column lookup. Server CPU ms/req (from /proc) is what a "
        "request costs whatever the load; latencies include queueing behind the fill, the "
        "background rescoring of ingested customers and other processes on the machine.",
        f"- Load average during the run: {load[0]:.1f} -> {os.getloadavg()[0]:.1f} (other "
        "processes share the CPUs).",
        "",
    ]
    write_section("\n".join(lines), SCALE_OUT)


def _wait_filled(client: httpx.Client) -> float:
    """Seconds until the server has filled everyone's forecast (its ``forecasts_pending``
    gauge is 0)."""
    began = time.perf_counter()
    while "ltvcast_forecasts_pending 0" not in client.get("/metrics").text:
        time.sleep(0.2)
    return time.perf_counter() - began


def _resident_gib(pid: int, field: str) -> float:
    """``VmRSS`` (now) or ``VmHWM`` (peak) of a process, in GiB (Linux ``/proc``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 2**20
    raise SystemExit(f"no {field} in /proc/{pid}/status")


def _start(work: Path) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    args = ["serve", str(work / "model"), "--db", str(work / "store.duckdb"),
            "--port", str(port), "--token-file", str(work / "token")]  # fmt: skip
    log = (work / "server.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-c", LAUNCH, *args], stdout=log, stderr=log)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited: {(work / 'server.log').read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.5)
    proc.kill()
    raise SystemExit("server did not start within 600 s")


def _paced_gets(
    url: str, customers: np.ndarray, rng: np.random.Generator, rate: float, seconds: float
) -> np.ndarray:
    """Open-loop GETs at ``rate``/s for ``seconds``; latency from the scheduled send time.

    Each client thread opens its connection (one warm-up GET) before the schedule starts:
    creating an HTTP client takes tens of milliseconds, which would otherwise show up as
    the first requests' latency. The client's heap is frozen first for the same reason: a
    full collection of this process (pandas, the simulated store) pauses every client
    thread for up to 100 ms, and the requests queued behind it would count as server
    latency.
    """
    gc.collect()
    gc.freeze()
    n = int(rate * seconds)
    picks = rng.choice(customers, n)
    schedule = np.arange(n) / rate
    latencies = np.full(n, np.nan)
    workers = 4
    clients = [httpx.Client(base_url=url, headers=AUTH, timeout=30) for _ in range(workers)]
    for client in clients:
        assert client.get(f"/v1/customers/{picks[0]}").status_code == 200

    start = time.perf_counter()
    stop_at = start + 3 * seconds + 10  # bounded: requests not sent by then are dropped

    def run(worker: int) -> None:
        client = clients[worker]
        for i in range(worker, n, workers):
            if time.perf_counter() > stop_at:
                return
            wait = start + schedule[i] - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            response = client.get(f"/v1/customers/{picks[i]}")
            assert response.status_code == 200, response.text
            latencies[i] = time.perf_counter() - (start + schedule[i])

    threads = [threading.Thread(target=run, args=(w,)) for w in range(workers)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        for client in clients:
            client.close()
    return latencies


def _sequential(call: Any, n: int) -> np.ndarray:
    latencies = np.empty(n)
    for i in range(n):
        start = time.perf_counter()
        response = call()
        assert response.status_code == 200, response.text
        latencies[i] = time.perf_counter() - start
    return latencies


def _payloads(
    customers: np.ndarray, rng: np.random.Generator, as_of: pd.Timestamp, batches: int, tag: str
) -> list[bytes]:
    """JSON bodies of ``batches`` batches of 1,000 events (encoded before any clock starts)."""
    payloads = []
    for b in range(batches):
        who = rng.choice(customers, 1000)
        kinds = rng.choice(["view", "click", "cart", "purchase"], 1000, p=[0.6, 0.2, 0.1, 0.1])
        stamps = as_of + pd.to_timedelta(b * 1000 + np.arange(1000), unit="s")
        events = []
        for i in range(1000):
            event: dict[str, Any] = {"customer_id": str(who[i]), "timestamp": stamps[i].isoformat(),
                     "event_type": str(kinds[i]), "event_id": f"{tag}-{b}-{i}"}  # fmt: skip
            if kinds[i] == "purchase":
                event["amount"] = float(round(rng.gamma(2.0, 20.0), 2))
            events.append(event)
        payloads.append(json.dumps({"events": events}).encode())
    return payloads


def _ingest(client: httpx.Client, payloads: list[bytes]) -> tuple[np.ndarray, float]:
    """Post the batches back to back: latency of each and events/s over all."""
    latencies = np.empty(len(payloads))
    start = time.perf_counter()
    for b, payload in enumerate(payloads):
        t0 = time.perf_counter()
        response = client.post("/v1/events", content=payload, headers=JSON)
        assert response.status_code == 200 and response.json()["accepted"] == 1000, response.text
        latencies[b] = time.perf_counter() - t0
    return latencies, len(payloads) * 1000 / (time.perf_counter() - start)


def _mixed(
    url: str,
    customers: np.ndarray,
    rng: np.random.Generator,
    rate: float,
    seconds: float,
    payloads: list[bytes],
) -> tuple[np.ndarray, float]:
    """Paced GETs while another client ingests batches back to back: GET latency from the
    scheduled send, and the events/s ingested while the GETs ran."""
    done = threading.Event()
    sent: list[float] = []

    def ingest() -> None:
        with httpx.Client(base_url=url, headers=AUTH, timeout=60) as client:
            for payload in payloads:
                if done.is_set():
                    return
                response = client.post("/v1/events", content=payload, headers=JSON)
                assert response.status_code == 200, response.text
                sent.append(time.perf_counter())

    writer = threading.Thread(target=ingest)
    start = time.perf_counter()
    writer.start()
    latencies = _paced_gets(url, customers, rng, rate, seconds)
    end = time.perf_counter()
    done.set()
    writer.join()
    during = sum(1 for t in sent if t <= end)
    return latencies, during * 1000 / (end - start)


def _reflect_delay(
    client: httpx.Client, customers: np.ndarray, rng: np.random.Generator, trials: int
) -> np.ndarray:
    """Seconds from a purchase's 2xx to a GET that shows it (``last_event_at``) and a changed
    forecast."""
    delays = np.empty(trials)
    clock = pd.Timestamp(client.get("/healthz").json()["clock"])
    for k, customer in enumerate(rng.choice(customers, trials, replace=False)):
        before = client.get(f"/v1/customers/{customer}").json()
        stamp = clock + pd.Timedelta(seconds=k + 1)
        event = {"customer_id": str(customer), "timestamp": stamp.isoformat(),
                 "event_type": "purchase", "amount": 50.0, "event_id": f"delay-{k}"}  # fmt: skip
        assert client.post("/v1/events", json={"events": [event]}).status_code == 200
        acked = time.perf_counter()
        while True:
            after = client.get(f"/v1/customers/{customer}").json()
            if pd.Timestamp(after["last_event_at"]) == stamp and after != before:
                break
        delays[k] = time.perf_counter() - acked
    return delays


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _add(
    rows: list[tuple[str, str]], name: str, seconds: np.ndarray, pid: int, cpu_before: float
) -> float:
    """Append a table row with the server's CPU milliseconds per request; return CPU now."""
    cpu = _cpu_seconds(pid)
    sent = int(np.sum(~np.isnan(seconds)))
    name_cells = _row(name, seconds)
    rows.append((name_cells[0], f"{name_cells[1]} | {(cpu - cpu_before) * 1000 / sent:.1f}"))
    return cpu


def _server_side(metrics: str) -> str:
    """p50/p99 upper bucket bounds of the GET route's server-side latency histogram."""
    route = 'method="GET",route="/v1/customers/{customer_id}"'
    bounds, counts = [], []
    for line in metrics.splitlines():
        if line.startswith(f"ltvcast_http_request_duration_seconds_bucket{{{route}"):
            le = line.split('le="')[1].split('"')[0]
            bounds.append(float("inf") if le == "+Inf" else float(le) * 1000)
            counts.append(int(line.rsplit(" ", 1)[1]))
    total = counts[-1]
    p50, p99 = (next(b for b, c in zip(bounds, counts, strict=True) if c >= q * total)
                for q in (0.5, 0.99))  # fmt: skip
    return f"{total:,} | <= {p50:g} | <= {p99:g} | | |"


def _row(name: str, seconds: np.ndarray) -> tuple[str, str]:
    ms = seconds[~np.isnan(seconds)] * 1000.0
    throughput = len(ms) / np.nansum(seconds)
    return name, (
        f"{len(ms):,} | {np.nanpercentile(ms, 50):.1f} | {np.nanpercentile(ms, 99):.1f} | "
        f"{np.nanmax(ms):.1f} | {throughput:,.0f}"
    )


def _markdown(
    args: argparse.Namespace,
    rows: list[tuple[str, str]],
    events_per_s: float,
    startup: tuple[float, float],
    customers: int,
    n_events: int,
    load: tuple[float, float],
) -> str:
    lines = [
        f"### Service on loopback ({customers:,} customers, {n_events:,} stored events, "
        f"model `{args.model}`, {os.cpu_count()} CPUs, client and server on the same machine)",
        "",
        "| measurement | requests | p50 ms | p99 ms | max ms | serial req/s | server CPU ms/req |",
        "|---|---:|---:|---:|---:|---:|---:|",
        *(f"| {name} | {cells} |" for name, cells in rows),
        "",
        f"- Ingestion: **{events_per_s:,.0f} events/s** in batches of 1,000 (durably committed "
        "to DuckDB before each answer).",
        f"- Server start-up (load the model, read every customer's running aggregates from the "
        f"store; nobody scored): {startup[0]:.1f} s; everyone's forecast then filled in the "
        f"background in {startup[1]:.1f} s more, before the GETs start.",
        "- GET latency is measured from the scheduled send time (open loop, 4 client threads); "
        "when the server cannot keep the pace, queueing shows up in it. The client threads "
        "connect (one warm-up GET) and the client's heap is frozen before the schedule starts, "
        "and ingestion bodies are JSON-encoded before the clock: client start-up, client GC "
        "pauses and client-side encoding are not counted as server time.",
        "- Server CPU ms/req (from /proc) is what a request costs the server whatever the load; "
        "on an otherwise idle machine the server's capacity is about 1000 / that per core "
        "(one Python process: one core for the GIL-bound work).",
        f"- Load average during the run: {load[0]:.1f} -> {load[1]:.1f} (other processes share "
        "the CPUs).",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
