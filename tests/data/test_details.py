"""Report details that keep their figures apart, and the report of a table cleaned in parts."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from ltvcast.data.clean import CleaningOptions, CleaningReport
from ltvcast.data.details import Detail, Figure
from ltvcast.data.validate import check_whole_table, validate_transactions
from ltvcast.exceptions import SchemaError


def test_a_detail_renders_and_merges_its_figures() -> None:
    def detail(n: int, total: int, rows: list[int], first: str, cancelled: int) -> Detail:
        return Detail.join(
            "tx {a}: ",
            Figure(n),
            " of ",
            Figure(total, "read"),
            " (",
            Figure.rows(rows),
            ") since ",
            Figure(pd.Timestamp(first), "min", "{}"),
            Figure(cancelled, text=", {:,} cancelled", omit_zero=True),
        )

    one = detail(2, 1000, [7, 9], "2024-01-02", 0)
    two = detail(5, 2000, [1, 3, 4, 8, 10], "2024-01-01", 1234)
    assert one.render() == "tx {a}: 2 of 1,000 (rows 7, 9) since 2024-01-02 00:00:00"
    merged = one.merge(two)
    assert merged is not None
    assert merged.render() == (
        "tx {a}: 7 of 3,000 (rows 1, 3, 4, 7, 8, ...) since 2024-01-01 00:00:00, 1,234 cancelled"
    )
    assert merged.with_rows_read(9).render().startswith("tx {a}: 7 of 9 ")
    assert one.merge(Detail.join("other text")) is None


def _validated_in_parts(raw: pd.DataFrame, parts: int) -> CleaningReport:
    """The report of ``raw`` validated in ``parts`` parts by customer, merged."""
    codes = pd.factorize(raw["customer_id"].fillna(""))[0] % parts
    reports = []
    for part in range(parts):
        report = CleaningReport()
        chunk = raw[codes == part]
        if len(chunk):
            validate_transactions(chunk, "tx.csv", report=report, part=True)
            reports.append(report)
    merged = CleaningReport.merge(reports)
    check_whole_table(merged, "transactions", "tx.csv")
    return merged


def _dirty(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "customer_id": rng.choice(["a", "b", "c", "d", "e", "f", "g"], n).astype(object),
            "timestamp": pd.date_range("2024-01-01", periods=n, freq="37min").astype(str),
            "amount": rng.normal(20, 15, n).round(2).astype(str).astype(object),
            "order_id": [f"{i}" for i in range(n)],
        }
    )
    frame.loc[rng.random(n) < 0.1, "customer_id"] = None
    frame.loc[rng.random(n) < 0.1, "timestamp"] = "not a date"
    frame.loc[rng.random(n) < 0.1, "amount"] = "N/A"
    frame.loc[rng.random(n) < 0.05, "order_id"] = "C17"
    copies = frame.sample(n // 10, random_state=seed)
    return pd.concat([frame, copies]).sort_index(kind="stable").reset_index(drop=True)


@pytest.mark.parametrize("parts", [1, 3, 7])
def test_the_merged_report_of_parts_is_the_whole_tables(parts: int) -> None:
    raw = _dirty(400, seed=parts)
    whole = CleaningReport()
    validate_transactions(raw, "tx.csv", report=whole)
    merged = _validated_in_parts(raw, parts)
    assert merged.to_dict() == whole.to_dict()
    assert merged.lines() == whole.lines()


def test_a_step_some_parts_lack_counts_the_whole_tables_rows(
    raw_tx: Callable[..., pd.DataFrame],
) -> None:
    raw = raw_tx(customer_id=["a", None, "c", "d"])
    whole = CleaningReport()
    validate_transactions(raw, "tx.csv", report=whole)
    assert _validated_in_parts(raw, 3).to_dict() == whole.to_dict()
    assert "1 of 4 rows are empty (rows 2)" in whole.lines()[1]


def test_a_table_unusable_as_a_whole_is_refused_after_the_merge(
    raw_tx: Callable[..., pd.DataFrame],
) -> None:
    raw = raw_tx(amount=["x", "y", "z", "w"])
    with pytest.raises(SchemaError) as whole:
        validate_transactions(raw, "tx.csv")
    with pytest.raises(SchemaError) as parts:
        _validated_in_parts(raw, 3)
    assert str(parts.value) == str(whole.value)
    raw = raw_tx(amount=[-1.0, -2.0, -3.0, -4.0])
    drop = CleaningOptions(returns="drop")
    with pytest.raises(SchemaError, match="no transactions row left after cleaning"):
        validate_transactions(raw, "tx.csv", options=drop)
    report = CleaningReport()
    out = validate_transactions(raw, "tx.csv", options=drop, report=report, part=True)
    assert out.empty
    with pytest.raises(SchemaError, match="no transactions row left after cleaning"):
        check_whole_table(report, "transactions", "tx.csv")


def test_counts_add_up_by_label_most_counted_first() -> None:
    first = Detail.join("kept as own types: ", Figure.counts({"search": 3, "page": 2}, top=2))
    second = Detail.join("kept as own types: ", Figure.counts({"page": 2, "wishlist": 1}, top=2))
    merged = first.merge(second)
    assert merged is not None
    assert merged.render() == "kept as own types: page (4), search (3) and 1 more"
    tie = Figure.counts({"b": 1, "a": 1})
    assert tie.render() == "a (1), b (1)"
