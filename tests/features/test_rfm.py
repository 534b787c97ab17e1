"""RFM summary: the published CDNOW summary, hand-computed cases, returns and the cut-off."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ltvcast.exceptions import ConfigError
from ltvcast.features.rfm import RFM_COLUMNS, rfm_later, rfm_summary

END_OF_CALIBRATION = pd.Timestamp("1997-09-30 23:59:59.999999")


def _tx(rows: list[tuple[str, str, float]]) -> pd.DataFrame:
    ids, times, amounts = zip(*rows, strict=True)
    return pd.DataFrame(
        {"customer_id": list(ids), "timestamp": pd.to_datetime(list(times)), "amount": amounts}
    )


@pytest.mark.realdata
def test_reproduces_published_cdnow_summary(data_dir: Path, cdnow_sample_tx: pd.DataFrame) -> None:
    tx = cdnow_sample_tx
    published = pd.read_csv(
        data_dir / "cdnow" / "cdnow_customers_summary_with_transactions.csv", dtype={"ID": str}
    ).set_index("ID")

    rfm = rfm_summary(tx, END_OF_CALIBRATION, time_unit_days=7.0)

    assert len(rfm) == len(published) == 2357
    rfm = rfm.loc[published.index]
    np.testing.assert_array_equal(rfm["frequency"], published["x"])
    np.testing.assert_array_equal(rfm["recency"].round(2), published["t_x"])
    np.testing.assert_array_equal(rfm["T"].round(2), published["T"])
    # zbar is printed to cents; half-cent ties may round either way.
    assert np.abs(rfm["monetary_value"] - published["zbar"]).max() <= 0.005 + 1e-9
    assert rfm.loc["1", "T"] == pytest.approx(272 / 7)  # 1997-01-01 .. 1997-09-30


def test_hand_computed_days(tiny_transactions: pd.DataFrame) -> None:
    rfm = rfm_summary(tiny_transactions, pd.Timestamp("2024-03-01 23:59"), time_unit_days=1.0)

    assert list(rfm.columns) == list(RFM_COLUMNS)
    assert rfm.index.tolist() == ["a", "b", "c"]
    expected = pd.DataFrame(
        {
            "frequency": [2.0, 1.0, 0.0],
            "recency": [31.0, 51.0, 0.0],
            "T": [60.0, 51.0, 10.0],  # 2024 is a leap year
            "monetary_value": [25.0, 15.0, 0.0],
            "total_value": [60.0, 20.0, 100.0],
        },
        index=pd.Index(["a", "b", "c"], name="customer_id"),
    )
    pd.testing.assert_frame_equal(rfm[expected.columns], expected)
    assert rfm.loc["c", "first_purchase"] == pd.Timestamp("2024-02-20")


def test_weeks_and_cut_off(tiny_transactions: pd.DataFrame) -> None:
    """Rows after as_of vanish; T counts whole days to the day of as_of."""
    rfm = rfm_summary(tiny_transactions, pd.Timestamp("2024-02-29 12:00"))

    assert rfm.index.tolist() == ["a", "b", "c"]
    assert rfm.loc["b", "frequency"] == 0.0  # its 2024-03-01 purchase is after as_of
    assert rfm.loc["a", "T"] == pytest.approx(59 / 7)
    assert rfm.loc["c", "T"] == pytest.approx(9 / 7)


def test_same_day_lines_returns_and_free_items() -> None:
    tx = _tx(
        [
            ("a", "2024-01-01 09:00", 10.0),
            ("a", "2024-01-01 18:00", 5.0),  # same day: one purchase day of 15
            ("a", "2024-01-05 10:00", -4.0),  # a day of returns only: not a purchase
            ("a", "2024-01-09 10:00", 0.0),  # a free item is a purchase
            ("a", "2024-01-11 10:00", 20.0),
            ("a", "2024-01-11 11:00", -30.0),  # purchase day netting to -10
            ("r", "2024-01-02 10:00", -50.0),  # returns only: not a customer of the summary
            ("z", "2023-12-31 10:00", -5.0),  # return before the first purchase: not counted
            ("z", "2024-01-03 10:00", 7.0),
        ]
    )
    rfm = rfm_summary(tx, pd.Timestamp("2024-01-15 23:00"), time_unit_days=1.0)

    assert rfm.index.tolist() == ["a", "z"]
    a = rfm.loc["a"]
    assert (a["frequency"], a["recency"], a["T"]) == (2.0, 10.0, 14.0)
    assert a["monetary_value"] == pytest.approx((0.0 - 10.0) / 2)
    assert a["total_value"] == pytest.approx(15.0 - 4.0 + 0.0 - 10.0)
    assert rfm.loc["z", "total_value"] == pytest.approx(7.0)


def test_empty_and_bad_unit(tiny_transactions: pd.DataFrame) -> None:
    empty = rfm_summary(tiny_transactions, pd.Timestamp("2023-01-01"))
    assert empty.empty and list(empty.columns) == list(RFM_COLUMNS)
    with pytest.raises(ConfigError, match="time_unit_days"):
        rfm_summary(tiny_transactions, pd.Timestamp("2024-03-01"), time_unit_days=0.0)


def test_rfm_later_is_the_summary_at_a_later_as_of(tiny_transactions: pd.DataFrame) -> None:
    early = pd.Timestamp("2024-03-01 12:00")
    later = pd.Timestamp("2024-06-30 08:00")
    moved = rfm_later(rfm_summary(tiny_transactions, early), later)
    pd.testing.assert_frame_equal(moved, rfm_summary(tiny_transactions, later), check_exact=True)
