"""What a partitioned job does to one customer bucket: plain functions of frames.

They call the per-table functions of the in-memory path on one bucket of raw rows (no files,
no processes), so any executor can map them: the local worker pool of
:mod:`ltvcast.engine.local`, or Spark's ``groupBy(bucket).applyInPandas`` over the same
buckets. Scoring a bucket needs no function of its own: it is
:meth:`~ltvcast.pipeline.ScoringModel.predict` on the cleaned bucket.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from pandas.api.types import is_float_dtype

from ltvcast.data.clean import CleaningOptions, CleaningReport
from ltvcast.data.io import ColumnMap
from ltvcast.data.schemas import CUSTOMER_ID, CustomerData
from ltvcast.data.validate import (
    EVENTS,
    PROFILES,
    TRANSACTIONS,
    validate_events,
    validate_profiles,
    validate_transactions,
)
from ltvcast.features.rfm import rfm_summary
from ltvcast.models.btyd import WEEK_DAYS, log_intertransaction_times

#: Column of :func:`summarise_bucket`'s output holding the CNBD-k inter-purchase statistic.
LITT = "litt"


#: A raw bucket of a table with the table's name in messages (the ``source`` argument).
RawTable = tuple[pd.DataFrame, str]
#: Key of :func:`customer_hashes` (16 bytes, fixed: the same customers are sampled in every
#: run and on every machine).
_SAMPLE_KEY = "ltvcast-sample-1"


def clean_bucket(
    raw: pd.DataFrame,
    source: str,
    columns: ColumnMap,
    options: CleaningOptions,
    *,
    events: RawTable | None = None,
    profiles: RawTable | None = None,
) -> tuple[CustomerData, CleaningReport]:
    """Validate and clean one bucket of raw transactions as part of the table ``source``, and
    of the events and profiles when given (the same customers' rows of those tables).

    ``raw`` is indexed by the rows' 0-based data row in the file (see
    :func:`~ltvcast.engine.partition.read_bucket`); the report's figures merge with the
    other buckets' (:meth:`~ltvcast.data.clean.CleaningReport.merge`). A bucket that holds
    no row of a table is given as the table's canonical empty frame (:func:`empty_part`),
    kept as it is.
    """
    report = CleaningReport()

    def clean(table: str, given: RawTable) -> pd.DataFrame:
        frame, name = given
        return _validate(table, frame, name, columns, options, report) if len(frame) else frame

    tx = clean(TRANSACTIONS, (raw, source))  # in the report's order
    ev = None if events is None else clean(EVENTS, events)
    pr = None if profiles is None else clean(PROFILES, profiles)
    return CustomerData(tx, ev, pr), report


def empty_part(
    table: str, first_rows: pd.DataFrame, source: str, columns: ColumnMap, options: CleaningOptions
) -> pd.DataFrame:
    """The canonical empty ``table`` (``transactions``, ``events`` or ``profiles``) of
    ``source``: its first rows validated, without the rows (what a bucket that no row of the
    table fell into holds).

    Raises
    ------
    SchemaError
        As validating the table does, for a missing required column.
    """
    return _validate(table, first_rows, source, columns, options, CleaningReport()).iloc[:0]


def _validate(
    table: str,
    raw: pd.DataFrame,
    source: str,
    columns: ColumnMap,
    options: CleaningOptions,
    report: CleaningReport,
) -> pd.DataFrame:
    if table == PROFILES:
        return validate_profiles(raw, source, columns, report)
    validate = validate_events if table == EVENTS else validate_transactions
    return validate(raw, source, columns, options, report, part=True)


def customer_hashes(ids: pd.Series | pd.Index) -> NDArray[np.uint64]:
    """A fixed 64-bit hash of each (cleaned) customer id: a customer sample is the ids with
    the smallest hashes, the same in every run, bucket split and machine."""
    values = np.asarray(ids, dtype=object)
    return pd.util.hash_array(values, hash_key=_SAMPLE_KEY, categorize=False)


def profile_kinds(profiles: pd.DataFrame | None) -> dict[str, bool | None]:
    """Whether each profile column of a cleaned part holds numbers (``None``: no value in
    this part), as :func:`~ltvcast.data.numeric.profile_column` typed it from the part."""
    if profiles is None:
        return {}
    return {
        str(c): None if not profiles[c].notna().any() else is_float_dtype(profiles[c])
        for c in profiles.columns
        if c != CUSTOMER_ID
    }


def summarise_bucket(
    data: CustomerData, as_of: pd.Timestamp | None, *, with_litt: bool
) -> tuple[pd.DataFrame, int]:
    """The RFM summary (in weeks) of one bucket's customers up to ``as_of``, and how many
    customers it has up to then (buyers or not).

    ``as_of=None`` summarises every row at the bucket's last time; the summary at any later
    time follows by :func:`~ltvcast.features.rfm.rfm_later`. With ``with_litt`` the summary
    gets the :data:`LITT` column of :func:`~ltvcast.models.btyd.log_intertransaction_times`
    (what CNBD-k models choose ``k`` by).
    """
    when = data.last_timestamp() if as_of is None else as_of
    past = data.until(when)
    rfm = rfm_summary(past.transactions, when, time_unit_days=WEEK_DAYS)
    if with_litt:
        rfm[LITT] = log_intertransaction_times(past.transactions, when).reindex(rfm.index)
    return rfm, len(past.customers())


def typed_profiles(profiles: pd.DataFrame, kinds: dict[str, bool | None]) -> pd.DataFrame:
    """A part's profiles with the whole table's column kinds (``kinds`` of
    :func:`~ltvcast.engine.jobs.agreed_kinds`): a numeric column float64 also where the
    part has no value in it (which types it as text)."""
    text = [c for c, numeric in kinds.items() if numeric and c in profiles]
    text = [c for c in text if not is_float_dtype(profiles[c])]
    return profiles.astype(dict.fromkeys(text, "float64")) if text else profiles


def sampled(data: CustomerData, cut: int | None) -> CustomerData:
    """The rows of ``data``'s customers whose :func:`customer_hashes` value is at most
    ``cut`` (``None``: everyone's)."""
    if cut is None:
        return data
    customers = data.customers()
    chosen = customers[customer_hashes(customers) <= np.uint64(cut)]

    def rows(frame: pd.DataFrame | None) -> pd.DataFrame | None:
        return None if frame is None else frame[frame[CUSTOMER_ID].isin(chosen)]

    tx = rows(data.transactions)
    assert tx is not None
    return CustomerData(tx, rows(data.events), rows(data.profiles))


def concat_parts(parts: Sequence[CustomerData]) -> CustomerData:
    """Cleaned parts of disjoint customers as one table, in the order validation gives a
    whole table (by customer, then as each part has them: by time)."""

    def whole(frames: list[pd.DataFrame | None]) -> pd.DataFrame | None:
        given = [f for f in frames if f is not None]
        if not given:
            return None
        frame = pd.concat(given, ignore_index=True)
        return frame.sort_values(CUSTOMER_ID, kind="stable").reset_index(drop=True)

    tx = whole([p.transactions for p in parts])
    assert tx is not None
    return CustomerData(tx, whole([p.events for p in parts]), whole([p.profiles for p in parts]))
