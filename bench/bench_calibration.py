"""Evidence for btyd_cal: where plain BTYD errs by customer type, and what the factor does.

Part 1 (what the design was chosen on): for every protocol, at the inner window auto uses
(inside the training data), BTYD's forecast against the actual spend by repeat purchase
days, then plain btyd against btyd_cal.

Part 1b: the ridge penalty's default, on the same inner windows and on simulated stores of
300, 1,000 and 4,000 customers (where BTYD's assumptions hold by construction, so any
factor only fits noise).

Part 2 (post hoc, on the test period of Online Retail 180d): normalized Gini of ranking
signals, of geometric blends of btyd and the spend-rate baseline, and of an oracle: LightGBM
trained on the test period's own outcomes (5-fold cross-validated) from every tabular feature
plus both forecasts. It shows where the baseline's ranking stands.

Writes a markdown snippet to stdout and bench/out/calibration.md.
Usage: python bench/bench_calibration.py
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
import pandas as pd

from ltvcast.data.purchases import horizon_labels
from ltvcast.data.schemas import CUSTOMER_ID, CustomerData
from ltvcast.data.synthetic import simulate_store
from ltvcast.data.validate import load_customer_data
from ltvcast.evaluation.backtest import backtest, default_cutoff
from ltvcast.evaluation.metrics import normalized_gini
from ltvcast.features.rfm import rfm_summary
from ltvcast.features.tabular import ProfileEncoder, tabular_features
from ltvcast.features.windows import inner_window
from ltvcast.models.base import Forecaster
from ltvcast.models.baseline import SpendRateForecaster
from ltvcast.models.btyd import BTYDForecaster
from ltvcast.models.btyd_cal import CalibratedBTYDForecaster
from ltvcast.timeframe import Horizon, parse_horizon

from protocols import PROTOCOLS, write_section

OUT = Path(__file__).resolve().parent / "out" / "calibration.md"
SEGMENTS = ((0, 0, "0"), (1, 2, "1-2"), (3, 7, "3-7"), (8, None, "8+"))


def _forecast(
    model: Forecaster, data: CustomerData, cutoff: pd.Timestamp, horizon: Horizon
) -> pd.Series:
    out = model.fit(data, cutoff, horizon).predict(data, cutoff)
    return out.set_index(CUSTOMER_ID)["predicted_value"]


def _scores(actual: np.ndarray, predicted: np.ndarray) -> str:
    return (
        f"{normalized_gini(actual, predicted):.3f} | {np.abs(actual - predicted).mean():,.2f} | "
        f"{predicted.sum() / actual.sum() - 1:+.1%}"
    )


def inner_rows(key: str) -> list[str]:
    """Segment ratios and the btyd / btyd_cal comparison at ``key``'s inner window."""
    data, as_of, horizon = PROTOCOLS[key].load()
    window = inner_window(data.first_timestamp(), as_of, horizon)
    if window is None:
        return []
    cutoff, inner = window
    data = data.until(as_of)
    customers = data.until(cutoff).customers()
    actual = horizon_labels(data.transactions, customers, cutoff, inner.end(cutoff))["value"]
    btyd = BTYDForecaster()
    plain = _forecast(btyd, data, cutoff, inner).reindex(customers)
    dropout = btyd.bgnbd_.params_["a"]
    cal = _forecast(CalibratedBTYDForecaster(), data, cutoff, inner).reindex(customers)
    repeat = rfm_summary(data.transactions, cutoff)["frequency"].reindex(customers)
    ratios = []
    for low, high, label in SEGMENTS:
        rows = (repeat >= low) & (repeat <= (np.inf if high is None else high))
        ratios.append(f"{label}: {actual[rows].sum() / plain[rows].sum():.2f}")
    a = actual.to_numpy()
    return [
        f"| {PROTOCOLS[key].title.split(':')[0]} | {cutoff:%Y-%m-%d} + {inner.describe()} | "
        f"{dropout:.2g} | {', '.join(ratios)} | {_scores(a, plain.to_numpy())} | "
        f"{_scores(a, cal.to_numpy())} |"
    ]


RIDGES = (0.0, 10.0, 50.0, 200.0)


def _ridge_row(
    name: str, data: CustomerData, cutoff: pd.Timestamp, horizon: Horizon, end: pd.Timestamp | None
) -> str:
    models: list[Forecaster] = [BTYDForecaster()]
    models += [CalibratedBTYDForecaster(calibration_ridge=r) for r in RIDGES]
    table = backtest(data, cutoff, horizon, models, end=end).table()
    cells = [
        f"{g:.3f} / {m:,.2f}" for g, m in zip(table["normalized_gini"], table["mae"], strict=True)
    ]
    return f"| {name} | " + " | ".join(cells) + " |"


