"""Gradient-boosted trees (LightGBM) on tabular features, trained on rolling backtest origins.

Training set: for each origin ``o`` of :func:`~ltvcast.features.windows.backtest_origins`,
the features of :func:`~ltvcast.features.tabular.tabular_features` at ``o`` and the labels of
the window ``(o, o + horizon]`` (:func:`~ltvcast.data.purchases.horizon_labels`), stacked,
so the same customer appears at several origins and the trees learn LTV(t) at many t.

Three boosters are fitted, each with a log or logit link:

- ``active``: binary, P(at least one purchase day in the horizon) -> ``p_active``;
- ``purchases``: Poisson, expected purchase days -> ``predicted_purchases`` (floored at
  ``p_active``, since E[N] >= P(N >= 1));
- the value model, by objective:

  * ``"two_part"``: ``spend``, a gamma regression of E[value | buyer] on the rows with a
    purchase and positive spend; ``predicted_value = p_active * spend``. A hurdle model for
    the zero-inflated target (Cragg 1971); the gamma log link estimates the conditional
    *mean* directly, with no retransformation bias of a log-target regression.
  * ``"tweedie"``: one compound Poisson-gamma regression of the value (Zhou, Qian & Yang 2022,
    "Tweedie gradient boosting for extremely unbalanced zero-inflated data").

  Negative label values (net returns) are clipped to zero.

Choices made on the training data only (an inner backtest on the latest origin, whose label
window ends at the as-of time): for every window of ``m`` origins before the latest one and
every objective (both with ``objective="auto"``, the default), probe boosters are trained on
those ``m`` origins, early-stopped on the latest, and scored by the MAE of their value
forecast there. The lowest MAE picks the objective and ``m``; the final boosters are trained
on the latest ``m + 1`` origins (the probe's window plus the validation origin, so the most
recent labels are never dropped) with the probe's round counts. With a single origin there
is no validation: ``"two_part"`` (for ``"auto"``) and ``n_estimators`` rounds.

Why the window is chosen rather than always stacking every origin: on a closed, ageing
cohort (CDNOW) or a seasonal one, older windows hold a higher activity level at the same
features, and stacking them biased the forecast up (+18% total value on CDNOW 13w); on
stationary data more windows help. ``monotone=True`` (default) constrains the value,
purchase and activity boosters to grow with purchase counts and spend and to fall with the
days since the last purchase (:func:`~ltvcast.features.tabular.value_monotonicity`): on
general grounds, and because the customers more dormant than any training customer (the
majority of an ageing cohort at the as-of time) otherwise fall into a leaf fitted on livelier
ones. The measurements are in ``bench/gbdt_study.md``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import lightgbm as lgb
import numpy as np
import pandas as pd
from numpy.typing import NDArray

from ltvcast.data.purchases import horizon_labels
from ltvcast.data.schemas import CUSTOMER_ID, CustomerData
from ltvcast.exceptions import ConfigError, InsufficientDataError
from ltvcast.features.tabular import (
    DEFAULT_WINDOWS,
    ProfileEncoder,
    event_type_vocabulary,
    tabular_features,
    value_monotonicity,
)
from ltvcast.features.windows import backtest_origins
from ltvcast.models.base import Forecaster
from ltvcast.timeframe import Horizon

FloatArray = NDArray[np.float64]
OBJECTIVES = ("two_part", "tweedie")
AUTO = "auto"
_LGB_OBJECTIVE = {"active": "binary", "purchases": "poisson", "spend": "gamma", "value": "tweedie"}
#: The boosters whose raw scores make each objective's value forecast.
_VALUE_KINDS = {"two_part": ("active", "spend"), "tweedie": ("value",)}


def _targets(labels: pd.DataFrame) -> dict[str, pd.Series]:
    """Each booster's target from ``horizon_labels`` rows (NaN: the row is not its sample)."""
    bought = labels["purchases"] > 0
    return {
        "active": bought.astype(np.float64),
        "purchases": labels["purchases"],
        "spend": labels["value"].where(bought & (labels["value"] > 0)),
        "value": labels["value"].clip(lower=0.0),
    }


def _raw(booster: lgb.Booster, x: FloatArray, contrib: bool = False) -> FloatArray:
    out: FloatArray = np.asarray(
        booster.predict(x, raw_score=True, pred_contrib=contrib), np.float64
    )
    return out


