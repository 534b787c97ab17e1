"""Benchmark the ``seq`` model: accuracy against BTYD and lifetimes, training time, scoring rate.

Usage: ``python bench/bench_seq.py [PROTOCOL ...] [--threads N] [--epochs N] [--seeds N]
[--params JSON] [--inner] [--references btyd,lifetimes]`` (default: both CDNOW protocols).
Prints a markdown snippet and writes it to ``bench/out/seq.md``. Besides the protocols of
``protocols.py``, ``simulated_90d`` is the simulated store of ``bench_ablation.py`` (4,000
customers, events and profiles that carry signal) with its last 90 days held out.

``--seeds N`` trains seq with ``random_state`` 0 .. N-1 and reports the mean and the spread
(sample standard deviation) of each metric; ``--params`` sets seq hyperparameters (JSON,
e.g. ``'{"hybrid": "none"}'``); ``--inner`` moves the protocol back to its inner backtest
(the window ``auto`` and ``btyd_cal`` use: ``cutoff - horizon``, or a shorter horizon when
the history is short; data after the inner cutoff's window is not read), where the seq
design choices are made. ``--references`` names the other rows (``btyd``, ``btyd_cal``,
``gbdt``, ``lifetimes``).

The older inner backtests on CDNOW stay reachable as ``inner_direct`` and ``inner_rollout``
(written to ``bench/out/seq_inner.md``; the lifetimes row is left out).

Scoring rate: customers per second of ``predict`` on every customer of the protocol (feature
tensors included), the best of three calls after training (a warm batch scorer; the first call
also pays torch's one-off kernel set-up). The table header gives the 1-minute load average.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import pandas as pd
from bench_ablation import _simulated

from ltvcast.data.purchases import horizon_labels
from ltvcast.data.schemas import CustomerData
from ltvcast.evaluation.backtest import default_cutoff
from ltvcast.evaluation.metrics import evaluate
from ltvcast.features.windows import inner_window
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


def _load(key: str, inner: bool) -> tuple[CustomerData, pd.Timestamp, Horizon, dict[str, Any]]:
    """Data, cutoff, horizon and extra seq parameters of a protocol (or its inner backtest)."""
    if key in INNER:
        _, as_of, horizon, params = INNER[key]
        data, _, _ = PROTOCOLS["cdnow_13w"].load()
        return data, parse_as_of(as_of, data.last_timestamp()), parse_horizon(horizon), params
    if key == "simulated_90d":
        data, _ = _simulated(4000)
        horizon = parse_horizon("90d")
        cutoff = default_cutoff(data, horizon)
    else:
        data, cutoff, horizon = PROTOCOLS[key].load()
    if inner:
        window = inner_window(data.first_timestamp(), cutoff, horizon)
        if window is None:
            raise SystemExit(f"{key}: no inner backtest fits before {cutoff}")
        data = data.until(window[1].end(window[0]))
        cutoff, horizon = window
    return data, cutoff, horizon, {}


def _timed(
    model: Any, data: CustomerData, cutoff: pd.Timestamp, horizon: Horizon
) -> dict[str, Any]:
    """Fit, predict three times (best time), score."""
    start = time.perf_counter()
    model.fit(data, cutoff, horizon)
    fit_s = time.perf_counter() - start
    timings = []
    for _ in range(3):
        start = time.perf_counter()
        pred = model.predict(data, cutoff)
        timings.append(time.perf_counter() - start)
    predict_s = min(timings)
    return {
        "fit_s": fit_s,
        "predict_s": predict_s,
        "rate": len(pred) / predict_s,
        **_score(pred, data, cutoff, horizon),
    }


def run(
    key: str,
    threads: int,
    epochs: int | None,
    *,
    seeds: int = 1,
    params: dict[str, Any] | None = None,
    inner: bool = False,
    references: tuple[str, ...] = ("btyd", "lifetimes"),
) -> list[dict[str, object]]:
    """Rows (model, metrics, seconds) of one protocol; seq's metrics are means over seeds,
    with their spreads under ``sd_<metric>``."""
    data, cutoff, horizon, extra = _load(key, inner)
    rows: list[dict[str, object]] = []
    base: dict[str, Any] = {"n_threads": threads} | ({"epochs": epochs} if epochs else {})
    base |= extra | (params or {})
    runs, seq = [], None
    for seed in range(seeds):
        seq = SeqForecaster(**(base | {"random_state": seed}))
        runs.append(_timed(seq, data, cutoff, horizon))
    assert seq is not None
    row: dict[str, object] = {
        "model": f"seq ({seq.mode_}, {seq.period_days_}-day periods, "
        f"best epoch {seq.training_['best_epoch']}/{seq.training_['epochs_run']}"
        + (f", {seeds} seeds" if seeds > 1 else "")
        + (f", {json.dumps(params)}" if params else "")
        + ")",
        "seeds": seeds,
    }
    for name in (*METRICS, "fit_s", "predict_s", "rate"):
        values = [float(r[name]) for r in runs]
        row[name] = statistics.fmean(values)
        row[f"sd_{name}"] = statistics.stdev(values) if len(values) > 1 else 0.0
    rows.append(row)
    for name in references:
        if name == "lifetimes":
            if key in INNER:
                continue
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
            continue
        rows.append({"model": name, **_timed(forecaster_class(name)(), data, cutoff, horizon)})
    return rows


def _cell(row: dict[str, object], name: str, digits: int) -> str:
    value = f"{float(row[name]):,.{digits}f}"  # type: ignore[arg-type]
    if int(row.get("seeds", 1)) > 1:  # type: ignore[call-overload]
        value += f" ± {float(row[f'sd_{name}']):,.{digits}f}"  # type: ignore[arg-type]
    return value


def table(key: str, rows: list[dict[str, object]], threads: int, inner: bool = False) -> str:
    """Markdown table of one protocol (seq: mean ± sd over seeds)."""
    head = ["model", *METRICS, "fit s", "predict s", "customers/s"]
    title = INNER[key][0] if key in INNER else PROTOCOLS[key].title if key in PROTOCOLS else key
    lines = [
        f"### {title}{', inner backtest' if inner else ''} (torch threads: {threads}, "
        f"load average {os.getloadavg()[0]:.2f})",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for row in rows:
        cells = [str(row["model"])]
        cells += [_cell(row, m, 3) for m in METRICS]
        cells += [_cell(row, k, 1) for k in ("fit_s", "predict_s")]
        cells.append(_cell(row, "rate", 0))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("protocols", nargs="*", default=["cdnow_39w", "cdnow_13w"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--params", type=json.loads, default=None)
    parser.add_argument("--inner", action="store_true")
    parser.add_argument("--references", default="btyd,lifetimes")
    parser.add_argument("--json", type=Path, default=None, help="append the rows here")
    args = parser.parse_args()
    references = tuple(r for r in args.references.split(",") if r)
    parts = []
    for key in args.protocols:
        rows = run(
            key,
            args.threads,
            args.epochs,
            seeds=args.seeds,
            params=args.params,
            inner=args.inner,
            references=references,
        )
        parts.append(table(key, rows, args.threads, args.inner))
        if args.json:
            with args.json.open("a", encoding="utf-8") as out:
                for row in rows:
                    record = {"protocol": key, "inner": args.inner, "params": args.params, **row}
                    out.write(json.dumps(record) + "\n")
    text = "\n".join(parts)
    out = INNER_OUT if set(args.protocols) <= set(INNER) else OUT
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