def ridge_rows() -> list[str]:
    """Gini / MAE of btyd and of btyd_cal for each ridge in :data:`RIDGES`."""
    rows = []
    for key, protocol in PROTOCOLS.items():
        data, as_of, horizon = protocol.load()
        window = inner_window(data.first_timestamp(), as_of, horizon)
        if window is not None:
            rows.append(_ridge_row(f"{key}, inner", data, *window, end=as_of))
    for customers, seed in ((300, 1), (1000, 2), (4000, 0)):
        store = simulate_store(customers, random_state=seed)
        data, _ = load_customer_data(store.transactions, store.events, store.profiles)
        horizon = parse_horizon("90d")
        rows.append(
            _ridge_row(
                f"simulated, {customers:,}", data, default_cutoff(data, horizon), horizon, None
            )
        )
    return rows


def ceiling_rows(key: str) -> list[str]:
    """Gini of ranking signals on ``key``'s test period (post hoc)."""
    data, cutoff, horizon = PROTOCOLS[key].load()
    customers = data.until(cutoff).customers()
    actual = horizon_labels(data.transactions, customers, cutoff, horizon.end(cutoff))
    a = actual["value"].to_numpy()
    btyd = _forecast(BTYDForecaster(), data, cutoff, horizon).reindex(customers).to_numpy()
    base = _forecast(SpendRateForecaster(), data, cutoff, horizon).reindex(customers).to_numpy()
    cal = _forecast(CalibratedBTYDForecaster(), data, cutoff, horizon).reindex(customers)
    past = data.until(cutoff).transactions
    age_days = (cutoff - past["timestamp"]).dt.total_seconds().to_numpy() / 86400.0
    signals = {
        "total past spend": rfm_summary(past, cutoff)["total_value"]
        .reindex(customers)
        .fillna(0.0)
        .clip(lower=0.0)
        .to_numpy(),
        "btyd": btyd,
        "btyd_cal": cal.to_numpy(),
        "baseline": base,
    }
    for half_life in (30, 90, 180):
        weighted = past["amount"].to_numpy() * 0.5 ** (age_days / half_life)
        spend = pd.Series(weighted).groupby(past[CUSTOMER_ID].to_numpy()).sum()
        signals[f"spend, half-life {half_life} d"] = (
            spend.reindex(customers).fillna(0.0).clip(lower=0.0).to_numpy()
        )
    for w in (0.25, 0.5, 0.75):
        signals[f"btyd^{w} x baseline^{1 - w}"] = (btyd + 1e-9) ** w * (base + 1e-9) ** (1 - w)
    signals["oracle: LightGBM fitted on the test outcomes (5-fold CV)"] = _oracle(
        data, cutoff, a, btyd, base
    )
    return [f"| {name} | {normalized_gini(a, s):.3f} |" for name, s in signals.items()]


def _oracle(
    data: CustomerData,
    cutoff: pd.Timestamp,
    actual: np.ndarray,
    btyd: np.ndarray,
    base: np.ndarray,
) -> np.ndarray:
    """Out-of-fold forecasts of a model trained on the outcomes it is scored on."""
    import lightgbm as lgb

    past = data.until(cutoff)
    encoder = None if past.profiles is None else ProfileEncoder().fit(past.profiles)
    features = tabular_features(data, cutoff, encoder)
    features["log1p_btyd"], features["log1p_baseline"] = np.log1p(btyd), np.log1p(base)
    target = actual.clip(min=0.0)
    fold = np.random.default_rng(0).integers(0, 5, len(target))
    params = {
        "objective": "tweedie",
        "tweedie_variance_power": 1.3,
        "learning_rate": 0.03,
        "num_leaves": 4,
        "min_data_in_leaf": 30,
        "num_threads": 2,
        "seed": 0,
        "verbose": -1,
    }
    out = np.zeros(len(target))
    for k in range(5):
        train = fold != k
        booster = lgb.train(params, lgb.Dataset(features[train], target[train]), 100)
        out[~train] = booster.predict(features[~train])
    return out


def main() -> None:
    lines = [
        "## btyd_cal: evidence (`python bench/bench_calibration.py`)\n",
        "Inner windows (the ones auto uses, inside the training data). MBG/NBD a: the fitted "
        "dropout parameter (a -> 0: no dropout). Ratio = actual spend / BTYD forecast, by "
        "repeat purchase days at the cutoff; then Gini | MAE | total error of plain btyd and "
        "of btyd_cal.\n",
        "| data | window | MBG/NBD a | actual / btyd by repeat days | btyd Gini | MAE "
        "| total err | btyd_cal Gini | MAE | total err |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for key in PROTOCOLS:
        lines += inner_rows(key)
    lines += [
        "",
        "Ridge penalty of the factor (in customers; the default is 50): Gini / MAE.",
        "",
        "| data | btyd | " + " | ".join(f"btyd_cal, ridge {r:g}" for r in RIDGES) + " |",
        "|---" * (len(RIDGES) + 2) + "|",
        *ridge_rows(),
    ]
    lines += [
        "",
        "Post hoc, Online Retail 180d test period: normalized Gini of ranking signals.",
        "",
        "| signal | Gini |",
        "|---|---|",
        *ceiling_rows("online_retail_180d"),
    ]
    text = "\n".join(lines) + "\n"
    write_section(text, OUT)


if __name__ == "__main__":
    main()
