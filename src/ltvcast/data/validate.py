"""Validation at the boundary: raw tables in, canonical typed tables out.

Each ``validate_*`` function finds the required columns (through a :class:`ColumnMap`), parses
ids, times and numbers, drops the rows that cannot be used (counting them per rule with example
row numbers in the :class:`CleaningReport`), then applies the cleaning rules of
:mod:`ltvcast.data.clean`. An unusable input raises :class:`SchemaError` with one line that
names the file, the column, the rule, the count and example rows.

Row numbers are 1-based data rows: ``index + 1`` for frames with an integer index (the frames
:func:`~ltvcast.data.io.read_table` returns number the file's data rows this way), else positions.

Rows dropped and counted, per rule (step name in the report): empty ids (``invalid_*``),
unparsable times (``invalid_timestamp``), times outside :data:`TIMESTAMP_RANGE`
(``timestamp_out_of_range``), times after the caller's ``now`` plus a tolerance
(``future_timestamp``), unparsable amounts (``invalid_amount``) and amounts beyond
:data:`MAX_ABS_AMOUNT` (``implausible_amount``). Numeric dates with the year last take their
day/month order from the rows that settle it (``date_order``); a column that cannot settle it
is refused. A rule that rejects every row raises instead.

Canonical outputs: ids are ``str`` (numbers written without ``.0``), ``timestamp`` is
``datetime64[us]`` naive UTC, ``amount``/``quantity``/``value`` are ``float64``, ``event_type``
is lower case with runs of spaces and hyphens made ``_``. Transactions and events are sorted by
``customer_id`` then ``timestamp``; profiles have one row per customer.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Final, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ltvcast.data.clean import CleaningOptions, CleaningReport, clean_events, clean_transactions
from ltvcast.data.io import CANONICAL_OF, ColumnMap, read_table
from ltvcast.data.schemas import (
    AMOUNT,
    CUSTOMER_ID,
    EVENT_REQUIRED,
    EVENT_TYPE,
    ITEM_ID,
    MAX_ABS_AMOUNT,
    ORDER_ID,
    QUANTITY,
    TIMESTAMP,
    TIMESTAMP_RANGE,
    TRANSACTION_OPTIONAL,
    TRANSACTION_REQUIRED,
    VALUE,
    CustomerData,
)
from ltvcast.exceptions import SchemaError

TRANSACTIONS = "transactions"
EVENTS = "events"
PROFILES = "profiles"
TIMESTAMP_DTYPE: Final = "datetime64[us]"
#: Defaults of the ``columns`` and ``options`` parameters (both immutable).
DEFAULT_COLUMNS = ColumnMap()
DEFAULT_OPTIONS = CleaningOptions()
_EXAMPLES = 5
_CANONICAL_ORDER = (*TRANSACTION_REQUIRED, *EVENT_REQUIRED[2:], *TRANSACTION_OPTIONAL, VALUE)
_UTC_NAMES = frozenset({"UTC", "Etc/UTC", "utc", "Z", "GMT", "Etc/GMT"})
#: Numbers below this many seconds after 1970 (1973-03-03; in the unit chosen) are not read as
#: epoch times: they are counts or amounts (a column mapped as time by mistake) or 0 for none.
EPOCH_FLOOR_SECONDS: Final = 1e8
#: A numeric date with the year last: day and month (in one order or the other), separators
#: (which must agree), year, and the time of day if any. RE2 syntax (pyarrow's kernels).
_NUMERIC_DATE = (
    r"^(?P<first>\d{1,2})(?P<sep>[/.\-])(?P<second>\d{1,2})(?P<sep2>[/.\-])"
    r"(?P<year>\d{4}|\d{2})(?P<rest>[T\s,].*)?$"
)
_DateDecider = Callable[["_DateOrder", pd.Series], bool]


def validate_transactions(
    frame: pd.DataFrame,
    source: str,
    columns: ColumnMap = DEFAULT_COLUMNS,
    options: CleaningOptions = DEFAULT_OPTIONS,
    report: CleaningReport | None = None,
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

    Raises
    ------
    SchemaError
        Empty table, missing required column, or no valid row left.
    """
    report = CleaningReport() if report is None else report
    checker = _Checker(frame, source, TRANSACTIONS, columns, report)
    checker.ids(CUSTOMER_ID, "customer", required=True)
    checker.times(options)
    checker.amount()
    checker.ids(ORDER_ID, "order", required=False)
    checker.ids(ITEM_ID, "item", required=False)
    out = checker.result()
    out = clean_transactions(out, options, report, TRANSACTIONS, checker.source_duplicates())
    return _finish(out, source, TRANSACTIONS, report)


