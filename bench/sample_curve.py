"""Learning curve of gbdt trained on a customer sample: how many customers the default takes.

The simulator writes a store with events and profiles (Parquet, 1% dirty rows). One
partitioned job (:class:`ltvcast.engine.LocalJob`) splits and cleans it at the holdout
origin, 90 days before the store's end; then for each sample size gbdt is trained on that
many customers (``sample_customers``, the customers with the smallest hashes) and scores
every customer bucket by bucket. Each forecast is scored against the simulator's true
expected value at the origin (the ``truth`` file): normalized Gini and the total against the
true total. The same seed and store for every size, so the curve shows what sampling costs.

Prints a markdown snippet and writes it to ``bench/out/sample_curve.md``; the default of
``--sample-customers`` (:data:`ltvcast.engine.plan.SAMPLE_CUSTOMERS`) is read off it.

Usage: ``python bench/sample_curve.py [--customers 200000] [--sizes 12500,...,200000]``
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import pandas as pd

from protocols import write_section

HERE = Path(__file__).resolve().parent
OUT = HERE / "out" / "sample_curve.md"
HORIZON = "90d"


def main() -> None:
    from ltvcast.data.synthetic import write_simulated_store
    from ltvcast.engine import LocalJob, plan_job
    from ltvcast.engine.plan import count_rows
    from ltvcast.evaluation.metrics import normalized_gini
    from ltvcast.timeframe import parse_horizon

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=200_000)
    parser.add_argument("--sizes", default="12500,25000,50000,100000,200000")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s]
    span = parse_horizon(HORIZON)
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="ltvcast-curve-") as tmp:
        paths = write_simulated_store(
            tmp, args.customers, fmt="parquet", horizon=span, dirty_rate=0.01, random_state=0
        )
        truth = pd.read_parquet(paths["truth"])
        origin = pd.Timestamp(truth["as_of"].min())
        truth = truth[truth["as_of"] == origin].set_index("customer_id")["true_value"]
        n_events = count_rows(paths["events"])
        others = [paths["events"], paths["profiles"]]
        run = plan_job(
            paths["transactions"],
            partitions=None,
            workers=args.workers,
            refusal=None,
            others=others,
        )
        print(run.describe(), flush=True)
        rows = []
        with LocalJob(
            paths["transactions"],
            events=paths["events"],
            profiles=paths["profiles"],
            as_of=origin,
            buckets=max(run.buckets, args.workers),
            workers=args.workers,
        ) as job:
            job.split()
            job.clean()
            for size in sizes:
                start = time.perf_counter()
                scoring = job.train("gbdt", span, sample_customers=size)
                trained = time.perf_counter() - start
                out = Path(tmp) / f"p-{size}.parquet"
                job.predict(scoring, out)
                scored = time.perf_counter() - start - trained
                forecast = pd.read_parquet(out).set_index("customer_id")["predicted_value"]
                joined = pd.concat([forecast, truth], axis=1, join="inner")
                gini = normalized_gini(
                    joined["true_value"].to_numpy(), joined["predicted_value"].to_numpy()
                )
                ratio = joined["predicted_value"].sum() / joined["true_value"].sum() - 1
                rows.append((size, trained, scored, gini, ratio, len(joined)))
                write_section(section(args, origin, n_events, load, rows), OUT)


def section(
    args: argparse.Namespace,
    origin: pd.Timestamp,
    n_events: int,
    load: float,
    rows: list[tuple[int, float, float, float, float, int]],
) -> str:
    """The markdown of the sizes measured so far (written after each, so that a stopped
    run keeps them)."""
    best = rows[-1][3]
    lines = [
        "## gbdt on a customer sample: learning curve",
        "",
        f"Simulated store: {args.customers:,} customers, {n_events:,} events, profiles "
        f"(seed 0, 1% dirty rows); trained at {origin:%Y-%m-%d %H:%M} (90 days before the "
        f"end), scored against the simulator's true expected value over the next {HORIZON} "
        f"for every customer seen by then. Machine: {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}; load average {load:.2f} at the start, "
        f"{os.getloadavg()[0]:.2f} at the end. Command: `python bench/sample_curve.py "
        f"--customers {args.customers} --sizes {args.sizes}`.",
        "",
        "| sample customers | train s | score s (all buckets) | normalized Gini | "
        "Gini vs the largest sample | total vs truth |",
        "|---:|---:|---:|---:|---:|---:|",
        *(
            f"| {size:,} | {trained:.1f} | {scored:.1f} | {gini:.4f} | "
            f"{(gini - best) / best * 100:+.2f}% | {ratio * 100:+.1f}% |"
            for size, trained, scored, gini, ratio, _ in rows
        ),
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
