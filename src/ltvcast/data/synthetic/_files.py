"""Writing a simulated store and its ground truth: from memory, or chunk by chunk.

Both writers write through :func:`ltvcast.data.io.write_table` with full float precision,
one file per table: transactions, events, profiles, params, truth.
"""

from __future__ import annotations

from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Literal

import pandas as pd

from ltvcast.data.io import write_table
from ltvcast.data.purchases import horizon_labels
from ltvcast.data.schemas import CUSTOMER_ID
from ltvcast.data.synthetic._simulate import iter_simulated_chunks
from ltvcast.data.synthetic._truth import SimulatedStore
from ltvcast.exceptions import ConfigError
from ltvcast.timeframe import Horizon, parse_horizon


def write_store(
    store: SimulatedStore,
    out_dir: str | Path,
    *,
    horizon: Horizon | str | None = None,
    fmt: Literal["csv", "parquet"] = "csv",
) -> dict[str, Path]:
    """Write the store's tables and its ground truth to ``out_dir``.

    ``truth`` stacks two as-of times (column ``as_of``): ``end - horizon``, with what
    really happened in the window (``actual_value``, ``actual_purchases``), and ``end``,
    the future (actuals empty). ``horizon`` defaults to 90 days.

    Returns
    -------
    dict
        Paths by table name: transactions, events, profiles, params, truth.
    """
    span = _check(fmt, horizon)
    out = Path(out_dir)
    return {
        name: write_table(frame, out / f"{name}.{fmt}", float_format=None)
        for name, frame in _tables(store, span).items()
    }


def write_simulated_store(
    out_dir: str | Path,
    n_customers: int,
    *,
    chunk_size: int = 100_000,
    horizon: Horizon | str | None = None,
    fmt: Literal["csv", "parquet"] = "csv",
    start: str | pd.Timestamp = "2023-01-01",
    days: int = 730,
    dirty_rate: float = 0.0,
    events: bool = True,
    random_state: int | None = 0,
) -> dict[str, Path]:
    """Simulate a store of any size and write it as :func:`write_store` does, in bounded memory.

    The store is simulated in chunks of ``chunk_size`` customers
    (:func:`~ltvcast.data.synthetic.iter_simulated_chunks`) and one chunk is held at a
    time (about 1 GiB per 100,000 customers with events): each chunk's tables go to
    Parquet files in a spool directory under ``out_dir``, then each table is streamed from
    the spool into its file (CSV appended, Parquet one row group per chunk) and the spool
    is removed. Keywords are those of :func:`~ltvcast.data.synthetic.simulate_store` and
    :func:`write_store`; the same arguments give the same files.

    A store that fits in one chunk gives exactly the files of
    ``write_store(simulate_store(n_customers, ...), ...)``. With more chunks, each file
    holds the chunks' tables one after the other: rows are in time order within a chunk,
    and ``truth`` is ordered by chunk, then as-of time.

    Returns
    -------
    dict
        Paths by table name: transactions, events, profiles, params, truth.
    """
    span = _check(fmt, horizon)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    chunks = iter_simulated_chunks(
        n_customers,
        chunk_size,
        start=start,
        days=days,
        dirty_rate=dirty_rate,
        events=events,
        random_state=random_state,
    )
    with TemporaryDirectory(prefix=".chunks-", dir=out) as spool:
        parts: dict[str, list[Path]] = {}
        for store in chunks:  # (enumerate would hold the last chunk during next())
            for name, frame in _tables(store, span).items():
                files = parts.setdefault(name, [])
                files.append(write_table(frame, Path(spool) / f"{name}-{len(files)}.parquet"))
            del store, frame  # hold no chunk while the next one is simulated
        return {
            name: write_table(map(pd.read_parquet, files), out / f"{name}.{fmt}", float_format=None)
            for name, files in parts.items()
        }


def _check(fmt: str, horizon: Horizon | str | None) -> Horizon:
    """The truth horizon (90 days by default), once ``fmt`` is known to be a file format."""
    if fmt not in ("csv", "parquet"):
        raise ConfigError(f"fmt must be 'csv' or 'parquet'; got {fmt!r}")
    return parse_horizon(horizon or "90d")


def _tables(store: SimulatedStore, horizon: Horizon) -> dict[str, pd.DataFrame]:
    """The tables of a store's files, by name, ``truth`` included."""
    return {
        "transactions": store.transactions,
        "events": store.events,
        "profiles": store.profiles,
        "params": store.params,
        "truth": _truth(store, horizon),
    }


def _truth(store: SimulatedStore, horizon: Horizon) -> pd.DataFrame:
    """True values at ``end - horizon`` (with what happened by ``end``) and at ``end``."""
    origin = horizon.start(store.end)
    past = store.truth(origin, horizon)
    actual = horizon_labels(
        store.clean_transactions(), pd.Index(past[CUSTOMER_ID]), origin, store.end
    )
    past = past.assign(
        actual_value=actual["value"].to_numpy(), actual_purchases=actual["purchases"].to_numpy()
    )
    future = store.truth(store.end, horizon)
    truth = pd.concat(
        [past.assign(as_of=origin), future.assign(as_of=store.end)], ignore_index=True
    ).assign(horizon=str(horizon))
    return truth[["as_of", "horizon", *past.columns]]