def validate_events(
    frame: pd.DataFrame,
    source: str,
    columns: ColumnMap = DEFAULT_COLUMNS,
    options: CleaningOptions = DEFAULT_OPTIONS,
    report: CleaningReport | None = None,
) -> pd.DataFrame:
    """Canonical behaviour events (``customer_id, timestamp, event_type`` [+ item_id, value]).

    Unparsable ``value`` entries become missing (counted); rows without a customer, a time or
    an event type are dropped. Parameters and errors as :func:`validate_transactions`.
    """
    report = CleaningReport() if report is None else report
    checker = _Checker(frame, source, EVENTS, columns, report)
    checker.ids(CUSTOMER_ID, "customer", required=True)
    checker.times(options)
    checker.event_types()
    checker.ids(ITEM_ID, "item", required=False)
    checker.optional_number(VALUE, "value")
    out = checker.result()
    out = clean_events(out, options, report, EVENTS, checker.source_duplicates())
    return _finish(out, source, EVENTS, report)


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
    checker = _Checker(frame, source, PROFILES, columns, report)
    checker.ids(CUSTOMER_ID, "customer", required=True)
    used = {columns.source("customer")}
    for name in frame.columns:
        if name not in used and name != CUSTOMER_ID:
            checker.out[str(name)] = _profile_column(frame[name])
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


def parse_timestamps(
    values: pd.Series,
    source_timezone: str = "UTC",
    *,
    date_format: str | None = None,
    day_first: bool | None = None,
) -> pd.Series:
    """Times as naive UTC ``datetime64[us]``; unparsable entries become ``NaT``.

    Zone-aware values are converted to UTC; naive ones are read in ``source_timezone``.
    Numbers are Unix epoch times (unit by magnitude: s, ms, us, ns; from
    :data:`EPOCH_FLOOR_SECONDS` on), except 8-digit integers, which are ``YYYYMMDD`` dates.

    Parameters
    ----------
    date_format
        ``strftime`` format every text (or integer) time must match; ``None`` infers it.
    day_first
        Order of numeric dates with the year last (``03/04/2024``, ``3.4.24``): ``True`` for
        day/month, ``False`` for month/day, ``None`` to take it from the values (a first
        field over 12 means day-first). Ignored with ``date_format``.

    Raises
    ------
    SchemaError
        ``day_first`` is ``None`` and the values do not settle the order: such dates occur,
        none has a field over 12 although some have day != month, or some have the first
        field over 12 and others the second.
    """
    return _parse_times(values, source_timezone, date_format, day_first, _decide_date_order)


def _parse_times(
    values: pd.Series,
    source_timezone: str,
    date_format: str | None,
    day_first: bool | None,
    decide: _DateDecider,
) -> pd.Series:
    """:func:`parse_timestamps`; ``decide`` picks the day/month order when ``day_first`` is None."""
    if pd.api.types.is_datetime64_any_dtype(values):
        return _naive_utc(values, source_timezone)
    numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
    if date_format is not None:
        text = as_ids(values) if numeric else values.astype("str").str.strip()
        parsed = _to_datetime(text.mask(text == ""), format=date_format)
        return _naive_utc(parsed, source_timezone)
    if numeric:
        return _from_numbers(values.astype("float64"), source_timezone)
    text = values.astype("str").str.strip().mask(lambda s: s == "")
    present = text.dropna()
    if len(present) and _all_digits(present):
        return _from_numbers(pd.to_numeric(text, errors="coerce"), source_timezone)
    dates = _NumericDates.of(text)
    if dates is not None:
        if day_first is None:
            day_first = decide(_DateOrder.of(dates), text)
        text = dates.as_iso(day_first, text)
    parsed = _naive_utc(_to_datetime(text), source_timezone)
    retry = (parsed.isna() & text.notna()).to_numpy()
    if retry.any():
        again = _naive_utc(_to_datetime(text[retry], format="mixed"), source_timezone)
        parsed = parsed.copy()
        parsed[retry] = again
    return parsed


