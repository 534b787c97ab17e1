"""Cost of whole ltvcast processes by store size, against whole lifetimes jobs.

For 10^4, 10^5 and 10^6 customers (``--full`` adds 10^7) the simulator writes a store in
chunks (Parquet, transactions only, 1% dirty rows); then ``ltvcast train --model btyd`` +
``ltvcast predict`` and ``ltvcast forecast --model btyd`` run as fresh processes, each
measured whole (start-up included): wall and CPU seconds, and the peak resident memory of
the process tree (``wait4``), the engine each run chose by size, customers per second, and
the slope of log(wall) against log(customers). At 10^6 the same runs with ``--partitions 0``
(in memory) show what the partitioned path saves, and a whole lifetimes job (read the same
Parquet, BG/NBD + Gamma-Gamma as bench/lifetimes_reference.py fits them, write the
predictions) is the reference row.

CDNOW (the issue's small-end target): ``ltvcast forecast`` on ``CDNOW_master.txt`` at the
39-week split, and ``train`` + ``predict``, against one whole lifetimes job on the same file;
median of ``--repeat`` runs each.

Prints a markdown snippet and writes it to ``bench/out/scale.md``. Timings on a shared
machine are noisy: the load average at the start and the end is printed with them.

Usage: ``python bench/bench_scale.py [--sizes 10000,100000,1000000] [--full] [--repeat 3]
[--no-lifetimes]``
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
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
OUT = HERE / "out" / "scale.md"
DATA = Path(os.environ.get("LTVCAST_DATA", REPO.parent / "shared" / "data"))
CDNOW = ["--time-col", "date", "--amount-col", "dollar_value", "--quantity-col", "number_of_cds"]
#: The lifetimes job: one process, as a lifetimes user would write it (argv: kind, input,
#: output, as-of or "", horizon in days).
LIFETIMES_JOB = """
import sys, warnings
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
else:  # the simulator's raw Parquet: what parses, as lifetimes users clean it
    raw = pd.read_parquet(source, columns=["customer_id", "timestamp", "amount"])
    tx = pd.DataFrame({{"customer_id": raw["customer_id"],
                       "timestamp": pd.to_datetime(raw["timestamp"], errors="coerce", utc=True,
                                                   format="mixed").dt.tz_localize(None),
                       "amount": pd.to_numeric(raw["amount"], errors="coerce")}}).dropna()
cutoff = pd.Timestamp(as_of) + pd.Timedelta(days=1) - pd.Timedelta(microseconds=1) if as_of \\
    else tx["timestamp"].max()
