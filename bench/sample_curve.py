"""Learning curve of gbdt trained on a customer sample: how many customers the default takes.

For each seed (``--seeds``) the simulator writes a store with events and profiles (Parquet,
1% dirty rows). One partitioned job (:class:`ltvcast.engine.LocalJob`) splits and cleans it
at the holdout origin, 90 days before the store's end; then for each sample size gbdt is
trained on that many customers (``sample_customers``, the customers with the smallest
hashes) and scores every customer bucket by bucket. Each forecast is scored against the
simulator's true expected value at the origin (the ``truth`` file): normalized Gini and the
total against the true total. The same store for every size of a seed, so the curve shows
what sampling costs; more seeds (``--seeds 0,1``) show how much of it is the noise of one
store.

The curve flattens at the smallest sample from which every larger one's Gini is within
:data:`FLAT` of the largest sample's (every customer: the in-memory model), on every seed;
the default of ``--sample-customers`` (:data:`ltvcast.engine.plan.SAMPLE_CUSTOMERS`) is read
off it. Prints a markdown snippet and writes it to ``bench/out/sample_curve.md`` (after each
size, so that a stopped run keeps what it measured).

Usage: ``python bench/sample_curve.py [--customers 200000] [--sizes 12500,...,200000]
[--seeds 0]``
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from protocols import write_section

HERE = Path(__file__).resolve().parent
OUT = HERE / "out" / "sample_curve.md"
HORIZON = "90d"
#: Gini shortfall against the largest sample within which the curve counts as flat: half the
#: issue's budget for the sampled model (within 1% of the in-memory one's), as a margin.
FLAT = 0.005


@dataclass(frozen=True)
class Point:
    """One sample size on one seed's store."""

    seed: int
    size: int
    train_s: float
    score_s: float
    gini: float
    total_error: float


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=200_000)
    parser.add_argument("--sizes", default="12500,25000,50000,100000,200000")
    parser.add_argument("--seeds", default="0", help="simulator seeds, one store each")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s]
    seeds = [int(s) for s in args.seeds.split(",") if s]
    load = os.getloadavg()[0]
    points: list[Point] = []
    stores: list[str] = []
    for seed in seeds:
        for point in seed_curve(args.customers, seed, sizes, args.workers, stores):
            points.append(point)
            write_section(section(args, stores, load, points), OUT)


def seed_curve(
    customers: int, seed: int, sizes: list[int], workers: int, stores: list[str]
) -> Iterator[Point]:
    """Yield the :class:`Point` of each of ``sizes`` on the store simulated with ``seed``
    (its description appended to ``stores``)."""
    from ltvcast.data.synthetic import write_simulated_store
    from ltvcast.engine import LocalJob, plan_job
    from ltvcast.engine.plan import count_rows
    from ltvcast.evaluation.metrics import normalized_gini
    from ltvcast.timeframe import parse_horizon

    span = parse_horizon(HORIZON)
    with tempfile.TemporaryDirectory(prefix="ltvcast-curve-") as tmp:
        paths = write_simulated_store(
            tmp, customers, fmt="parquet", horizon=span, dirty_rate=0.01, random_state=seed
        )
        truth = pd.read_parquet(paths["truth"])
        origin = pd.Timestamp(truth["as_of"].min())
        truth = truth[truth["as_of"] == origin].set_index("customer_id")["true_value"]
        others = [paths["events"], paths["profiles"]]
        plan = plan_job(
            paths["transactions"], partitions=None, workers=workers, refusal=None, others=others
        )
        print(plan.describe(), flush=True)
        stores.append(
            f"seed {seed}: {count_rows(paths['transactions']):,} transactions, "
            f"{count_rows(paths['events']):,} events, trained at {origin:%Y-%m-%d %H:%M}"
        )
        with LocalJob(
            paths["transactions"],
            events=paths["events"],
            profiles=paths["profiles"],
            as_of=origin,
            buckets=max(plan.buckets, workers),
            workers=workers,
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
                true, predicted = (joined[c].to_numpy() for c in ("true_value", "predicted_value"))
                gini = normalized_gini(true, predicted)
                error = predicted.sum() / true.sum() - 1
                yield Point(seed, size, trained, scored, gini, error)


def flattens_at(points: list[Point]) -> int | None:
    """The smallest size from which every larger size's Gini is within :data:`FLAT` of the
    largest size's on every seed, or ``None`` before two sizes of every seed are in."""
    table = pd.DataFrame(points).pivot(index="size", columns="seed", values="gini")
    if len(table) < 2 or table.isna().to_numpy().any():
        return None
    shortfall = (1 - table / table.iloc[-1]).max(axis=1)
    flat = (shortfall <= FLAT)[::-1].cummin()[::-1]  # flat from each size on
    return int(flat.index[flat.to_numpy()].min())


def section(args: argparse.Namespace, stores: list[str], load: float, points: list[Point]) -> str:
    """The markdown of the points measured so far."""
    from ltvcast.engine.plan import SAMPLE_CUSTOMERS

    largest = {p.seed: p.gini for p in points}  # each seed's last (largest) size so far
    at = flattens_at(points)
    verdict = (
        f"The curve flattens (every larger sample within {FLAT:.1%} of the largest one's Gini "
        f"on every seed) at **{at:,}** customers; the default `--sample-customers` is "
        f"{SAMPLE_CUSTOMERS:,}."
        if at is not None
        else "Too few sizes measured on every seed to say where the curve flattens."
    )
    lines = [
        "## gbdt on a customer sample: learning curve",
        "",
        f"Simulated stores: {args.customers:,} customers with events and profiles, 1% dirty "
        f"rows ({'; '.join(stores)}); trained 90 days before the end, scored against the "
        f"simulator's true expected value over the next {HORIZON} for every customer seen by "
        f"then. Machine: {os.cpu_count()} CPUs, Python {platform.python_version()}; load "
        f"average {load:.2f} at the start, {os.getloadavg()[0]:.2f} at the end. Command: "
        f"`python bench/sample_curve.py --customers {args.customers} --sizes {args.sizes} "
        f"--seeds {args.seeds}`.",
        "",
        "| seed | sample customers | train s | score s (all buckets) | normalized Gini | "
        "Gini vs the largest sample | total vs truth |",
        "|---:|---:|---:|---:|---:|---:|---:|",
        *(
            f"| {p.seed} | {p.size:,} | {p.train_s:.1f} | {p.score_s:.1f} | {p.gini:.4f} | "
            f"{(p.gini / largest[p.seed] - 1) * 100:+.2f}% | {p.total_error * 100:+.1f}% |"
            for p in points
        ),
        "",
        verdict,
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