@dataclass
class _Checker:
    """Collects parsed canonical columns and the rows each rule rejects."""

    frame: pd.DataFrame
    source: str
    table: str
    columns: ColumnMap
    report: CleaningReport
    out: dict[str, pd.Series] = field(default_factory=dict)
    problems: list[tuple[str, str, str, str, np.ndarray]] = field(default_factory=list)
    kept: np.ndarray = field(default_factory=lambda: np.ones(0, dtype=bool))

    def __post_init__(self) -> None:
        if not len(self.frame) or not self.frame.shape[1]:
            raise SchemaError(f"{self.source}: no data rows")
        repeated = self.frame.columns[self.frame.columns.duplicated()]
        if len(repeated):
            name = repeated[0]
            positions = np.flatnonzero(self.frame.columns == name) + 1
            raise SchemaError(
                f"{self.source}: column names must be unique; '{name}' appears "
                f"{len(positions)} times (columns {', '.join(map(str, positions))})"
            )
        self.report.add(self.table, "read", len(self.frame), self.source)
        index = self.frame.index
        if pd.api.types.is_integer_dtype(index.dtype):
            self.row_numbers = np.asarray(index, dtype=np.int64) + 1
        else:
            self.row_numbers = np.arange(1, len(self.frame) + 1)

    def column(self, field_name: str, required: bool) -> pd.Series | None:
        name = self.columns.source(field_name)
        if name in self.frame.columns:
            column = self.frame[name]
            if isinstance(column, pd.DataFrame):
                raise SchemaError(f"{self.source}: column '{name}' appears more than once")
            return column
        if not required and getattr(self.columns, field_name) is None:
            return None
        available = ", ".join(f"'{c}'" for c in self.frame.columns)
        raise SchemaError(
            f"{self.source}: required column '{name}' not found in the {self.table} table; "
            f"available columns: {available}; name yours with {self.columns.flag(field_name)}"
        )

    def label(self, field_name: str) -> str:
        name = self.columns.source(field_name)
        canonical = CANONICAL_OF[field_name]
        return f"'{name}'" if name == canonical else f"'{name}' ({canonical})"

    def reject(
        self,
        field_name: str,
        step: str,
        rule: str,
        failure: str,
        mask: np.ndarray,
        label: str | None = None,
    ) -> None:
        if mask.any():
            self.problems.append((label or self.label(field_name), step, rule, failure, mask))

    def ids(self, target: str, field_name: str, required: bool) -> None:
        raw = self.column(field_name, required)
        if raw is None:
            return
        ids = as_ids(raw)
        self.out[target] = ids
        if required:
            missing = ids.isna().to_numpy()
            self.reject(field_name, f"invalid_{target}", "must hold an id", "are empty", missing)

    def times(self, options: CleaningOptions) -> None:
        """Parse the time column; drop unparsable, out-of-range and future rows."""
        raw = self.column("time", required=True)
        assert raw is not None
        fmt = options.date_format
        parsed = _parse_times(raw, options.source_timezone, fmt, None, self.date_order)
        self.out[TIMESTAMP] = parsed
        bad = parsed.isna().to_numpy()
        if fmt is not None:
            rule = f"must be a date/time in the format '{fmt}'"
        elif _numeric(raw):
            rule = (
                "must be a date/time (numbers are read as Unix epoch times from "
                f"{pd.Timestamp(EPOCH_FLOOR_SECONDS, unit='s'):%Y-%m-%d} on, or YYYYMMDD dates)"
            )
        else:
            rule = "must be a date/time"
        self.reject("time", "invalid_timestamp", rule, "are not", bad)
        low, high = TIMESTAMP_RANGE  # compared by pandas: numpy would cast to ns and wrap
        outside = ~bad & ((parsed < low) | (parsed > high)).to_numpy()
        self.reject(
            "time",
            "timestamp_out_of_range",
            f"must lie between {low:%Y-%m-%d} and {high:%Y-%m-%d}",
            "do not",
            outside,
        )
        if options.now is not None:
            limit = options.now + options.future_tolerance
            future = ~bad & ~outside & (parsed > limit).to_numpy()
            tolerance = options.future_tolerance
            plus = f" + {_duration(tolerance)}" if tolerance > pd.Timedelta(0) else ""
            rule = f"must not lie after now{plus} ({limit}, UTC)"
            self.reject("time", "future_timestamp", rule, "do", future)

    def date_order(self, order: _DateOrder, text: pd.Series) -> bool:
        """Day-first or not, as the numeric dates tell (reported); raises when they cannot."""
        where = f"{self.source}: column {self.label('time')}"
        problem = order.problem(where, self.row_numbers, text)
        if problem:
            raise SchemaError(problem)
        if not order.settled:  # every such date has day == month: either order reads it
            return False
        evidence = order.day_first_rows if order.day_first else order.month_first_rows
        form = "day-first (DD/MM/YYYY)" if order.day_first else "month-first (MM/DD/YYYY)"
        field_name = "first" if order.day_first else "second"
        self.report.add(
            self.table,
            "date_order",
            int(order.matched.sum()),
            f"{where}: dates read {form}, as {int(evidence.sum()):,} of them have a "
            f"{field_name} field over 12 ({_rows(self.row_numbers, evidence)}); name the "
            "format with --date-format to override",
        )
        return order.day_first

    def amount(self) -> None:
        derive = self.columns.price is not None
        derive = derive and self.columns.source("amount") not in self.frame.columns
        quantity = self.column("quantity", required=derive)
        count = None if quantity is None else _numbers(quantity)
        if count is not None:
            self.out[QUANTITY] = count
        if not derive:
            raw = self.column("amount", required=True)
            assert raw is not None
            self.out[AMOUNT] = amount = _numbers(raw)
            bad = amount.isna().to_numpy()
            self.reject("amount", "invalid_amount", _numeric_rule(raw, bad), "are not", bad)
            too_large = _too_large(amount)
            self.reject("amount", "implausible_amount", _plausible("amount"), "are not", too_large)
            if quantity is not None and count is not None:
                count = self.unparsable(quantity, count, "quantity", "invalid_quantity")
                self.out[QUANTITY] = count
            return
        price_raw = self.column("price", required=True)
        assert price_raw is not None and quantity is not None and count is not None
        price = _numbers(price_raw)
        self.out[AMOUNT] = amount = count * price
        for name, numbers, text in (("price", price, price_raw), ("quantity", count, quantity)):
            bad = numbers.isna().to_numpy()
            self.reject(name, "invalid_amount", _numeric_rule(text, bad), "are not", bad)
        label = f"{self.label('quantity')} x {self.label('price')}"
        too_large = _too_large(amount)
        rule = _plausible("amount")
        self.reject("amount", "implausible_amount", rule, "are not", too_large, label)

    def event_types(self) -> None:
        raw = self.column("event", required=True)
        assert raw is not None
        types = raw.astype("str").str.strip().str.lower().str.replace(r"[\s\-]+", "_", regex=True)
        types = types.mask(types == "")
        self.out[EVENT_TYPE] = types
        bad = types.isna().to_numpy()
        self.reject("event", "invalid_event_type", "must name an event type", "are empty", bad)

    def optional_number(self, target: str, field_name: str) -> None:
        raw = self.column(field_name, required=False)
        if raw is not None:
            self.out[target] = self.unparsable(raw, _numbers(raw), field_name, f"invalid_{target}")

    def unparsable(
        self, raw: pd.Series, numbers: pd.Series, field_name: str, step: str
    ) -> pd.Series:
        """An optional numeric column with its unparsable and implausible entries missing
        (and reported)."""
        bad = (numbers.isna() & raw.notna()).to_numpy()
        too_large = _too_large(numbers)
        for mask, rule, failure in (
            (bad, "must be numeric", "are not"),
            (too_large, _plausible(field_name), "are not"),
        ):
            if mask.any():
                detail = self.describe(self.label(field_name), rule, failure, mask)
                self.report.add(self.table, step, int(mask.sum()), f"{detail}; set to missing")
        return numbers.mask(too_large) if too_large.any() else numbers

    def describe(self, label: str, rule: str, failure: str, mask: np.ndarray) -> str:
        return (
            f"{self.source}: column {label} {rule}; {int(mask.sum()):,} of {len(mask):,} rows "
            f"{failure} ({_rows(self.row_numbers, mask)})"
        )

    def result(self) -> pd.DataFrame:
        """The canonical frame without the rejected rows; raises when none is left."""
        n = len(self.frame)
        rejected = np.zeros(n, dtype=bool)
        messages = []
        for label, _, rule, failure, mask in self.problems:
            message = self.describe(label, rule, failure, mask)
            if mask.all():
                raise SchemaError(message)
            messages.append(message)
            rejected |= mask
        if rejected.all():
            raise SchemaError(f"{self.source}: no valid row left: " + "; ".join(messages))
        for (_, step, _, _, mask), message in zip(self.problems, messages, strict=True):
            self.report.add(self.table, step, int(mask.sum()), f"{message}; dropped")
        self.kept = ~rejected
        order = [c for c in _CANONICAL_ORDER if c in self.out]
        order += [c for c in self.out if c not in order]
        out = pd.DataFrame({k: self.out[k].reset_index(drop=True) for k in order})
        return out[~rejected] if rejected.any() else out

    def source_duplicates(self) -> np.ndarray:
        """Which kept rows equal an earlier source row in every column as read (after result)."""
        try:
            duplicated = self.frame.duplicated(keep="first")
        except TypeError:  # unhashable cells (lists, dicts): compare their text
            duplicated = self.frame.astype(str).duplicated(keep="first")
        return duplicated.to_numpy()[self.kept]


