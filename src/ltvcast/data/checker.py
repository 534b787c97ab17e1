"""Bookkeeping of one table's validation: its columns, and the rows each rule rejects.

A :class:`TableChecker` finds the columns of a raw table through a :class:`ColumnMap`,
collects the parsed canonical columns (the parsers of :mod:`~ltvcast.data.ids`,
:mod:`~ltvcast.data.times` and :mod:`~ltvcast.data.numeric` put them there), and records per
rule the rows that fail it. :meth:`TableChecker.result` drops those rows with one report entry
per rule, or raises :class:`SchemaError` with one line that names the file, the column, the
rule, the count and example rows.

Row numbers are 1-based data rows: ``index + 1`` for frames with an integer index (the frames
:func:`~ltvcast.data.io.read_table` returns number the file's data rows this way), else positions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from ltvcast.data.clean import CleaningReport
from ltvcast.data.details import EXAMPLE_ROWS, Detail, Figure, example_text
from ltvcast.data.io import CANONICAL_OF, ColumnMap
from ltvcast.data.schemas import (
    EVENT_REQUIRED,
    TIMESTAMP,
    TRANSACTION_OPTIONAL,
    TRANSACTION_REQUIRED,
    VALUE,
)
from ltvcast.exceptions import SchemaError

_CANONICAL_ORDER = (*TRANSACTION_REQUIRED, *EVENT_REQUIRED[2:], *TRANSACTION_OPTIONAL, VALUE)


@dataclass
class TableChecker:
    """Collects parsed canonical columns and the rows each rule rejects.

    Parameters
    ----------
    frame
        The raw table; refused when it is empty or repeats a column name.
    source
        Name used in messages (a file path or a table name).
    table
        Name of the table in the report (``transactions``, ``events``, ``profiles``).
    columns
        Input names of the canonical columns.
    report
        Receives the ``read`` entry now, and one entry per rule that touched rows.
    part
        ``frame`` is one part of the table (a customer bucket, see :mod:`ltvcast.engine`):
        a rule that drops all its rows is no error here, since the whole table decides
        (:func:`~ltvcast.data.validate.check_whole_table`).
    """

    frame: pd.DataFrame
    source: str
    table: str
    columns: ColumnMap
    report: CleaningReport
    part: bool = False
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
        """The input column of ``field_name`` (a :class:`ColumnMap` field).

        ``None`` when it is optional, not mapped and absent; a required or mapped column that
        is absent raises, listing the columns there are.
        """
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
        """``'CustomerID' (customer_id)``, or ``'customer_id'`` when the names agree."""
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
        """Mark the rows of ``mask`` for dropping under ``step`` (when there are any; in a
        ``part``, always: its report then names every rule, in order, for the merge)."""
        if mask.any() or self.part:
            self.problems.append((label or self.label(field_name), step, rule, failure, mask))

    def describe(self, label: str, rule: str, failure: str, mask: np.ndarray) -> str:
        """``source: column label rule; n of N rows failure (rows ...)``."""
        return self.detail(label, rule, failure, mask).render()

    def detail(self, label: str, rule: str, failure: str, mask: np.ndarray) -> Detail:
        """:meth:`describe` with its figures apart (see :mod:`~ltvcast.data.details`)."""
        return Detail.join(
            f"{self.source}: column {label} {rule}; ",
            Figure(int(mask.sum())),
            " of ",
            Figure(len(mask), "read"),
            f" rows {failure} (",
            Figure.rows(self.row_numbers[mask]),
            ")",
        )

    def result(self) -> pd.DataFrame:
        """The canonical frame without the rejected rows; raises when none is left (unless
        the frame is a ``part``: then it may come out empty)."""
        n = len(self.frame)
        rejected = np.zeros(n, dtype=bool)
        details = []
        for label, _, rule, failure, mask in self.problems:
            detail = self.detail(label, rule, failure, mask)
            if mask.all() and not self.part:
                raise SchemaError(detail.render())
            details.append(detail)
            rejected |= mask
        if rejected.all() and not self.part:
            messages = "; ".join(d.render() for d in details)
            raise SchemaError(f"{self.source}: no valid row left: {messages}")
        for (_, step, _, _, mask), detail in zip(self.problems, details, strict=True):
            self.report.add(
                self.table, step, int(mask.sum()), detail.then("; dropped"), rejects=True
            )
        self.kept = ~rejected
        order = [c for c in _CANONICAL_ORDER if c in self.out]
        order += [c for c in self.out if c not in order]
        out = pd.DataFrame({k: self.out[k].reset_index(drop=True) for k in order})
        return out[~rejected] if rejected.any() else out

    def source_duplicates(self) -> np.ndarray:
        """Which kept rows equal an earlier source row in every column as read (after result).

        Only rows whose parsed time (nearly unique per row) repeats can be such rows, so the
        columns are compared on those alone.
        """
        rows = np.ones(len(self.frame), dtype=bool)
        if TIMESTAMP in self.out:
            rows = self.out[TIMESTAMP].duplicated(keep=False).to_numpy()
        duplicated = np.zeros(len(self.frame), dtype=bool)
        duplicated[rows] = _duplicated(self.frame[rows], keep="first")
        return duplicated[self.kept]


def _duplicated(frame: pd.DataFrame, keep: Literal["first", False]) -> np.ndarray:
    """``frame.duplicated(keep=keep)``; unhashable cells (lists, dicts) compared as text."""
    try:
        return frame.duplicated(keep=keep).to_numpy()
    except TypeError:
        return frame.astype(str).duplicated(keep=keep).to_numpy()


def example_rows(row_numbers: np.ndarray, mask: np.ndarray) -> str:
    """``rows 17, 204, 9051, ...``: the first few row numbers where ``mask`` holds."""
    return example_text(row_numbers[mask][: EXAMPLE_ROWS + 1])
