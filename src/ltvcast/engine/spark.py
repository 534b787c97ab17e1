"""Partitioned jobs on Spark: the per-bucket functions as ``groupBy(bucket).applyInPandas``.

:class:`SparkJob` runs the job of :class:`~ltvcast.engine.local.LocalJob` on a Spark
session, over any path Spark reads (a local file, ``hdfs://``, ``s3a://`` ...):

1. :meth:`~SparkJob.split`: Spark reads the transactions (and the events and profiles: CSV/TSV
   as text columns with pandas' missing-value words missing, whitespace-separated TXT,
   Parquet files or folders), numbers each table's rows in file order and gives every row
   the bucket ``xxhash64(id) mod n`` of its customer id as validation reads it
   (:func:`bucket_of`: text, ASCII blanks stripped, the ``.0`` of a whole number dropped,
   as :mod:`ltvcast.engine.partition` does). Each table's rows of a bucket are packed into
   one Parquet cell, and the cells of the three tables are unioned by bucket (Spark's
   cogroup takes two frames): one task sees a bucket's tables together, and only their
   bytes travel (never a path on the driver's disk);
2. :meth:`~SparkJob.clean`: each bucket is cleaned and summarised on an executor by
   :func:`~ltvcast.engine.jobs.clean_part` (the in-memory rules); the buckets' reports and
   RFM summaries come back to the driver (pickled by this job for this job: never a model)
   and merge as the local job's do;
3. :meth:`~SparkJob.train`: the BTYD fit on the driver (:class:`~ltvcast.engine.jobs.BucketJob`);
   a model of :data:`~ltvcast.engine.plan.SAMPLED_MODELS` by
   :func:`~ltvcast.pipeline.train_model` on the driver, on the local job's customer sample
   (:meth:`~ltvcast.engine.jobs.BucketJob.sample`), filtered on the executors and collected
   as Parquet cells;
4. :meth:`~SparkJob.predict`: the saved model's directory is shipped to the executors
   (``SparkContext.addFile``) and loaded there (:func:`~ltvcast.pipeline.load_scoring_model`);
   each bucket is cleaned again and scored with its events and profiles, and the
   predictions are written as a folder of Parquet parts.

Text is read as UTF-8 (other encodings: the local engine). This is the only module that
imports pyspark.
"""

from __future__ import annotations

import functools
import io
import math
import os
import pickle
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import urlparse

import numpy as np
import pandas as pd

from ltvcast.data.clean import CleaningOptions, CleaningReport
from ltvcast.data.io import (
    SUPPORTED_SUFFIXES,
    ColumnMap,
    check_table_file,
    sniff_text,
    table_suffix,
)
from ltvcast.data.schemas import AMOUNT, CUSTOMER_ID, TIMESTAMP, CustomerData
from ltvcast.data.validate import (
    DEFAULT_COLUMNS,
    DEFAULT_OPTIONS,
    EVENTS,
    PROFILES,
    TRANSACTIONS,
)
from ltvcast.engine.buckets import RawTable, concat_parts, empty_part, sampled
from ltvcast.engine.jobs import (
    FIRST_ROWS,
    NUMERIC_DATE,
    BucketJob,
    Cleaned,
    Predicted,
    backtest_rows,
    check_date_order,
    check_scorable,
    clean_part,
    gather,
    with_kinds,
)
from ltvcast.engine.partition import BLANKS, MISSING, ROW, numbered
from ltvcast.engine.plan import BUCKET_ROWS
from ltvcast.exceptions import ConfigError, LTVError, SchemaError
from ltvcast.pipeline import ScoringModel, load_scoring_model
from ltvcast.timeframe import Horizon, parse_as_of

try:
    from pyspark import SparkContext, SparkFiles
    from pyspark.errors import AnalysisException
    from pyspark.sql import Column, DataFrame, SparkSession
    from pyspark.sql import functions as F
