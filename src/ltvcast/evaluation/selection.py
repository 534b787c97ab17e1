"""``auto``: pick or blend the models per dataset by an inner backtest, and say why.

The inner backtest runs strictly inside the training data: its cutoff is ``as_of - horizon``
when at least 28 days of history precede it. A shorter history (CDNOW's 39-week calibration
with a 39-week horizon) gets the longest inner horizon that leaves it both halves of the
history (at most ``history - 28 days``), and only the candidates able to train there compete.

The single best (best ``metric``; near-ties within 1% go to the lower MAE, see
:meth:`~ltvcast.evaluation.backtest.BacktestResult.ranking`) is the reference. With ``blend``,
non-negative weights summing to one are fitted on the scored candidates' inner forecasts
(:mod:`ltvcast.evaluation.blend`); the blend replaces the single best only when, on customers
its weights never saw (out of fold), its MAE beats the single best's by ``blend_margin`` and
its ``metric`` is no worse than the single best's beyond the 1% near-tie. The models used are
refitted on all the data up to ``as_of``; when the single best cannot train there, the
runner-up is tried, and so on (a blend whose member cannot train falls back the same way).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from ltvcast.data.schemas import CUSTOMER_ID, CustomerData
from ltvcast.evaluation.backtest import NEAR_TIE, BacktestResult, backtest
from ltvcast.evaluation.blend import (
    BLEND_MARGIN,
    BlendScorer,
    blend_weights,
    combine,
    combine_explanations,
)
from ltvcast.evaluation.metrics import METRICS
from ltvcast.exceptions import ConfigError, InsufficientDataError
from ltvcast.features.windows import MIN_HISTORY_DAYS, inner_window
from ltvcast.models import registry
from ltvcast.models.base import Forecaster, RFMScorer
from ltvcast.timeframe import Horizon, parse_horizon

#: What auto ranks candidates by, and its guard on the other axis (see :class:`AutoForecaster`).
DEFAULT_METRIC = "normalized_gini"
MAX_MAE_RATIO = 1.05
#: The models auto compares by default: every registered model but ``tenure_mean`` (a
#: reference for the report, never better than the baseline in the benchmarks).
DEFAULT_CANDIDATES = ("baseline", "btyd", "btyd_cal", "pnbd", "bgcnbd", "mbgcnbd", "gbdt", "seq")
#: Picked when no candidate could be scored.
FALLBACK_CHOICE = "btyd"


class AutoForecaster(Forecaster):
    """Choose among ``candidates`` by an inner backtest on ``metric``, or blend them; delegate
    to the models used.

    Parameters
    ----------
    candidates
        Registered model names to compare; ones that cannot be imported or cannot train on the
        history are skipped and named in ``reason_``.
    metric
        A name from :data:`~ltvcast.evaluation.metrics.METRICS`.
    max_mae_ratio
        Guard on the other axis: a candidate whose inner MAE exceeds the best inner MAE by more
        than this factor only wins when no candidate within it can train (a better ranking is
        not worth doubling the error of the values a CRM team budgets with).
    blend
        Whether to try a blend of the candidates (module docstring); ``False`` picks one.
    blend_margin
        Relative out-of-fold MAE gain a blend needs over the single best.
    random_state
        Passed to every candidate that takes one, and seeds the blend's folds.

    Attributes
    ----------
    choice_ : str
        Name of the chosen model, or the blend's members joined by ``+``.
    weights_ : dict of str to float
        Each model used and its weight (one model with weight 1 when none is blended).
    members_ : dict of str to Forecaster
        The models used, fitted on all data up to ``as_of``.
    inner_table_ : DataFrame
        The inner backtest's metrics table (empty when the history allowed none).
    reason_ : str
        One sentence saying what was picked or blended and why.
    """

    name = "auto"

    def __init__(
        self,
        candidates: tuple[str, ...] = DEFAULT_CANDIDATES,
        metric: str = DEFAULT_METRIC,
        max_mae_ratio: float = MAX_MAE_RATIO,
        blend: bool = True,
        blend_margin: float = BLEND_MARGIN,
        random_state: int = 0,
    ) -> None:
        self.candidates = candidates
        self.metric = metric
        self.max_mae_ratio = max_mae_ratio
        self.blend = blend
        self.blend_margin = blend_margin
        self.random_state = random_state

    @property
    def has_quantiles(self) -> bool:  # type: ignore[override]
        """Whether every model used gives value quantiles (``False`` before ``fit``)."""
        members: dict[str, Forecaster] = getattr(self, "members_", {})
        return bool(members) and all(m.has_quantiles for m in members.values())

    @property
    def chosen(self) -> Forecaster:
        """The one model used (``self`` before ``fit``, and for a blend)."""
        members = getattr(self, "members_", {})
        return next(iter(members.values())) if len(members) == 1 else self

    @property
    def selection_reason(self) -> str | None:
        """One sentence: what was picked and on what evidence (``None`` before ``fit``)."""
        return getattr(self, "reason_", None)

    @property
    def rfm_scorer(self) -> RFMScorer | None:
        """The online fast path: the one model's, or for a blend the weighted mean of its
        members' when every member has one (else ``None``)."""
        members = getattr(self, "members_", {})
        scorers = {name: m.rfm_scorer for name, m in members.items()}
        if not scorers or any(s is None for s in scorers.values()):
            return None
        if len(scorers) == 1:
            return next(iter(scorers.values()))
        return BlendScorer({n: s for n, s in scorers.items() if s is not None}, self.weights_)

    @property
    def covariates(self) -> tuple[str, ...]:
        """Profile columns any model used takes as covariates."""
        members = getattr(self, "members_", {}).values()
        return tuple(dict.fromkeys(c for m in members for c in getattr(m, "covariates", ())))

    def _build_candidates(self) -> tuple[dict[str, Forecaster], dict[str, str]]:
        """Unfitted candidates by name, and the reasons of those that cannot be built."""
        built: dict[str, Forecaster] = {}
        skipped: dict[str, str] = {}
        for name in dict.fromkeys(self.candidates):
            if name == self.name:
                raise ConfigError("auto cannot be its own candidate; list concrete models")
            try:
                built[name] = registry.create(name, random_state=self.random_state)
            except (ImportError, AttributeError) as err:
                skipped[name] = f"cannot import: {err}"
        return built, skipped

    def _fit(self, data: CustomerData, as_of: pd.Timestamp, horizon: Horizon) -> None:
        labels = {name: label for name, label, _ in METRICS}
        if self.metric not in labels:
            raise ConfigError(f"unknown metric {self.metric!r}; choose one of {', '.join(labels)}")
        if not 0 <= self.blend_margin < 1:
            raise ConfigError(f"blend_margin must be in [0, 1); got {self.blend_margin!r}")
        if data.transactions.empty:
            raise InsufficientDataError(f"auto: no transactions up to {as_of:%Y-%m-%d %H:%M}")
        models, skipped = self._build_candidates()
        if not models:
            raise InsufficientDataError(
                "auto: no candidate model is available ("
                + "; ".join(f"{n}: {e}" for n, e in skipped.items())
                + ")"
            )
        window = inner_window(data.first_timestamp(), as_of, horizon)
        result: BacktestResult | None = None
        order = list(models)
        ranked: list[str] = []
        guarded: list[str] = []
        if window is not None:
            result = backtest(data, window[0], window[1], list(models.values()), end=as_of)
            for run, name in zip(result.results, models, strict=True):
                run.name = name
            skipped.update({r.name: r.error for r in result.results if r.error is not None})
            ranked = result.ranking(self.metric)
            preferred, guarded = preference_order(result, self.metric, self.max_mae_ratio)
            order = preferred + [name for name in models if name not in ranked]
        self.inner_table_ = pd.DataFrame() if result is None else result.table()
        weights, verdict = (
            blend_weights(result, order[0], self.metric, self.blend_margin, self.random_state)
            if self.blend and result is not None and order[0] in ranked
            else ({}, "")
        )
        if len(weights) > 1:
            try:
                fitted = {n: models[n].clone().fit(data, as_of, horizon) for n in weights}
            except InsufficientDataError as err:
                verdict = f"no blend: a member cannot train on the full history ({err})"
            else:
                self._use(fitted, weights, "+".join(weights))
                self.reason_ = f"{verdict}; " + _reason(
                    order[0], result, self.metric, window, as_of - data.first_timestamp(),
                    horizon, skipped, lead=f"single best {order[0]}",
                )  # fmt: skip
                return
        failures: dict[str, str] = {}
        for name in order:
            try:
                winner = models[name].clone().fit(data, as_of, horizon)
            except InsufficientDataError as err:
                failures[name] = str(err)
                continue
            self._use({name: winner}, {name: 1.0}, name)
            self.reason_ = _reason(
                name, result, self.metric, window, as_of - data.first_timestamp(), horizon,
                {**skipped, **failures},
            )  # fmt: skip
            if ranked and ranked[0] in guarded:
                self.reason_ += (
                    f"; {ranked[0]} ranked first but its inner MAE is more than "
                    f"{self.max_mae_ratio - 1:.0%} above the best, so it was passed over"
                )
            if verdict and name == order[0]:
                self.reason_ += f"; {verdict}"
            return
        raise InsufficientDataError(
            "auto: no candidate could train on this history ("
            + "; ".join(f"{n}: {e}" for n, e in {**skipped, **failures}.items())
            + ")"
        )

    def _use(self, members: dict[str, Forecaster], weights: dict[str, float], choice: str) -> None:
        self.members_ = members
        self.weights_ = weights
        self.choice_ = choice

    def _predict(self, data: CustomerData, as_of: pd.Timestamp) -> pd.DataFrame:
        frames = {name: m.predict(data, as_of) for name, m in self.members_.items()}
        return frames[self.choice_] if len(frames) == 1 else combine(frames, self.weights_)

    def explain(self, data: CustomerData, as_of: pd.Timestamp) -> pd.DataFrame:
        """The model's explanation (see its ``explain``); for a blend, the weighted sum of the
        members' explanations, where a member without explanations contributes its whole
        forecast as one driver named after it."""
        self.check_fitted()
        if len(self.members_) == 1:
            return self.chosen.explain(data, as_of)
        frames = {}
        for name, member in self.members_.items():
            try:
                frames[name] = member.explain(data, as_of)
            except ConfigError:  # a model without explanations: one driver, its forecast
                frames[name] = (
                    member.predict(data, as_of)
                    .set_index(CUSTOMER_ID)[["predicted_value"]]
                    .rename(columns={"predicted_value": name})
                    .assign(base_value=0.0)
                )
        return combine_explanations(frames, self.weights_)

    def save_state(self, directory: Path) -> dict[str, Any]:
        """Each model used goes to ``directory/members/<name>``; weights, choice, reason and
        the inner table are returned as JSON."""
        members = []
        for name, member in self.members_.items():
            sub = Path(directory) / "members" / name
            sub.mkdir(parents=True, exist_ok=True)
            members.append(
                {
                    "name": name,
                    "weight": self.weights_[name],
                    "params": member.get_params(),
                    "state": member.save_state(sub),
                    "horizon": str(member.horizon_),
                    "as_of": member.as_of_.isoformat(),
                }
            )
        return {
            "choice": self.choice_,
            "reason": self.reason_,
            "members": members,
            "inner_table": json.loads(self.inner_table_.to_json(orient="split")),
        }

    def load_state(self, directory: Path, state: dict[str, Any]) -> None:
        """Rebuild each model used with its registered class and restore its state."""
        members: dict[str, Forecaster] = {}
        for entry in state["members"]:
            member = registry.forecaster_class(entry["name"]).from_params(entry["params"])
            member.load_state(Path(directory) / "members" / entry["name"], entry["state"])
            member.horizon_ = parse_horizon(entry["horizon"])
            member.as_of_ = pd.Timestamp(entry["as_of"])
            members[entry["name"]] = member
        table = pd.DataFrame(**state["inner_table"])
        numeric = [c for c in table.columns if c != "error"]
        table[numeric] = table[numeric].astype("float64")
        table.index.name = "model"
        weights = {entry["name"]: float(entry["weight"]) for entry in state["members"]}
        self._use(members, weights, state["choice"])
        self.reason_ = state["reason"]
        self.inner_table_ = table


