"""One self-contained HTML report: data quality, backtest, model diagnostics, forecasts,
segments, drivers.

:func:`render_report` lays out precomputed pieces; :func:`build_report` computes them from the
objects the CLI holds (data, cleaning report, backtest result, fitted forecaster, predictions).
The page has no external resource (no CDN, no web font, no script): charts are inline SVG.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from ltvcast._version import __version__
from ltvcast.data.clean import CleaningReport
from ltvcast.data.schemas import CUSTOMER_ID, PREDICTION_COLUMNS, QUANTILE_COLUMNS, CustomerData
from ltvcast.evaluation.backtest import BacktestResult
from ltvcast.evaluation.diagnostics import conditional_expectations, tracking_table
from ltvcast.evaluation.metrics import METRICS
from ltvcast.exceptions import ConfigError, LTVError
from ltvcast.models.btyd import BTYDForecaster
from ltvcast.pipeline import ScoringModel
from ltvcast.report import diagnostics, figures
from ltvcast.report.recommendations import recommendation_context, recommendation_tables
from ltvcast.strategy.segments import FittedSegmentRules, segment_summary
from ltvcast.timeframe import Horizon

#: At most this many customers are explained for the importance chart (evenly spaced ids).
MAX_EXPLAINED = 2000


@dataclass(frozen=True)
class DataSummary:
    """Size and time span of the cleaned data."""

    transactions: int
    events: int | None
    profiles: int | None
    customers: int
    first: pd.Timestamp
    last: pd.Timestamp

    @classmethod
    def of(cls, data: CustomerData) -> DataSummary:
        """Summarise a bundle."""
        return cls(
            transactions=len(data.transactions),
            events=None if data.events is None else len(data.events),
            profiles=None if data.profiles is None else len(data.profiles),
            customers=len(data.customers()),
            first=data.first_timestamp(),
            last=data.last_timestamp(),
        )


def render_report(
    *,
    predictions: pd.DataFrame,
    as_of: pd.Timestamp,
    horizon: Horizon,
    model_name: str,
    data_summary: DataSummary | None = None,
    cleaning: CleaningReport | None = None,
    backtest: BacktestResult | None = None,
    backtest_model: str | None = None,
    segments: pd.DataFrame | None = None,
    segment_rules: FittedSegmentRules | None = None,
    importance: pd.DataFrame | None = None,
    tracking: pd.DataFrame | None = None,
    conditional: pd.DataFrame | None = None,
    action_mix: pd.DataFrame | None = None,
    top_items: pd.DataFrame | None = None,
    notes: list[str] | None = None,
    title: str = "Customer lifetime value report",
) -> str:
    """Render the report as one HTML string.

    Parameters
    ----------
    predictions
        The forecasts being reported (``Forecaster.predict`` output).
    as_of, horizon, model_name
        When the forecast starts, how far it looks, and which model made it.
    data_summary, cleaning
        Data-quality section (omitted when both are ``None``).
    backtest, backtest_model
        Backtest section; charts use ``backtest_model``'s hold-out predictions (default: the
        best model by normalized Gini).
    segments, segment_rules, importance
        ``segment_summary`` and ``global_importance`` tables (sections omitted when ``None``)
        and the cuts that made the segments (spelled out under the table when given).
    tracking, conditional
        Model-diagnostics section (omitted when ``tracking`` is ``None``): a
        :func:`~ltvcast.evaluation.diagnostics.tracking_table` and a
        :func:`~ltvcast.evaluation.diagnostics.conditional_expectations` table.
    action_mix, top_items
        Recommendations section (omitted when ``action_mix`` is ``None``): see
        :func:`~ltvcast.report.recommendations.recommendation_tables`.
    notes
        Sentences shown under the header (e.g. why ``auto`` chose its model).
    """
    values = predictions["predicted_value"].to_numpy(np.float64)
    context: dict[str, Any] = {
        "title": title,
        "version": __version__,
        "model": model_name,
        "as_of": f"{as_of:%Y-%m-%d %H:%M}",
        "horizon": horizon.describe(),
        "window_end": f"{horizon.end(as_of):%Y-%m-%d}",
        "notes": notes or [],
        "kpis": _kpis(predictions, horizon),
        "distribution_svg": Markup(figures.distribution_chart(values)),
        "quality": _quality(data_summary, cleaning),
        "backtest": None if backtest is None else _backtest(backtest, backtest_model),
        "segments": None if segments is None else _segments(segments, segment_rules),
        "importance": None if importance is None or importance.empty else _importance(importance),
        "diagnostics": None if tracking is None else _diagnostics(tracking, conditional),
        "recommendations": (
            None if action_mix is None else recommendation_context(action_mix, top_items)
        ),
    }
    env = Environment(
        loader=PackageLoader("ltvcast.report", "templates"),
        autoescape=select_autoescape(["html", "j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return env.get_template("report.html.j2").render(**context)


def build_report(
    model: ScoringModel,
    data: CustomerData,
    cleaning_report: CleaningReport | None,
    backtest_result: BacktestResult | None,
    as_of: pd.Timestamp,
) -> str:
    """The full report of ``model`` scoring ``data`` at ``as_of``; returns HTML.

    With a backtest and a BTYD-family model, the model diagnostics refit that model on the
    data up to the backtest's cutoff and follow its customers through the horizon after it.
    Segments use the model's own cuts (:meth:`~ltvcast.pipeline.ScoringModel.cuts_for`);
    driver importance comes from its explanations on at most :data:`MAX_EXPLAINED`
    customers (the section says so when the model gives no explanations).
    """
    chosen = model.chosen_name
    model_name = chosen if chosen == model.name else f"{model.name} -> {chosen}"
    notes = [model.reason] if model.reason else []
    table = model.score(data, as_of)
    columns = [c for c in (*PREDICTION_COLUMNS, *QUANTILE_COLUMNS) if c in table.columns]
    predictions = table[columns]
    segments = segment_summary(predictions, table.set_index(CUSTOMER_ID)["segment"])
    importance = None
    try:
        importance = model.importance(data, as_of, MAX_EXPLAINED)
    except ConfigError as err:
        notes.append(f"Driver importance is not shown: {err}.")
    backtest_model = None
    if backtest_result is not None:
        ran = {r.name for r in backtest_result.results if r.predictions is not None}
        if chosen in ran:
            backtest_model = chosen
        else:
            try:
                backtest_model = backtest_result.best()
            except LTVError as err:
                notes.append(f"No backtest chart: {err}.")
    mix = top_items = None
    try:
        mix, top_items = recommendation_tables(model, data, as_of, table)
    except LTVError as err:
        notes.append(f"Recommendations are not shown: {err}.")
    tracking = conditional = None
    chosen_model = model.forecaster.chosen
    if backtest_result is not None and isinstance(chosen_model, BTYDForecaster):
        try:
            tracking, conditional = _diagnostic_tables(chosen_model, data, backtest_result)
        except LTVError as err:
            notes.append(f"Model diagnostics are not shown: {err}.")
    return render_report(
        predictions=predictions,
        as_of=as_of,
        horizon=model.horizon,
        model_name=model_name,
        data_summary=DataSummary.of(data),
        cleaning=cleaning_report,
        backtest=backtest_result,
        backtest_model=backtest_model,
        segments=segments,
        segment_rules=model.cuts_for(predictions),
        importance=importance,
        tracking=tracking,
        conditional=conditional,
        action_mix=mix,
        top_items=top_items,
        notes=notes,
    )


def write_report(
    path: str | Path,
    model: ScoringModel,
    data: CustomerData,
    cleaning_report: CleaningReport | None,
    backtest_result: BacktestResult | None,
    as_of: pd.Timestamp,
) -> Path:
    """:func:`build_report` written to ``path`` (UTF-8); returns the path."""
    html = build_report(model, data, cleaning_report, backtest_result, as_of)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(html, encoding="utf-8")
    return out


def _number(value: float, digits: int = 0) -> str:
    return "–" if value is None or not math.isfinite(value) else f"{value:,.{digits}f}"


def _kpis(predictions: pd.DataFrame, horizon: Horizon) -> list[tuple[str, str, str]]:
    values = predictions["predicted_value"].to_numpy(np.float64)
    n = len(values)
    top = np.sort(values)[::-1][: max(1, math.ceil(0.2 * n))] if n else values
    total = float(values.sum())
    return [
        ("customers scored", f"{n:,}", "seen up to the as-of time"),
        ("predicted revenue", _number(total), f"over the next {horizon.describe()}"),
        ("per customer", _number(total / n if n else math.nan, 2), "mean forecast"),
        (
            "expected active",
            f"{predictions['p_active'].mean():.0%}" if n else "–",
            "mean P(active) in the horizon",
        ),
        (
            "top 20% hold",
            f"{top.sum() / total:.0%}" if total > 0 else "–",
            "of predicted revenue",
        ),
    ]


def _quality(summary: DataSummary | None, cleaning: CleaningReport | None) -> dict[str, Any] | None:
    if summary is None and cleaning is None:
        return None
    facts: list[tuple[str, str]] = []
    if summary is not None:
        facts = [
            ("customers", f"{summary.customers:,}"),
            ("transactions", f"{summary.transactions:,}"),
            ("events", "none" if summary.events is None else f"{summary.events:,}"),
            ("profiles", "none" if summary.profiles is None else f"{summary.profiles:,}"),
            ("first record", f"{summary.first:%Y-%m-%d}"),
            ("last record", f"{summary.last:%Y-%m-%d}"),
            ("span", f"{(summary.last - summary.first).days:,} days"),
        ]
    steps = [] if cleaning is None else cleaning.to_frame().to_dict("records")
    rows = [
        {
            "table": s["table"],
            "step": str(s["step"]).replace("_", " "),
            "rows": f"{int(s['rows']):,}",
            "detail": s["detail"],
            "kind": s["step"] if s["step"] in ("read", "result") else "rule",
        }
        for s in steps
    ]
    return {"facts": facts, "steps": rows}


def _backtest(result: BacktestResult, chosen: str | None) -> dict[str, Any]:
    table = result.table()
    models = [str(m) for m in table.index]
    errors = table["error"] if "error" in table.columns else pd.Series(None, index=table.index)
    rows = []
    for name, label, better in (*METRICS, ("fit_s", "fit time (s)", False)):
        if name not in table.columns:
            continue
        column = table[name].astype(np.float64)
        score = column.abs() if better is None else (-column if better else column)
        best = score.idxmin() if score.notna().any() else None
        digits = 1 if name == "fit_s" else 3
        cells = [
            {"text": _number(float(column[m]), digits), "best": m == best and len(models) > 1}
            for m in table.index
        ]
        hint = (
            "closer to 0 is better"
            if better is None
            else "higher is better"
            if better
            else "lower is better"
        )
        rows.append({"label": label, "hint": hint, "cells": cells})
    skipped = [f"{m}: {e}" for m, e in errors.items() if isinstance(e, str) and e]
    out: dict[str, Any] = {
        "cutoff": f"{result.cutoff:%Y-%m-%d}",
        "end": f"{result.horizon.end(result.cutoff):%Y-%m-%d}",
        "horizon": result.horizon.describe(),
        "customers": f"{result.n_customers:,}",
        "models": models,
        "rows": rows,
        "skipped": skipped,
        "chosen": chosen,
        "gain_svg": None,
    }
    actual = result.actuals["value"]
    scored = {r.name: r.predictions for r in result.results if r.predictions is not None}
    if not scored or float(actual.sum()) == 0.0:
        return out
    predicted = {name: _aligned(frame, actual.index) for name, frame in scored.items()}
    out["gain_svg"] = Markup(figures.gain_chart(actual, predicted, chosen))
    if chosen in predicted:
        out["decile_svg"] = Markup(figures.decile_chart(actual, predicted[chosen]))
        out["scatter_svg"] = Markup(figures.scatter_chart(actual.to_numpy(), predicted[chosen]))
    return out


def _aligned(predictions: pd.DataFrame, customers: pd.Index) -> np.ndarray:
    return (
        predictions.set_index(CUSTOMER_ID)["predicted_value"]
        .reindex(customers)
        .to_numpy(np.float64)
    )


def _diagnostic_tables(
    forecaster: BTYDForecaster, data: CustomerData, result: BacktestResult
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Tracking and conditional expectations of ``forecaster`` refitted at the backtest's
    cutoff, over its horizon."""
    cutoff, end = result.cutoff, result.horizon.end(result.cutoff)
    refit = forecaster.clone().fit(data, cutoff, result.horizon)
    return (
        tracking_table(refit, data, cutoff, end),
        conditional_expectations(refit, data, cutoff, end),
    )