except ImportError:  # pragma: no cover - exercised in a subprocess without pyspark
    raise ConfigError(
        "the Spark engine needs pyspark (and Java 17): pip install 'ltvcast[spark]'"
    ) from None

T = TypeVar("T")
#: Column holding a row's customer bucket.
BUCKET = "__ltvcast_bucket"
_RESULT = "__ltvcast_result"
_KIND = "__ltvcast_kind"
_BYTES = "__ltvcast_bytes"
#: Schema of packed rows: one Parquet cell of one table's rows of one bucket.
_PACKED = f"{BUCKET} int, {_KIND} string, {_BYTES} binary"
#: Bits of ``monotonically_increasing_id`` that count rows within a partition.
_ROW_BITS = 33


def spark_session(master: str | None = None, **config: str) -> SparkSession:
    """The active Spark session, or a new one on ``master`` (``None``: the master
    spark-submit was given, else ``local[*]``) with ``config``.

    Executors run this Python unless ``PYSPARK_PYTHON`` names another (set here, as pyspark
    reads it). A new session gets the UTC time zone (times are naive UTC in ltvcast), Arrow
    transfers and no console progress bars unless ``config`` says otherwise.
    """
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    SparkContext._ensure_initialized()  # attaches to spark-submit's JVM, whose conf holds --master
    builder = SparkSession.builder.appName("ltvcast")
    if master is not None:
        builder = builder.master(master)
    elif SparkContext._jvm is None or not _jvm_property(SparkContext._jvm, "spark.master"):
        builder = builder.master("local[*]")
    defaults = {
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.ui.showConsoleProgress": "false",
    }
    for key, value in {**defaults, **config}.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