def _finish(frame: pd.DataFrame, source: str, table: str, report: CleaningReport) -> pd.DataFrame:
    if not len(frame):
        raise SchemaError(f"{source}: no {table} row left after cleaning")
    codes, _ = pd.factorize(frame[CUSTOMER_ID], sort=True)
    order = np.lexsort((frame[TIMESTAMP].to_numpy(), codes))  # stable: ties keep input order
    frame = frame.take(order).reset_index(drop=True)
    first, last = frame[TIMESTAMP].min(), frame[TIMESTAMP].max()
    customers = frame[CUSTOMER_ID].nunique()
    report.add(table, "result", len(frame), f"{customers:,} customers, {first} .. {last}")
    return frame


def _frame(
    table: str | Path | pd.DataFrame, name: str, text_columns: tuple[str, ...]
) -> tuple[pd.DataFrame, str]:
    if isinstance(table, pd.DataFrame):
        return table, name
    return read_table(table, text_columns=text_columns), str(table)


def _numeric_rule(raw: pd.Series, bad: np.ndarray) -> str:
    """``must be numeric``, with a word on decimal commas when the bad entries use them."""
    if not bad.any() or pd.api.types.is_numeric_dtype(raw):
        return "must be numeric"
    commas = _decimal_commas(raw[bad].astype("str").str.strip())
    if not commas.any():
        return "must be numeric"
    example = raw[bad][commas].iloc[0]
    return f"must be numeric (decimal commas such as '{example}' are not read)"