def _diagnostics(tracking: pd.DataFrame, conditional: pd.DataFrame | None) -> dict[str, Any]:
    calibration = tracking.loc[~tracking["holdout"], "period_end"]
    return {
        "cutoff": f"{calibration.iloc[-1]:%Y-%m-%d}" if len(calibration) else "–",
        "end": f"{tracking['period_end'].iloc[-1]:%Y-%m-%d}" if len(tracking) else "–",
        "tracking_svg": Markup(diagnostics.tracking_chart(tracking)),
        "conditional_svg": None
        if conditional is None
        else Markup(diagnostics.conditional_expectations_chart(conditional)),
    }


def _segments(summary: pd.DataFrame, rules: FittedSegmentRules | None) -> dict[str, Any]:
    rows = [
        {
            "segment": str(r["segment"]).replace("_", " "),
            "customers": f"{int(r['customers']):,}",
            "share": f"{r['share']:.1%}",
            "revenue": _number(float(r["predicted_revenue"])),
            "revenue_share": f"{r['revenue_share']:.1%}",
            "mean_value": _number(float(r["mean_value"]), 2),
            "p_active": "–" if pd.isna(r["mean_p_active"]) else f"{r['mean_p_active']:.0%}",
            "action": r["action"],
        }
        for r in summary.to_dict("records")
    ]
    cuts = None
    if rules is not None:
        cuts = {
            "high": _number(rules.high_value_cut, 2),
            "low": _number(rules.low_value_cut, 2),
            "active": f"{rules.active_cut:.0%}",
            "stake": _number(rules.high_stake_cut, 2),
            "new_days": f"{rules.new_tenure_days:g}",
            "new_purchases": f"{rules.new_max_purchases:g}",
        }
    return {"rows": rows, "svg": Markup(figures.segment_chart(summary)), "cuts": cuts}


def _importance(importance: pd.DataFrame) -> dict[str, Any]:
    return {"svg": Markup(figures.importance_chart(importance)), "n": len(importance)}