class SparkJob(BucketJob):
    """One partitioned job over a transactions path (and events and profiles paths) on Spark
    (see the module docstring).

    Parameters
    ----------
    transactions
        A CSV, CSV.gz, TSV, whitespace-separated TXT or Parquet file, or a folder of Parquet
        files, by local path or any URI Spark reads.
    spark
        The session to run on (see :func:`spark_session`).
    events, profiles
        The behaviour events and customer profiles (optional, read as the transactions are),
        bucketed by the same customer hash and cleaned with them.
    as_of, columns, options
        As for :class:`~ltvcast.engine.local.LocalJob`.
    buckets
        Customer buckets (default: one per 500,000 rows of all tables, at least the
        session's default parallelism).
    work_dir
        Where the saved model goes before it is shipped (default: the system's temporary
        folder).
    """

    def __init__(
        self,
        transactions: str | Path,
        *,
        spark: SparkSession,
        events: str | Path | None = None,
        profiles: str | Path | None = None,
        as_of: str | pd.Timestamp | None = None,
        columns: ColumnMap = DEFAULT_COLUMNS,
        options: CleaningOptions = DEFAULT_OPTIONS,
        buckets: int | None = None,
        work_dir: str | Path | None = None,
    ) -> None:
        if buckets is not None and buckets < 1:
            raise ConfigError(f"buckets must be at least 1; got {buckets}")
        if options.winsorize_quantile is not None:
            raise ConfigError(
                "--winsorize caps amounts at a quantile of the whole table, which the "
                "Spark engine does not compute; use --engine local"
            )
        super().__init__(as_of)
        self.transactions = str(transactions)
        self.events = None if events is None else str(events)
        self.profiles = None if profiles is None else str(profiles)
        self.spark = spark
        self.columns = columns
        self.options = options
        self.buckets = buckets
        self._work_dir = None if work_dir is None else str(work_dir)
        #: The tables read (persisted), by table name.
        self._tables: dict[str, _Table] = {}
        self._packed: DataFrame | None = None
        self._persisted: list[DataFrame] = []

    def __enter__(self) -> SparkJob:
        self._tmp = tempfile.TemporaryDirectory(prefix="ltvcast-spark-", dir=self._work_dir)
        self.root = Path(self._tmp.name)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        for frame in self._persisted:
            frame.unpersist()
        self._tmp.cleanup()

    @property
    def source(self) -> str:
        """The transactions path as messages name it."""
        return self.transactions

    def split(self) -> int:
        """Read the tables and put each customer's rows of all of them in one bucket; the
        number of transaction rows.

        Each table's rows of a bucket are packed into one Parquet cell (with the table's
        name), so that a bucket's three tables meet in one task.

        Raises
        ------
        SchemaError
            For a path Spark cannot read, no data rows or a missing customer column.
        ConfigError
            For numeric dates whose day/month order the whole column decides, unless
            ``options.date_format`` names it.
        """
        given = {TRANSACTIONS: self.transactions, EVENTS: self.events, PROFILES: self.profiles}
        for table, path in given.items():
            if path is not None:
                self._tables[table] = self._read(table, path)
        if self.buckets is None:
            parallel = self.spark.sparkContext.defaultParallelism
            rows = sum(t.rows for t in self._tables.values())
            self.buckets = max(parallel, math.ceil(rows / BUCKET_ROWS))
        customer = self.columns.source("customer")
        packed = [
            _packed(t.frame, table, customer, self.buckets) for table, t in self._tables.items()
        ]
        union = functools.reduce(DataFrame.unionByName, packed)
        self._packed = union.repartition(self.buckets, BUCKET).persist()
        self._persisted.append(self._packed)
        return self._tables[TRANSACTIONS].rows

    def _read(self, table: str, path: str) -> _Table:
        """Table ``table`` read from ``path``, refused as the local job refuses it."""
        raw, rows = _guarded(path, lambda: read_raw(self.spark, path))
        raw = raw.persist()
        self._persisted.append(raw)
        first = _raw_rows(raw.where(F.col(ROW) <= FIRST_ROWS).toPandas())
        empty = empty_part(table, first, path, self.columns, self.options) if len(first) else first
        customer = self.columns.source("customer")
        if customer not in raw.columns:
            raise SchemaError(f"{path}: required column '{customer}' not found")
        if not rows:
            raise SchemaError(f"{path}: file has no data rows")
        time = self.columns.source("time")
        if (
            table != PROFILES
            and self.options.date_format is None
            and dict(raw.dtypes).get(time) == "string"
        ):
            column = F.col(_quoted(time))
            numeric = raw.select(column.alias("v")).where(F.trim(column).rlike(NUMERIC_DATE))
            check_date_order(path, time, numeric.distinct().toPandas()["v"])
        return _Table(path, raw, rows, empty)

    def clean(self, *, summarise: bool = True, with_litt: bool = False) -> CleaningReport:
        """Validate, clean and summarise every bucket on the executors; the merged report of
        the whole tables (:meth:`LocalJob.clean <ltvcast.engine.local.LocalJob.clean>`).

        Raises
        ------
        SchemaError
            When the in-memory path would refuse a table, or a bucket, as the local job
            would (the first bucket's error).
        ConfigError
            For a profile column typed apart by the buckets
            (:func:`~ltvcast.engine.jobs.agreed_kinds`).
        """
        columns, options = self.columns, self.options
        as_of = self._bucket_as_of()

        def clean(bucket: int, raw: dict[str, RawTable]) -> pd.DataFrame:
            result: Cleaned | LTVError
            try:
                _, result = clean_part(
                    raw, columns, options, as_of, summarise=summarise, with_litt=with_litt
                )
            except LTVError as err:
                result = err
            return pd.DataFrame({BUCKET: [bucket], _RESULT: [pickle.dumps(result)]})

        rows = self._map(clean, f"{BUCKET} int, {_RESULT} binary").toPandas()
        for table in self._tables.values():  # packed and cached now (a lost part is read again)
            table.frame.unpersist()
        done = [pickle.loads(blob) for blob in rows.sort_values(BUCKET)[_RESULT]]
        for result in done:
            if isinstance(result, LTVError):
                raise result
        self._gathered = gather(
            done,
            self.source,
            as_of,
            summarise=summarise,
            events=self.events,
            profiles=self.profiles,
        )
        return self._gathered.report

    def predict(
        self,
        scoring: ScoringModel,
        out: str | Path,
        *,
        horizons: Sequence[Horizon] | None = None,
        discount_rate: float | None = None,
    ) -> Predicted:
        """Score every customer seen up to the job's as-of into ``out``, a folder of Parquet
        parts (a local path or any URI Spark writes; replaced if it exists), each part
        sorted by customer id; the rows of
        :meth:`~ltvcast.pipeline.ScoringModel.predict` in memory.

        Raises
        ------
        ConfigError
            For a model not scored bucket by bucket
            (:func:`~ltvcast.engine.jobs.check_scorable`), or an ``out`` that names a CSV
            file.
        """
        check_scorable(scoring)
        target = str(out)
        if table_suffix(Path(target)) not in ("", ".parquet", ".pq"):
            raise ConfigError(
                f"{target}: the Spark engine writes a folder of Parquet parts; give a name "
                "without a suffix or ending in .parquet"
            )
        when, kinds = self.as_of, self._done().kinds
        folder = Path(tempfile.mkdtemp(prefix="ltvcast-model-", dir=self.root))
        scoring.save(folder)
        self.spark.sparkContext.addFile(str(folder), recursive=True)
        name = folder.name
        empty = _probe(scoring, when, horizons, discount_rate).iloc[:0]
        columns, options = self.columns, self.options

        def score(bucket: int, raw: dict[str, RawTable]) -> pd.DataFrame:
            data = _cleaned(raw, columns, options, kinds)
            if data is None or not len(data.until(when).customers()):
                return empty
            model = load_scoring_model(SparkFiles.get(name))
            return model.predict(data, when, horizons=horizons, discount_rate=discount_rate)

        predictions = self._map(score, _spark_schema(empty))
        _guarded(target, lambda: predictions.write.mode("overwrite").parquet(target))
        written = self.spark.read.parquet(target)
        totals = written.agg(F.count(F.lit(1)), F.sum("predicted_value")).first()
        customers = int(totals[0]) if totals else 0
        total = float(totals[1]) if totals and totals[1] is not None else 0.0
        return Predicted(Path(target), customers, total, when)

    def summarise(self, as_of: str | pd.Timestamp, *, with_litt: bool = False) -> None:
        """Clean and summarise the buckets again at ``as_of``, which becomes the job's as-of
        (a backtest's cutoff: Spark keeps no cleaned bucket between passes)."""
        self._as_of = parse_as_of(as_of, self.last_timestamp)
        self.clean(summarise=True, with_litt=with_litt)

    def backtest_parts(
        self, models: Sequence[ScoringModel], cutoff: pd.Timestamp, end: pd.Timestamp
    ) -> list[tuple[pd.DataFrame, list[float]]]:
        """:func:`~ltvcast.engine.jobs.backtest_rows` of every bucket with customers up to
        ``cutoff``, one Spark task a bucket (the saved models shipped to the executors)."""
        names = []
        for model in models:
            folder = Path(tempfile.mkdtemp(prefix="ltvcast-model-", dir=self.root))
            model.save(folder)
            self.spark.sparkContext.addFile(str(folder), recursive=True)
            names.append(folder.name)
        kinds, columns, options = self._done().kinds, self.columns, self.options

        def rows(bucket: int, raw: dict[str, RawTable]) -> pd.DataFrame:
            data = _cleaned(raw, columns, options, kinds)
            if data is None or data.until(cutoff).customers().empty:
                return pd.DataFrame({BUCKET: [], _RESULT: []})
            scorings = [load_scoring_model(SparkFiles.get(name)) for name in names]
            part = backtest_rows(data, cutoff, end, scorings)
            return pd.DataFrame({BUCKET: [bucket], _RESULT: [pickle.dumps(part)]})

        done = self._map(rows, f"{BUCKET} int, {_RESULT} binary").toPandas()
        return [pickle.loads(blob) for blob in done.sort_values(BUCKET)[_RESULT]]

    def _sample(self, cut: int | None) -> CustomerData:
        """The sampled customers' cleaned rows up to the as-of, filtered on the executors
        and collected here as Parquet cells (see :meth:`BucketJob._sample
        <ltvcast.engine.jobs.BucketJob._sample>`)."""
        when, kinds = self.as_of, self._done().kinds
        columns, options = self.columns, self.options

        def sample(bucket: int, raw: dict[str, RawTable]) -> pd.DataFrame:
            data = _cleaned(raw, columns, options, kinds)
            if data is None:
                return pd.DataFrame({BUCKET: [], _KIND: [], _BYTES: []})
            part = sampled(data.until(when), cut)
            tables = {TRANSACTIONS: part.transactions, EVENTS: part.events, PROFILES: part.profiles}
            given = {table: frame for table, frame in tables.items() if frame is not None}
            return pd.DataFrame(
                {
                    BUCKET: bucket,
                    _KIND: list(given),
                    _BYTES: [_parquet_bytes(frame) for frame in given.values()],
                }
            )

        rows = self._map(sample, _PACKED).toPandas().sort_values([BUCKET, _KIND])
        parts = []
        for _, cells in rows.groupby(BUCKET, sort=True):
            frames = _frames(cells)
            data = CustomerData(frames[TRANSACTIONS], frames.get(EVENTS), frames.get(PROFILES))
            parts.append(with_kinds(data, kinds))
        return concat_parts(parts)

    def _map(
        self, fn: Callable[[int, dict[str, RawTable]], pd.DataFrame], schema: str
    ) -> DataFrame:
        """``fn(bucket, raw tables)`` of every bucket with rows, as rows of ``schema``: its
        tables unpacked (:func:`_unpacked`), in one task. ``fn`` must not hold the job (it
        travels to the executors)."""
        if self._packed is None:
            raise ConfigError("SparkJob: call split() first")
        tables = {table: (t.source, t.empty) for table, t in self._tables.items()}

        def run(cells: pd.DataFrame) -> pd.DataFrame:
            return fn(int(cells[BUCKET].iloc[0]), _unpacked(cells, tables))

        return self._packed.groupBy(BUCKET).applyInPandas(run, schema)


