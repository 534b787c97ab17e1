"""gbdt with events and profiles on Spark against the local engine, on one simulated store.

The simulator writes a store with its default events and profiles (Parquet, 1% dirty rows,
seed 0, as ``bench/bench_scale.py --events`` does); then ``ltvcast forecast --model gbdt``
runs at the holdout origin (90 days before the store's end) as a whole process under GNU
time (:func:`bench_scale.run`), on the local engine (chosen by size) and with ``--engine
spark --spark-master local[2]``. Both train on the same customer sample
(``--sample-customers``), so their predictions should agree: the table gives their
largest relative difference and each run's holdout Gini against the simulator's true values.

Usage: python bench/bench_spark_events.py [--customers 200000]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_scale
import numpy as np
import pandas as pd
import pyarrow.parquet as pq

#: How the Spark run is asked for.
ON_SPARK = ("--engine", "spark", "--spark-master", "local[2]")


def largest_difference(first: Path, second: Path) -> float:
    """The largest relative difference of ``predicted_value`` between two prediction
    outputs (a file or a folder of Parquet parts), matched by customer."""
    a, b = (pd.read_parquet(p).set_index("customer_id")["predicted_value"] for p in (first, second))
    if not a.index.sort_values().equals(b.index.sort_values()):
        raise RuntimeError("the two engines scored different customers")
    b = b.reindex(a.index)
    scale = np.maximum(np.abs(a.to_numpy()), np.finfo(float).tiny)
    return float(np.max(np.abs(a.to_numpy() - b.to_numpy()) / scale))


def spark_events_section(customers: int) -> list[str]:
    """The markdown table of the two engines' runs on a store of ``customers``."""
    with tempfile.TemporaryDirectory(prefix="ltvcast-spark-events-") as tmp:
        folder = Path(tmp)
        simulate = (
            "from ltvcast.data.synthetic import write_simulated_store; "
            f"write_simulated_store({str(folder)!r}, {customers}, fmt='parquet', "
            "dirty_rate=0.01, random_state=0)"
        )
        bench_scale.run([sys.executable, "-c", simulate])
        tx, events = (str(folder / f"{t}.parquet") for t in ("transactions", "events"))
        counts = [pq.ParquetFile(p).metadata.num_rows for p in (tx, events)]
        truth = folder / "truth.parquet"
        origin = pd.read_parquet(truth, columns=["as_of"])["as_of"].min()
        inputs = (tx, "--events", events, "--profiles", str(folder / "profiles.parquet"))
        at = ("--as-of", pd.Timestamp(origin).isoformat(), "--horizon", "90d")
        outs = {"local": folder / "local.parquet", "spark": folder / "spark"}
        rows = []
        for name, extra in (("local", ()), ("spark", ON_SPARK)):
            args = ("forecast", *inputs, "--model", "gbdt", *at, *extra, "--out", str(outs[name]))
            done = bench_scale.run(bench_scale.ltvcast(*args))
            gini = bench_scale.holdout_gini(outs[name], truth)
            label = f"`forecast --model gbdt`{', `--engine spark`' if extra else ''}"
            rows.append(bench_scale.row(label, customers, done) + f" {gini:.4f} |")
            print(rows[-1], flush=True)
        gap = largest_difference(outs["local"], outs["spark"])
    store = f"{customers:,} customers, {counts[0]:,} tx, {counts[1]:,} events"
    return [
        f"### gbdt with events and profiles on Spark ({store})",
        "",
        f"Load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs.",
        "",
        "| run | engine | wall s | CPU s | peak RSS GiB | tree RSS GiB | customers/s "
        "| holdout Gini |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
        *rows,
        "",
        f"Largest relative difference of the two engines' predicted values: {gap:.1e}.",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=200_000, help="store size")
    args = parser.parse_args()
    print("\n".join(spark_events_section(args.customers)))


if __name__ == "__main__":
    main()