def _plausible(what: str) -> str:
    return f"must be finite with |{what}| at most {MAX_ABS_AMOUNT:,.0f}"


def _too_large(numbers: pd.Series) -> np.ndarray:
    """Entries that are infinite or beyond :data:`MAX_ABS_AMOUNT` (missing ones are not)."""
    values = numbers.to_numpy(dtype="float64", na_value=np.nan)
    with np.errstate(invalid="ignore"):
        return ~np.isnan(values) & ~(np.abs(values) <= MAX_ABS_AMOUNT)


def _numbers(values: pd.Series) -> pd.Series:
    """Float64 numbers; unparsable entries and infinities become NaN.

    Text may carry a leading currency sign (``"$1,234.50"``) and comma thousands separators;
    a decimal comma (``"10,5"``) is not guessed at and counts as unparsable, and in a column
    that holds one, ``"1,250"`` is as ambiguous and unparsable too (not 1250).
    """
    if pd.api.types.is_bool_dtype(values):
        return values.astype("float64")
    if pd.api.types.is_numeric_dtype(values):
        numbers = values.astype("float64")
    else:
        text = values.astype("str").str.strip()
        numbers = pd.to_numeric(text, errors="coerce").astype("float64")
        retry = (numbers.isna() & text.notna()).to_numpy()
        if retry.any():
            numbers = numbers.copy()
            numbers[retry] = pd.to_numeric(_plain_number(text[retry]), errors="coerce")
    return numbers.mask(np.isinf(numbers.to_numpy()))


