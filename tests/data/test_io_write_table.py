"""``write_table``: one frame or its chunks, CSV or Parquet, floats short or in full."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from ltvcast.data.io import write_table
from ltvcast.exceptions import ConfigError


@pytest.fixture
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "customer_id": [f"C{i:03d}" for i in range(10)],
            "timestamp": pd.date_range("2024-01-01 10:00", periods=10, freq="h"),
            "value": rng.random(10) / 3,
        }
    )


def test_floats_are_short_by_default_and_full_on_request(
    tmp_path: Path, frame: pd.DataFrame
) -> None:
    short = pd.read_csv(write_table(frame, tmp_path / "short.csv"))
    full = pd.read_csv(write_table(frame, tmp_path / "full.csv", float_format=None))
    np.testing.assert_allclose(short["value"], frame["value"], rtol=1e-5)
    assert not np.array_equal(short["value"], frame["value"])
    np.testing.assert_array_equal(full["value"], frame["value"])


@pytest.mark.parametrize("name", ["t.csv", "t.csv.gz", "t.parquet"])
def test_chunks_write_the_same_table_as_one_frame(
    tmp_path: Path, frame: pd.DataFrame, name: str
) -> None:
    whole = write_table(frame, tmp_path / "whole" / name, float_format=None)
    chunks = (frame.iloc[i : i + 4] for i in range(0, len(frame), 4))
    chunked = write_table(chunks, tmp_path / "chunked" / name, float_format=None)
    if name.endswith(".parquet"):
        assert pq.ParquetFile(chunked).num_row_groups == 3
        pd.testing.assert_frame_equal(pd.read_parquet(chunked), pd.read_parquet(whole))
    else:
        pd.testing.assert_frame_equal(pd.read_csv(chunked), pd.read_csv(whole))
    if name.endswith(".csv"):
        assert chunked.read_bytes() == whole.read_bytes()


@pytest.mark.parametrize("name", ["t.csv", "t.parquet"])
def test_bad_chunks_raise_config_error(tmp_path: Path, frame: pd.DataFrame, name: str) -> None:
    with pytest.raises(ConfigError, match="no chunks"):
        write_table(iter([]), tmp_path / name)
    with pytest.raises(ConfigError, match="columns"):
        write_table([frame, frame.rename(columns={"value": "amount"})], tmp_path / name)


@pytest.mark.parametrize("name", ["t.csv", "t.parquet"])
def test_chunks_are_written_one_at_a_time(tmp_path: Path, frame: pd.DataFrame, name: str) -> None:
    """Memory, indirectly: no chunk is still held when the next one is made."""
    made: list[weakref.ref[pd.DataFrame]] = []

    def chunks() -> Iterator[pd.DataFrame]:
        for i in range(0, len(frame), 2):
            gc.collect()
            assert all(ref() is None for ref in made), "an earlier chunk is held"
            chunk = frame.iloc[i : i + 2].copy()
            made.append(weakref.ref(chunk))
            yield chunk
            del chunk

    write_table(chunks(), tmp_path / name)
    assert len(made) == 5


def test_csv_floats_are_written_as_pandas_writes_them(tmp_path: Path) -> None:
    # write_table formats float columns itself (faster); the bytes must be pandas' own.
    values = np.array([1 / 3, np.nan, np.inf, -1e-7, 123456789.0, 0.0, 2.5e30])
    frame = pd.DataFrame(
        {
            "customer_id": ["a", "b,c", 'd"e', "f", "g", "h", "i"],
            "value": values,
            "small": values.astype(np.float32),
            "nullable": pd.array([0.5, None, 1.0, None, 2.0, 3.0, None], dtype="Float64"),
            "count": np.arange(7),
            "flag": [True, False] * 3 + [True],
            "when": pd.date_range("2024-01-01", periods=7, freq="D"),
        }
    )
    for float_format in ("%.6g", None):
        ours = write_table(frame, tmp_path / "ours.csv", float_format=float_format)
        frame.to_csv(tmp_path / "pandas.csv", index=False, float_format=float_format)
        assert ours.read_bytes() == (tmp_path / "pandas.csv").read_bytes()
