"""What a partitioned job does to one customer bucket: plain functions of frames.

They call the per-table functions of the in-memory path on one bucket of raw rows (no files,
no processes), so any executor can map them: the local worker pool of
:mod:`ltvcast.engine.local`, or Spark's ``groupBy(bucket).applyInPandas`` over the same
buckets. Scoring a bucket needs no function of its own: it is
:meth:`~ltvcast.pipeline.ScoringModel.predict` on the cleaned bucket.
"""

from __future__ import annotations

import pandas as pd

from ltvcast.data.clean import CleaningOptions, CleaningReport
from ltvcast.data.io import ColumnMap
from ltvcast.data.schemas import CustomerData
from ltvcast.data.validate import validate_transactions
from ltvcast.features.rfm import rfm_summary
from ltvcast.models.btyd import WEEK_DAYS, log_intertransaction_times

#: Column of :func:`summarise_bucket`'s output holding the CNBD-k inter-purchase statistic.
LITT = "litt"


def clean_bucket(
    raw: pd.DataFrame, source: str, columns: ColumnMap, options: CleaningOptions
) -> tuple[CustomerData, CleaningReport]:
    """Validate and clean one bucket of raw transactions as part of the table ``source``.

    ``raw`` is indexed by the rows' 0-based data row in the file (see
    :func:`~ltvcast.engine.partition.read_bucket`); the report's figures merge with the
    other buckets' (:meth:`~ltvcast.data.clean.CleaningReport.merge`).
    """
    report = CleaningReport()
    tx = validate_transactions(raw, source, columns, options, report, part=True)
    return CustomerData(tx), report


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