def pick(
    result: BacktestResult, metric: str = DEFAULT_METRIC, max_mae_ratio: float = MAX_MAE_RATIO
) -> tuple[str, str]:
    """Auto's rule applied to a backtest: the model to use and the rule, in words."""
    preferred, passed = preference_order(result, metric, max_mae_ratio)
    label = {name: text for name, text, _ in METRICS}[metric]
    if not preferred:
        return FALLBACK_CHOICE, f"no model could be scored, so {FALLBACK_CHOICE} is used"
    why = f"best {label} among models within {max_mae_ratio - 1:.0%} of the best MAE"
    if passed:
        why += "; passed over " + ", ".join(passed)
    return preferred[0], why


def preference_order(
    result: BacktestResult, metric: str = DEFAULT_METRIC, max_mae_ratio: float = MAX_MAE_RATIO
) -> tuple[list[str], list[str]]:
    """Scored models in order of preference, and the ones the MAE guard passed over.

    Models rank by ``metric`` (near-ties to the lower MAE); those whose MAE exceeds the best
    MAE by more than ``max_mae_ratio`` move behind the rest, in the same order.
    """
    ranked = result.ranking(metric)
    if not ranked:
        return [], []
    mae = result.table()["mae"].astype(float)
    limit = max_mae_ratio * float(mae[ranked].min())
    passed = [name for name in ranked if mae[name] > limit]
    return [name for name in ranked if name not in passed] + passed, passed


