"""Next best items by backtest on time: our recommender against popularity and buy-again.

Online Retail (cutoff 2011-09-09, item = StockCode) and Complete Journey (cutoff 2017-09-30,
item = product_id): fit on the transactions up to the cutoff, recommend 10 items to every
customer who buys in the next 91 days, score against what they bought (hit rate, precision,
recall, NDCG and revenue-weighted hit rate at 10; :mod:`ltvcast.evaluation.ranking`).

``--tune`` first runs the inner backtest that chose the recommender's defaults: the same
protocol cut 91 days before each test cutoff, on the training data only, over a small grid;
it writes bench/out/recommend_tuning.md, which this section includes.
``--scale N[,M...]`` also fits and recommends in this process on the first size of simulated
customers (chunked) and reports time and peak memory; then, at every size, the simulator
writes a store (Parquet in chunks, transactions only, 1% dirty rows, as bench/bench_scale.py
does), ``ltvcast train --model btyd`` fits a model on it, and the whole ``ltvcast recommend``
process runs twice under GNU time: partitioned (buckets of at most
``ltvcast.engine.BUCKET_ROWS`` rows, on 2 workers) and in memory (``--partitions 0``); their
wall, CPU and peak memory (the largest process, and the process tree's sampled sum) are
reported, and both outputs are checked to hold the same rows.

Writes a markdown snippet to stdout, bench/out/recommend.md and the README's recommend block.
Usage: python bench/bench_recommend.py [--tune] [--scale 200000,1000000]
"""

from __future__ import annotations

import argparse
import itertools
import math
import os
import resource
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_scale
import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from ltvcast.data.clean import CleaningReport
from ltvcast.data.datasets import load_completejourney, load_online_retail
from ltvcast.data.schemas import CustomerData
from ltvcast.engine import BUCKET_ROWS
from ltvcast.pipeline.item_backtest import backtest_recommenders
from ltvcast.strategy.items import (
    BuyAgainRecommender,
    ItemRecommender,
    PopularityRecommender,
    Recommender,
)
from ltvcast.timeframe import parse_as_of

from protocols import data_dir, replace_readme_block, write_section

OUT = Path(__file__).resolve().parent / "out" / "recommend.md"
TUNING = OUT.with_name("recommend_tuning.md")
HORIZON_DAYS = 91.0
K = 10
#: Worker processes of the partitioned ``ltvcast recommend`` runs.
WORKERS = 2
#: (name, loader, test cutoff, source item column)
SPLITS: tuple[tuple[str, Callable[[Path], tuple[CustomerData, CleaningReport]], str, str], ...] = (
    ("Online Retail", load_online_retail, "2011-09-09", "StockCode"),
    ("Complete Journey", load_completejourney, "2017-09-30", "product_id"),
)
#: The inner-backtest grid (every other hyperparameter at its default).
GRID = {
    "repeat_weight": (1.0, 3.0, 10.0),
    "alpha": (0.8, 1.0),
    "value_exponent": (0.0, 0.5),
}
SHOWN = (
    ("hit_rate", "hit@10"),
    ("precision", "precision@10"),
    ("recall", "recall@10"),
    ("ndcg", "NDCG@10"),
    ("revenue_hit_rate", "revenue hit@10"),
)


def recommenders() -> dict[str, Recommender]:
    """Ours at its defaults and the two baselines (same exclusion window as ours)."""
    ours = ItemRecommender()
    return {
        "ours (ItemRecommender)": ours,
        "popularity": PopularityRecommender(exclude_recent_days=ours.exclude_recent_days),
        "buy again": BuyAgainRecommender(),
    }