def _plain_number(text: pd.Series) -> pd.Series:
    text = text.str.replace(r"^([-+]?)\s*[$€£¥]\s*", r"\1", regex=True)
    grouped = text.str.fullmatch(r"[-+]?\d{1,3}(,\d{3})+(\.\d+)?").fillna(False)
    if _decimal_commas(text).any():  # then "1,250" may be 1.25: only "1,234.50" is grouped
        grouped &= text.str.contains(".", regex=False).fillna(False)
    return text.mask(grouped, text.str.replace(",", "", regex=False))


def _decimal_commas(text: pd.Series) -> np.ndarray:
    """Entries written with a decimal comma (``10,5``, ``1.234,50``), which are not read."""
    pattern = r"[-+]?\s*[$€£¥]?\s*(\d+,(\d{1,2}|\d{4,})|\d{1,3}(\.\d{3})+,\d+)"
    return text.str.fullmatch(pattern).fillna(False).to_numpy(dtype=bool)


def _profile_column(values: pd.Series) -> pd.Series:
    """Numbers as float64 when every present value is one, otherwise stripped strings."""
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        return values.astype("float64")
    text = values.astype("str").str.strip()
    text = text.mask(text == "")
    numbers = pd.to_numeric(text, errors="coerce")
    if text.notna().any() and bool((numbers.notna() == text.notna()).all()):
        return numbers.astype("float64")
    return text


def _to_datetime(text: pd.Series, format: str | None = None) -> pd.Series:
    with warnings.catch_warnings():  # "could not infer format": the per-element parse is meant
        warnings.simplefilter("ignore", UserWarning)
        try:
            return pd.to_datetime(text, errors="coerce", format=format)
        except ValueError:  # several UTC offsets in one column
            return pd.to_datetime(text, errors="coerce", format=format, utc=True)


def _naive_utc(parsed: pd.Series, source_timezone: str) -> pd.Series:
    if not pd.api.types.is_datetime64_any_dtype(parsed):  # e.g. all NaT as object
        parsed = pd.to_datetime(parsed, errors="coerce", utc=True)
    if isinstance(parsed.dtype, pd.DatetimeTZDtype):
        parsed = parsed.dt.tz_convert("UTC").dt.tz_localize(None)
    elif source_timezone not in _UTC_NAMES:
        standard = np.zeros(len(parsed), dtype=bool)  # an ambiguous hour is read as standard time
        parsed = parsed.dt.tz_localize(
            source_timezone, ambiguous=standard, nonexistent="shift_forward"
        )
        parsed = parsed.dt.tz_convert("UTC").dt.tz_localize(None)
    return parsed.astype(TIMESTAMP_DTYPE)


