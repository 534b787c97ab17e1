"""Cleaning rules (duplicates, returns, zero amounts, winsorizing) and the report's forms."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from ltvcast.data.clean import CleaningOptions, CleaningReport, cancelled_orders
from ltvcast.data.io import ColumnMap
from ltvcast.data.validate import validate_events, validate_transactions
from ltvcast.exceptions import ConfigError


def _lines(orders: list[str] | None = None, amounts: list[float] | None = None) -> pd.DataFrame:
    amounts = amounts or [10.0, 10.0, -4.0, 0.0, 25.0, 1000.0]
    frame = pd.DataFrame(
        {
            "customer_id": ["a", "a", "a", "b", "b", "c"],
            "timestamp": [
                "2024-01-01",
                "2024-01-01",
                "2024-01-05",
                "2024-01-02",
                "2024-01-03",
                "2024-01-04",
            ],
            "amount": amounts,
        }
    )
    if orders is not None:
        frame["order_id"] = orders
    return frame


def _run(frame: pd.DataFrame, **options: object) -> tuple[pd.DataFrame, CleaningReport]:
    report = CleaningReport()
    out = validate_transactions(frame, "tx.csv", options=CleaningOptions(**options), report=report)  # type: ignore[arg-type]
    return out, report


def test_exact_duplicates_dropped_or_kept() -> None:
    out, report = _run(_lines())
    assert len(out) == 5 and report.count("transactions", "duplicates") == 1
    out, report = _run(_lines(), drop_duplicates=False)
    assert len(out) == 6 and report.count("transactions", "duplicates") == 1
    assert "kept" in report.lines()[1]


def test_rows_differing_in_order_id_are_not_duplicates() -> None:
    out, report = _run(_lines(orders=["1", "2", "3", "4", "5", "6"]))
    assert len(out) == 6 and report.count("transactions", "duplicates") == 0


def test_duplicates_are_judged_on_the_source_row_not_the_canonical_columns() -> None:
    """Two products of one invoice with equal quantity and price are two purchases, whether or
    not the item column is mapped; only a line repeated in every column is a duplicate."""
    frame = pd.DataFrame(
        {
            "InvoiceNo": ["536365", "536365", "536365", "536366"],
            "StockCode": ["85123A", "71053", "71053", "22633"],
            "Description": ["HEART HOLDER", "LANTERN", "LANTERN", "HAND WARMER"],
            "Quantity": [6, 6, 6, 6],
            "InvoiceDate": ["2010-12-01 08:26"] * 3 + ["2010-12-01 08:28"],
            "UnitPrice": [2.55, 2.55, 2.55, 1.85],
            "CustomerID": [17850, 17850, 17850, 17850],
        }
    )
    mapping = {
        "customer": "CustomerID",
        "time": "InvoiceDate",
        "quantity": "Quantity",
        "price": "UnitPrice",
        "order": "InvoiceNo",
    }
    for columns in (ColumnMap(**mapping), ColumnMap(**mapping, item="StockCode")):
        report = CleaningReport()
        out = validate_transactions(frame, "retail.csv", columns, report=report)
        assert len(out) == 3 and out["amount"].sum() == pytest.approx(2 * 15.3 + 11.1)
        assert report.count("transactions", "duplicates") == 1  # row 3 repeats row 2
    kept = CleaningOptions(drop_duplicates=False)
    out = validate_transactions(frame, "retail.csv", ColumnMap(**mapping), kept)
    assert len(out) == 4


def test_event_duplicates_are_judged_on_the_source_row() -> None:
    frame = pd.DataFrame(
        {
            "customer_id": ["a", "a", "a"],
            "timestamp": ["2024-01-01 10:00"] * 3,
            "event_type": ["view", "view", "view"],
            "session": ["s1", "s2", "s2"],
        }
    )
    report = CleaningReport()
    out = validate_events(frame, "ev.csv", report=report)
    assert len(out) == 2 and report.count("events", "duplicates") == 1


def test_returns_net_keeps_negative_rows() -> None:
    out, report = _run(_lines())
    assert out["amount"].sum() == pytest.approx(10 - 4 + 0 + 25 + 1000)
    assert report.count("transactions", "returns") == 1
    assert "total -4.00" in " ".join(report.lines())


def test_returns_drop_removes_negative_rows() -> None:
    out, report = _run(_lines(), returns="drop")
    assert (out["amount"] >= 0).all() and len(out) == 4
    assert report.count("transactions", "returns") == 1


def test_cancelled_invoices_uci_style() -> None:
    orders = ["536365", "536366", "C536367", "536368", "C536369", "536370"]
    amounts = [10.0, 11.0, -4.0, 0.0, 25.0, 1000.0]  # a positive "C" line: made negative
    out, report = _run(_lines(orders, amounts))
    assert report.count("transactions", "returns") == 2
    assert out.set_index("order_id").loc["C536369", "amount"] == -25.0
    out, _ = _run(_lines(orders, amounts), returns="drop")
    assert not out["order_id"].str.startswith("C").any()


def test_c_prefix_alone_is_not_a_cancellation() -> None:
    frame = pd.DataFrame({"order_id": ["C1", "C2", "C3"]})
    assert not cancelled_orders(frame).any()
    frame = pd.DataFrame({"order_id": ["100", "C100", "CX1", None]})
    assert cancelled_orders(frame).tolist() == [False, True, False, False]


def test_zero_amounts_counted_kept_or_dropped() -> None:
    out, report = _run(_lines())
    assert (out["amount"] == 0).sum() == 1 and report.count("transactions", "zero_amounts") == 1
    out, report = _run(_lines(), drop_zero_amounts=True)
    assert (out["amount"] == 0).sum() == 0 and report.count("transactions", "zero_amounts") == 1


def test_winsorize_caps_absolute_amounts_at_the_quantile() -> None:
    amounts = [1.0, 2.0, 3.0, 4.0, -100.0, 1000.0]
    frame = _lines(orders=[str(i) for i in range(6)], amounts=amounts)
    out, report = _run(frame, winsorize_quantile=0.8)
    cap = float(np.quantile(np.abs(amounts), 0.8))
    assert cap == pytest.approx(100.0)
    assert out["amount"].max() == pytest.approx(cap) and out["amount"].min() == -100.0
    assert report.count("transactions", "winsorized") == 1
    assert "capped at 100.00 (quantile 0.8)" in " ".join(report.lines())


@pytest.mark.parametrize(
    "options",
    [
        {"returns": "keep"},
        {"unknown_event_types": "maybe"},
        {"winsorize_quantile": 1.0},
        {"winsorize_quantile": 0.2},
        {"source_timezone": "Mars/Olympus"},
    ],
)
def test_invalid_options(options: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        CleaningOptions(**options)  # type: ignore[arg-type]


def test_report_forms() -> None:
    _, report = _run(_lines())
    frame = report.to_frame()
    assert list(frame.columns) == ["table", "step", "rows", "detail"]
    assert frame["step"].tolist() == ["read", "duplicates", "returns", "zero_amounts", "result"]
    assert frame["rows"].tolist() == [6, 1, 1, 1, 5]
    assert report.lines()[0] == "transactions: read: 6 rows (tx.csv)"
    assert report.lines()[-1].startswith("transactions: result: 5 rows (3 customers, 2024-01-01")
    payload = json.loads(json.dumps(report.to_dict()))
    assert payload["steps"][1] == {
        "table": "transactions",
        "step": "duplicates",
        "rows": 1,
        "detail": "exact duplicate rows (equal to an earlier row in every source column): dropped",
    }
    assert CleaningReport().to_frame().empty


def test_an_invalid_date_format_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="date format '%Q' is not a strftime format"):
        CleaningOptions(date_format="%Q")
    with pytest.raises(ConfigError, match="'DD/MM/YYYY'"):
        CleaningOptions(date_format="DD/MM/YYYY")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"now": "soon"}, "now must be a timestamp"),
        ({"future_tolerance": pd.Timedelta(days=-1)}, "future tolerance must be 0 or more"),
        ({"future_tolerance": "a while"}, "future tolerance must be a duration"),
    ],
)
def test_invalid_now_options(options: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        CleaningOptions(**options)  # type: ignore[arg-type]
