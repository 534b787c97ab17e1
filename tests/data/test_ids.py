"""Id columns: text as written, numbers without a trailing ``.0``, empty ones missing."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ltvcast.data.ids import as_ids


def test_as_ids() -> None:
    ids = as_ids(pd.Series([" 001 ", "17850.0", "", None, "x"]))
    assert ids.iloc[:2].tolist() == ["001", "17850"] and ids.iloc[4] == "x"
    assert ids.iloc[2:4].isna().all()
    assert as_ids(pd.Series([17850.0, np.nan])).iloc[0] == "17850"
    assert as_ids(pd.Series([1.5, 2.0])).tolist() == ["1.5", "2"]
    assert as_ids(pd.Series([12345678901234567], dtype="int64")).iloc[0] == "12345678901234567"
