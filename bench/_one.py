"""Run one model on one protocol in a fresh process; print a JSON line with its results.

A fresh process per model makes the peak-memory figure that model's own (plus the data).
Usage: python bench/_one.py PROTOCOL MODEL
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np

from ltvcast.data.purchases import horizon_labels
from ltvcast.evaluation.backtest import backtest
from ltvcast.evaluation.metrics import evaluate
from ltvcast.pipeline import backtest_models

from protocols import PROTOCOLS


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main(protocol_key: str, model: str) -> dict[str, object]:
    protocol = PROTOCOLS[protocol_key]
    data, cutoff, horizon = protocol.load()
    loaded_mb = _peak_mb()
    row: dict[str, object] = {"protocol": protocol_key, "model": model}
    if model.startswith("lifetimes"):
        from lifetimes_reference import REFERENCES, lifetimes_predict

        start = time.perf_counter()
        predictions = lifetimes_predict(data, cutoff, horizon, REFERENCES[model])
        row["fit_s"] = time.perf_counter() - start
        row["predict_s"] = 0.0
        customers = data.until(cutoff).customers()
        labels = horizon_labels(data.transactions, customers, cutoff, horizon.end(cutoff))
        joined = labels.join(predictions.set_index("customer_id"), how="left").fillna(0.0)
        row["metrics"] = evaluate(
            joined["value"].to_numpy(),
            joined["predicted_value"].to_numpy(),
            actual_purchases=joined["purchases"].to_numpy(),
            p_active=joined["p_active"].to_numpy(),
        )
        row["customers"] = len(customers)
    else:
        if model == "plain_lgbm":
            from plain_lightgbm import PlainLightGBM

            result = backtest(data, cutoff, horizon, [PlainLightGBM()]).results[0]
        else:
            result = backtest_models(data, cutoff, horizon, [model]).results[0]
        row["fit_s"] = result.fit_seconds
        row["predict_s"] = result.predict_seconds
        row["metrics"] = result.metrics
        row["error"] = result.error
        row["reason"] = result.note
    row["peak_mb"] = _peak_mb()
    row["data_mb"] = loaded_mb
    row["cutoff"] = str(cutoff)
    row["horizon"] = str(horizon)
    return row


if __name__ == "__main__":
    out = main(sys.argv[1], sys.argv[2])
    print(json.dumps(out, default=lambda v: None if isinstance(v, float) and np.isnan(v) else v))
