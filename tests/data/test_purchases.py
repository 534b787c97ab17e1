"""Purchase days and the id codes they are grouped by."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ltvcast.data.purchases import factorize_ids, purchase_days


@pytest.mark.parametrize("order", ["sorted", "shuffled", "empty"])
def test_factorize_ids_is_pandas_sorted_factorize(order: str) -> None:
    rng = np.random.default_rng(0)
    ids = pd.Series(np.sort(rng.choice(["a", "b", "é", "C10", "C9", "z z"], 200)), dtype="str")
    if order == "shuffled":
        ids = ids.sample(frac=1, random_state=1).reset_index(drop=True)
    if order == "empty":
        ids = ids.iloc[:0]
    codes, uniques = factorize_ids(ids)
    expected_codes, expected_uniques = pd.factorize(ids, sort=True)
    assert codes.tolist() == expected_codes.tolist()
    assert uniques.tolist() == list(expected_uniques)


def test_purchase_days_of_sorted_and_unsorted_rows_agree(tiny_transactions: pd.DataFrame) -> None:
    shuffled = tiny_transactions.sample(frac=1, random_state=3)
    one = purchase_days(tiny_transactions).sort_values(["customer_id", "day"], ignore_index=True)
    two = purchase_days(shuffled).sort_values(["customer_id", "day"], ignore_index=True)
    pd.testing.assert_frame_equal(one, two)
    assert len(one) == 6 and one["is_purchase"].all()
