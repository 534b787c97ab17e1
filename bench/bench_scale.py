"""Cost of whole ltvcast processes by store size, against whole lifetimes jobs.

For 10^4, 10^5 and 10^6 customers (``--full`` adds 10^7) the simulator writes a store in
chunks (Parquet, transactions only, 1% dirty rows); then ``ltvcast train --model btyd``,
``ltvcast predict`` and ``ltvcast forecast --model btyd`` run as fresh processes, and from
:data:`GBDT_FROM` customers ``train --model gbdt`` + ``predict`` too (transactions only,
partitioned, on its default customer sample), each measured whole by GNU time (start-up
included): wall and CPU seconds, the peak resident memory of the process tree, the engine
each run chose by size and customers per second. The slopes of log(wall) and log(CPU)
against log(customers) per run kind are given over the sizes from :data:`SLOPE_FROM` (whose
start-up is a small part of the run), over the largest two and over all sizes, each said
within 1.0 +- 0.15 (linear) or not. At 10^6 the same runs with ``--partitions 0`` (in
memory) show what the partitioned path saves, and a whole lifetimes job (read the same
Parquet, BG/NBD + Gamma-Gamma as bench/lifetimes_reference.py fits them, write the
predictions) is the reference row. With ``--spark`` the same runs with ``--engine spark
--spark-master local[2]`` show the Spark engine's cost on this machine (its JVM started by
each process, as a cluster job's driver would start one). Peak RSS is GNU time's (the largest
process of the tree); "tree RSS" is the sum over the process tree (the JVM and Python
workers included), sampled every 0.2 s. CPU seconds are the larger of GNU time's (the
process and the children it reaped) and the sum over the sampled process tree of each
process's last-seen CPU time: a partitioned gbdt's workers come from a fork server, which the
process never reaps, so GNU time alone misses them.

CDNOW (the issue's small-end target): ``ltvcast forecast`` on ``CDNOW_master.txt`` at the
39-week split, and ``train`` + ``predict``, against one whole lifetimes job on the same file;
median of ``--repeat`` runs each. ltvcast's CLI runs numpy's BLAS single-threaded
(``ltvcast.cli._app.BLAS_THREADS``); the lifetimes job runs as installed, and once more with
the same setting, so that the comparison shows both. Two more rows time the imports alone:
the libraries a forecast cannot do without (:data:`FLOOR`), against ``import lifetimes``,
the floor under any ratio a whole process can reach; CPU ratios are printed beside the wall
ones (on a loaded machine the wall includes waiting for a core).

Prints a markdown snippet (each row as soon as it is measured, so that a stopped run keeps
its rows in the log) and writes it to ``bench/out/scale.md`` (``--out``: another name
there). Timings on a shared machine are noisy: the load average at the start and the end is
printed with them.

With ``--events 200000,1000000`` gbdt runs on stores with events and profiles: under 1M
customers ``forecast`` at the holdout origin in memory (``--partitions 0``) against the
engine's choice by size (partitioned, gbdt on a customer sample), each with the normalized
Gini of its forecast against the simulator's true values; from 1M, ``train`` + ``predict``.

Usage: ``python bench/bench_scale.py [--sizes 10000,100000,1000000] [--full] [--repeat 3]
[--no-lifetimes] [--spark] [--no-cdnow] [--events 200000,1000000] [--out scale.md]``
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq

from protocols import write_section

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
OUT = HERE / "out" / "scale.md"
DATA = Path(os.environ.get("LTVCAST_DATA", REPO.parent / "shared" / "data"))
TIME = "/usr/bin/time"  # GNU time: each process's own peak memory
#: What a CDNOW forecast cannot do without (its floor): pandas, the BTYD special functions
#: and scipy's optimiser; typer and rich (the CLI), pydantic (typer 0.29 coerces every
#: option through it).
FLOOR = "pandas, scipy.special, scipy.optimize, typer, rich.console, pydantic"
CDNOW = ["--time-col", "date", "--amount-col", "dollar_value", "--quantity-col", "number_of_cds"]
HEADER = [
    "| run | engine | wall s | CPU s | peak RSS GiB | tree RSS GiB | customers/s |",
    "|---|---|---:|---:|---:|---:|---:|",
]
#: The lifetimes job: one process, as a lifetimes user would write it (argv: kind, input,
#: output, as-of or "", horizon in days).
LIFETIMES_JOB = """
import sys
import pandas as pd
sys.path.insert(0, {bench!r})
from lifetimes_reference import lifetimes_predict
from ltvcast.data.schemas import CustomerData
from ltvcast.timeframe import parse_horizon
kind, source, out, as_of, days = sys.argv[1:]
if kind == "cdnow":
    raw = pd.read_csv(source, sep=r"\\s+", dtype={{"customer_id": str, "date": str}})
    tx = pd.DataFrame({{"customer_id": raw["customer_id"],
                       "timestamp": pd.to_datetime(raw["date"], format="%Y%m%d"),
                       "amount": raw["dollar_value"].astype(float)}})
