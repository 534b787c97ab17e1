"""Benchmark the ``seq`` model: accuracy against BTYD and lifetimes, training time, scoring rate.

Usage: ``python bench/bench_seq.py [PROTOCOL ...] [--threads N] [--epochs N]`` (default: both
CDNOW protocols). Prints a markdown snippet and writes it to ``bench/out/seq.md``.

The seq design choices (defaults in ``SeqForecaster``) were made on the inner backtests, whose
labels lie inside the protocols' calibration data: ``python bench/bench_seq.py inner_direct
inner_rollout`` (written to ``bench/out/seq_inner.md``; the lifetimes row is left out).

Scoring rate: customers per second of ``predict`` on every customer of the protocol (feature
tensors included), the best of three calls after training (a warm batch scorer; the first call
also pays torch's one-off kernel set-up). The table header gives the 1-minute load average.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import pandas as pd

from ltvcast.data.purchases import horizon_labels
from ltvcast.data.schemas import CustomerData
from ltvcast.evaluation.metrics import evaluate
from ltvcast.models import forecaster_class
from ltvcast.models.seq.estimator import SeqForecaster
from ltvcast.timeframe import Horizon, parse_as_of, parse_horizon

from lifetimes_reference import lifetimes_predict
from protocols import PROTOCOLS

OUT = Path(__file__).resolve().parent / "out" / "seq.md"
INNER_OUT = OUT.with_name("seq_inner.md")
#: Inner backtests on CDNOW: (title, as-of, horizon, seq parameters).
INNER = {
    "inner_direct": (
        "CDNOW inner backtest: as of 1997-12-31, 13-week horizon",
        "1997-12-31",
        "13w",
        {},
    ),
    "inner_rollout": (
        "CDNOW inner backtest: as of 1997-06-30, 13-week horizon, rollout mode",
        "1997-06-30",
        "13w",
        {"mode": "rollout"},
    ),
}
METRICS = ("normalized_gini", "mae", "spearman", "top20_capture", "auc", "total_value_error")


def _score(
    predictions: pd.DataFrame, data: CustomerData, cutoff: pd.Timestamp, horizon: Horizon
) -> dict[str, float]:
    customers = data.until(cutoff).customers()
    labels = horizon_labels(data.transactions, customers, cutoff, horizon.end(cutoff))
    joined = labels.join(predictions.set_index("customer_id"), how="left").fillna(0.0)
    return evaluate(
        joined["value"].to_numpy(),
        joined["predicted_value"].to_numpy(),
        actual_purchases=joined["purchases"].to_numpy(),
        p_active=joined["p_active"].to_numpy(),
    )


def _load(key: str) -> tuple[CustomerData, pd.Timestamp, Horizon, dict[str, Any]]:
    """Data, cutoff, horizon and extra seq parameters of a protocol or inner backtest."""
    if key in PROTOCOLS:
        return (*PROTOCOLS[key].load(), {})
    _, as_of, horizon, params = INNER[key]
    data, _, _ = PROTOCOLS["cdnow_13w"].load()
    return data, parse_as_of(as_of, data.last_timestamp()), parse_horizon(horizon), params


def run(key: str, threads: int, epochs: int | None) -> list[dict[str, object]]:
    """Rows (model, metrics, seconds) of one protocol."""
    data, cutoff, horizon, extra = _load(key)
    rows: list[dict[str, object]] = []
    params: dict[str, Any] = {"n_threads": threads} | ({"epochs": epochs} if epochs else {})
    params |= extra
    seq = SeqForecaster(**params)
    start = time.perf_counter()
    seq.fit(data, cutoff, horizon)
    fit_s = time.perf_counter() - start
    timings = []
    for _ in range(3):
        start = time.perf_counter()
        pred = seq.predict(data, cutoff)
        timings.append(time.perf_counter() - start)
    predict_s = min(timings)
    rows.append(
        {
            "model": f"seq ({seq.mode_}, {seq.period_days_}-day periods, "
            f"best epoch {seq.training_['best_epoch']}/{seq.training_['epochs_run']})",
            "fit_s": fit_s,
            "predict_s": predict_s,
            "rate": len(pred) / predict_s,
            **_score(pred, data, cutoff, horizon),
        }
    )
    btyd = forecaster_class("btyd")()
    start = time.perf_counter()
    btyd.fit(data, cutoff, horizon)
    fit_s = time.perf_counter() - start
    start = time.perf_counter()
    pred = btyd.predict(data, cutoff)
    predict_s = time.perf_counter() - start
    rows.append(
        {
            "model": "btyd",
            "fit_s": fit_s,
            "predict_s": predict_s,
            "rate": len(pred) / predict_s,
            **_score(pred, data, cutoff, horizon),
        }
    )
    if key in INNER:
        return rows
    start = time.perf_counter()
    pred = lifetimes_predict(data, cutoff, horizon)
    rows.append(
        {
            "model": "lifetimes BG/NBD + Gamma-Gamma",
            "fit_s": time.perf_counter() - start,
            "predict_s": float("nan"),
            "rate": float("nan"),
            **_score(pred, data, cutoff, horizon),
        }
    )
    return rows


def table(key: str, rows: list[dict[str, object]], threads: int) -> str:
    """Markdown table of one protocol."""
    head = ["model", *METRICS, "fit s", "predict s", "customers/s"]
    lines = [
        f"### {INNER[key][0] if key in INNER else PROTOCOLS[key].title} (torch threads: {threads}, "
        f"load average {os.getloadavg()[0]:.2f})",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for row in rows:
        cells = [str(row["model"])]
        cells += [f"{float(row[m]):.3f}" for m in METRICS]  # type: ignore[arg-type]
        cells += [f"{float(row[k]):.1f}" for k in ("fit_s", "predict_s")]  # type: ignore[arg-type]
        cells.append(f"{float(row['rate']):,.0f}")  # type: ignore[arg-type]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("protocols", nargs="*", default=["cdnow_39w", "cdnow_13w"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=None)
    args = parser.parse_args()
    text = "\n".join(
        table(key, run(key, args.threads, args.epochs), args.threads) for key in args.protocols
    )
    out = INNER_OUT if set(args.protocols) <= set(INNER) else OUT
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