def table(result: pd.DataFrame) -> list[str]:
    """Markdown rows of a backtest result."""
    lines = [
        "| recommender | " + " | ".join(label for _, label in SHOWN) + " | fit + recommend s |",
        "|---" + "|---:" * (len(SHOWN) + 1) + "|",
    ]
    for name, row in result.iterrows():
        cells = [f"{row[m]:.3f}" for m, _ in SHOWN]
        cells.append(f"{row['fit_s'] + row['recommend_s']:.1f}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def tune() -> None:
    """Inner backtest on each split's training data; writes :data:`TUNING`."""
    lines = [
        "### Inner backtest that chose the defaults (training data only)",
        "",
        f"Cutoff {HORIZON_DAYS:g} days before each test cutoff, next {HORIZON_DAYS:g} days; "
        "mean of hit@10 and revenue hit@10 per configuration.",
        "",
    ]
    names = list(GRID)
    scores: dict[tuple[float, ...], list[float]] = {}
    for title, loader, cutoff_text, _ in SPLITS:
        data, _ = loader(data_dir())
        cutoff = parse_as_of(cutoff_text, data.last_timestamp())
        inner = cutoff - pd.Timedelta(days=HORIZON_DAYS)
        configs = list(itertools.product(*GRID.values()))
        candidates: dict[str, Recommender] = {"buy again": BuyAgainRecommender()}
        for values in configs:
            label = ", ".join(f"{n}={v:g}" for n, v in zip(names, values, strict=True))
            candidates[label] = ItemRecommender(**dict(zip(names, values, strict=True)))
        result = backtest_recommenders(data.until(cutoff), inner, HORIZON_DAYS, candidates, K)
        for values in configs:
            label = ", ".join(f"{n}={v:g}" for n, v in zip(names, values, strict=True))
            row = result.loc[label]
            scores.setdefault(values, []).extend([row["hit_rate"], row["revenue_hit_rate"]])
        lines += [f"{title}, inner cutoff {inner:%Y-%m-%d}:", "", *table(result), ""]
        print("\n".join(lines[-len(result) - 4 :]), flush=True)
    best = max(scores, key=lambda v: (float(np.mean(scores[v])), v))
    chosen = ", ".join(f"{n}={v:g}" for n, v in zip(names, best, strict=True))
    defaults = ItemRecommender()
    differ = [n for n, v in zip(names, best, strict=True) if getattr(defaults, n) != v]
    note = "the library defaults" if not differ else f"library defaults differ in {differ}"
    lines.append(f"Best mean over both data sets: {chosen} ({note}).")
    TUNING.parent.mkdir(parents=True, exist_ok=True)
    TUNING.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"best: {chosen}")


def simulated_transactions(customers: int, items: int = 20_000, seed: int = 0) -> pd.DataFrame:
    """A year of orders: Poisson(4) orders per customer, 1 + Poisson(3) Zipf items each."""
    rng = np.random.default_rng(seed)
    orders = rng.poisson(4.0, customers) + 1
    owner = np.repeat(np.arange(customers), orders)
    size = rng.poisson(3.0, owner.size) + 1
    order_of_line = np.repeat(np.arange(owner.size), size)
    popularity = 1.0 / np.arange(1, items + 1) ** 1.1
    item = rng.choice(items, size=order_of_line.size, p=popularity / popularity.sum())
    day = rng.integers(0, 365, owner.size)
    return pd.DataFrame(
        {
            "customer_id": pd.Series(owner[order_of_line].astype("U8"), dtype="str"),
            "timestamp": pd.Timestamp("2024-01-01") + pd.to_timedelta(day[order_of_line], "D"),
            "amount": rng.gamma(2.0, 5.0, order_of_line.size),
            "order_id": pd.Series(order_of_line.astype("U9"), dtype="str"),
            "item_id": pd.Series(item.astype("U6"), dtype="str"),
        }
    )


def scale(customers: int) -> list[str]:
    """Fit and recommend (in chunks) on ``customers`` simulated customers."""
    tx = simulated_transactions(customers)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # the data alone
    start = time.perf_counter()
    model = ItemRecommender().fit(tx, tx["timestamp"].max())
    fitted = time.perf_counter()
    rows = 0
    ids = pd.unique(tx["customer_id"])
    bucket = 100_000
    for first in range(0, len(ids), bucket):  # as the CLI would run it per customer bucket
        rows += len(model.recommend(ids[first : first + bucket]))
    done = time.perf_counter()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return [
        "",
        f"At scale: {customers:,} simulated customers, {len(tx):,} lines, 20,000 items: fit "
        f"{fitted - start:.0f} s, recommend {done - fitted:.0f} s in buckets of {bucket:,} "
        f"customers ({rows:,} rows); peak memory {peak:,.0f} MB ({before:,.0f} MB with the "
        "data alone).",
    ]