@dataclass(frozen=True)
class _DateOrder:
    """What the numeric dates with the year last (``03/04/2024``) say about their order."""

    matched: np.ndarray
    day_first_rows: np.ndarray  # first field 13..31, second 1..12
    month_first_rows: np.ndarray  # second field 13..31, first 1..12
    ambiguous: np.ndarray  # both fields 1..12 and different

    @classmethod
    def of(cls, dates: _NumericDates) -> _DateOrder:
        first, second = dates.number("first"), dates.number("second")
        with np.errstate(invalid="ignore"):
            small_first, small_second = (first >= 1) & (first <= 12), (second >= 1) & (second <= 12)
            day_first = (first > 12) & (first <= 31) & small_second
            month_first = (second > 12) & (second <= 31) & small_first
            ambiguous = small_first & small_second & (first != second)
        rows = dates.rows
        return cls(rows(dates.matched), rows(day_first), rows(month_first), rows(ambiguous))

    @property
    def day_first(self) -> bool:
        return bool(self.day_first_rows.any())

    @property
    def settled(self) -> bool:
        return bool(self.day_first_rows.any() or self.month_first_rows.any())

    def problem(self, where: str, row_numbers: np.ndarray, text: pd.Series) -> str | None:
        """Why the order cannot be told (``where`` starts the message), or ``None``."""
        day, month = self.day_first_rows, self.month_first_rows
        if day.any() and month.any():
            hint = f"give the format with --date-format (e.g. {_format_hint(text, self)})"
            return (
                f"{where} mixes day-first and month-first dates: {int(day.sum()):,} rows have "
                f"a first field over 12 ({_rows(row_numbers, day)}; e.g. "
                f"'{text[day].iloc[0]}') and {int(month.sum()):,} a second field over 12 "
                f"({_rows(row_numbers, month)}; e.g. '{text[month].iloc[0]}'); {hint}"
            )
        if self.ambiguous.any() and not self.settled:
            hint = f"give the format with --date-format (e.g. {_format_hint(text, self)})"
            return (
                f"{where} has dates whose day/month order cannot be told: "
                f"{int(self.ambiguous.sum()):,} of {int(self.matched.sum()):,} rows like "
                f"'{text[self.ambiguous].iloc[0]}' have day and month 12 or less "
                f"({_rows(row_numbers, self.ambiguous)}) and no row has a field over 12; {hint}"
            )
        return None


@dataclass(frozen=True)
class _NumericDates:
    """The numeric dates with the year last (``03/04/2024``, ``3.4.24 10:00``) of a text
    column, found among its distinct values (pyarrow's RE2 kernels: no Python loop)."""

    codes: np.ndarray  # row -> distinct value (-1: missing)
    values: pa.Array  # the distinct values
    fields: pa.StructArray  # their fields (null: not such a date)
    matched: np.ndarray  # which distinct values are such dates

    @classmethod
    def of(cls, text: pd.Series) -> _NumericDates | None:
        """``None`` when the column holds no such date."""
        if not text.str.match(r"\d{1,2}[/.\-]\d").fillna(False).to_numpy(dtype=bool).any():
            return None  # cheap test first: ISO columns end here
        codes, uniques = pd.factorize(text)
        values = pa.array(np.asarray(uniques, dtype=object), type=pa.large_string())
        fields = pc.extract_regex(values, _NUMERIC_DATE)
        same = pc.equal(pc.struct_field(fields, "sep"), pc.struct_field(fields, "sep2"))
        matched = pc.fill_null(same, False).to_numpy(zero_copy_only=False)
        if not matched.any():
            return None
        return cls(np.asarray(codes), values, fields, matched)

    def rows(self, mask: np.ndarray) -> np.ndarray:
        """A mask over the distinct values as a mask over the rows."""
        return np.append(mask, False)[self.codes]

    def number(self, name: str) -> np.ndarray:
        """Field ``name`` as float64 per distinct value (NaN where not such a date)."""
        numbers = pc.cast(pc.struct_field(self.fields, name), pa.float64())
        out = numbers.to_numpy(zero_copy_only=False).astype("float64")
        return np.where(self.matched, out, np.nan)

    def as_iso(self, day_first: bool, text: pd.Series) -> pd.Series:
        """``text`` with these dates rewritten ``YYYY-MM-DD`` (two-digit years as ``%y``)."""
        field = partial(pc.struct_field, self.fields)
        day, month = (field("first"), field("second"))[:: 1 if day_first else -1]
        short = self.number("year")
        year = np.where(short < 100, short + np.where(short < 69, 2000, 1900), short)
        year_text = pc.cast(pa.array(np.nan_to_num(year).astype(np.int64)), pa.large_string())
        pad = partial(pc.utf8_lpad, width=2, padding="0")
        dash, empty = pa.scalar("-", pa.large_string()), pa.scalar("", pa.large_string())
        date = pc.binary_join_element_wise(year_text, pad(month), pad(day), dash)
        iso = pc.binary_join_element_wise(date, pc.fill_null(field("rest"), empty), empty)
        values = pc.if_else(pa.array(self.matched), iso, self.values)
        out = np.append(values.to_numpy(zero_copy_only=False), [None])[self.codes]
        return pd.Series(out, index=text.index, dtype=text.dtype)