def _value(objective: str, boosters: Mapping[str, lgb.Booster], x: FloatArray) -> FloatArray:
    """The value forecast of ``objective`` from its boosters (:data:`_VALUE_KINDS`)."""
    if objective == "tweedie":
        return np.exp(_raw(boosters["value"], x))
    p_active = 1.0 / (1.0 + np.exp(-_raw(boosters["active"], x)))
    return p_active * np.exp(_raw(boosters["spend"], x))


def _secant(
    f: Callable[[FloatArray], FloatArray],
    df: Callable[[FloatArray], FloatArray],
    s: FloatArray,
    b: FloatArray,
) -> FloatArray:
    """Slope ``(f(s) - f(b)) / (s - b)``, with ``df(b)`` where ``s == b``."""
    d = s - b
    small = np.abs(d) < 1e-10
    return np.where(small, df(b), (f(s) - f(b)) / np.where(small, 1.0, d))


def _log_sigmoid(x: FloatArray) -> FloatArray:
    return -np.logaddexp(0.0, -x)


def _d_log_sigmoid(x: FloatArray) -> FloatArray:
    return 1.0 - 1.0 / (1.0 + np.exp(-x))


class _Probes:
    """Early-stopped probe boosters: trained on the ``m`` origins before the latest one,
    validated on the latest (every label window of a probe ends by the as-of time).

    Probes are cached by (booster kind, ``m``): the two-part and tweedie candidates share the
    ``active`` probe, and the final boosters reuse the chosen window's round counts.
    """

    def __init__(
        self,
        model: GBDTForecaster,
        x: pd.DataFrame,
        targets: dict[str, pd.Series],
        row_origin: NDArray[np.int64],
    ) -> None:
        self.model, self.x, self.targets, self.row_origin = model, x, targets, row_origin
        self.latest = int(row_origin.max())
        self.fitted: dict[tuple[str, int], tuple[lgb.Booster, int] | None] = {}

    def fit(self, kind: str, m: int) -> tuple[lgb.Booster, int] | None:
        """The probe of ``kind`` on ``m`` origins and its best round count (``None`` when its
        training or validation rows are empty)."""
        if (kind, m) not in self.fitted:
            target = self.targets[kind]
            has = target.notna().to_numpy()
            origin = self.row_origin
            train = has & (origin >= self.latest - m) & (origin < self.latest)
            valid = has & (origin == self.latest)
            result = None
            if train.any() and valid.any():
                model = self.model
                booster = lgb.train(
                    model._params(kind),
                    model._dataset(self.x[train], target[train]),
                    num_boost_round=model.n_estimators,
                    valid_sets=[model._dataset(self.x[valid], target[valid])],
                    callbacks=[lgb.early_stopping(model.early_stopping_rounds, verbose=False)],
                )
                result = booster, max(int(booster.best_iteration), 1)
            self.fitted[kind, m] = result
        return self.fitted[kind, m]

    def rounds(self, kind: str, m: int) -> int | None:
        """Best round count of the probe of ``kind`` on ``m`` origins."""
        probe = self.fit(kind, m)
        return None if probe is None else probe[1]

    def scores(self, value: pd.Series, objectives: Sequence[str]) -> dict[str, float]:
        """MAE of each ``"objective/m"`` candidate's value forecast on the latest origin
        (``value``: the net spend of every row); empty with a single origin."""
        valid = self.row_origin == self.latest
        x = self.x[valid].to_numpy(np.float64)
        actual = value[valid].to_numpy(np.float64)
        out = {}
        for m in range(1, self.latest + 1):
            for objective in objectives:
                probes = {kind: self.fit(kind, m) for kind in _VALUE_KINDS[objective]}
                if any(probe is None for probe in probes.values()):
                    continue
                boosters = {kind: probe[0] for kind, probe in probes.items() if probe}
                predicted = _value(objective, boosters, x)
                out[f"{objective}/{m}"] = float(np.mean(np.abs(actual - predicted)))
        return out