@dataclass(frozen=True)
class _Table:
    """A table read: its path, its rows with :data:`~ltvcast.engine.partition.ROW`
    (persisted), how many, and its canonical empty table
    (:func:`~ltvcast.engine.buckets.empty_part`)."""

    source: str
    frame: DataFrame
    rows: int
    empty: pd.DataFrame


def bucket_of(frame: DataFrame, customer: str, buckets: int) -> Column:
    """The customer bucket of each row of ``frame``: ``xxhash64`` of column ``customer`` as
    validation reads ids (text, ASCII blanks stripped, the ``.0`` of a whole number
    dropped) mod ``buckets``, so that every table of one customer agrees whatever its
    column's type."""
    key = F.col(_quoted(customer))
    kind = dict(frame.dtypes)[customer]
    if kind in ("float", "double") or kind.startswith("decimal"):
        key = F.when(key == F.floor(key), key.cast("bigint").cast("string")).otherwise(
            key.cast("string")
        )
    elif kind != "string":
        key = key.cast("string")
    stripped = F.regexp_replace(key, f"^[{BLANKS}]+|[{BLANKS}]+$", "")
    key = F.regexp_replace(stripped, r"^(-?[0-9]+)\.0+$", "$1")
    return F.pmod(F.xxhash64(key), F.lit(buckets)).cast("int")


