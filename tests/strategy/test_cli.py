"""The decision commands end to end on a small simulated store with a saved BTYD model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import ltvcast.cli.strategy  # noqa: F401  (registers the commands)
from ltvcast.cli._app import run_app
from ltvcast.strategy.segments import SEGMENTS


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Store files plus ``model``: a BTYD model trained on them for a 60-day horizon."""
    from ltvcast.data.synthetic import simulate_store, write_store
    from ltvcast.data.validate import load_customer_data
    from ltvcast.models.btyd import BTYDForecaster
    from ltvcast.scoring.artifacts import save_model
    from ltvcast.timeframe import Horizon

    root = tmp_path_factory.mktemp("cli")
    store = simulate_store(500, days=420, dirty_rate=0.005, random_state=2)
    paths = write_store(store, root / "store", horizon="60d")
    data, _ = load_customer_data(paths["transactions"], paths["events"], paths["profiles"])
    model = BTYDForecaster().fit(data, data.last_timestamp(), Horizon(60, "d"))
    paths["model"] = save_model(model, root / "model")
    return paths


def _data_args(files: dict[str, Path]) -> list[str]:
    return [
        str(files["model"]),
        str(files["transactions"]),
        "--events",
        str(files["events"]),
        "--profiles",
        str(files["profiles"]),
    ]


def test_segment_writes_every_customer(
    files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, rules = tmp_path / "segments.csv", tmp_path / "rules.json"
    code = run_app(["segment", *_data_args(files), "--out", str(out), "--rules-out", str(rules)])
    assert code == 0
    table = pd.read_csv(out)
    assert table.columns[:3].tolist() == ["customer_id", "segment", "predicted_value"]
    assert table["customer_id"].is_unique
    assert set(table["segment"]) <= set(SEGMENTS)
    top = table["predicted_value"] >= table["predicted_value"].quantile(0.8)
    assert (
        table.loc[top & (table["predicted_value"] > 0), "segment"]
        .isin(["champions", "high_value_at_risk"])
        .all()
    )
    assert set(json.loads(rules.read_text())) >= {"high_value_cut", "active_cut"}
    assert "champions" in capsys.readouterr().out


def test_plan_respects_budget_and_prints_roi(
    files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "contacts.csv"
    args = ["plan", *_data_args(files), "--budget", "40", "--cost-per-contact", "2"]
    assert run_app([*args, "--uplift", "0.2", "--margin", "0.5", "--out", str(out)]) == 0
    contacts = pd.read_csv(out)
    assert 0 < len(contacts) <= 20
    assert (contacts["expected_gain"] > contacts["cost"]).all()
    assert contacts["expected_gain"].to_numpy() == pytest.approx(
        0.2 * 0.5 * contacts["predicted_value"].to_numpy()
    )
    printed = capsys.readouterr().out
    assert "expected cost" in printed and "ROI" in printed
    # by segment: only the listed segment is ever contacted
    uplift = tmp_path / "uplift.csv"
    uplift.write_text("segment,uplift\nhigh_value_at_risk,0.5\n")
    out2 = tmp_path / "rescue.csv"
    assert (
        run_app([*args, "--uplift-by-segment", str(uplift), "--churn-rescue", "--out", str(out2)])
        == 0
    )
    rescue = pd.read_csv(out2)
    assert set(rescue["segment"]) <= {"high_value_at_risk"}
    # both uplift flags at once is an error (exit 2, one line)
    assert (
        run_app([*args, "--uplift", "0.1", "--uplift-by-segment", str(uplift), "--out", str(out)])
        == 2
    )


def test_explain_one_customer_and_global(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    segments = pd.read_csv(files["transactions"], dtype=str)["customer_id"].dropna()
    customer = sorted(segments)[0]
    assert run_app(["explain", *_data_args(files), "--customer", customer]) == 0
    printed = capsys.readouterr().out
    assert f"Customer {customer}" in printed and "base value" in printed
    assert "= predicted value" in printed
    assert run_app(["explain", *_data_args(files)]) == 0
    assert "frequency" in capsys.readouterr().out
    assert run_app(["explain", *_data_args(files), "--customer", "nobody"]) == 2


def test_report_command_writes_html(files: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "r" / "report.html"
    assert run_app(["report", *_data_args(files), "--out", str(out)]) == 0
    html = out.read_text(encoding="utf-8")
    assert html.count('class="chart"') == 8  # 6 + the BTYD model diagnostics' 2
    assert 'id="diagnostics"' in html
    assert "<th>btyd ★</th>" in html.replace("\n", "") or "btyd ★" in html


def test_score_founding_paper_customer(
    files: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    paper_request: dict[str, Any],
) -> None:
    payload = paper_request
    request = tmp_path / "request.json"
    request.write_text(json.dumps(payload))
    rules = tmp_path / "rules.json"
    rules.write_text(
        json.dumps(
            {
                "high_value_cut": 100.0,
                "low_value_cut": 10.0,
                "active_cut": 0.5,
                "new_tenure_days": 90.0,
                "new_max_purchases": 2.0,
            }
        )
    )
    code = run_app(["score", str(files["model"]), "--json", str(request), "--rules", str(rules)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "predicted value over 60 days" in printed and "P(active)" in printed
    assert "segment: " in printed and "top drivers" in printed
    # inline JSON works too; without cuts the segment says why it is missing
    assert run_app(["score", str(files["model"]), "--json", json.dumps(payload)]) == 0
    assert "segment: n/a" in capsys.readouterr().out
    assert run_app(["score", str(files["model"]), "--json", "{not json"]) == 2
    assert run_app(["score", str(files["model"]), "--json", '{"events": []}']) == 2