def cli_scale(sizes: list[int]) -> tuple[list[str], str]:
    """Whole ``ltvcast recommend`` processes, partitioned and in memory, on a simulated store
    of each size (see the module docstring): the table's lines and the README's sentence."""
    lines = [
        "",
        "`ltvcast recommend` as whole processes (GNU time; simulated stores, 1% dirty rows, "
        f"a btyd model; partitioned on {WORKERS} workers in buckets of at most "
        f"{BUCKET_ROWS:,} rows, against `--partitions 0`):",
        "",
        "| store | " + bench_scale.HEADER[0][2:],
        "|---" + bench_scale.HEADER[1],
    ]
    said = []
    for customers in sizes:
        with tempfile.TemporaryDirectory(prefix="ltvcast-recommend-") as tmp:
            folder = Path(tmp)
            simulate = (
                "from ltvcast.data.synthetic import write_simulated_store; "
                f"write_simulated_store({str(folder)!r}, {customers}, fmt='parquet', "
                "events=False, dirty_rate=0.01, random_state=0)"
            )
            bench_scale.run([sys.executable, "-c", simulate])
            tx = folder / "transactions.parquet"
            rows = pq.ParquetFile(tx).metadata.num_rows
            model = str(folder / "model")
            train = ("train", str(tx), "--model", "btyd", "--horizon", "90d", "--out", model)
            bench_scale.run(bench_scale.ltvcast(*train))
            buckets = WORKERS * math.ceil(rows / (WORKERS * BUCKET_ROWS))
            store = f"{customers:,} customers, {rows:,} rows"
            written, timings = [], []
            for label, extra in (
                (f"partitioned, `--partitions {buckets}`", ["--partitions", str(buckets)]),
                ("in memory, `--partitions 0`", ["--partitions", "0"]),
            ):
                out = folder / f"recs-{extra[1]}.parquet"
                args = bench_scale.ltvcast("recommend", model, str(tx), "--out", str(out), *extra)
                timed = bench_scale.run([*args, "--workers", str(WORKERS)])
                shown = bench_scale.row(f"`recommend`, {label}", customers, timed)
                lines.append(f"| {store} {shown}")
                timings.append(timed)
                written.append(pq.ParquetFile(out).metadata.num_rows)
                print(f"done recommend {customers:,} {label}", flush=True)
            if written[0] != written[1]:
                raise RuntimeError(f"partitioned and in-memory outputs differ: {written} rows")
            part, memory = timings
            said.append(
                f"{customers:,} customers ({rows:,} rows) {part.wall:.0f} s with at most "
                f"{part.rss_gib:.2f} GiB in any process ({memory.wall:.0f} s and "
                f"{memory.rss_gib:.2f} GiB in memory)"
            )
    sentence = (
        "From 2,000,000 rows on (or with `--partitions N`) `ltvcast recommend` runs in customer "
        "buckets as `predict` does, with a BTYD model or gbdt (events and profiles in the same "
        "buckets): the item relations are learned in DuckDB "
        "from the cleaned buckets, each worker scores and recommends its bucket, and the parts "
        f"are merged in order out of core. On {os.cpu_count()} cores, whole processes: "
        f"{'; '.join(said)} (`python bench/bench_recommend.py --scale "
        f"{','.join(str(n) for n in sizes)}`)."
    )
    return lines, sentence


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tune", action="store_true", help="rerun the inner backtest first")
    parser.add_argument(
        "--scale", default="", help="simulated customers, comma-separated (empty: skip)"
    )
    args = parser.parse_args()
    sizes = [int(size) for size in args.scale.split(",") if size]
    # first, so that the process's peak memory is the simulated store's own
    at_scale: list[str] = []
    scale_sentence = ""
    if sizes:
        cli_lines, scale_sentence = cli_scale(sizes)
        at_scale = [*scale(sizes[0]), *cli_lines]
    if args.tune:
        tune()
    lines = [
        "## Next best items (backtest on time)",
        "",
        f"Fit up to the cutoff, recommend {K} items to every customer who buys in the next "
        f"{HORIZON_DAYS:g} days (new customers get each recommender's popularity fill), score "
        "against the items they bought. Revenue hit@10: the share of the period's revenue from "
        "customers with at least one hit. Defaults of ItemRecommender chosen by the inner "
        "backtest below, never on the test period.",
    ]
    sentences = []
    for title, loader, cutoff_text, column in SPLITS:
        data, _ = loader(data_dir())
        cutoff = parse_as_of(cutoff_text, data.last_timestamp())
        result = backtest_recommenders(data, cutoff, HORIZON_DAYS, recommenders(), K)
        buyers = int(result["buyers"].iloc[0])
        lines += [
            "",
            f"### {title} (item = {column}), cutoff {cutoff:%Y-%m-%d}, {buyers:,} buyers",
            "",
            *table(result),
        ]
        ours, pop, again = (result.iloc[i] for i in range(3))
        sentences.append(
            f"| {title} | {ours['hit_rate']:.3f} | {pop['hit_rate']:.3f} | "
            f"{again['hit_rate']:.3f} | {ours['revenue_hit_rate']:.3f} | "
            f"{pop['revenue_hit_rate']:.3f} | {again['revenue_hit_rate']:.3f} |"
        )
        print(f"done {title}", flush=True)
    lines += at_scale
    if TUNING.exists():
        lines += ["", TUNING.read_text(encoding="utf-8").rstrip()]
    write_section("\n".join(lines) + "\n", OUT)
    readme = [
        "| data set | hit@10 ours | popularity | buy again | revenue hit@10 ours | popularity "
        "| buy again |",
        "|---|---:|---:|---:|---:|---:|---:|",
        *sentences,
    ]
    replace_readme_block("recommend", "\n".join(readme))
    if scale_sentence:
        replace_readme_block("recommend-scale", textwrap.fill(scale_sentence, 96))


if __name__ == "__main__":
    main()