lifetimes_predict(CustomerData(tx), cutoff, parse_horizon(days + "d")).to_csv(out, index=False)
"""


@dataclass(frozen=True)
class Run:
    """One whole process: wall and CPU seconds, peak RSS of its tree, what it printed."""

    wall: float
    cpu: float
    rss_gib: float
    engine: str

    def __add__(self, other: Run) -> Run:
        engine = self.engine if self.engine == other.engine else f"{self.engine} / {other.engine}"
        rss = max(self.rss_gib, other.rss_gib)
        return Run(self.wall + other.wall, self.cpu + other.cpu, rss, engine)


def run(args: list[str], timeout: float = 3600) -> Run:
    """Run ``args`` as a fresh process (this checkout's ltvcast first on the path)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(HERE)])}
    start = time.perf_counter()
    proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert proc.stdout is not None
    output = proc.stdout.read().decode(errors="replace")
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0 or wall > timeout:
        raise RuntimeError(f"{' '.join(args)} failed ({proc.returncode}):\n{output[-2000:]}")
    engine = next((line[8:] for line in output.splitlines() if line.startswith("Engine: ")), "")
    short = "partitioned" if engine.startswith("partitioned") else "in memory" if engine else ""
    return Run(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 2**20, short)


def ltvcast(*args: str) -> list[str]:
    return [sys.executable, "-m", "ltvcast.cli", *args]


def lifetimes_job(kind: str, source: Path, out: Path, as_of: str, days: int) -> list[str]:
    code = LIFETIMES_JOB.format(bench=str(HERE))
    return [sys.executable, "-c", code, kind, str(source), str(out), as_of, str(days)]


def median_run(args: list[str], repeat: int) -> Run:
    runs = [run(args) for _ in range(repeat)]
    middle = sorted(runs, key=lambda r: r.wall)[len(runs) // 2]
    return Run(statistics.median(r.wall for r in runs), middle.cpu, middle.rss_gib, middle.engine)


def store_runs(customers: int, folder: Path, *, extra: tuple[str, ...] = ()) -> tuple[Run, Run]:
    """(train + predict, forecast) of btyd on the store in ``folder``."""
    tx = str(folder / "transactions.parquet")
    model = folder / "model"
    common = ("--horizon", "90d", *extra)
    train = run(ltvcast("train", tx, "--model", "btyd", *common, "--out", str(model)))
    predict = run(ltvcast("predict", str(model), tx, *extra, "--out", str(folder / "p.parquet")))
    forecast = run(
        ltvcast("forecast", tx, "--model", "btyd", *common, "--out", str(folder / "f.parquet"))
    )
    return train + predict, forecast


def slope(points: list[tuple[int, float]]) -> float:
    """Least-squares slope of log(seconds) against log(customers)."""
    xs = [math.log(n) for n, _ in points]
    ys = [math.log(t) for _, t in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum(
        (x - mx) ** 2 for x in xs
    )


def row(label: str, customers: int | None, r: Run) -> str:
    rate = f"{customers / r.wall:,.0f}" if customers else ""
    return f"| {label} | {r.engine} | {r.wall:.2f} | {r.cpu:.2f} | {r.rss_gib:.2f} | {rate} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--full", action="store_true", help="add 10,000,000 customers")
    parser.add_argument("--repeat", type=int, default=3, help="runs per CDNOW measure")
    parser.add_argument("--no-lifetimes", action="store_true", help="skip the lifetimes jobs")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s] + [10_000_000] * args.full
    from ltvcast.data.synthetic import write_simulated_store

    load_start = os.getloadavg()[0]
    lines = [
        "## Scale: whole processes by store size",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}; load average {load_start:.2f} at the start.",
        "",
        "| run | engine | wall s | CPU s | peak RSS GiB | customers/s |",
        "|---|---|---:|---:|---:|---:|",
    ]
    curve: dict[str, list[tuple[int, float]]] = {"train + predict": [], "forecast": []}
    for customers in sizes:
        with tempfile.TemporaryDirectory(prefix="ltvcast-scale-") as tmp:
            folder = Path(tmp)
            write_simulated_store(
                folder, customers, fmt="parquet", events=False, dirty_rate=0.01, random_state=0
            )
            rows = pd.read_parquet(folder / "transactions.parquet", columns=["amount"]).shape[0]
            both, forecast = store_runs(customers, folder)
            curve["train + predict"].append((customers, both.wall))
            curve["forecast"].append((customers, forecast.wall))
            label = f"{customers:,} customers ({rows:,} rows)"
            lines += [
                row(f"{label}: `train` + `predict`", customers, both),
                row(f"{label}: `forecast`", customers, forecast),
            ]
            if customers == 1_000_000:
                memory, memory_forecast = store_runs(customers, folder, extra=("--partitions", "0"))
                lines += [
                    row(f"{label}: `train` + `predict --partitions 0`", customers, memory),
                    row(f"{label}: `forecast --partitions 0`", customers, memory_forecast),
                ]
                if not args.no_lifetimes:
                    job = lifetimes_job(
                        "parquet", folder / "transactions.parquet", folder / "l.csv", "", 90
                    )
                    lines.append(row(f"{label}: lifetimes job", customers, run(job)))
    lines += [
        "",
        "Slope of log(wall) against log(customers): "
        + ", ".join(
            f"{name} {slope(points):.2f}" for name, points in curve.items() if len(points) > 1
        )
        + " (1.0 is linear; fixed start-up costs flatten the small end).",
    ]
    lines += ["", *cdnow(args.repeat, args.no_lifetimes)]
    lines += ["", f"Load average at the end: {os.getloadavg()[0]:.2f}."]
    text = "\n".join(lines) + "\n"
    print(text)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(text)


def cdnow(repeat: int, no_lifetimes: bool) -> list[str]:
    """The CDNOW rows: whole ltvcast processes against one whole lifetimes job."""
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
            "### CDNOW, 39-week split (`CDNOW_master.txt`, whole processes, start-up included; "
            f"median of {repeat})",
            "",
            "| run | engine | wall s | CPU s | peak RSS GiB | customers/s |",
            "|---|---|---:|---:|---:|---:|",
            row("`ltvcast forecast --model btyd`", None, forecast),
            row("`ltvcast train` + `ltvcast predict`", None, train + predict),
        ]
        if no_lifetimes:
            return lines
        job = median_run(
            lifetimes_job("cdnow", source, folder / "l.csv", "1997-09-30", 273), repeat
        )
        lines += [
            row("lifetimes job (read, BG/NBD + Gamma-Gamma, write)", None, job),
            "",
            f"ltvcast / lifetimes wall: forecast {forecast.wall / job.wall:.2f}, train + predict "
            f"{(train.wall + predict.wall) / job.wall:.2f} (target: at most 0.5).",
        ]
        return lines


if __name__ == "__main__":
    main()