def _decide_date_order(order: _DateOrder, text: pd.Series) -> bool:
    problem = order.problem("times", np.arange(1, len(text) + 1), text)
    if problem:
        raise SchemaError(problem)
    return order.day_first


def _format_hint(text: pd.Series, order: _DateOrder) -> str:
    """``'%d/%m/%Y' or '%m/%d/%Y'``, with the separator, year width and time of the data."""
    example = str(text[order.matched].iloc[0])
    found = re.match(_NUMERIC_DATE, example)
    assert found is not None
    sep, year = found["sep"], "%Y" if len(found["year"]) == 4 else "%y"
    time = re.fullmatch(r"(,? |T)\d{1,2}:\d{2}(:\d{2})?", found["rest"] or "")
    clock = "" if time is None else f"{time[1]}%H:%M{':%S' if time[2] else ''}"
    day_first, month_first = f"%d{sep}%m{sep}{year}{clock}", f"%m{sep}%d{sep}{year}{clock}"
    return f"'{day_first}' or '{month_first}'"


def _rows(row_numbers: np.ndarray, mask: np.ndarray) -> str:
    """``rows 17, 204, 9051, ...``: the first few row numbers where ``mask`` holds."""
    examples = ", ".join(str(r) for r in row_numbers[mask][:_EXAMPLES])
    return f"rows {examples}{', ...' if int(mask.sum()) > _EXAMPLES else ''}"


def _numeric(values: pd.Series) -> bool:
    """Numbers, or text made of digits only (read as epoch times or YYYYMMDD dates)."""
    if pd.api.types.is_bool_dtype(values) or pd.api.types.is_datetime64_any_dtype(values):
        return False
    if pd.api.types.is_numeric_dtype(values):
        return True
    text = values.astype("str").str.strip()
    present = text[text != ""].dropna()
    return bool(len(present)) and _all_digits(present)


def _duration(span: pd.Timedelta) -> str:
    """``1 day``, ``3 days``, ``2 hours`` or pandas' own form for other spans."""
    for unit, size in (("day", pd.Timedelta(days=1)), ("hour", pd.Timedelta(hours=1))):
        if span >= size and span % size == pd.Timedelta(0):
            n = span // size
            return f"{n} {unit}{'s' if n != 1 else ''}"
    return str(span)


def _all_digits(text: pd.Series) -> bool:
    pattern = r"\d+(\.\d*)?"
    return bool(text.iloc[:1].str.fullmatch(pattern).all() and text.str.fullmatch(pattern).all())


def _from_numbers(numbers: pd.Series, source_timezone: str) -> pd.Series:
    values = numbers.to_numpy(dtype="float64")
    finite = values[np.isfinite(values)]
    if not len(finite):
        return pd.Series(pd.NaT, index=numbers.index, dtype=TIMESTAMP_DTYPE)
    if bool(np.all(finite == np.floor(finite))) and 1e7 <= finite.min() and finite.max() < 1e8:
        dates = numbers.astype("Int64").astype("str")
        return _naive_utc(pd.to_datetime(dates, format="%Y%m%d", errors="coerce"), source_timezone)
    scale = float(np.median(np.abs(finite)))
    unit: Literal["s", "ms", "us", "ns"] = (
        "s" if scale < 1e11 else "ms" if scale < 1e14 else "us" if scale < 1e17 else "ns"
    )
    floor = EPOCH_FLOOR_SECONDS * {"s": 1, "ms": 1e3, "us": 1e6, "ns": 1e9}[unit]
    with np.errstate(invalid="ignore"):
        numbers = numbers.mask(~(values >= floor))  # NaN stays missing
    return pd.to_datetime(numbers, unit=unit, errors="coerce").astype(TIMESTAMP_DTYPE)
