"""``auto``: pick the model per dataset by an inner backtest, and say why.

The inner backtest runs strictly inside the training data: its cutoff is ``as_of - horizon``
when at least 28 days of history precede it. A shorter history (CDNOW's 39-week calibration
with a 39-week horizon) gets the longest inner horizon that leaves it both halves of the
history (at most ``history - 28 days``), and only the candidates able to train there compete.
The winner (best ``metric``; near-ties within 1% go to the lower MAE, see
:meth:`~ltvcast.evaluation.backtest.BacktestResult.ranking`) is refitted on all the data up to
``as_of``; when it cannot train there, the runner-up is tried, and so on.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from ltvcast.data.schemas import CustomerData
from ltvcast.evaluation.backtest import NEAR_TIE, BacktestResult, backtest
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
    """Choose among ``candidates`` by an inner backtest on ``metric``; delegate to the winner.

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
    random_state
        Passed to every candidate that takes one.

    Attributes
    ----------
    choice_ : str
        Name of the chosen model.
    winner_ : Forecaster
        The chosen model, fitted on all data up to ``as_of``.
    inner_table_ : DataFrame
        The inner backtest's metrics table (empty when the history allowed none).
    reason_ : str
        One sentence saying what was picked and why.
    """

    name = "auto"

    def __init__(
        self,
        candidates: tuple[str, ...] = DEFAULT_CANDIDATES,
        metric: str = DEFAULT_METRIC,
        max_mae_ratio: float = MAX_MAE_RATIO,
        random_state: int = 0,
    ) -> None:
        self.candidates = candidates
        self.metric = metric
        self.max_mae_ratio = max_mae_ratio
        self.random_state = random_state

    @property
    def has_quantiles(self) -> bool:  # type: ignore[override]
        """Whether the chosen model gives value quantiles (``False`` before ``fit``)."""
        winner = getattr(self, "winner_", None)
        return bool(winner is not None and winner.has_quantiles)

    @property
    def chosen(self) -> Forecaster:
        """The winner (``self`` before ``fit``)."""
        return getattr(self, "winner_", self)

    @property
    def selection_reason(self) -> str | None:
        """One sentence: what was picked and on what evidence (``None`` before ``fit``)."""
        return getattr(self, "reason_", None)

    @property
    def rfm_scorer(self) -> RFMScorer | None:
        """The winner's online fast path, if it has one."""
        winner = getattr(self, "winner_", None)
        return None if winner is None else winner.rfm_scorer

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
        failures: dict[str, str] = {}
        for name in order:
            model = models[name]
            try:
                winner = model.clone().fit(data, as_of, horizon)
            except InsufficientDataError as err:
                failures[name] = str(err)
                continue
            self.choice_ = name
            self.winner_ = winner
            self.inner_table_ = pd.DataFrame() if result is None else result.table()
            self.reason_ = _reason(
                name, result, self.metric, window, as_of - data.first_timestamp(), horizon,
                {**skipped, **failures},
            )  # fmt: skip
            if ranked and ranked[0] in guarded:
                self.reason_ += (
                    f"; {ranked[0]} ranked first but its inner MAE is more than "
                    f"{self.max_mae_ratio - 1:.0%} above the best, so it was passed over"
                )
            return
        raise InsufficientDataError(
            "auto: no candidate could train on this history ("
            + "; ".join(f"{n}: {e}" for n, e in {**skipped, **failures}.items())
            + ")"
        )

    def _predict(self, data: CustomerData, as_of: pd.Timestamp) -> pd.DataFrame:
        return self.winner_.predict(data, as_of)

    def explain(self, data: CustomerData, as_of: pd.Timestamp) -> pd.DataFrame:
        """The chosen model's explanation (see its ``explain``)."""
        self.check_fitted()
        return self.winner_.explain(data, as_of)

    def save_state(self, directory: Path) -> dict[str, Any]:
        """The winner's state goes to ``directory/winner``; choice, reason and the inner table
        are returned as JSON."""
        sub = Path(directory) / "winner"
        sub.mkdir(parents=True, exist_ok=True)
        return {
            "choice": self.choice_,
            "reason": self.reason_,
            "winner_params": self.winner_.get_params(),
            "winner_state": self.winner_.save_state(sub),
            "winner_horizon": str(self.winner_.horizon_),
            "winner_as_of": self.winner_.as_of_.isoformat(),
            "inner_table": json.loads(self.inner_table_.to_json(orient="split")),
        }

    def load_state(self, directory: Path, state: dict[str, Any]) -> None:
        """Rebuild the winner with its registered class and restore its state."""
        winner = registry.forecaster_class(state["choice"]).from_params(state["winner_params"])
        winner.load_state(Path(directory) / "winner", state["winner_state"])
        winner.horizon_ = parse_horizon(state["winner_horizon"])
        winner.as_of_ = pd.Timestamp(state["winner_as_of"])
        table = pd.DataFrame(**state["inner_table"])
        numeric = [c for c in table.columns if c != "error"]
        table[numeric] = table[numeric].astype("float64")
        table.index.name = "model"
        self.winner_ = winner
        self.choice_ = state["choice"]
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
) -> str:
    """One sentence: what was picked, on what evidence, and what was left out."""
    label = {name: text for name, text, _ in METRICS}[metric]
    history_text = f"the history ({history.days} days)"
    ranked = [] if result is None else result.ranking(metric)
    if window is None:
        text = (
            f"picked {choice}: {history_text} is too short for an inner backtest, so the first "
            f"candidate able to train was used"
        )
    elif choice not in ranked:
        scored = (
            "none of the scored candidates could train on the full history"
            if ranked
            else "no candidate could be scored"
        )
        text = (
            f"picked {choice}: in the inner backtest at {window[0]:%Y-%m-%d} {scored}, so the "
            f"first candidate able to train was used"
        )
    else:
        assert result is not None
        table = result.table()
        score, mae = table[metric], table["mae"]
        others = ", ".join(f"{name} {score[name]:.3g}" for name in ranked if name != choice)
        text = (
            f"picked {choice}: inner backtest at {window[0]:%Y-%m-%d} "
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
