"""Ablation of the seq model: with and without behaviour-event channels and profiles.

Runs a backtest of SeqForecaster in its four input configurations (and btyd, gbdt for
reference) on every dataset at hand that has events or profiles: a simulated store (both,
with ground truth), Complete Journey (profiles) and the Shapees web shop (events, tiny).
Writes a markdown snippet to stdout and bench/out/ablation.md.

Usage: python bench/bench_ablation.py [--customers 4000]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ltvcast.data.clean import CleaningReport
from ltvcast.data.datasets import load_completejourney, load_shapees
from ltvcast.data.schemas import CustomerData
from ltvcast.data.synthetic import simulate_store
from ltvcast.data.validate import load_customer_data
from ltvcast.evaluation.backtest import backtest, default_cutoff
from ltvcast.exceptions import LTVError
from ltvcast.models.base import Forecaster
from ltvcast.models.btyd import BTYDForecaster
from ltvcast.models.gbdt import GBDTForecaster
from ltvcast.models.seq.estimator import SeqForecaster
from ltvcast.timeframe import Horizon, parse_horizon

from protocols import data_dir, write_section

OUT = Path(__file__).resolve().parent / "out" / "ablation.md"


def _simulated(customers: int) -> tuple[CustomerData, CleaningReport]:
    store = simulate_store(customers, random_state=0)
    return load_customer_data(store.transactions, store.events, store.profiles)


def _variants() -> list[tuple[str, Forecaster]]:
    seq = [
        (f"seq (events {'on' if ev else 'off'}, profiles {'on' if pr else 'off'})",
         SeqForecaster(use_events=ev, use_profiles=pr))
        for ev in (True, False) for pr in (True, False)
    ]  # fmt: skip
    return [*seq, ("btyd", BTYDForecaster()), ("gbdt", GBDTForecaster())]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=4000)
    args = parser.parse_args()
    datasets: list[tuple[str, CustomerData, Horizon]] = []
    sim, _ = _simulated(args.customers)
    datasets.append((f"simulated store ({args.customers:,} customers)", sim, parse_horizon("90d")))
    for title, loader in (("Complete Journey", load_completejourney), ("Shapees", load_shapees)):
        try:
            data, _ = loader(data_dir())
        except (OSError, LTVError) as err:
            print(f"skipping {title}: {err}")
            continue
        datasets.append((title, data, parse_horizon("90d")))
    lines = ["### seq model ablation: event channels and profiles (90-day horizon)\n"]
    for title, data, horizon in datasets:
        cutoff = default_cutoff(data, horizon)
        names, models = zip(*_variants(), strict=True)
        start = time.perf_counter()
        try:
            result = backtest(data, cutoff, horizon, list(models))
        except Exception as err:  # a benchmark reports what broke and goes on
            lines.append(f"\n**{title}**: failed: {type(err).__name__}: {err}\n")
            continue
        table = result.table()
        table.index = list(names)
        lines.append(
            f"\n**{title}**: cutoff {cutoff:%Y-%m-%d}, {result.n_customers:,} customers, "
            f"event types {', '.join(data.event_types) or 'none'}, "
            f"profiles {'yes' if data.profiles is not None else 'no'} "
            f"({time.perf_counter() - start:.0f} s)\n\n"
            "| model | Gini | MAE | Spearman | AUC | total err | fit s |\n"
            "|---|---|---|---|---|---|---|\n"
        )
        for name, row in table.iterrows():
            if "error" in table.columns and isinstance(row["error"], str):
                lines.append(f"| {name} | skipped: {row['error'][:80]} | | | | | |\n")
                continue
            lines.append(
                f"| {name} | {row['normalized_gini']:.3f} | {row['mae']:.2f} | "
                f"{row['spearman']:.3f} | {row['auc']:.3f} | {row['total_value_error']:+.3f} | "
                f"{row['fit_s']:.1f} |\n"
            )
    text = "".join(lines)
    write_section(text, OUT)


if __name__ == "__main__":
    main()
