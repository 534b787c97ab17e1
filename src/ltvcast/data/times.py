"""The time column: parsing, day/month order, time zones and the supported range.

:func:`parse_timestamps` reads a raw column as naive UTC ``datetime64[us]``; :func:`check_times`
does so for a table's time column and rejects (counting them, with example rows) the
unparsable times (``invalid_timestamp``), the times outside
:data:`~ltvcast.data.schemas.TIMESTAMP_RANGE` (``timestamp_out_of_range``) and those after the
caller's ``now`` plus a tolerance (``future_timestamp``). Numeric dates with the year last
(``03/04/2024``) take their day/month order from the rows that settle it (reported as
``date_order``); a column that cannot settle it is refused.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Final, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ltvcast.data.checker import TableChecker, example_rows
from ltvcast.data.clean import CleaningOptions
from ltvcast.data.ids import as_ids
from ltvcast.data.schemas import TIMESTAMP, TIMESTAMP_RANGE
from ltvcast.exceptions import SchemaError
from ltvcast.timeframe import to_naive_utc

TIMESTAMP_DTYPE: Final = "datetime64[us]"
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
#: Picks the day/month order from what the numeric dates say: ``(order, text, positions)``,
#: ``positions`` being where the rows of ``text`` lie in the whole column (0-based).
_DateDecider = Callable[["_DateOrder", pd.Series, np.ndarray], bool]
#: Bytes of the longest plain ISO time read by :func:`_plain_iso_times`, and rows per block.
_ISO_WIDTH = 19
_ISO_BLOCK = 1 << 16


def _iso_layout(form: str) -> list[int]:
    """Per byte of a plain ISO form: -1 a digit, 0 anything (the date/time separator, which
    is checked apart, and bytes past the end), else that byte."""
    codes = [-1 if c == "9" else 0 if c == "_" else ord(c) for c in form]
    return codes + [0] * (_ISO_WIDTH - len(codes))


#: Byte layouts of no form, ``YYYY-MM-DD``, ``... HH:MM`` and ``... HH:MM:SS``.
_ISO_LAYOUTS = np.array(
    [
        [0] * _ISO_WIDTH,
        *map(_iso_layout, ("9999-99-99", "9999-99-99_99:99", "9999-99-99_99:99:99")),
    ],
    dtype=np.int16,
)


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


def date_order_at_stake(values: pd.Series) -> str | None:
    """What the numeric dates with the year last (``03/04/2024``) among ``values`` say about
    their day/month order, when it matters: ``"day-first"``, ``"month-first"``, ``"mixed"``
    or ``"ambiguous"``; ``None`` when no such date depends on the order.

    :func:`check_times` decides the order from a whole column, so a column for which this
    is not ``None`` cannot be parsed in parts without a ``date_format``. ``values`` may be
    the column's distinct texts.
    """
    text = values.astype("str").str.strip().mask(lambda s: s == "")
    dates = _NumericDates.of(text)
    if dates is None:
        return None
    order = _DateOrder.of(dates)
    if order.day_first_rows.any() and order.month_first_rows.any():
        return "mixed"
    if order.settled:
        return "day-first" if order.day_first else "month-first"
    return "ambiguous" if order.ambiguous.any() else None


def check_times(checker: TableChecker, options: CleaningOptions) -> None:
    """Parse the time column; reject unparsable, out-of-range and future rows.

    The day/month order of numeric dates is reported under ``date_order``; a column whose
    dates cannot settle it raises :class:`SchemaError`.
    """
    raw = checker.column("time", required=True)
    assert raw is not None
    fmt = options.date_format
    decide = partial(_reported_date_order, checker)
    parsed = _parse_times(raw, options.source_timezone, fmt, None, decide)
    checker.out[TIMESTAMP] = parsed
    bad = parsed.isna().to_numpy()
    if fmt is not None:
        rule = f"must be a date/time in the format '{fmt}'"
    elif _numeric_times(raw):
        rule = (
            "must be a date/time (numbers are read as Unix epoch times from "
            f"{pd.Timestamp(EPOCH_FLOOR_SECONDS, unit='s'):%Y-%m-%d} on, or YYYYMMDD dates)"
        )
    else:
        rule = "must be a date/time"
    checker.reject("time", "invalid_timestamp", rule, "are not", bad)
    low, high = TIMESTAMP_RANGE  # compared by pandas: numpy would cast to ns and wrap
    outside = ~bad & ((parsed < low) | (parsed > high)).to_numpy()
    checker.reject(
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
        checker.reject("time", "future_timestamp", rule, "do", future)


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
    parsed = _naive_utc(_plain_iso_times(text), source_timezone)
    pending = (text.notna() & parsed.isna()).to_numpy()
    if pending.any():
        positions = np.flatnonzero(pending)
        rest = _parse_text(text[pending], positions, source_timezone, day_first, decide)
        parsed = parsed.copy()
        parsed[pending] = rest
    return parsed


def _plain_iso_times(text: pd.Series) -> pd.Series:
    """The times of the plain ISO forms ``YYYY-MM-DD``, ``YYYY-MM-DD HH:MM`` and
    ``YYYY-MM-DD HH:MM:SS`` (``T`` or a space before the time) as naive ``datetime64[us]``;
    ``NaT`` for every other text, and for impossible dates (2023-02-30, 24:00) or years
    outside :data:`~ltvcast.data.schemas.TIMESTAMP_RANGE`, which are left to pandas.

    The digits are read by position from the bytes of the Arrow strings: no parser runs.
    """
    values = pa.array(text.array, from_pandas=True)  # no copy when pandas holds Arrow
    pieces = values.chunks if isinstance(values, pa.ChunkedArray) else [values]
    chunks = [_plain_iso_chunk(chunk.cast(pa.large_string())) for chunk in pieces]
    out = np.concatenate(chunks) if chunks else np.zeros(0, dtype=TIMESTAMP_DTYPE)
    return pd.Series(out, index=text.index)


def _plain_iso_chunk(values: pa.Array) -> np.ndarray:
    """:func:`_plain_iso_times` of one Arrow ``large_string`` array."""
    _, offset_buffer, data_buffer = values.buffers()
    offsets = np.frombuffer(offset_buffer, dtype=np.int64)[values.offset :][: len(values) + 1]
    data = np.frombuffer(data_buffer if data_buffer is not None else b"", dtype=np.uint8)
    chars = np.concatenate([data, np.zeros(_ISO_WIDTH, dtype=np.uint8)])
    valid = values.is_valid().to_numpy(zero_copy_only=False)
    parts = [
        _plain_iso_block(chars, offsets[at : at + _ISO_BLOCK + 1], valid[at : at + _ISO_BLOCK])
        for at in range(0, len(values), _ISO_BLOCK)
    ]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=TIMESTAMP_DTYPE)


def _plain_iso_block(chars: np.ndarray, offsets: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """The plain ISO times of the strings at ``offsets`` into ``chars``."""
    length = np.diff(offsets)
    block = chars[offsets[:-1, None] + np.arange(_ISO_WIDTH)].astype(np.int16)
    shape = np.select([length == 19, length == 16, length == 10], [3, 2, 1], 0)
    layout = _ISO_LAYOUTS[shape]  # per row and byte: digit (-1), no check (0) or that byte
    digit = (block >= 48) & (block <= 57)
    fits = np.where(layout < 0, digit, (layout == 0) | (block == layout)).all(axis=1)
    fits &= (shape > 0) & valid & ((block[:, 10] == 32) | (block[:, 10] == 84) | (shape == 1))
    d = np.where(digit, block - 48, 0).astype(np.int64)
    year = d[:, 0] * 1000 + d[:, 1] * 100 + d[:, 2] * 10 + d[:, 3]
    month, day = d[:, 5] * 10 + d[:, 6], d[:, 8] * 10 + d[:, 9]
    timed, with_seconds = shape >= 2, shape == 3
    hour = np.where(timed, d[:, 11] * 10 + d[:, 12], 0)
    minute = np.where(timed, d[:, 14] * 10 + d[:, 15], 0)
    second = np.where(with_seconds, d[:, 17] * 10 + d[:, 18], 0)
    low, high = (stamp.year for stamp in TIMESTAMP_RANGE)
    fits &= (year >= low) & (year <= high) & (month >= 1) & (month <= 12) & (day >= 1)
    fits &= (hour <= 23) & (minute <= 59) & (second <= 59)
    months = np.where(fits, (year - 1970) * 12 + month - 1, 0).astype("datetime64[M]")
    days = months.astype("datetime64[D]") + np.where(fits, day - 1, 0).astype("timedelta64[D]")
    fits &= days.astype("datetime64[M]") == months  # the day exists in its month
    clock = ((hour * 60 + minute) * 60 + second) * 1_000_000
    stamps = days.astype(TIMESTAMP_DTYPE) + clock.astype("timedelta64[us]")
    return np.where(fits, stamps, np.datetime64("NaT", "us"))


def _parse_text(
    text: pd.Series,
    positions: np.ndarray,
    source_timezone: str,
    day_first: bool | None,
    decide: _DateDecider,
) -> pd.Series:
    """Text times in any form pandas reads (numeric dates with the year last in the order
    ``day_first`` or ``decide`` gives), as naive UTC; ``positions`` locate the rows of
    ``text`` in the whole column, for ``decide``'s messages."""
    dates = _NumericDates.of(text)
    if dates is not None:
        if day_first is None:
            day_first = decide(_DateOrder.of(dates), text, positions)
        text = dates.as_iso(day_first, text)
    parsed = _naive_utc(_to_datetime(text), source_timezone)
    retry = (parsed.isna() & text.notna()).to_numpy()
    if retry.any():
        again = _naive_utc(_to_datetime(text[retry], format="mixed"), source_timezone)
        parsed = parsed.copy()
        parsed[retry] = again
    return parsed


