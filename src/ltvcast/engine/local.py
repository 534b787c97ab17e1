"""Partitioned jobs on one machine: split by customer, map over buckets, stream the output.

:class:`LocalJob` runs one job over a transactions file in a temporary directory:

1. :meth:`~LocalJob.split`: DuckDB hash-partitions the rows by customer into Parquet buckets
   (:mod:`ltvcast.engine.partition`), reading the file out of core;
2. :meth:`~LocalJob.clean`: a pool of worker processes validates and cleans every bucket with
   the in-memory rules (:func:`~ltvcast.engine.buckets.clean_bucket`), summarises it (RFM,
   :func:`~ltvcast.engine.buckets.summarise_bucket`) and keeps it for scoring; the buckets'
   reports merge into the table's, and a table the in-memory path refuses is refused with
   the same one line;
3. :meth:`~LocalJob.train`: the summaries, gathered in customer order, fit the BTYD model
   once (:mod:`ltvcast.engine.fit`; its purchase and spend models in two workers at once),
   and its forecasts of them the segment cuts;
4. :meth:`~LocalJob.predict`: the workers score their buckets with the saved model
   (:meth:`~ltvcast.pipeline.ScoringModel.predict`, loaded from its directory in each worker:
   no model is pickled) and write their part; DuckDB merges the parts in customer order into
   the output file, one batch at a time.

A worker holds one bucket; the parent holds the RFM summary of all buyers (six numbers and
an id each) and, while it fits the segment cuts, two forecasts per customer; never the
transactions or the predictions. The workers are forked when the job starts, before DuckDB
starts its threads (by a fork server when the parent has loaded LightGBM or torch).
"""

from __future__ import annotations

import multiprocessing
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, replace
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import duckdb
import numpy as np
import pandas as pd
from numpy.typing import NDArray

from ltvcast.data.clean import CleaningOptions, CleaningReport, capped_amounts
from ltvcast.data.io import ColumnMap, write_table
from ltvcast.data.schemas import AMOUNT, CUSTOMER_ID, CustomerData
from ltvcast.data.validate import DEFAULT_COLUMNS, DEFAULT_OPTIONS, EVENTS, PROFILES, TRANSACTIONS
from ltvcast.engine.buckets import concat_parts, empty_part, sampled
from ltvcast.engine.jobs import (
    FIRST_ROWS,
    NUMERIC_DATE,
    BucketJob,
    Cleaned,
    Pair,
    Predicted,
    check_date_order,
    check_scorable,
    clean_part,
    gather,
    merge_summaries,
    summarised,
    with_kinds,
)
from ltvcast.engine.partition import (
    Buckets,
    Source,
    abs_quantile,
    distinct_values,
    parquet_relation,
    read_bucket,
    read_source,
    split_table,
)
from ltvcast.exceptions import ConfigError, SchemaError
from ltvcast.pipeline import ScoringModel, load_scoring_model
from ltvcast.timeframe import Horizon, parse_as_of

A = TypeVar("A")
B = TypeVar("B")
T = TypeVar("T")
R = TypeVar("R")

#: Why a job stops when the system kills one of its workers.
_KILLED = "a worker process was killed (most often for memory): use more --partitions"
#: Rows per batch when the output is written.
_BATCH_ROWS = 250_000
#: Most rows one pass of the sorted merge sorts (more are sorted in ranges of the first key).
_SORT_ROWS = 2_000_000
#: Modules whose OpenMP thread pool a forked child cannot use (see :class:`_Pool`).
_OPENMP = ("lightgbm", "torch")