def _packed(frame: DataFrame, table: str, customer: str, buckets: int) -> DataFrame:
    """The rows of ``table`` as one Parquet cell per customer bucket (:data:`_PACKED`)."""
    bucketed = frame.withColumn(BUCKET, bucket_of(frame, customer, buckets))

    def pack(rows: pd.DataFrame) -> pd.DataFrame:
        bucket = int(rows[BUCKET].iloc[0])
        cell = _parquet_bytes(rows.drop(columns=BUCKET))
        return pd.DataFrame({BUCKET: [bucket], _KIND: [table], _BYTES: [cell]})

    return bucketed.repartition(buckets, BUCKET).groupBy(BUCKET).applyInPandas(pack, _PACKED)


def _unpacked(
    cells: pd.DataFrame, tables: dict[str, tuple[str, pd.DataFrame]]
) -> dict[str, RawTable]:
    """One bucket's raw tables from its cells, each with its source's name: the table's
    canonical empty frame where none of its rows fell into the bucket."""
    given = _frames(cells)
    return {
        table: (_raw_rows(given[table]) if table in given else empty, source)
        for table, (source, empty) in tables.items()
    }


def _frames(cells: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The tables of one bucket's packed cells (:data:`_PACKED`), by table name."""
    return {
        table: pd.read_parquet(io.BytesIO(cell))
        for table, cell in zip(cells[_KIND], cells[_BYTES], strict=True)
    }


def _cleaned(
    raw: dict[str, RawTable],
    columns: ColumnMap,
    options: CleaningOptions,
    kinds: dict[str, bool | None],
) -> CustomerData | None:
    """One bucket cleaned, its profiles of the whole table's ``kinds`` (``None``: no row
    left), as the local job keeps it to score and sample."""
    data, done = clean_part(raw, columns, options, None, summarise=False, with_litt=False)
    return None if done.first is None else with_kinds(data, kinds)


def _parquet_bytes(frame: pd.DataFrame) -> bytes:
    """``frame`` as the bytes of a Parquet file (without its index)."""
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


def read_raw(spark: SparkSession, path: str) -> tuple[DataFrame, int]:
    """The rows of ``path`` as validation takes raw rows, and how many there are: the
    source's columns (text files as strings, pandas' missing-value words missing) and
    :data:`~ltvcast.engine.partition.ROW`, the row's 1-based number among the file's data
    rows.

    Raises
    ------
    SchemaError
        For a local file :func:`~ltvcast.data.io.read_table` refuses at once, text that is
        not UTF-8, or a whitespace-separated row with more fields than the header.
    """
    local = urlparse(path).scheme == ""
    if local and Path(path).is_dir():
        return _with_rows(spark.read.parquet(path), 1)
    suffix = check_table_file(Path(path)) if local else table_suffix(Path(urlparse(path).path))
    sep = SUPPORTED_SUFFIXES.get(suffix)
    if sep is None:  # Parquet, or a URI without a suffix: a folder of Parquet parts
        return _with_rows(spark.read.parquet(path), 1)
    if sep == r"\s+":
        return _whitespace(spark, path)
    if local:
        layout = sniff_text(Path(path), sep)
        if layout.encoding not in (None, "utf-8-sig"):
            raise SchemaError(
                f"{path}: {layout.describe()} is read by the local engine only; save the "
                "file as UTF-8 to read it on Spark"
            )
        sep = layout.sep
    frame = spark.read.csv(
        path, header=True, sep=sep, quote='"', escape='"', inferSchema=False, encoding="UTF-8"
    )
    return _with_rows(_missing(frame, frame.columns), 1)


def _whitespace(spark: SparkSession, path: str) -> tuple[DataFrame, int]:
    """Whitespace-separated text as pandas' ``sep=r"\\s+"`` reads it (see
    :mod:`ltvcast.engine.partition`)."""
    lines = spark.read.text(path).select(F.regexp_replace("value", r"^\s+|\s+$", "").alias("line"))
    numbered, lines_read = _with_rows(lines.where(F.col("line") != ""), 0)
    parts = numbered.select(ROW, F.split("line", r"\s+").alias("parts"))
    header = parts.where(F.col(ROW) == 0).first()
    if header is None:
        raise SchemaError(f"{path}: file has no data rows")
    names = [str(n) for n in header["parts"]]
    rows = parts.where(F.col(ROW) > 0)
    wide = rows.where(F.size("parts") > len(names)).agg(F.min(ROW)).first()
    if wide is not None and wide[0] is not None:
        raise SchemaError(
            f"{path}: data rows have more fields than the header names (row {wide[0]})"
        )
    cells = [F.col("parts").getItem(i).alias(name) for i, name in enumerate(names)]
    return _missing(rows.select(*cells, ROW), names), lines_read - 1


def _missing(frame: DataFrame, names: Sequence[str]) -> DataFrame:
    """Text columns ``names`` with pandas' missing-value words missing."""
    words = list(MISSING)
    cells = [
        F.when(F.col(_quoted(n)).isin(words), None).otherwise(F.col(_quoted(n))).alias(n)
        for n in names
    ]
    rest = [F.col(_quoted(c)) for c in frame.columns if c not in names]
    return frame.select(*cells, *rest)


def _with_rows(frame: DataFrame, start: int) -> tuple[DataFrame, int]:
    """``frame`` with :data:`ROW`, each row's place in file order counted from ``start``, and
    its number of rows
    (per-partition counts of ``monotonically_increasing_id`` turned into offsets; file scans
    give the same partitions every time)."""
    mid = "__ltvcast_id"
    ids = frame.withColumn(mid, F.monotonically_increasing_id())
    part = F.shiftright(F.col(mid), _ROW_BITS)
    counts = ids.groupBy(part.alias("p")).count().toPandas().sort_values("p")
    offsets = np.r_[0, np.cumsum(counts["count"].to_numpy())[:-1]] + start
    pairs = [F.lit(v) for p, o in zip(counts["p"], offsets, strict=True) for v in (int(p), int(o))]
    offset = F.create_map(*pairs)[part] if pairs else F.lit(start)
    within = F.col(mid).bitwiseAND(F.lit((1 << _ROW_BITS) - 1))
    numbered = ids.withColumn(ROW, (offset + within).cast("long")).drop(mid)
    return numbered, int(counts["count"].sum())


def _raw_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows as :func:`~ltvcast.engine.partition.read_bucket` gives them (see
    :func:`~ltvcast.engine.partition.numbered`), text as pandas reads Parquet text."""
    text = pd.StringDtype(na_value=np.nan)
    for name in [c for c in frame.columns if pd.api.types.is_object_dtype(frame[c])]:
        frame[name] = frame[name].astype(text)
    return numbered(frame)


def _probe(
    scoring: ScoringModel,
    as_of: pd.Timestamp,
    horizons: Sequence[Horizon] | None,
    discount_rate: float | None,
) -> pd.DataFrame:
    """The prediction frame of one made-up customer (its columns and types)."""
    tx = pd.DataFrame(
        {
            CUSTOMER_ID: pd.Series(["probe"], dtype="str"),
            TIMESTAMP: pd.Series([as_of], dtype="datetime64[us]"),
            AMOUNT: [1.0],
        }
    )
    return scoring.predict(CustomerData(tx), as_of, horizons=horizons, discount_rate=discount_rate)


def _spark_schema(frame: pd.DataFrame) -> str:
    """A Spark DDL schema of ``frame``'s columns (text and numbers)."""
    kinds = []
    for name, dtype in frame.dtypes.items():
        if pd.api.types.is_float_dtype(dtype):
            kind = "double"
        elif pd.api.types.is_integer_dtype(dtype):
            kind = "bigint"
        elif pd.api.types.is_bool_dtype(dtype):
            kind = "boolean"
        else:
            kind = "string"
        kinds.append(f"{_quoted(str(name))} {kind}")
    return ", ".join(kinds)


def _jvm_property(jvm: Any, name: str) -> str | None:
    return jvm.java.lang.System.getProperty(name)


def _quoted(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _guarded(source: str, run: Callable[[], T]) -> T:
    """``run()``, with Spark's analysis errors (a path it cannot find or read) as one line
    naming ``source``."""
    try:
        return run()
    except AnalysisException as err:
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise SchemaError(f"{source}: Spark cannot read or write it ({first[:300]})") from None