def _reported_date_order(
    checker: TableChecker, order: _DateOrder, text: pd.Series, positions: np.ndarray
) -> bool:
    """Day-first or not, as the numeric dates tell (reported); raises when they cannot."""
    where = f"{checker.source}: column {checker.label('time')}"
    rows = checker.row_numbers[positions]
    problem = order.problem(where, rows, text)
    if problem:
        raise SchemaError(problem)
    if not order.settled:  # every such date has day == month: either order reads it
        return False
    evidence = order.day_first_rows if order.day_first else order.month_first_rows
    form = "day-first (DD/MM/YYYY)" if order.day_first else "month-first (MM/DD/YYYY)"
    field_name = "first" if order.day_first else "second"
    checker.report.add(
        checker.table,
        "date_order",
        int(order.matched.sum()),
        f"{where}: dates read {form}, as {int(evidence.sum()):,} of them have a "
        f"{field_name} field over 12 ({example_rows(rows, evidence)}); name the "
        "format with --date-format to override",
    )
    return order.day_first


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
        parsed = to_naive_utc(parsed)
    elif source_timezone not in _UTC_NAMES:
        standard = np.zeros(len(parsed), dtype=bool)  # an ambiguous hour is read as standard time
        parsed = to_naive_utc(
            parsed.dt.tz_localize(source_timezone, ambiguous=standard, nonexistent="shift_forward")
        )
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
                f"a first field over 12 ({example_rows(row_numbers, day)}; e.g. "
                f"'{text[day].iloc[0]}') and {int(month.sum()):,} a second field over 12 "
                f"({example_rows(row_numbers, month)}; e.g. '{text[month].iloc[0]}'); {hint}"
            )
        if self.ambiguous.any() and not self.settled:
            hint = f"give the format with --date-format (e.g. {_format_hint(text, self)})"
            return (
                f"{where} has dates whose day/month order cannot be told: "
                f"{int(self.ambiguous.sum()):,} of {int(self.matched.sum()):,} rows like "
                f"'{text[self.ambiguous].iloc[0]}' have day and month 12 or less "
                f"({example_rows(row_numbers, self.ambiguous)}) and no row has a field over 12; "
                f"{hint}"
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


def _decide_date_order(order: _DateOrder, text: pd.Series, positions: np.ndarray) -> bool:
    problem = order.problem("times", positions + 1, text)
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


def _numeric_times(values: pd.Series) -> bool:
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