class LocalJob(BucketJob):
    """One partitioned job over a transactions file (see the module docstring).

    Parameters
    ----------
    transactions
        A CSV, CSV.gz, TSV, whitespace-separated TXT or Parquet file.
    events, profiles
        The behaviour events and customer profiles files (optional), split into the same
        customer buckets and cleaned with them.
    as_of
        The time the job trains and scores at (a bare date: through its end; default: the
        last time of the cleaned transactions and events).
    columns, options
        How to read and clean it, as for :func:`~ltvcast.data.validate.load_customer_data`
        (``winsorize_quantile``: the cap of the whole table, in a second pass).
    buckets
        Customer buckets to split the rows into (at least 1).
    workers
        Worker processes (1 runs the buckets in this process).
    keep
        Keep the cleaned buckets for :meth:`predict` (a job that only trains needs none).
    work_dir
        Where the temporary directory of buckets goes (default: the system's).
    memory_limit
        DuckDB's memory limit while splitting and merging (it spills beyond it).
    """

    def __init__(
        self,
        transactions: str | Path,
        *,
        events: str | Path | None = None,
        profiles: str | Path | None = None,
        as_of: str | pd.Timestamp | None = None,
        columns: ColumnMap = DEFAULT_COLUMNS,
        options: CleaningOptions = DEFAULT_OPTIONS,
        buckets: int,
        workers: int,
        keep: bool = True,
        work_dir: str | Path | None = None,
        memory_limit: str = "2GB",
    ) -> None:
        if buckets < 1 or workers < 1:
            raise ConfigError(f"buckets and workers must be at least 1; got {buckets}, {workers}")
        self.transactions = Path(transactions)
        self.events = None if events is None else Path(events)
        self.profiles = None if profiles is None else Path(profiles)
        self.columns = columns
        self.options = options
        self.buckets = buckets
        self.workers = workers
        self.keep = keep
        super().__init__(as_of)
        self._work_dir = None if work_dir is None else str(work_dir)
        self._memory_limit = memory_limit
        self._split: Buckets | None = None
        #: Events and profiles split (their names, buckets and canonical empty tables).
        self._others: dict[str, tuple[str, Buckets, pd.DataFrame]] = {}
        self._empty = pd.DataFrame()
        self._parts: list[BucketFiles] = []

    def __enter__(self) -> LocalJob:
        self._tmp = tempfile.TemporaryDirectory(prefix="ltvcast-job-", dir=self._work_dir)
        self.root = Path(self._tmp.name)
        self._pool = _Pool(self.workers)
        self._con = duckdb.connect(
            config={
                "threads": self.workers,
                "memory_limit": self._memory_limit,
                "temp_directory": str(self.root / "spill"),
            }
        )
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._con.close()
        self._pool.close()
        self._tmp.cleanup()

    @property
    def source(self) -> str:
        """The transactions file as messages name it."""
        return str(self.transactions)

    def split(self) -> Buckets:
        """Hash-partition the rows of the transactions (and of the events and profiles) by
        customer into the job's buckets.

        Raises
        ------
        SchemaError
            As the in-memory path does, for a file it cannot read or a missing customer
            column.
        ConfigError
            For numeric dates whose day/month order the whole column decides, unless
            ``options.date_format`` names it.
        """
        names, split, self._empty = read_source(
            self._con, self.transactions, self._splitter(TRANSACTIONS)
        )
        if not split.rows:
            raise SchemaError(f"{self.source}: file has no data rows")
        self._check_dates(self.source, names, split)
        for table, path in ((EVENTS, self.events), (PROFILES, self.profiles)):
            if path is None:
                continue
            kinds, other, empty = read_source(self._con, path, self._splitter(table))
            if not other.rows:
                raise SchemaError(f"{path}: file has no data rows")
            if table == EVENTS:
                self._check_dates(str(path), kinds, other)
            self._others[table] = (str(path), other, empty)
        self._split = split
        return split

    def _check_dates(self, source: str, names: dict[str, str], split: Buckets) -> None:
        time = self.columns.source("time")
        if self.options.date_format is None and names.get(time, "").startswith("VARCHAR"):
            texts = distinct_values(self._con, split, time, NUMERIC_DATE)
            check_date_order(source, time, texts)

    def _splitter(
        self, table: str
    ) -> Callable[[Source], tuple[dict[str, str], Buckets, pd.DataFrame]]:
        """Of a source of ``table``: its columns, its rows split (each read into a folder of
        its own) and its canonical empty table (:func:`~ltvcast.engine.buckets.empty_part`
        of its first rows: what a bucket without its rows holds)."""

        def split(source: Source) -> tuple[dict[str, str], Buckets, pd.DataFrame]:
            names = source.columns(self._con)
            customer = self.columns.source("customer")
            where = str(source.path)
            first = source.head(self._con, FIRST_ROWS)  # none: no data rows (refused later)
            empty = (
                empty_part(table, first, where, self.columns, self.options) if len(first) else first
            )
            if customer not in names:  # the validator's own message, from the first rows
                raise SchemaError(f"{where}: required column '{customer}' not found")
            into = self.root / f"{table}-{'raw' if source.utf8 else 'raw-as-read'}"
            return names, split_table(self._con, source, customer, self.buckets, into), empty

        return split

    def clean(self, *, summarise: bool = True, with_litt: bool = False) -> CleaningReport:
        """Validate, clean and summarise every bucket; the merged report of the whole tables.

        ``summarise`` computes the RFM summaries :meth:`train` fits on (a job that only
        scores needs none); ``with_litt`` adds the inter-purchase statistic to them (to
        train CNBD-k models).

        Raises
        ------
        SchemaError
            When the in-memory path would refuse a table (a rule that drops every row,
            no row left).
        ConfigError
            For a profile column typed apart by the buckets
            (:func:`~ltvcast.engine.jobs.agreed_kinds`).
        """
        if self._split is None:
            raise ConfigError("LocalJob: call split() first")
        folder = self.root / "clean"
        folder.mkdir(exist_ok=True)
        as_of = self._bucket_as_of()
        given = {TRANSACTIONS: (self.source, self._split, self._empty), **self._others}
        q = self.options.winsorize_quantile
        options = self.options if q is None else replace(self.options, winsorize_quantile=None)
        tasks = [
            _CleanTask(
                {
                    t: _Table(name, split.of(number), empty)
                    for t, (name, split, empty) in given.items()
                },
                self.columns,
                options,
                as_of,
                summarise and q is None,
                with_litt,
                BucketFiles.at(folder, number, given) if self.keep or q is not None else None,
            )
            for number in range(self.buckets)
        ]
        done = self._pool.map(_clean, tasks)
        if q is not None:
            outs = [t.out for t in tasks if t.out is not None]
            done = self._capped(done, outs, q, as_of, summarise=summarise, with_litt=with_litt)
        self._gathered = gather(
            done,
            self.source,
            as_of,
            summarise=summarise,
            events=None if self.events is None else str(self.events),
            profiles=None if self.profiles is None else str(self.profiles),
        )
        self._parts = [t.out for t, d in zip(tasks, done, strict=True) if t.out and d.first]
        return self._gathered.report

    def _capped(
        self,
        done: list[Cleaned],
        outs: list[BucketFiles],
        q: float,
        as_of: pd.Timestamp | None,
        *,
        summarise: bool,
        with_litt: bool,
    ) -> list[Cleaned]:
        """The cleaned buckets with every ``|amount|`` capped at its ``q`` quantile over the
        whole table (the in-memory cap: winsorizing is the last cleaning rule, so the
        quantile of the cleaned buckets' amounts is the one it takes), then summarised."""
        kept = [(d, out) for d, out in zip(done, outs, strict=True) if d.first is not None]
        cap = abs_quantile(self._con, [out.transactions for _, out in kept], AMOUNT, q)
        if cap is None:
            return done
        tasks = [_CapTask(out, cap, q, as_of, summarise, with_litt) for _, out in kept]
        capped = iter(self._pool.map(_cap, tasks))
        out = []
        for d in done:
            if d.first is not None:
                fields = next(capped)
                fields["report"] = CleaningReport.merge([d.report, fields["report"]])
                d = replace(d, **fields)
            out.append(d)
        return out

    def _pair(self) -> Pair:
        return self._pool.pair

    @property
    def bucket_files(self) -> list[BucketFiles]:
        """The cleaned buckets' files (after :meth:`clean`), one per bucket with rows."""
        if not self.keep:
            raise ConfigError("LocalJob: a job made with keep=False keeps no buckets")
        return list(self._parts)

    @property
    def parts(self) -> list[Path]:
        """The cleaned buckets' transactions files (canonical columns, every row)."""
        return [bucket.transactions for bucket in self.bucket_files]

    @property
    def kinds(self) -> dict[str, bool | None]:
        """Whether each profile column is numeric, agreed over the buckets (after
        :meth:`clean`; what :meth:`BucketFiles.read` types them by)."""
        return self._done().kinds

    def map(self, fn: Callable[[T], R], tasks: Sequence[T]) -> list[R]:
        """``[fn(task) for task in tasks]`` in the job's workers (``fn`` a module-level
        function, as a worker gets it by name).

        Raises
        ------
        MemoryError
            When a worker dies (killed by the system, most often for memory).
        """
        return self._pool.map(fn, tasks)

    def predict(
        self,
        scoring: ScoringModel,
        out: str | Path,
        *,
        horizons: Sequence[Horizon] | None = None,
        discount_rate: float | None = None,
    ) -> Predicted:
        """Score every customer seen up to the job's as-of into ``out`` (``.csv``,
        ``.csv.gz`` or ``.parquet``), sorted by customer id: the file
        :meth:`~ltvcast.pipeline.ScoringModel.predict` and
        :func:`~ltvcast.data.io.write_table` write in memory.

        Raises
        ------
        ConfigError
            When the model's forecasts are not a function of each customer's own rows alone
            (:data:`~ltvcast.engine.plan.SCORED_BY_CUSTOMER`), or the job keeps no buckets.
        """
        check_scorable(scoring)
        buckets = self.bucket_files
        when = self.as_of
        model_dir = scoring.save(self.root / "model")
        folder = self.root / "predictions"
        folder.mkdir(exist_ok=True)
        kinds = self.kinds
        tasks = [
            _PredictTask(
                part, kinds, model_dir, when, horizons, discount_rate, folder / f"{i}.parquet"
            )
            for i, part in enumerate(buckets)
        ]
        done = self._pool.map(_predict, tasks)
        customers = sum(rows for rows, _ in done)
        total = float(sum(value for _, value in done))
        path = self.write_sorted([t.out for t in tasks], out)
        return Predicted(path, customers, total, when)

    def summarise(self, as_of: str | pd.Timestamp, *, with_litt: bool = False) -> None:
        """Summarise the kept buckets at ``as_of``, which becomes the job's as-of (to train
        at a time :meth:`clean` did not know, such as a backtest's cutoff, without cleaning
        again).

        Raises
        ------
        ConfigError
            Before :meth:`clean`, or when the job keeps no buckets.
        """
        done = self._done()
        when = parse_as_of(as_of, self.last_timestamp)
        tasks = [_SummaryTask(part, self.kinds, when, with_litt) for part in self.bucket_files]
        parts = self._pool.map(_summarise, tasks)
        summary, hashes = merge_summaries(
            [rfm for rfm, _, _ in parts], sum(n for _, n, _ in parts), [h for _, _, h in parts]
        )
        self._as_of = when
        self._gathered = replace(done, summary=summary, hashes=hashes)

    def _sample(self, cut: int | None) -> CustomerData:
        if not self.keep:
            raise ConfigError("LocalJob: a job made with keep=False keeps no rows to sample")
        folder = self.root / "sample"
        folder.mkdir(exist_ok=True)
        kinds, when = self._done().kinds, self.as_of
        tables = {EVENTS: self.events, PROFILES: self.profiles}
        given = {t: path for t, path in tables.items() if path is not None}
        tasks = [
            _SampleTask(part, kinds, when, cut, BucketFiles.at(folder, i, given))
            for i, part in enumerate(self._parts)
        ]
        self._pool.map(_sample, tasks)
        return concat_parts([task.out.read(kinds) for task in tasks])

    def write_sorted(
        self, parts: list[Path], out: str | Path, by: Sequence[str] = (CUSTOMER_ID,)
    ) -> Path:
        """Write the rows of the Parquet ``parts`` to ``out`` (as
        :func:`~ltvcast.data.io.write_table` does) sorted by the columns ``by``; DuckDB
        sorts out of core and the file is written one batch at a time."""
        return write_table(self._sorted(parts, by), out)

    def _sorted(self, parts: list[Path], by: Sequence[str]) -> Iterator[pd.DataFrame]:
        """The parts' rows in ``by`` order, one batch at a time; an empty frame with the
        columns when they have no row. Beyond :data:`_SORT_ROWS` rows DuckDB sorts one range
        of ``by[0]`` at a time (cut at the quantiles of a sample of it), so that memory holds
        one range's sort whatever the size."""
        source, key = parquet_relation(parts), by[0]
        (rows,) = self._con.sql(f"SELECT count(*) FROM {source}").fetchall()[0]
        ranges = -(-int(rows) // _SORT_ROWS)
        cuts: list[Any] = []
        if ranges > 1:
            shares = ", ".join(str(i / ranges) for i in range(1, ranges))
            sample = f"SELECT {key} FROM {source} USING SAMPLE reservoir(100000 ROWS)"
            sql = f"SELECT quantile_disc({key}, [{shares}]) FROM ({sample})"
            cuts = sorted(set(self._con.sql(sql).fetchall()[0][0]))
        empty = True
        for i in range(len(cuts) + 1):
            within = {"low": cuts[i - 1]} if i else {}
            within |= {"high": cuts[i]} if i < len(cuts) else {}
            where = [f"{key} {'>=' if name == 'low' else '<'} ${name}" for name in within]
            sql = (
                f"SELECT * FROM {source} WHERE {' AND '.join(where) or 'true'} "
                f"ORDER BY {', '.join(by)}"
            )
            for batch in self._con.sql(sql, params=within).to_arrow_reader(_BATCH_ROWS):
                empty = False
                yield batch.to_pandas()
        if empty:
            yield pd.read_parquet(parts[0]).iloc[:0]


@dataclass(frozen=True)
class _Table:
    """One table's bucket: its name in messages, its files and its canonical empty table."""

    source: str
    files: tuple[Path, ...]
    empty: pd.DataFrame

    def read(self) -> pd.DataFrame:
        """The bucket's raw rows (the empty table when no row fell into it)."""
        return read_bucket(self.files) if self.files else self.empty


@dataclass(frozen=True)
class BucketFiles:
    """Where a cleaned bucket's tables are kept (``None``: a table not given)."""

    transactions: Path
    events: Path | None
    profiles: Path | None

    @classmethod
    def at(cls, folder: Path, number: int, tables: Mapping[str, object]) -> BucketFiles:
        """Bucket ``number``'s files in ``folder``, for the ``tables`` given."""

        def path(table: str) -> Path | None:
            return folder / f"{table}-{number}.parquet" if table in tables else None

        return cls(folder / f"{TRANSACTIONS}-{number}.parquet", path(EVENTS), path(PROFILES))

    def write(self, data: CustomerData) -> None:
        for path, frame in self._pairs(data):
            frame.to_parquet(path, index=False)

    def read(self, kinds: dict[str, bool | None]) -> CustomerData:
        """The bucket cleaned, its profiles with the whole table's column ``kinds``."""
        ev = None if self.events is None else pd.read_parquet(self.events)
        pr = None if self.profiles is None else pd.read_parquet(self.profiles)
        return with_kinds(CustomerData(pd.read_parquet(self.transactions), ev, pr), kinds)

    def _pairs(self, data: CustomerData) -> list[tuple[Path, pd.DataFrame]]:
        tables = [
            (self.transactions, data.transactions),
            (self.events, data.events),
            (self.profiles, data.profiles),
        ]
        return [(path, frame) for path, frame in tables if path is not None and frame is not None]


@dataclass(frozen=True)
class _CleanTask:
    tables: dict[str, _Table]
    columns: ColumnMap
    options: CleaningOptions
    as_of: pd.Timestamp | None
    summarise: bool
    with_litt: bool
    out: BucketFiles | None


@dataclass(frozen=True)
class _PredictTask:
    part: BucketFiles
    kinds: dict[str, bool | None]
    model_dir: Path
    as_of: pd.Timestamp
    horizons: Sequence[Horizon] | None
    discount_rate: float | None
    out: Path


@dataclass(frozen=True)
class _SampleTask:
    part: BucketFiles
    kinds: dict[str, bool | None]
    as_of: pd.Timestamp
    cut: int | None
    out: BucketFiles


@dataclass(frozen=True)
class _CapTask:
    part: BucketFiles
    cap: float
    q: float
    as_of: pd.Timestamp | None
    summarise: bool
    with_litt: bool


@dataclass(frozen=True)
class _SummaryTask:
    part: BucketFiles
    kinds: dict[str, bool | None]
    as_of: pd.Timestamp
    with_litt: bool


def _clean(task: _CleanTask) -> Cleaned:
    raw = {table: (spec.read(), spec.source) for table, spec in task.tables.items()}
    data, done = clean_part(
        raw,
        task.columns,
        task.options,
        task.as_of,
        summarise=task.summarise,
        with_litt=task.with_litt,
    )
    if task.out is not None and done.first is not None:
        task.out.write(data)
    return done


def _predict(task: _PredictTask) -> tuple[int, float]:
    scoring = load_scoring_model(task.model_dir)
    data = task.part.read(task.kinds)
    frame = scoring.predict(
        data, task.as_of, horizons=task.horizons, discount_rate=task.discount_rate
    )
    frame.to_parquet(task.out, index=False)
    return len(frame), float(frame["predicted_value"].sum())


def _cap(task: _CapTask) -> dict[str, Any]:
    """A bucket's transactions capped (rewritten) and, when asked, summarised: the fields of
    its :class:`~ltvcast.engine.jobs.Cleaned` that change, its report with the cap."""
    data = task.part.read({})
    report = CleaningReport()
    transactions = capped_amounts(data.transactions, task.cap, task.q, report, TRANSACTIONS)
    transactions.to_parquet(task.part.transactions, index=False)
    fields: dict[str, Any] = {"report": report}
    if task.summarise:
        data = CustomerData(transactions, data.events, data.profiles)
        summary = summarised(data, task.as_of, with_litt=task.with_litt)
        fields.update(zip(("rfm", "customers", "hashes"), summary, strict=True))
    return fields


def _summarise(task: _SummaryTask) -> tuple[pd.DataFrame, int, NDArray[np.uint64]]:
    return summarised(task.part.read(task.kinds), task.as_of, with_litt=task.with_litt)


def _sample(task: _SampleTask) -> None:
    task.out.write(sampled(task.part.read(task.kinds).until(task.as_of), task.cut))


class _Pool:
    """``workers`` processes forked at once (before the parent starts threads), or this
    process for one worker; :meth:`map` keeps the order of its tasks.

    A parent that has loaded an OpenMP library (:data:`_OPENMP`: LightGBM, torch) has its
    workers forked by a fork server instead: a child forked from it hangs in OpenMP's
    thread pool (LightGBM loading a model, for one).
    """

    def __init__(self, workers: int) -> None:
        self._executor: ProcessPoolExecutor | None = None
        if workers > 1:
            openmp = any(name in sys.modules for name in _OPENMP)
            method = "spawn" if sys.platform != "linux" else "forkserver" if openmp else "fork"
            context = multiprocessing.get_context(method)
            if method == "forkserver":  # this module loaded once, the caller's script not
                context.set_forkserver_preload([__name__])
            self._executor = ProcessPoolExecutor(workers, mp_context=context)
            for started in [self._executor.submit(_ready) for _ in range(workers)]:
                started.result()

    def map(self, fn: Callable[[T], R], tasks: Sequence[T]) -> list[R]:
        """``[fn(task) for task in tasks]``, in the workers.

        Raises
        ------
        MemoryError
            When a worker dies (killed by the system, most often for memory).
        """
        if self._executor is None:
            return [fn(task) for task in tasks]
        futures: list[Future[R]] = [self._executor.submit(fn, task) for task in tasks]
        try:
            return [future.result() for future in futures]
        except BrokenProcessPool:
            raise MemoryError(_KILLED) from None
        finally:
            for future in futures:
                future.cancel()

    def pair(self, first: Callable[[], A], second: Callable[[], B]) -> tuple[A, B]:
        """``(first(), second())`` at once: ``second`` in a worker, ``first`` here (this
        process is otherwise idle, and its memory is warm); ``first``'s error first."""
        if self._executor is None:
            return first(), second()
        other = self._executor.submit(second)
        try:
            mine = first()
        except BaseException:
            other.cancel()
            raise
        try:
            return mine, other.result()
        except BrokenProcessPool:
            raise MemoryError(_KILLED) from None

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)


def _ready() -> None:
    return None
