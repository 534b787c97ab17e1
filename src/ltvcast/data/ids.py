"""Id columns (customer, order, item): text, with numbers written without ``.0``."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ltvcast.data.checker import TableChecker


def as_ids(values: pd.Series) -> pd.Series:
    """Ids as strings: numbers without a trailing ``.0``, blanks stripped, empty -> missing."""
    if pd.api.types.is_float_dtype(values):
        finite = values.dropna()
        if len(finite) and bool((finite == np.floor(finite)).all()):
            values = values.astype("Int64")
    text = values.astype("str").str.strip()
    dotted = text.str.endswith(".0").fillna(False).to_numpy(dtype=bool)
    if dotted.any():
        text = text.mask(dotted, text.str.replace(r"^(-?\d+)\.0+$", r"\1", regex=True))
    return text.mask(text == "")


def check_ids(checker: TableChecker, target: str, field_name: str, required: bool) -> None:
    """Put the ids of ``field_name`` in column ``target``; a required one rejects empty ids.

    An optional column that is neither mapped nor present is skipped.
    """
    raw = checker.column(field_name, required)
    if raw is None:
        return
    ids = as_ids(raw)
    checker.out[target] = ids
    if required:
        missing = ids.isna().to_numpy()
        checker.reject(field_name, f"invalid_{target}", "must hold an id", "are empty", missing)