class GBDTForecaster(Forecaster):
    """LightGBM forecaster of horizon value, purchases and P(active) from tabular features.

    Parameters
    ----------
    objective
        ``"auto"`` (chosen by the inner backtest of the module doc), ``"two_part"``
        (P(buy) x E[value | buy]) or ``"tweedie"``.
    n_estimators
        Maximum boosting rounds per booster (early stopping picks fewer).
    learning_rate, num_leaves, min_child_samples, feature_fraction
        LightGBM tree parameters (``min_child_samples`` is ``min_data_in_leaf``).
    max_origins
        Most backtest origins stacked into the training set (the inner backtest chooses how
        many, see the module doc).
    tweedie_variance_power
        Tweedie power in (1, 2) for the tweedie objective; 1.5 (LightGBM's default) had a
        lower inner-backtest MAE than 1.3 on CDNOW, Online Retail and the simulated store.
    early_stopping_rounds
        Rounds without improvement on the latest origin before stopping.
    windows_days
        Trailing windows of the features.
    profile_top_k
        Categories kept per profile column (the rest are "other").
    monotone
        Monotone constraints on the purchase and spend features (see the module doc).
    num_threads
        LightGBM threads. One by default: on small machines LightGBM's OpenMP threads spin
        against any other busy process, and a multi-threaded fit then runs many times
        slower than a single-threaded one.
    random_state
        Seed; training is deterministic for a given seed and thread count.

    Attributes
    ----------
    objective_, n_origins_
        The objective and the number of origins (latest first) the final boosters learnt from.
    validation_mae_
        Inner-backtest MAE of each ``"objective/m"`` candidate (empty with one origin).
    """

    name: ClassVar[str] = "gbdt"

    def __init__(
        self,
        objective: str = AUTO,
        n_estimators: int = 500,
        learning_rate: float = 0.05,
        num_leaves: int = 31,
        min_child_samples: int = 50,
        feature_fraction: float = 0.9,
        max_origins: int = 4,
        tweedie_variance_power: float = 1.5,
        early_stopping_rounds: int = 50,
        windows_days: Sequence[int] = DEFAULT_WINDOWS,
        profile_top_k: int = 20,
        monotone: bool = True,
        num_threads: int = 1,
        random_state: int = 0,
    ) -> None:
        self.objective = objective
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.feature_fraction = feature_fraction
        self.max_origins = max_origins
        self.tweedie_variance_power = tweedie_variance_power
        self.early_stopping_rounds = early_stopping_rounds
        self.windows_days = windows_days
        self.profile_top_k = profile_top_k
        self.monotone = monotone
        self.num_threads = num_threads
        self.random_state = random_state

    # ------------------------------------------------------------------ fitting
    def _fit(self, data: CustomerData, as_of: pd.Timestamp, horizon: Horizon) -> None:
        if self.objective not in (AUTO, *OBJECTIVES):
            raise ConfigError(
                f"GBDTForecaster objective must be one of {AUTO}, {', '.join(OBJECTIVES)}; "
                f"got {self.objective!r}"
            )
        if self.max_origins < 1:
            raise ConfigError(f"GBDTForecaster max_origins must be >= 1; got {self.max_origins!r}")
        first = data.first_timestamp()
        origins = backtest_origins(first, as_of, horizon, max_origins=self.max_origins)
        if not origins:
            span = (as_of - first) / pd.Timedelta(days=1)
            raise InsufficientDataError(
                f"gbdt needs at least one horizon ({horizon.describe()}) plus 28 days of history "
                f"to build a training label; the data span {span:.0f} days "
                f"({first.date()} .. {as_of.date()}); use --model btyd, which extrapolates"
            )
        training = data.until(origins[-1])
        self.event_types_: tuple[str, ...] = event_type_vocabulary(training.events)
        self.profile_encoder_: ProfileEncoder | None = None
        if data.profiles is not None:
            known = data.profiles[CUSTOMER_ID].isin(training.customers())
            self.profile_encoder_ = ProfileEncoder(self.profile_top_k).fit(data.profiles[known])

        frames, labels, origin_of_row = [], [], []
        for number, origin in enumerate(origins):
            features = self._features(data, origin)
            frames.append(features)
            labels.append(
                horizon_labels(data.transactions, features.index, origin, horizon.end(origin))
            )
            origin_of_row.append(np.full(len(features), number))
        x_all = pd.concat(frames, ignore_index=True)
        y_all = pd.concat(labels, ignore_index=True)
        self.feature_names_: list[str] = list(x_all.columns)
        self.categorical_features_: list[str] = (
            [] if self.profile_encoder_ is None else self.profile_encoder_.categorical_features
        )
        if not ((y_all["purchases"] > 0) & (y_all["value"] > 0)).any():
            raise InsufficientDataError(
                f"gbdt found no purchase with positive spend in any of its {len(origins)} label "
                f"windows (origins {', '.join(str(o.date()) for o in origins)}); "
                "use --model btyd"
            )
        row_origin = np.concatenate(origin_of_row)
        targets = _targets(y_all)
        probes = _Probes(self, x_all, targets, row_origin)
        objectives = OBJECTIVES if self.objective == AUTO else (self.objective,)
        self.validation_mae_: dict[str, float] = probes.scores(y_all["value"], objectives)
        if self.validation_mae_:
            best = min(self.validation_mae_, key=self.validation_mae_.__getitem__)
            objective, window = best.split("/")
            # the probe's window plus the validation origin: the latest labels are kept
            self.objective_, self.n_origins_ = objective, int(window) + 1
        else:  # one origin (or nothing to validate on): no choice, no early stopping
            self.objective_ = objectives[0]
            self.n_origins_ = len(origins)
        final = row_origin >= len(origins) - self.n_origins_
        self.boosters_: dict[str, lgb.Booster] = {}
        self.best_iterations_: dict[str, int] = {}
        for kind in ("active", "purchases", *_VALUE_KINDS[self.objective_]):
            rounds = probes.rounds(kind, self.n_origins_ - 1) if self.validation_mae_ else None
            keep = final & targets[kind].notna().to_numpy()
            self.best_iterations_[kind] = rounds or self.n_estimators
            self.boosters_[kind] = lgb.train(
                self._params(kind),
                self._dataset(x_all[keep], targets[kind][keep]),
                num_boost_round=self.best_iterations_[kind],
            )
        self.origins_: list[pd.Timestamp] = origins[-self.n_origins_ :]
        self.n_training_rows_ = int(final.sum())

    def _params(self, kind: str) -> dict[str, Any]:
        params: dict[str, Any] = {
            "objective": _LGB_OBJECTIVE[kind],
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "min_data_in_leaf": self.min_child_samples,
            "feature_fraction": self.feature_fraction,
            "deterministic": True,
            "force_row_wise": True,
            "num_threads": self.num_threads,
            "seed": self.random_state,
            "verbosity": -1,
        }
        if kind == "value":
            params["tweedie_variance_power"] = self.tweedie_variance_power
        if self.monotone:
            params["monotone_constraints"] = value_monotonicity(self.feature_names_)
        return params

    def _dataset(self, x: pd.DataFrame, y: pd.Series) -> lgb.Dataset:
        return lgb.Dataset(
            x.to_numpy(np.float64),
            label=y.to_numpy(np.float64),
            feature_name=self.feature_names_,
            categorical_feature=self.categorical_features_,
            free_raw_data=True,
        )

    # --------------------------------------------------------------- predicting
    def _features(self, data: CustomerData, as_of: pd.Timestamp) -> pd.DataFrame:
        return tabular_features(
            data, as_of, self.profile_encoder_, self.windows_days, self.event_types_
        )

    def _design(self, data: CustomerData, as_of: pd.Timestamp) -> pd.DataFrame:
        """Features at ``as_of`` in the training column order (absent columns are NaN)."""
        return self._features(data, as_of).reindex(columns=self.feature_names_)

    def _raw(self, kind: str, x: FloatArray, contrib: bool = False) -> FloatArray:
        return _raw(self.boosters_[kind], x, contrib)

    def _predict(self, data: CustomerData, as_of: pd.Timestamp) -> pd.DataFrame:
        features = self._design(data, as_of)
        x = features.to_numpy(np.float64)
        p_active = 1.0 / (1.0 + np.exp(-self._raw("active", x)))
        purchases = np.maximum(np.exp(self._raw("purchases", x)), p_active)
        value = _value(self.objective_, self.boosters_, x)
        return pd.DataFrame(
            {
                CUSTOMER_ID: features.index,
                "predicted_value": value,
                "predicted_purchases": purchases,
                "p_active": p_active,
            }
        )

    def explain(self, data: CustomerData, as_of: pd.Timestamp) -> pd.DataFrame:
        """Per-customer feature contributions to ``predicted_value``, in value units.

        LightGBM's tree SHAP (``pred_contrib``) is additive in the raw (link) space. The map to
        value units is exact and keeps each contribution's sign:

        1. log space. Tweedie: the raw score already is log value. Two-part: log value =
           log sigmoid(s_active) + s_spend; the classifier's contributions are scaled by the
           secant slope of log sigmoid between its bias and its score, so they sum to
           log sigmoid(s) - log sigmoid(bias); the spend contributions are added as they are.
        2. value space. Every log-space contribution ``phi_j`` is multiplied by the secant slope
           of exp between the log base ``L0`` and the log prediction ``L``,
           ``(exp(L) - exp(L0)) / (L - L0)``; ``base_value = exp(L0)``.

        Each row (drivers + ``base_value``) therefore sums to ``predicted_value``.

        Returns
        -------
        DataFrame
            Indexed by ``customer_id``; one column per feature plus ``base_value``.
        """
        self.check_fitted()
        features = self._design(data, as_of)
        x = features.to_numpy(np.float64)
        if self.objective_ == "tweedie":
            phi = self._raw("value", x, contrib=True)
            log_phi, log_base = phi[:, :-1], phi[:, -1]
        else:
            active = self._raw("active", x, contrib=True)
            spend = self._raw("spend", x, contrib=True)
            bias = active[:, -1]
            slope = _secant(_log_sigmoid, _d_log_sigmoid, active.sum(axis=1), bias)
            log_phi = active[:, :-1] * slope[:, None] + spend[:, :-1]
            log_base = _log_sigmoid(bias) + spend[:, -1]
        log_value = log_base + log_phi.sum(axis=1)
        scale = _secant(np.exp, np.exp, log_value, log_base)
        out = pd.DataFrame(log_phi * scale[:, None], index=features.index, columns=features.columns)
        out["base_value"] = np.exp(log_base)
        return out

    def feature_importance(self) -> pd.Series:
        """Total split gain of each feature in the value model(s), as shares summing to 1.

        Two-part: the mean of the classifier's and the spend regressor's shares (a booster
        without any split, e.g. on a tiny training set, is left out; all zero when none split).
        """
        self.check_fitted()
        kinds = ["value"] if self.objective_ == "tweedie" else ["active", "spend"]
        gains = [self.boosters_[kind].feature_importance(importance_type="gain") for kind in kinds]
        shares = [gain / gain.sum() for gain in gains if gain.sum() > 0]
        values = np.mean(shares, axis=0) if shares else np.zeros(len(self.feature_names_))
        importance = pd.Series(values, index=self.feature_names_, name="gain")
        return importance.sort_values(ascending=False, kind="stable")

    # -------------------------------------------------------------- persistence
    def save_state(self, directory: Path) -> dict[str, Any]:
        """Write each booster as LightGBM text (``gbdt_<kind>.txt``); return the JSON state."""
        self.check_fitted()
        files = {}
        for kind, booster in self.boosters_.items():
            files[kind] = f"gbdt_{kind}.txt"
            booster.save_model(str(Path(directory) / files[kind]))
        return {
            "boosters": files,
            "objective": self.objective_,
            "n_origins": self.n_origins_,
            "validation_mae": self.validation_mae_,
            "best_iterations": self.best_iterations_,
            "feature_names": self.feature_names_,
            "categorical_features": self.categorical_features_,
            "event_types": list(self.event_types_),
            "profile_encoder": None
            if self.profile_encoder_ is None
            else self.profile_encoder_.to_dict(),
            "origins": [o.isoformat() for o in self.origins_],
            "n_training_rows": self.n_training_rows_,
        }

    def load_state(self, directory: Path, state: dict[str, Any]) -> None:
        """Read the boosters and encoders written by :meth:`save_state`."""
        self.boosters_ = {
            kind: lgb.Booster(model_file=str(self.state_file(directory, name)))
            for kind, name in state["boosters"].items()
        }
        self.objective_ = str(state["objective"])
        self.n_origins_ = int(state["n_origins"])
        self.validation_mae_ = {str(k): float(v) for k, v in state["validation_mae"].items()}
        self.best_iterations_ = {k: int(v) for k, v in state["best_iterations"].items()}
        self.feature_names_ = list(state["feature_names"])
        self.categorical_features_ = list(state["categorical_features"])
        self.event_types_ = tuple(state["event_types"])
        encoder = state["profile_encoder"]
        self.profile_encoder_ = None if encoder is None else ProfileEncoder.from_dict(encoder)
        self.origins_ = [pd.Timestamp(o) for o in state["origins"]]
        self.n_training_rows_ = int(state["n_training_rows"])
