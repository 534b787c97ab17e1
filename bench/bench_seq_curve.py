"""Benchmark the ``seq`` model's horizon curve: accuracy at each horizon, and scoring speed.

Usage: ``python bench/bench_seq_curve.py [PROTOCOL ...] [--horizons 30d,60d,90d]
[--shift DAYS] [--threads N]`` (default: Complete Journey and Online Retail, 90 days held
out). For each protocol, ``seq`` (defaults) and ``btyd_cal`` are fitted at the cutoff for the
protocol's horizon (``--shift``: the cutoff moved that many days earlier, so longer
horizons have labels); each curve point ``value_h`` is scored against the spend in
``(cutoff, cutoff + h]``, next to ``btyd_cal``'s curve and to the straight line through the
seq model's own forecast (``predicted_value * h / horizon``). Only horizons whose window ends
inside the data are scored. Scoring speed: customers per second of ``predict`` and of
``predict_curve`` (the best of three calls). Writes ``bench/out/seq_curve.md``.
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
from ltvcast.evaluation.metrics import evaluate
from ltvcast.models.btyd_cal import CalibratedBTYDForecaster
from ltvcast.models.seq.estimator import SeqForecaster
from ltvcast.timeframe import parse_horizons

from protocols import PROTOCOLS

OUT = Path(__file__).resolve().parent / "out" / "seq_curve.md"


def _best(call: Any) -> tuple[float, Any]:
    """The best time of three calls, and the last result."""
    timings, out = [], None
    for _ in range(3):
        start = time.perf_counter()
        out = call()
        timings.append(time.perf_counter() - start)
    return min(timings), out


def run(key: str, spans: str, shift: int, threads: int) -> str:
    """The markdown table of one protocol."""
    data, cutoff, horizon = PROTOCOLS[key].load()
    cutoff = cutoff - pd.Timedelta(days=shift)
    horizons = [h for h in parse_horizons(spans) if h.end(cutoff) <= data.last_timestamp()]
    seq = SeqForecaster(n_threads=threads).fit(data, cutoff, horizon)
    btyd = CalibratedBTYDForecaster().fit(data, cutoff, horizon)
    kept = [h for h in horizons if h.days <= seq.curve_horizons_[-1].days]
    predict_s, pred = _best(lambda: seq.predict(data, cutoff))
    curve_s, curve = _best(lambda: seq.predict_curve(data, cutoff, kept))
    reference = btyd.predict_curve(data, cutoff, kept)
    own = pred.set_index("customer_id")["predicted_value"]
    customers = data.until(cutoff).customers()
    lines = [
        f"### {PROTOCOLS[key].title}: curve from {cutoff:%Y-%m-%d} (seq trained for "
        f"{horizon}; curve horizons {', '.join(map(str, seq.curve_horizons_))}; torch threads "
        f"{threads}, load average {os.getloadavg()[0]:.2f})",
        "",
        "| horizon | seq curve Gini | seq curve MAE | btyd_cal curve Gini | btyd_cal curve MAE "
        "| straight line Gini | straight line MAE |",
        "|---|---|---|---|---|---|---|",
    ]
    for h in kept:
        actual = horizon_labels(data.transactions, customers, cutoff, h.end(cutoff))["value"]
        cells = [str(h)]
        for values in (
            curve[f"value_{h}"],
            reference[f"value_{h}"],
            own * (h.days / horizon.days),
        ):
            scores = evaluate(actual.to_numpy(), values.reindex(actual.index).fillna(0).to_numpy())
            cells += [f"{scores['normalized_gini']:.3f}", f"{scores['mae']:.2f}"]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        f"Scoring {len(pred):,} customers: predict {len(pred) / predict_s:,.0f}/s, "
        f"predict_curve ({len(kept)} horizons) {len(pred) / curve_s:,.0f}/s.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "protocols", nargs="*", default=["completejourney_90d", "online_retail_90d"]
    )
    parser.add_argument("--horizons", default="30d,60d,90d,180d,1y")
    parser.add_argument("--shift", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    text = "\n".join(run(k, args.horizons, args.shift, args.threads) for k in args.protocols)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