else:  # the simulator's raw Parquet: the rows that parse, as a lifetimes user cleans it
    raw = pd.read_parquet(source, columns=["customer_id", "timestamp", "amount"])
    tx = pd.DataFrame({{"customer_id": raw["customer_id"],
                       "timestamp": pd.to_datetime(raw["timestamp"], errors="coerce", utc=True,
                                                   format="mixed").dt.tz_localize(None),
                       "amount": pd.to_numeric(raw["amount"], errors="coerce")}}).dropna()
end = pd.Timestamp(as_of) + pd.Timedelta(days=1) - pd.Timedelta(microseconds=1) if as_of else None
cutoff = tx["timestamp"].max() if end is None else end
lifetimes_predict(CustomerData(tx), cutoff, parse_horizon(days + "d")).to_csv(out, index=False)
"""


@dataclass(frozen=True)
class Run:
    """One whole process: wall and CPU seconds (the larger of GNU time's, for the process
    and the children it reaped, and the sum over its process tree sampled), peak RSS of its
    largest process and of its whole tree (sampled), its engine."""

    wall: float
    cpu: float
    rss_gib: float
    engine: str
    tree_gib: float = 0.0

    def __add__(self, other: Run) -> Run:
        engine = self.engine if self.engine == other.engine else f"{self.engine} / {other.engine}"
        rss, tree = max(self.rss_gib, other.rss_gib), max(self.tree_gib, other.tree_gib)
        return Run(self.wall + other.wall, self.cpu + other.cpu, rss, engine, tree)


def tree_usage(root: int) -> tuple[int, dict[tuple[int, int], float]]:
    """Resident bytes of process ``root`` and all its descendants now, and the CPU seconds
    (user + system) each has used so far, keyed by (pid, start time) (from /proc)."""
    stats: dict[int, list[str]] = {}
    for entry in Path("/proc").iterdir():
        try:
            stats[int(entry.name)] = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (ValueError, OSError):
            continue
    tree, grown = {root}, True
    while grown:
        more = {pid for pid, fields in stats.items() if int(fields[1]) in tree} - tree
        tree |= more
        grown = bool(more)
    pages, cpu, tick = 0, {}, os.sysconf("SC_CLK_TCK")
    for pid in tree & stats.keys():
        fields = stats[pid]  # from the state on: utime, stime at 11, 12; starttime at 19
        cpu[pid, int(fields[19])] = (int(fields[11]) + int(fields[12])) / tick
        try:
            pages += int((Path("/proc") / str(pid) / "statm").read_text().split()[1])
        except (ValueError, OSError, IndexError):
            continue
    return pages * os.sysconf("SC_PAGE_SIZE"), cpu


def sample_tree(
    root: int, stop: threading.Event, peak: list[int], cpu: dict[tuple[int, int], float]
) -> None:
    """Until ``stop``: keep the largest resident bytes of the tree of ``root`` in
    ``peak[0]`` and the last CPU seconds seen of each of its processes in ``cpu``
    (:func:`tree_usage`)."""
    while not stop.wait(0.2):
        rss, seen = tree_usage(root)
        peak[0] = max(peak[0], rss)
        cpu.update(seen)


def run(args: list[str], *, env: dict[str, str] | None = None) -> Run:
    """Run ``args`` as a fresh process under GNU time, this checkout's ltvcast first on the
    path. (``wait4`` here would count this process's memory in the child's peak.)"""
    paths = os.pathsep.join([str(REPO / "src"), str(HERE)])
    environment = {**os.environ, "PYTHONPATH": paths, **(env or {})}
    with tempfile.NamedTemporaryFile("r", suffix=".time") as usage:
        timed = [TIME, "-o", usage.name, "-f", "%e %U %S %M", *args]
        child = subprocess.Popen(
            timed, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        stop, peak, cpu = threading.Event(), [0], dict[tuple[int, int], float]()
        sampler = threading.Thread(target=sample_tree, args=(child.pid, stop, peak, cpu))
        sampler.start()
        stdout, stderr = child.communicate()
        stop.set()
        sampler.join()
        proc = subprocess.CompletedProcess(timed, child.returncode, stdout, stderr)
        figures = usage.read().split()[-4:]
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr)[-2000:]
        raise RuntimeError(f"{' '.join(args[:4])} ... failed ({proc.returncode}):\n{tail}")
    wall, user, system, rss_kib = (float(f) for f in figures)
    engine = next((ln[8:] for ln in proc.stdout.splitlines() if ln.startswith("Engine: ")), "")
    short = next((k for k in ("partitioned", "spark") if engine.startswith(k)), "")
    short = short or ("in memory" if engine else "")
    # A fork server's workers are never reaped by the process: GNU time misses their CPU.
    used = max(user + system, sum(cpu.values()))
    return Run(wall, used, rss_kib / 2**20, short, peak[0] / 2**30)


def median_run(args: list[str], repeat: int, env: dict[str, str] | None = None) -> Run:
    """The run of median wall time among ``repeat``."""
    runs = sorted((run(args, env=env) for _ in range(repeat)), key=lambda r: r.wall)
    return runs[len(runs) // 2]


def ltvcast(*args: str) -> list[str]:
    return [sys.executable, "-m", "ltvcast.cli", *args]


def lifetimes_job(kind: str, source: Path, out: Path, as_of: str, days: int) -> list[str]:
    code = LIFETIMES_JOB.format(bench=str(HERE))
    return [sys.executable, "-c", code, kind, str(source), str(out), as_of, str(days)]


def train_predict(
    folder: Path, model: str, *, extra: tuple[str, ...] = (), tag: str = ""
) -> tuple[Run, Run]:
    """(train, predict) of ``model`` on the store in ``folder`` (outputs named with
    ``tag``)."""
    tx = str(folder / "transactions.parquet")
    saved = str(folder / f"model-{model}{tag}")
    train = run(ltvcast("train", tx, "--model", model, "--horizon", "90d", *extra, "--out", saved))
    out = str(folder / f"p-{model}{tag}.parquet")
    return train, run(ltvcast("predict", saved, tx, *extra, "--out", out))


def forecast_run(folder: Path, *, extra: tuple[str, ...] = (), tag: str = "") -> Run:
    """``forecast --model btyd`` on the store in ``folder``."""
    tx = str(folder / "transactions.parquet")
    out = str(folder / f"f{tag}.parquet")
    return run(ltvcast("forecast", tx, "--model", "btyd", "--horizon", "90d", *extra, "--out", out))


def store_runs(folder: Path, *, extra: tuple[str, ...] = (), tag: str = "") -> tuple[Run, Run]:
    """(train + predict, forecast) of btyd on the store in ``folder``."""
    train, predict = train_predict(folder, "btyd", extra=extra, tag=tag)
    return train + predict, forecast_run(folder, extra=extra, tag=tag)


def slope(points: list[tuple[int, float]]) -> float:
    """Least-squares slope of log(seconds) against log(customers)."""
    xs = [math.log(n) for n, _ in points]
    ys = [math.log(t) for _, t in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    top = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    return top / sum((x - mx) ** 2 for x in xs)


def row(label: str, customers: int | None, r: Run) -> str:
    rate = f"{customers / r.wall:,.0f}" if customers else ""
    figures = f"{r.wall:.2f} | {r.cpu:.2f} | {r.rss_gib:.2f} | {r.tree_gib:.2f}"
    return f"| {label} | {r.engine} | {figures} | {rate} |"


#: Store size (customers) from which the curve adds gbdt, transactions only, train + predict.
GBDT_FROM = 1_000_000
#: Smallest store size the main slope is taken from: below it start-up (about 1 s a
#: process) is most of a run.
SLOPE_FROM = 100_000
#: Linear time: the slope the issue asks for, within this much of 1.0.
LINEAR_WITHIN = 0.15
#: The peak RSS every run must stay under, GiB (8 GB).
RSS_LIMIT_GIB = 8e9 / 2**30


def fitted_slope(points: list[tuple[int, float]]) -> str:
    """The slope of ``points`` and whether it is linear, or a dash for fewer than two."""
    if len(points) < 2:
        return "–"
    value = slope(points)
    return f"{value:.2f} ({'yes' if abs(value - 1) <= LINEAR_WITHIN else 'no'})"


def slope_table(curve: dict[str, list[tuple[int, Run]]]) -> list[str]:
    """Slopes of log(wall) and log(CPU) against log(customers) per run kind: from
    :data:`SLOPE_FROM` customers, over the largest two sizes and over all sizes."""
    lines = [
        f"| run | time | slope from {SLOPE_FROM:,} customers | slope, largest two sizes "
        "| slope, all sizes |",
        "|---|---|---:|---:|---:|",
    ]
    for name, runs in curve.items():
        for measure in ("wall", "CPU"):
            points = [(n, r.wall if measure == "wall" else r.cpu) for n, r in runs]
            large = [(n, t) for n, t in points if n >= SLOPE_FROM]
            cells = [fitted_slope(large), fitted_slope(points[-2:]), fitted_slope(points)]
            lines.append(f"| {name} | {measure} | " + " | ".join(cells) + " |")
    return lines


def sizes_section(sizes: list[int], lifetimes: bool, spark: bool = False) -> list[str]:
    """The cost curve: one store per size, its runs, and the slopes."""
    lines = ["| store | " + HEADER[0][2:], "|---" + HEADER[1]]
    curve: dict[str, list[tuple[int, Run]]] = {
        "btyd `train` + `predict`": [],
        "btyd `forecast`": [],
        "gbdt `train` + `predict`": [],
    }
    notes: list[str] = []
    peak = 0.0

    def add(store: str, label: str, customers: int, measured: Run) -> None:
        nonlocal peak
        peak = max(peak, measured.rss_gib)
        lines.append(f"| {store} " + row(label, customers, measured))
        print(lines[-1], flush=True)  # a stopped run keeps its rows in the log

    for customers in sizes:
        with tempfile.TemporaryDirectory(prefix="ltvcast-scale-") as tmp:
            folder = Path(tmp)
            simulate = (
                "from ltvcast.data.synthetic import write_simulated_store; "
                f"write_simulated_store({str(folder)!r}, {customers}, fmt='parquet', "
                "events=False, dirty_rate=0.01, random_state=0)"
            )
            made = run([sys.executable, "-c", simulate])
            rows = pq.ParquetFile(folder / "transactions.parquet").metadata.num_rows
            store = f"{customers:,} customers, {rows:,} rows"
            add(store, "`simulate` (transactions only)", customers, made)
            train, predict = train_predict(folder, "btyd")
            forecast = forecast_run(folder)
            curve["btyd `train` + `predict`"].append((customers, train + predict))
            curve["btyd `forecast`"].append((customers, forecast))
            add(store, "btyd `train`", customers, train)
            add(store, "btyd `predict`", customers, predict)
            add(store, "btyd `train` + `predict`", customers, train + predict)
            add(store, "btyd `forecast`", customers, forecast)
            if customers >= GBDT_FROM:
                train, predict = train_predict(folder, "gbdt")
                curve["gbdt `train` + `predict`"].append((customers, train + predict))
                add(store, "gbdt `train`", customers, train)
                add(store, "gbdt `predict`", customers, predict)
                add(store, "gbdt `train` + `predict`", customers, train + predict)
            if customers != 1_000_000:
                continue
            memory, memory_forecast = store_runs(folder, extra=("--partitions", "0"))
            add(store, "btyd `train` + `predict`, `--partitions 0`", customers, memory)
            add(store, "btyd `forecast --partitions 0`", customers, memory_forecast)
            if spark:
                on_spark = ("--engine", "spark", "--spark-master", "local[2]")
                both_s, forecast_s = store_runs(folder, extra=on_spark, tag="-spark")
                add(store, "btyd `train` + `predict`, `--engine spark`", customers, both_s)
                add(store, "btyd `forecast --engine spark`", customers, forecast_s)
                both = curve["btyd `train` + `predict`"][-1][1]
                ratios = (both_s.wall / both.wall, forecast_s.wall / forecast.wall)
                notes.append(
                    f"Spark local[2] / local engine wall at {customers:,} customers: train + "
                    f"predict {ratios[0]:.2f}x, forecast {ratios[1]:.2f}x."
                )
            if lifetimes:
                source = folder / "transactions.parquet"
                job = lifetimes_job("parquet", source, folder / "l.csv", "", 90)
                add(store, "lifetimes job", customers, run(job))
    return [
        *lines,
        "",
        f"Largest peak RSS of any process in these runs: {peak:.2f} GiB (limit "
        f"{RSS_LIMIT_GIB:.2f} GiB, 8 GB: {'met' if peak < RSS_LIMIT_GIB else 'NOT met'}).",
        "",
        "Slope of log(time) against log(customers) per run kind (1.0 is linear; in brackets "
        f"whether it is within 1.0 +- {LINEAR_WITHIN}). Over all sizes it is flattened by each "
        "process's start-up (about 1 s, most of a run at 10,000 customers); the engine "
        "changes at 2,000,000 rows (in memory below, partitioned above), between 100,000 "
        "and 1,000,000 customers; CPU time counts the partitioned runs' two workers.",
        "",
        *slope_table({name: runs for name, runs in curve.items() if runs}),
        *(["", *notes] if notes else []),
    ]


def holdout_gini(predictions: Path, truth: Path) -> float:
    """Normalized Gini of a forecast at the truth file's holdout origin (90 days before the
    store's end) against the simulator's true expected values there."""
    import pandas as pd

    from ltvcast.evaluation.metrics import normalized_gini

    table = pd.read_parquet(truth)
    table = table[table["as_of"] == table["as_of"].min()].set_index("customer_id")
    forecast = pd.read_parquet(predictions).set_index("customer_id")["predicted_value"]
    joined = pd.concat([forecast, table["true_value"]], axis=1, join="inner")
    return normalized_gini(joined["true_value"].to_numpy(), joined["predicted_value"].to_numpy())


#: Store size from which the events runs are ``train`` + ``predict`` (partitioned) only.
TRAIN_PREDICT_FROM = 1_000_000


def events_section(sizes: list[int]) -> list[str]:
    """gbdt with events and profiles: under :data:`TRAIN_PREDICT_FROM` customers in memory
    against partitioned on a customer sample (with their holdout Gini), from it ``train`` +
    ``predict`` as the engine chooses by size."""
    header = [
        "| store | run | engine | wall s | CPU s | peak RSS GiB | tree RSS GiB | customers/s "
        "| holdout Gini |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    lines: list[str] = []
    notes: list[str] = []

    def add(*made: str) -> None:
        lines.extend(made)
        print(*made, sep="\n", flush=True)  # a stopped run keeps its rows in the log

    for customers in sizes:
        with tempfile.TemporaryDirectory(prefix="ltvcast-scale-events-") as tmp:
            folder = Path(tmp)
            simulate = (
                "from ltvcast.data.synthetic import write_simulated_store; "
                f"write_simulated_store({str(folder)!r}, {customers}, fmt='parquet', "
                "dirty_rate=0.01, random_state=0)"
            )
            made = run([sys.executable, "-c", simulate])
            tx, events = (str(folder / f"{t}.parquet") for t in ("transactions", "events"))
            inputs = (tx, "--events", events, "--profiles", str(folder / "profiles.parquet"))
            counts = [pq.ParquetFile(p).metadata.num_rows for p in (tx, events)]
            store = f"{customers:,} customers, {counts[0]:,} tx, {counts[1]:,} events"
            add(f"| {store} " + row("`simulate` (with events)", customers, made) + " |")
            if customers >= TRAIN_PREDICT_FROM:
                model = str(folder / "model")
                train = run(ltvcast("train", *inputs, "--model", "gbdt", "--horizon", "90d",
                                    "--out", model))  # fmt: skip
                out = folder / "p.parquet"
                predict = run(ltvcast("predict", model, *inputs, "--out", str(out)))
                both = train + predict
                add(
                    f"| {store} " + row("`train --model gbdt`", customers, train) + " |",
                    f"| {store} " + row("`predict`", customers, predict) + " |",
                    f"| {store} " + row("`train` + `predict`", customers, both) + " |",
                )
                continue
            import pandas as pd

            truth = folder / "truth.parquet"
            origin = pd.read_parquet(truth, columns=["as_of"])["as_of"].min()
            at = ("--as-of", pd.Timestamp(origin).isoformat(), "--horizon", "90d")
            ginis = []
            for label, extra in (("", ()), (", `--partitions 0`", ("--partitions", "0"))):
                out = folder / f"f{len(ginis)}.parquet"
                done = run(ltvcast("forecast", *inputs, "--model", "gbdt", *at, *extra,
                                   "--out", str(out)))  # fmt: skip
                ginis.append(holdout_gini(out, truth))
                what = f"`forecast --model gbdt` at the holdout origin{label}"
                add(f"| {store} " + row(what, customers, done) + f" {ginis[-1]:.4f} |")
            notes.append(
                f"At {customers:,} customers the sampled partitioned gbdt's holdout Gini is "
                f"{(ginis[0] - ginis[1]) / ginis[1] * 100:+.2f}% of the in-memory one's "
                "(target: within 1%)."
            )
    return [
        "### gbdt with events and profiles",
        "",
        "Simulated stores with the simulator's default events (about 55 a customer) and "
        "profiles; the engine is chosen by size (all tables' rows), gbdt partitioned trains on "
        "its default customer sample (`--sample-customers`). Holdout Gini: the forecast at "
        "90 days before the store's end against the simulator's true expected values.",
        "",
        *header,
        *lines,
        "",
        *notes,
    ]


def cdnow_section(repeat: int, lifetimes: bool) -> list[str]:
    """Whole ltvcast processes on CDNOW against one whole lifetimes job."""
    source = DATA / "cdnow" / "CDNOW_master.txt"
    if not source.is_file():
        return [f"CDNOW: {source} not found; skipped."]
    split = ("--as-of", "1997-09-30", "--horizon", "39w")
    with tempfile.TemporaryDirectory(prefix="ltvcast-cdnow-") as tmp:
        folder = Path(tmp)
        model = str(folder / "model")
        forecast = median_run(
            ltvcast("forecast", str(source), *CDNOW, *split, "--model", "btyd",
                    "--out", str(folder / "f.csv")),
            repeat,
        )  # fmt: skip
        train = median_run(
            ltvcast("train", str(source), *CDNOW, *split, "--model", "btyd", "--out", model),
            repeat,
        )
        predict = median_run(
            ltvcast("predict", model, str(source), *CDNOW, "--as-of", "1997-09-30",
                    "--out", str(folder / "p.csv")),
            repeat,
        )  # fmt: skip
        lines = [
            f"### CDNOW, 39-week split (`CDNOW_master.txt`; whole processes, median of {repeat})",
            "",
            *HEADER,
            row("`ltvcast forecast --model btyd`", None, forecast),
            row("`ltvcast train` + `ltvcast predict`", None, train + predict),
        ]
        if not lifetimes:
            return lines
        job = lifetimes_job("cdnow", source, folder / "l.csv", "1997-09-30", 273)
        plain = median_run(job, repeat)
        single = median_run(job, repeat, env={"OPENBLAS_NUM_THREADS": "1"})
        floor = median_run([sys.executable, "-c", f"import {FLOOR}"], repeat)
        theirs = median_run([sys.executable, "-c", "import lifetimes"], repeat)
        both = train.wall + predict.wall
        return [
            *lines,
            row("lifetimes job (read, BG/NBD + Gamma-Gamma, write), as installed", None, plain),
            row("lifetimes job, `OPENBLAS_NUM_THREADS=1`", None, single),
            row(f"imports alone: `python -c 'import {FLOOR}'`", None, floor),
            row("imports alone: `python -c 'import lifetimes'`", None, theirs),
            "",
            f"ltvcast / lifetimes wall (as installed; single-threaded BLAS): forecast "
            f"{forecast.wall / plain.wall:.2f}; {forecast.wall / single.wall:.2f}, train + "
            f"predict {both / plain.wall:.2f}; {both / single.wall:.2f} (target: at most 0.5). "
            f"CPU: forecast {forecast.cpu / plain.cpu:.2f}, train + predict "
            f"{(train.cpu + predict.cpu) / plain.cpu:.2f}. The libraries a forecast cannot do "
            f"without take {floor.wall / plain.wall:.2f} of the lifetimes job to import "
            f"({floor.wall:.2f} s; lifetimes' own import {theirs.wall:.2f} s).",
        ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--full", action="store_true", help="add 10,000,000 customers")
    parser.add_argument("--repeat", type=int, default=3, help="runs per CDNOW measure")
    parser.add_argument("--no-lifetimes", action="store_true", help="skip the lifetimes jobs")
    parser.add_argument(
        "--spark", action="store_true", help="at 1,000,000 customers, also --engine spark"
    )
    parser.add_argument("--no-cdnow", action="store_true", help="skip the CDNOW section")
    parser.add_argument("--out", default=OUT.name, help="file name of the markdown in bench/out/")
    parser.add_argument(
        "--events",
        default="",
        help="store sizes of the gbdt runs with events and profiles, e.g. 200000,1000000 "
        "(from 1M: train + predict; below: in memory against partitioned)",
    )
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s] + [10_000_000] * args.full
    events = [int(s) for s in args.events.split(",") if s]
    lines = [
        "## Scale: whole processes by store size"
        + (f", up to {max(sizes):,} customers" if args.full else ""),
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}; load average {os.getloadavg()[0]:.2f} at the start. "
        "Each run is a fresh process timed whole by GNU time; peak RSS is the largest of its "
        "processes (a partitioned run's workers included). Command: `python "
        f"bench/bench_scale.py {' '.join(sys.argv[1:])}`.",
        "",
        *(sizes_section(sizes, not args.no_lifetimes, args.spark) if sizes else []),
        "",
        *(events_section(events) if events else []),
        "",
        *([] if args.no_cdnow else cdnow_section(args.repeat, not args.no_lifetimes)),
        "",
        f"Load average at the end: {os.getloadavg()[0]:.2f}.",
    ]
    text = "\n".join(lines) + "\n"
    write_section(text, OUT.with_name(args.out))


if __name__ == "__main__":
    main()
