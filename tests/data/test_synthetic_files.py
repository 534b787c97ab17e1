"""Writing simulated stores: the in-memory writer, and the chunked writer that must give the
same files in bounded memory."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from ltvcast.data.purchases import horizon_labels
from ltvcast.data.synthetic import (
    SimulatedStore,
    _files,
    iter_simulated_chunks,
    simulate_store,
    write_simulated_store,
    write_store,
)
from ltvcast.exceptions import ConfigError

TABLES = {"transactions", "events", "profiles", "params", "truth"}
Format = Literal["csv", "parquet"]


def _memory(n: int) -> SimulatedStore:
    return simulate_store(n, days=400, dirty_rate=0.02, random_state=7)  # short period: fast


def _chunks(n: int, chunk_size: int) -> Iterator[SimulatedStore]:
    return iter_simulated_chunks(n, chunk_size, days=400, dirty_rate=0.02, random_state=7)


def _chunked(out: Path, n: int, chunk_size: int, fmt: Format = "csv") -> dict[str, Path]:
    return write_simulated_store(
        out, n, chunk_size=chunk_size, fmt=fmt, days=400, dirty_rate=0.02, random_state=7
    )


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_write_store_writes_readable_tables_and_truth(tmp_path: Path, fmt: Format) -> None:
    small = simulate_store(300, random_state=2, dirty_rate=0.02 if fmt == "csv" else 0.0)
    paths = write_store(small, tmp_path, horizon="30d", fmt=fmt)
    assert set(paths) == TABLES
    read = pd.read_csv if fmt == "csv" else pd.read_parquet
    for name in ("transactions", "events", "profiles", "params"):
        assert len(read(paths[name])) == len(getattr(small, name))
    truth = read(paths["truth"])
    assert truth["as_of"].nunique() == 2 and (truth["horizon"] == "30d").all()
    origin = pd.Timestamp(truth["as_of"].min())
    assert origin == small.end - pd.Timedelta(days=30)
    past = truth[pd.to_datetime(truth["as_of"]) == origin]
    labels = horizon_labels(
        small.clean_transactions(), pd.Index(past["customer_id"]), origin, small.end
    )
    np.testing.assert_allclose(past["actual_value"], labels["value"])
    assert truth.loc[pd.to_datetime(truth["as_of"]) > origin, "actual_value"].isna().all()


def test_floats_are_written_in_full(tmp_path: Path) -> None:
    small = simulate_store(50, days=200, random_state=1)
    read = pd.read_csv(write_store(small, tmp_path)["params"])
    np.testing.assert_array_equal(read["spend_mean"], small.params["spend_mean"])


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_a_store_in_one_chunk_gives_the_in_memory_files(tmp_path: Path, fmt: Format) -> None:
    memory = write_store(_memory(500), tmp_path / "memory", fmt=fmt)
    chunked = _chunked(tmp_path / "chunked", 500, chunk_size=500, fmt=fmt)
    assert set(chunked) == TABLES
    for name in TABLES:
        if fmt == "csv":
            assert chunked[name].read_bytes() == memory[name].read_bytes(), name
        else:
            pd.testing.assert_frame_equal(
                pd.read_parquet(chunked[name]), pd.read_parquet(memory[name]), check_exact=True
            )
    assert sorted(p.name for p in (tmp_path / "chunked").iterdir()) == sorted(
        p.name for p in chunked.values()
    )  # the spool is gone


def _chunk_files(tmp_path: Path, fmt: Format) -> list[dict[str, Path]]:
    """Each chunk of a 1,000-customer store written on its own by the in-memory writer."""
    chunks = enumerate(_chunks(1000, 400))
    return [write_store(chunk, tmp_path / f"chunk{k}", fmt=fmt) for k, chunk in chunks]


def test_chunked_csv_files_are_the_chunks_one_after_the_other(tmp_path: Path) -> None:
    chunked = _chunked(tmp_path / "chunked", 1000, 400)
    parts = _chunk_files(tmp_path, "csv")
    for name in TABLES:
        lines = [p[name].read_bytes().splitlines(keepends=True) for p in parts]
        expected = b"".join([lines[0][0], *(b"".join(part[1:]) for part in lines)])
        assert chunked[name].read_bytes() == expected, name
    ids = pd.read_csv(chunked["profiles"])["customer_id"]
    assert ids.is_unique and len(ids) == 1000


def test_chunked_parquet_files_hold_one_row_group_per_chunk(tmp_path: Path) -> None:
    chunked = _chunked(tmp_path / "chunked", 1000, 400, fmt="parquet")
    parts = _chunk_files(tmp_path, "parquet")
    for name in TABLES:
        assert pq.ParquetFile(chunked[name]).num_row_groups == 3
        expected = pd.concat([pd.read_parquet(p[name]) for p in parts], ignore_index=True)
        pd.testing.assert_frame_equal(pd.read_parquet(chunked[name]), expected, check_exact=True)


def test_same_seed_same_files(tmp_path: Path) -> None:
    one, two = _chunked(tmp_path / "one", 600, 250), _chunked(tmp_path / "two", 600, 250)
    assert all(one[name].read_bytes() == two[name].read_bytes() for name in TABLES)


def test_the_chunked_writer_holds_one_chunk_of_at_most_chunk_size_customers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Memory, indirectly: before each chunk is simulated, no earlier chunk is still alive."""
    sizes: list[int] = []
    alive: list[weakref.ref[Any]] = []

    def spy(*args: Any, **kwargs: Any) -> Iterator[SimulatedStore]:
        chunks = iter_simulated_chunks(*args, **kwargs)
        while True:
            gc.collect()
            assert not [ref for ref in alive if ref() is not None], "an earlier chunk is held"
            chunk = next(chunks, None)
            if chunk is None:
                return
            sizes.append(len(chunk.profiles))
            alive.extend(weakref.ref(x) for x in (chunk, chunk.transactions, chunk.events))
            yield chunk
            del chunk

    monkeypatch.setattr(_files, "iter_simulated_chunks", spy)
    _chunked(tmp_path, 900, 300)
    assert sizes == [300, 300, 300]


def test_bad_arguments_raise_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="fmt"):
        write_simulated_store(tmp_path, 10, fmt="json")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="n_customers"):
        write_simulated_store(tmp_path, 0)
    with pytest.raises(ConfigError, match="chunk_size"):
        write_simulated_store(tmp_path, 10, chunk_size=0)
