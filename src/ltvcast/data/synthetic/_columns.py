"""Column builders shared by the simulator's tables: string ids and times."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

_ID_WIDTH = 8  # C00000001: unique up to 10^8 customers (longer ids stay unique)


def id_array(prefix: str, numbers: np.ndarray, width: int = _ID_WIDTH) -> pa.Array:
    """Zero-padded string ids such as ``C00000042`` (an Arrow array)."""
    digits = pc.utf8_lpad(pc.cast(pa.array(numbers, pa.int64()), pa.string()), width, "0")
    return pc.binary_join_element_wise(prefix, digits, "")


def text_column(values: pa.Array) -> pd.Series:
    """A pandas ``str`` column of Arrow strings."""
    return pd.Series(pd.array(values, dtype="str"))


def to_time(origin: pd.Timestamp, t: np.ndarray) -> np.ndarray:
    """Days since ``origin`` to datetime64[us], floored to whole seconds."""
    return second_time(origin, np.floor(np.asarray(t) * 86_400.0).astype(np.int64))


def second_time(origin: pd.Timestamp, seconds: np.ndarray) -> np.ndarray:
    """Whole seconds since ``origin`` to datetime64[us]."""
    return np.datetime64(origin, "us") + (seconds * 1_000_000).astype("timedelta64[us]")
