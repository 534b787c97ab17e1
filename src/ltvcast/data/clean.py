"""Cleaning rules applied to typed canonical tables, and the report of what each one did.

:mod:`ltvcast.data.validate` parses raw columns into canonical types and drops unusable rows;
the functions here then apply the content rules (duplicates, returns and cancellations, zero
amounts, winsorizing, event-type names). Every rule that touches rows appends one entry to a
:class:`CleaningReport`, so a user can see exactly what happened to their data.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from ltvcast.data.details import Detail, Figure
from ltvcast.data.schemas import AMOUNT, EVENT_TYPE, KNOWN_EVENT_TYPES, ORDER_ID, PURCHASE
from ltvcast.exceptions import ConfigError
from ltvcast.timeframe import to_naive_utc

#: Common event names of tracking tools and public logs -> the canonical names.
EVENT_ALIASES = {
    "pv": "view",
    "pageview": "view",
    "page_view": "view",
    "product_view": "view",
    "product_viewed": "view",
    "view_item": "view",
    "add_to_cart": "cart",
    "addtocart": "cart",
    "add_cart": "cart",
    "product_added": "cart",
    "begin_checkout": "checkout",
    "checkout_started": "checkout",
    "buy": PURCHASE,
    "order": PURCHASE,
    "order_completed": PURCHASE,
    "transaction": PURCHASE,
}

#: Default of :attr:`CleaningOptions.future_tolerance`: rows up to a day past ``now`` are kept.
DEFAULT_FUTURE_TOLERANCE = pd.Timedelta(days=1)

#: Cancelled-invoice pattern of UCI Online Retail: "C" + the digits of an invoice number.
_CANCELLED_ORDER = r"^C\d+$"
_PLAIN_ORDER = r"^\d+$"


@dataclass(frozen=True)
class CleaningOptions:
    """How to treat the questionable rows of an input.

    Parameters
    ----------
    returns
        Negative amounts and cancelled invoices: ``"net"`` keeps them as negative rows (so sums
        give net spend), ``"drop"`` removes them.
    drop_zero_amounts
        Remove rows whose amount is exactly zero (they are always counted).
    winsorize_quantile
        Cap ``|amount|`` at this quantile of the data given (e.g. ``0.999``); ``None`` keeps
        amounts as they are.
    source_timezone
        Zone of naive timestamps in the input; they are converted to naive UTC. Zone-aware
        timestamps are converted to UTC whatever this says.
    unknown_event_types
        Events whose type is not one of :data:`~ltvcast.data.schemas.KNOWN_EVENT_TYPES`:
        ``"keep"`` them as their own channel or ``"drop"`` them.
    drop_duplicates
        Remove exact duplicate rows: rows equal to an earlier row in every column of the
        source table as read (not only in the canonical columns: two products of one invoice
        with the same quantity and price are two rows). They are always counted.
    date_format
        ``strftime`` format of the text times (e.g. ``"%d/%m/%Y"``); times that do not match
        it are dropped as invalid. ``None`` infers the format; the day/month order of dates
        such as ``03/04/2024`` is then taken from the rows that settle it (a first field over
        12 means day-first, a second one month-first), and a column that never settles it, or
        settles it both ways, is refused.
    now
        The present, passed in by the caller (the library never reads the clock): rows dated
        after ``now + future_tolerance`` are dropped and counted. Naive times are UTC.
        ``None`` skips the check.
    future_tolerance
        How far past ``now`` a time may lie (clock skew, time zones), default
        :data:`DEFAULT_FUTURE_TOLERANCE`.
    """

    returns: Literal["net", "drop"] = "net"
    drop_zero_amounts: bool = False
    winsorize_quantile: float | None = None
    source_timezone: str = "UTC"
    unknown_event_types: Literal["keep", "drop"] = "keep"
    drop_duplicates: bool = True
    date_format: str | None = None
    now: pd.Timestamp | None = None
    future_tolerance: pd.Timedelta = DEFAULT_FUTURE_TOLERANCE

    def __post_init__(self) -> None:
        if self.returns not in ("net", "drop"):
            raise ConfigError(f"returns must be 'net' or 'drop', got {self.returns!r}")
        if self.unknown_event_types not in ("keep", "drop"):
            raise ConfigError(
                f"unknown_event_types must be 'keep' or 'drop', got {self.unknown_event_types!r}"
            )
        q = self.winsorize_quantile
        if q is not None and not 0.5 <= q < 1.0:
            raise ConfigError(f"winsorize quantile must be in [0.5, 1), got {q}")
        try:
            zoneinfo.ZoneInfo(self.source_timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as err:
            raise ConfigError(f"unknown time zone {self.source_timezone!r}") from err
        if self.date_format is not None:
            _check_date_format(self.date_format)
        if self.now is not None:
            object.__setattr__(self, "now", _utc_now(self.now))
        try:
            tolerance = pd.Timedelta(self.future_tolerance)
        except (ValueError, TypeError) as err:
            raise ConfigError(
                f"future tolerance must be a duration, got {self.future_tolerance!r}"
            ) from err
        if pd.isna(tolerance) or tolerance < pd.Timedelta(0):
            raise ConfigError(f"future tolerance must be 0 or more, got {self.future_tolerance!r}")
        object.__setattr__(self, "future_tolerance", tolerance)


def _check_date_format(date_format: str) -> None:
    """Refuse a format without directives or one pandas cannot parse with."""
    probe = pd.Timestamp("2001-02-03 04:05:06")
    try:
        if "%" not in date_format:
            raise ValueError("no % directive")
        pd.to_datetime(probe.strftime(date_format), format=date_format)
    except (ValueError, TypeError) as err:
        raise ConfigError(
            f"date format {date_format!r} is not a strftime format such as '%d/%m/%Y' ({err})"
        ) from err


def _utc_now(now: object) -> pd.Timestamp:
    """``now`` as a naive UTC timestamp (aware ones converted, naive ones taken as UTC)."""
    try:
        stamp = pd.Timestamp(now)  # type: ignore[arg-type]
    except (ValueError, TypeError) as err:
        raise ConfigError(f"now must be a timestamp, got {now!r}") from err
    if pd.isna(stamp):
        raise ConfigError(f"now must be a timestamp, got {now!r}")
    return to_naive_utc(stamp)


@dataclass(frozen=True)
class CleaningStep:
    """One entry of a :class:`CleaningReport`: ``rows`` rows of ``table`` met ``step``."""

    table: str
    step: str
    rows: int
    detail: str = ""
    #: The detail with its figures apart, for :meth:`CleaningReport.merge` (not serialised).
    parts: Detail | None = field(default=None, compare=False, repr=False)
    #: A validation rule dropped these rows as unusable: a table whose every row one such
    #: rule drops is refused (:func:`~ltvcast.data.validate.check_whole_table`).
    rejects: bool = field(default=False, compare=False, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """``table``, ``step``, ``rows`` and ``detail``."""
        return {"table": self.table, "step": self.step, "rows": self.rows, "detail": self.detail}


@dataclass
class CleaningReport:
    """What reading, validation and cleaning did, one entry per step that touched rows.

    Every table gets a ``read`` entry (input rows) and a ``result`` entry (rows kept); the
    steps between name the rule (``invalid_amount``, ``duplicates``, ``returns`` ...).
    """

    steps: list[CleaningStep] = field(default_factory=list)

    def add(
        self, table: str, step: str, rows: int, detail: str | Detail = "", *, rejects: bool = False
    ) -> None:
        """Append an entry; a :class:`~ltvcast.data.details.Detail` keeps its figures for
        :meth:`merge`."""
        parts = detail if isinstance(detail, Detail) else Detail.join(detail)
        self.steps.append(CleaningStep(table, step, int(rows), parts.render(), parts, rejects))

    @classmethod
    def merge(cls, reports: Iterable[CleaningReport]) -> CleaningReport:
        """The report of whole tables from the reports of their parts (disjoint sets of rows
        cleaned one at a time, such as the customer buckets of :mod:`ltvcast.engine`).

        The entries of one table and step add their rows and combine the figures of their
        details (:mod:`ltvcast.data.details`); details whose texts differ between parts are
        joined. Entries keep the order the parts met them in: one that some part lacks
        comes before the next entry that part has (its table's ``result`` at the latest);
        parts report every validation rule, even one that met no row, so that rules keep
        their order, and entries that met no row in any part are left out.
        """
        merged: dict[tuple[str, str], CleaningStep] = {}
        order: list[tuple[str, str]] = []
        for report in reports:
            keys = [(s.table, s.step) for s in report.steps]
            for at, (key, step) in enumerate(zip(keys, report.steps, strict=True)):
                if key in merged:
                    merged[key] = _merge_steps(merged[key], step)
                    continue
                merged[key] = step
                later = [k for k in (*keys[at + 1 :], (step.table, "result")) if k in order]
                order.insert(order.index(later[0]) if later else len(order), key)
        read = {table: merged[(table, "read")].rows for table, step in order if step == "read"}
        steps = [_with_rows_read(merged[key], read.get(key[0])) for key in order]
        return cls([s for s in steps if s.rows or s.step in ("read", "result")])

    def count(self, table: str, step: str) -> int:
        """Rows of ``table`` counted under ``step`` (0 when the step never fired)."""
        return sum(s.rows for s in self.steps if s.table == table and s.step == step)

    def to_frame(self) -> pd.DataFrame:
        """The entries as a table with columns ``table, step, rows, detail``."""
        columns = ["table", "step", "rows", "detail"]
        return pd.DataFrame([s.to_dict() for s in self.steps], columns=columns)

    def lines(self) -> list[str]:
        """One readable line per entry."""
        out = []
        for s in self.steps:
            text = f"{s.table}: {s.step.replace('_', ' ')}: {s.rows:,} rows"
            out.append(f"{text} ({s.detail})" if s.detail else text)
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: ``{"steps": [{"table", "step", "rows", "detail"}, ...]}``."""
        return {"steps": [s.to_dict() for s in self.steps]}


def _with_rows_read(step: CleaningStep, rows: int | None) -> CleaningStep:
    """``step`` with the figures that count the table's rows set to ``rows``."""
    if step.parts is None or rows is None:
        return step
    parts = step.parts.with_rows_read(rows)
    return CleaningStep(step.table, step.step, step.rows, parts.render(), parts, step.rejects)


def _merge_steps(first: CleaningStep, second: CleaningStep) -> CleaningStep:
    """One entry from the same entry of two parts."""
    parts = None
    if first.parts is not None and second.parts is not None:
        parts = first.parts.merge(second.parts)
    if parts is None:
        texts = dict.fromkeys(first.detail.split("; ") + second.detail.split("; "))
        parts = Detail.join("; ".join(texts))
    rows = first.rows + second.rows
    rejects = first.rejects or second.rejects
    return CleaningStep(first.table, first.step, rows, parts.render(), parts, rejects)


#: A content rule: the frame after it, with what it did added to the report under the table.
CleaningRule = Callable[[pd.DataFrame, CleaningOptions, CleaningReport, str], pd.DataFrame]


def clean_table(
    frame: pd.DataFrame,
    rules: Sequence[CleaningRule],
    options: CleaningOptions,
    report: CleaningReport,
    table: str,
    duplicated: np.ndarray | None = None,
) -> pd.DataFrame:
    """Drop (or count) exact duplicate rows, then apply ``rules`` in order.

    ``rules`` is :data:`TRANSACTION_RULES` or :data:`EVENT_RULES`. ``duplicated`` marks the
    rows of ``frame`` that repeat an earlier row of the source table in every column as read
    (:mod:`~ltvcast.data.validate` passes it); ``None`` compares the columns of ``frame``
    itself.
    """
    frame = _drop_duplicates(frame, options, report, table, duplicated)
    for rule in rules:
        frame = rule(frame, options, report, table)
    return frame


def _drop_duplicates(
    frame: pd.DataFrame,
    options: CleaningOptions,
    report: CleaningReport,
    table: str,
    duplicated: np.ndarray | None,
) -> pd.DataFrame:
    if duplicated is None:
        duplicated = frame.duplicated(keep="first").to_numpy()
    n = int(duplicated.sum())
    if not n:
        return frame
    what = "exact duplicate rows (equal to an earlier row in every source column)"
    if options.drop_duplicates:
        report.add(table, "duplicates", n, f"{what}: dropped")
        return frame[~duplicated]
    report.add(table, "duplicates", n, f"{what}: kept")
    return frame


def cancelled_orders(frame: pd.DataFrame) -> np.ndarray:
    """Rows whose ``order_id`` marks a cancelled invoice ("C" + digits, as in UCI Online Retail).

    The rule only applies when the column also holds plain numeric order ids, so a store whose
    every order id starts with "C" is not mistaken for one that cancels everything.
    """
    if ORDER_ID not in frame.columns:
        return np.zeros(len(frame), dtype=bool)
    orders = frame[ORDER_ID]
    cancelled = orders.str.startswith("C").fillna(False).to_numpy(dtype=bool, copy=True)
    if cancelled.any():  # the regex only on the few candidates
        cancelled[cancelled] = orders[cancelled].str.match(_CANCELLED_ORDER).to_numpy(dtype=bool)
    if not cancelled.any() or not orders[~cancelled].str.match(_PLAIN_ORDER).fillna(False).any():
        return np.zeros(len(frame), dtype=bool)
    return cancelled


def _returns(
    frame: pd.DataFrame, options: CleaningOptions, report: CleaningReport, table: str
) -> pd.DataFrame:
    amount = frame[AMOUNT].to_numpy()
    cancelled = cancelled_orders(frame)
    negative = amount < 0
    rows = negative | cancelled
    n = int(rows.sum())
    if not n:
        return frame
    negatives = Figure(int(negative.sum()), text="{:,} negative amounts")
    lines = Figure(int(cancelled.sum()), text=", {:,} lines of cancelled orders", omit_zero=True)
    if options.returns == "drop":
        report.add(table, "returns", n, Detail.join(negatives, lines, "; dropped"))
        return frame[~rows]
    flipped = cancelled & (amount > 0)
    if flipped.any():
        frame = frame.assign(**{AMOUNT: np.where(flipped, -amount, amount)})
    made = ", {:,} positive cancelled lines made negative"
    total = Figure(float(frame[AMOUNT].to_numpy()[rows].sum()), text="{:,.2f}")
    detail = Detail.join(
        negatives,
        lines,
        Figure(int(flipped.sum()), text=made, omit_zero=True),
        "; kept as net spend, total ",
        total,
    )
    report.add(table, "returns", n, detail)
    return frame


def _zero_amounts(
    frame: pd.DataFrame, options: CleaningOptions, report: CleaningReport, table: str
) -> pd.DataFrame:
    zero = (frame[AMOUNT] == 0).to_numpy()
    n = int(zero.sum())
    if not n:
        return frame
    if options.drop_zero_amounts:
        report.add(table, "zero_amounts", n, "dropped")
        return frame[~zero]
    report.add(table, "zero_amounts", n, "kept")
    return frame


def _winsorize(
    frame: pd.DataFrame, options: CleaningOptions, report: CleaningReport, table: str
) -> pd.DataFrame:
    q = options.winsorize_quantile
    if q is None or not len(frame):
        return frame
    cap = float(np.quantile(np.abs(frame[AMOUNT].to_numpy()), q))
    return capped_amounts(frame, cap, q, report, table)


def capped_amounts(
    frame: pd.DataFrame, cap: float, q: float, report: CleaningReport, table: str
) -> pd.DataFrame:
    """Transactions with every ``|amount|`` above ``cap`` (their ``q`` quantile) capped at
    it, reported as ``winsorized`` (the last rule: a job over parts of a table caps each
    part at the whole table's quantile)."""
    amount = frame[AMOUNT].to_numpy()
    over = np.abs(amount) > cap
    n = int(over.sum())
    if n:
        report.add(table, "winsorized", n, f"|amount| capped at {cap:,.2f} (quantile {q})")
        frame = frame.assign(**{AMOUNT: np.clip(amount, -cap, cap)})
    return frame


def _event_types(
    frame: pd.DataFrame, options: CleaningOptions, report: CleaningReport, table: str
) -> pd.DataFrame:
    types = frame[EVENT_TYPE]
    aliased = types.isin(list(EVENT_ALIASES)).to_numpy()
    if aliased.any():
        counts = types[aliased].value_counts()
        named = {f"{k} -> {EVENT_ALIASES[str(k)]}": v for k, v in counts.items()}
        detail = Detail.join(Figure.counts(named))
        report.add(table, "event_type_aliases", int(aliased.sum()), detail)
        types = types.replace(EVENT_ALIASES)
        frame = frame.assign(**{EVENT_TYPE: types})
    unknown = ~types.isin(list(KNOWN_EVENT_TYPES)).to_numpy()
    if not unknown.any():
        return frame
    names = Figure.counts(types[unknown].value_counts().to_dict(), top=8)
    if options.unknown_event_types == "drop":
        detail = Detail.join("dropped: ", names)
        report.add(table, "unknown_event_types", int(unknown.sum()), detail)
        return frame[~unknown]
    detail = Detail.join("kept as own types: ", names)
    report.add(table, "unknown_event_types", int(unknown.sum()), detail)
    return frame


#: Content rules of transactions: returns and cancellations, zero amounts, winsorizing.
TRANSACTION_RULES: tuple[CleaningRule, ...] = (_returns, _zero_amounts, _winsorize)
#: Content rules of events: event-type aliases, then the unknown-type rule.
EVENT_RULES: tuple[CleaningRule, ...] = (_event_types,)