def _reason(
    choice: str,
    result: BacktestResult | None,
    metric: str,
    window: tuple[pd.Timestamp, Horizon] | None,
    history: pd.Timedelta,
    horizon: Horizon,
    skipped: dict[str, str],
    lead: str = "",
) -> str:
    """One sentence: what was picked (``lead``, default "picked <choice>"), on what evidence,
    and what was left out."""
    lead = lead or f"picked {choice}"
    label = {name: text for name, text, _ in METRICS}[metric]
    history_text = f"the history ({history.days} days)"
    ranked = [] if result is None else result.ranking(metric)
    if window is None:
        text = (
            f"{lead}: {history_text} is too short for an inner backtest, so the first "
            f"candidate able to train was used"
        )
    elif choice not in ranked:
        scored = (
            "none of the scored candidates could train on the full history"
            if ranked
            else "no candidate could be scored"
        )
        text = (
            f"{lead}: in the inner backtest at {window[0]:%Y-%m-%d} {scored}, so the "
            f"first candidate able to train was used"
        )
    else:
        assert result is not None
        table = result.table()
        score, mae = table[metric], table["mae"]
        others = ", ".join(f"{name} {score[name]:.3g}" for name in ranked if name != choice)
        text = (
            f"{lead}: inner backtest at {window[0]:%Y-%m-%d} "
            f"({window[1].describe()}, {result.n_customers:,} customers): {label} "
            f"{score[choice]:.3g}" + (f" vs {others}" if others else "")
        )
        close = [n for n in ranked if n != choice and _near(score[n], score[choice])]
        if close:
            text += (
                f"; {close[0]} is within {NEAR_TIE:.0%} on {label}, so the lower MAE decided "
                f"({mae[choice]:.3g} vs {mae[close[0]]:.3g})"
            )
        if window[1] != horizon:
            text += (
                f"; {history_text} is shorter than the horizon ({horizon.describe()}) plus "
                f"{MIN_HISTORY_DAYS} days, so the inner backtest uses {window[1].describe()}"
            )
    if skipped:
        text += "; skipped " + ", ".join(f"{name} ({why})" for name, why in skipped.items())
    return text


def _near(score: float, reference: float) -> bool:
    """Within :data:`NEAR_TIE` (relative) of ``reference``."""
    return abs(score - reference) <= NEAR_TIE * abs(reference)
