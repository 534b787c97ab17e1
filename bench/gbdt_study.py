"""Ablations of ``gbdt`` against the ``plain_lgbm`` reference, in one process per protocol.

Usage::

    python bench/gbdt_study.py PROTOCOL [VARIANT ...]

``PROTOCOL`` is a key of :data:`protocols.PROTOCOLS` or ``simulated_90d`` (the store
simulator, 4,000 customers, events and profiles, as in bench_ablation.py); a ``@inner``
suffix moves the cutoff one horizon back (the inner backtest, all inside the training data).
A ``VARIANT`` is ``name:key=value,key=value`` of :class:`~ltvcast.models.gbdt.GBDTForecaster`
hyperparameters (``name:`` alone is the default model). Prints one markdown row per model:
normalized Gini, MAE, total value error, fit seconds and, for gbdt, the objective and
window (origins stacked) it chose with each candidate's validation MAE. The evidence in
bench/gbdt_study.md comes from this script.
"""

from __future__ import annotations

import ast
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from plain_lightgbm import PlainLightGBM

from ltvcast.data.schemas import CUSTOMER_ID
from ltvcast.data.synthetic import simulate_store
from ltvcast.data.validate import load_customer_data
from ltvcast.evaluation.backtest import backtest, default_cutoff
from ltvcast.evaluation.metrics import evaluate
from ltvcast.exceptions import InsufficientDataError
from ltvcast.models.gbdt import GBDTForecaster
from ltvcast.timeframe import parse_horizon

from protocols import PROTOCOLS


def _variant(text: str) -> tuple[str, GBDTForecaster]:
    name, _, spec = text.partition(":")
    params = {}
    for item in filter(None, spec.split(",")):
        key, _, value = item.partition("=")
        try:
            params[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            params[key] = value
    return name, GBDTForecaster(**params)


def main(protocol: str, variants: list[str]) -> None:
    if protocol == "simulated_90d":
        store = simulate_store(4000, random_state=0)
        data, _ = load_customer_data(store.transactions, store.events, store.profiles)
        horizon = parse_horizon("90d")
        cutoff = default_cutoff(data, horizon)
    else:
        data, cutoff, horizon = PROTOCOLS[protocol.removesuffix("@inner")].load()
    if protocol.endswith("@inner"):  # the backtest one horizon earlier, inside the training data
        cutoff = horizon.start(cutoff)
    reference = backtest(data, cutoff, horizon, [PlainLightGBM()])
    actuals = reference.actuals
    train = data.until(cutoff)
    print(f"\n{protocol}: cutoff {cutoff:%Y-%m-%d}, horizon {horizon}\n")
    print("| model | Gini | MAE | total err | fit s | chosen (validation MAE) |")
    print("|---|---|---|---|---|---|")
    rows = [("plain_lgbm", reference.results[0].metrics, 0.0, "")]
    for name, model in (_variant(v) for v in variants or ["gbdt:"]):
        started = time.perf_counter()
        try:
            model.fit(train, cutoff, horizon)
        except InsufficientDataError as err:
            print(f"| {name} | skipped: {str(err)[:70]} | | | | |")
            continue
        seconds = time.perf_counter() - started
        predicted = model.predict(train, cutoff).set_index(CUSTOMER_ID).reindex(actuals.index)
        metrics = evaluate(actuals["value"].to_numpy(), predicted["predicted_value"].to_numpy())
        scores = ", ".join(f"{k} {v:.3f}" for k, v in model.validation_mae_.items())
        rows.append((name, metrics, seconds, f"{model.objective_}/{model.n_origins_}: {scores}"))
    for name, m, seconds, chosen in rows:
        print(
            f"| {name} | {m['normalized_gini']:.3f} | {m['mae']:.3f} | "
            f"{m['total_value_error']:+.3f} | {seconds:.1f} | {chosen} |"
        )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
