"""Validation at the boundary: raw tables in, canonical typed tables out.

Each ``validate_*`` function finds the required columns (through a :class:`ColumnMap`), parses
ids (:mod:`~ltvcast.data.ids`), times (:mod:`~ltvcast.data.times`) and numbers
(:mod:`~ltvcast.data.numeric`), drops the rows that cannot be used (counting them per rule with
example row numbers in the :class:`CleaningReport`, see :mod:`~ltvcast.data.checker`), then
applies the cleaning rules of :mod:`ltvcast.data.clean`. An unusable input raises
:class:`SchemaError` with one line that names the file, the column, the rule, the count and
example rows.

Rows dropped and counted, per rule (step name in the report): empty ids (``invalid_*``),
unparsable times (``invalid_timestamp``), times outside
:data:`~ltvcast.data.schemas.TIMESTAMP_RANGE` (``timestamp_out_of_range``), times after the
caller's ``now`` plus a tolerance (``future_timestamp``), unparsable amounts
(``invalid_amount``) and amounts beyond :data:`~ltvcast.data.schemas.MAX_ABS_AMOUNT`
(``implausible_amount``). Numeric dates with the year last take their day/month order from the
rows that settle it (``date_order``); a column that cannot settle it is refused. A rule that
rejects every row raises instead.

Canonical outputs: ids are ``str`` (numbers written without ``.0``), ``timestamp`` is
``datetime64[us]`` naive UTC, ``amount``/``quantity``/``value`` are ``float64``, ``event_type``
is lower case with runs of spaces and hyphens made ``_``. Transactions and events are sorted by
``customer_id`` then ``timestamp``; profiles have one row per customer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ltvcast.data.checker import TableChecker
from ltvcast.data.clean import (
    EVENT_RULES,
    TRANSACTION_RULES,
    CleaningOptions,
    CleaningReport,
    CleaningRule,
    clean_table,
)
from ltvcast.data.details import Detail, Figure
from ltvcast.data.ids import as_ids, check_ids
from ltvcast.data.io import ColumnMap, read_table
from ltvcast.data.numeric import check_amount, check_optional_number, profile_column
from ltvcast.data.schemas import (
    CUSTOMER_ID,
    EVENT_TYPE,
    ITEM_ID,
    ORDER_ID,
    TIMESTAMP,
    VALUE,
    CustomerData,
)
from ltvcast.data.times import EPOCH_FLOOR_SECONDS, TIMESTAMP_DTYPE, check_times, parse_timestamps
from ltvcast.exceptions import SchemaError

__all__ = [
    "DEFAULT_COLUMNS",
    "DEFAULT_OPTIONS",
    "EPOCH_FLOOR_SECONDS",
    "EVENTS",
    "PROFILES",
    "TIMESTAMP_DTYPE",
    "TRANSACTIONS",
    "as_ids",
    "check_whole_table",
    "load_customer_data",
    "parse_timestamps",
    "validate_events",
    "validate_profiles",
    "validate_transactions",
]

TRANSACTIONS = "transactions"
EVENTS = "events"
PROFILES = "profiles"
#: Defaults of the ``columns`` and ``options`` parameters (both immutable).
DEFAULT_COLUMNS = ColumnMap()
DEFAULT_OPTIONS = CleaningOptions()


def validate_transactions(
    frame: pd.DataFrame,
    source: str,
    columns: ColumnMap = DEFAULT_COLUMNS,
    options: CleaningOptions = DEFAULT_OPTIONS,
    report: CleaningReport | None = None,
    *,
    part: bool = False,
) -> pd.DataFrame:
    """Canonical transactions (``customer_id, timestamp, amount`` + present optional columns).

    Parameters
    ----------
    frame
        Raw transactions as read from ``source``.
    source
        Name used in messages (a file path or a table name).
    columns
        Input names of the canonical columns. Without an amount column, a ``price`` mapping
        gives ``amount = quantity * price``.
    options
        Cleaning rules (returns, zero amounts, winsorizing, time zone, date format, ``now``,
        duplicates).
    report
        Receives one entry per step that touched rows.
    part
        ``frame`` holds some customers' rows of a larger table (a customer bucket of
        :mod:`ltvcast.engine`; rows numbered as in the whole file by the index): it may
        come out empty, and :func:`check_whole_table` decides on the merged report whether
        the whole table is usable. The rules are those of the whole table, applied to the
        part (see :mod:`ltvcast.engine` for the few that look at a whole column).

    Raises
    ------
    SchemaError
        Empty table, missing required column, or no valid row left.
    """
    return _validate_timed(_TRANSACTION_TABLE, frame, source, columns, options, report, part)


def validate_events(
    frame: pd.DataFrame,
    source: str,
    columns: ColumnMap = DEFAULT_COLUMNS,
    options: CleaningOptions = DEFAULT_OPTIONS,
    report: CleaningReport | None = None,
    *,
    part: bool = False,
) -> pd.DataFrame:
    """Canonical behaviour events (``customer_id, timestamp, event_type`` [+ item_id, value]).

    Unparsable ``value`` entries become missing (counted); rows without a customer, a time or
    an event type are dropped. Parameters and errors as :func:`validate_transactions`.
    """
    return _validate_timed(_EVENT_TABLE, frame, source, columns, options, report, part)


def validate_profiles(
    frame: pd.DataFrame,
    source: str,
    columns: ColumnMap = DEFAULT_COLUMNS,
    report: CleaningReport | None = None,
) -> pd.DataFrame:
    """Canonical profiles: one row per ``customer_id`` (the last one wins), other columns kept.

    Columns whose every present value is a number become ``float64``; the others become
    strings (categoricals). Rows without a customer id are dropped and counted.
    """
    report = CleaningReport() if report is None else report
    checker = TableChecker(frame, source, PROFILES, columns, report)
    check_ids(checker, CUSTOMER_ID, "customer", required=True)
    used = {columns.source("customer")}
    for name in frame.columns:
        if name not in used and name != CUSTOMER_ID:
            checker.out[str(name)] = profile_column(frame[name])
    out = checker.result()
    duplicated = out.duplicated(CUSTOMER_ID, keep="last").to_numpy()
    if duplicated.any():
        report.add(
            PROFILES,
            "duplicate_customers",
            int(duplicated.sum()),
            "several rows for one customer; the last one kept",
        )
        out = out[~duplicated]
    out = out.sort_values(CUSTOMER_ID, kind="stable").reset_index(drop=True)
    report.add(PROFILES, "result", len(out), f"{source}: {out.shape[1] - 1} profile columns")
    return out


def load_customer_data(
    transactions: str | Path | pd.DataFrame,
    events: str | Path | pd.DataFrame | None = None,
    profiles: str | Path | pd.DataFrame | None = None,
    columns: ColumnMap = DEFAULT_COLUMNS,
    options: CleaningOptions = DEFAULT_OPTIONS,
) -> tuple[CustomerData, CleaningReport]:
    """Read (when given paths), validate and clean the three tables.

    Returns
    -------
    (CustomerData, CleaningReport)
        The canonical bundle and what was done to get it.
    """
    report = CleaningReport()
    tx_frame, tx_source = _frame(transactions, TRANSACTIONS, columns.id_columns())
    tx = validate_transactions(tx_frame, tx_source, columns, options, report)
    ev = None
    if events is not None:
        ev_frame, ev_source = _frame(events, EVENTS, columns.id_columns())
        ev = validate_events(ev_frame, ev_source, columns, options, report)
    pr = None
    if profiles is not None:
        pr_frame, pr_source = _frame(profiles, PROFILES, (columns.source("customer"),))
        pr = validate_profiles(pr_frame, pr_source, columns, report)
    return CustomerData(tx, ev, pr), report


@dataclass(frozen=True)
class _TimedTable:
    """What sets transactions and events apart: their name, their own columns, their rules."""

    name: str
    check_columns: Callable[[TableChecker], None]
    rules: tuple[CleaningRule, ...]


def check_whole_table(report: CleaningReport, table: str, source: str) -> None:
    """Refuse a table validated in parts (``part=True``) as validating it whole would.

    ``report`` is the merged report of the parts (:meth:`CleaningReport.merge`).

    Raises
    ------
    SchemaError
        When one rule dropped every row, when no valid row was left, or when no row was
        left after cleaning.
    """
    read = report.count(table, "read")
    rejected = [s for s in report.steps if s.table == table and s.rejects]
    messages = [s.detail.removesuffix("; dropped") for s in rejected]
    for step, message in zip(rejected, messages, strict=True):
        if step.rows == read:
            raise SchemaError(message)
    if report.count(table, "result"):
        return
    if sum(s.rows for s in rejected) >= read:
        raise SchemaError(f"{source}: no valid row left: " + "; ".join(messages))
    raise SchemaError(f"{source}: no {table} row left after cleaning")


def _validate_timed(
    kind: _TimedTable,
    frame: pd.DataFrame,
    source: str,
    columns: ColumnMap,
    options: CleaningOptions,
    report: CleaningReport | None,
    part: bool,
) -> pd.DataFrame:
    """Customer ids, times, the table's own columns, its cleaning rules; sorted by customer
    then time."""
    table = kind.name
    report = CleaningReport() if report is None else report
    checker = TableChecker(frame, source, table, columns, report, part)
    check_ids(checker, CUSTOMER_ID, "customer", required=True)
    check_times(checker, options)
    kind.check_columns(checker)
    out = checker.result()
    out = clean_table(out, kind.rules, options, report, table, checker.source_duplicates())
    if not len(out):
        if part:
            return out.reset_index(drop=True)
        raise SchemaError(f"{source}: no {table} row left after cleaning")
    codes, _ = pd.factorize(out[CUSTOMER_ID], sort=True)
    order = np.lexsort((out[TIMESTAMP].to_numpy(), codes))  # stable: ties keep input order
    out = out.take(order).reset_index(drop=True)
    first, last = out[TIMESTAMP].min(), out[TIMESTAMP].max()
    detail = Detail.join(
        Figure(int(codes.max()) + 1),
        " customers, ",
        Figure(first, "min", "{}"),
        " .. ",
        Figure(last, "max", "{}"),
    )
    report.add(table, "result", len(out), detail)
    return out


def _transaction_columns(checker: TableChecker) -> None:
    check_amount(checker)
    check_ids(checker, ORDER_ID, "order", required=False)
    check_ids(checker, ITEM_ID, "item", required=False)


def _event_columns(checker: TableChecker) -> None:
    raw = checker.column("event", required=True)
    assert raw is not None
    types = raw.astype("str").str.strip().str.lower().str.replace(r"[\s\-]+", "_", regex=True)
    types = types.mask(types == "")
    checker.out[EVENT_TYPE] = types
    bad = types.isna().to_numpy()
    checker.reject("event", "invalid_event_type", "must name an event type", "are empty", bad)
    check_ids(checker, ITEM_ID, "item", required=False)
    check_optional_number(checker, VALUE, "value")


_TRANSACTION_TABLE = _TimedTable(TRANSACTIONS, _transaction_columns, TRANSACTION_RULES)
_EVENT_TABLE = _TimedTable(EVENTS, _event_columns, EVENT_RULES)


def _frame(
    table: str | Path | pd.DataFrame, name: str, text_columns: tuple[str, ...]
) -> tuple[pd.DataFrame, str]:
    if isinstance(table, pd.DataFrame):
        return table, name
    return read_table(table, text_columns=text_columns), str(table)
