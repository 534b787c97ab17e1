"""Details of cleaning-report entries that keep their figures apart from their text.

A table cleaned in parts (the customer buckets of :mod:`ltvcast.engine`) gets one report per
part; :meth:`~ltvcast.data.clean.CleaningReport.merge` turns them into the report of the whole
table. For that, a detail such as ``"tx.csv: column 'amount' must be numeric; 3 of 9,051 rows
are not (rows 17, 204, 9051)"`` is kept as a :class:`Detail`: literal text and
:class:`Figure` values (3, 9,051, the example rows), which add up, or take the least, the
greatest or the first example rows over the parts, and render the same text again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

#: How the values of one figure combine over the parts of a table (``read``: the rows the
#: table has, which parts without the step count too; see :meth:`Detail.with_rows_read`).
Combine = Literal["sum", "min", "max", "rows", "read", "counts"]
#: Example row numbers a detail shows; one more is kept to know whether to add ", ...".
EXAMPLE_ROWS = 5


def example_text(rows: Sequence[int]) -> str:
    """``rows 17, 204, 9051, ...`` from the first row numbers (``...`` when there are more
    than :data:`EXAMPLE_ROWS` of them)."""
    shown = ", ".join(str(int(r)) for r in rows[:EXAMPLE_ROWS])
    return f"rows {shown}{', ...' if len(rows) > EXAMPLE_ROWS else ''}"


@dataclass(frozen=True)
class Figure:
    """One value in a detail and how it combines over parts.

    Parameters
    ----------
    value
        A count or amount (``sum``), a time (``min``, ``max``), the first
        ``EXAMPLE_ROWS + 1`` row numbers, ascending (``rows``), the rows read (``read``), or
        ``(label, count)`` pairs (``counts``: added by label, shown most counted first).
    combine
        ``"sum"``, ``"min"``, ``"max"``, ``"rows"``, ``"read"`` or ``"counts"``.
    text
        Format of the value (one ``{}`` field), e.g. ``"{:,}"`` or ``", {:,} lines of
        cancelled orders"``.
    omit_zero
        Render nothing when the value is 0 (an optional clause).
    top
        Most labels a ``counts`` figure shows (then "and N more"; ``None``: all).
    """

    value: Any
    combine: Combine = "sum"
    text: str = "{:,}"
    omit_zero: bool = False
    top: int | None = None

    @classmethod
    def counts(cls, counts: Mapping[Any, int], top: int | None = None) -> Figure:
        """Counts by label, shown as ``label (count), ...``, most counted first (ties by
        label), at most ``top`` of them."""
        return cls(tuple((str(k), int(v)) for k, v in counts.items()), "counts", top=top)

    @classmethod
    def rows(cls, row_numbers: Sequence[int]) -> Figure:
        """Example rows from the ascending row numbers of the rows a step met."""
        return cls(tuple(int(r) for r in row_numbers[: EXAMPLE_ROWS + 1]), "rows")

    def render(self) -> str:
        """The value as the detail shows it."""
        if self.combine == "rows":
            return example_text(self.value)
        if self.combine == "counts":
            ranked = sorted(self.value, key=lambda pair: (-pair[1], pair[0]))
            shown = ranked if self.top is None else ranked[: self.top]
            text = ", ".join(f"{label} ({count:,})" for label, count in shown)
            more = len(ranked) - len(shown)
            return text + (f" and {more} more" if more else "")
        if self.omit_zero and not self.value:
            return ""
        return self.text.format(self.value)

    def merge(self, other: Figure) -> Figure:
        """This figure combined with the same figure of another part."""
        if self.combine in ("sum", "read"):
            value = self.value + other.value
        elif self.combine == "min":
            value = min(self.value, other.value)
        elif self.combine == "max":
            value = max(self.value, other.value)
        elif self.combine == "counts":
            total = dict(self.value)
            for label, count in other.value:
                total[label] = total.get(label, 0) + count
            value = tuple(total.items())
        else:
            value = tuple(sorted({*self.value, *other.value}))[: EXAMPLE_ROWS + 1]
        return replace(self, value=value)


@dataclass(frozen=True)
class Detail:
    """Text with one ``{}`` per figure (literal braces doubled) and the figures."""

    template: str
    figures: tuple[Figure, ...] = ()

    @classmethod
    def join(cls, *parts: str | Figure) -> Detail:
        """A detail from literal text and figures, in reading order."""
        template = "".join("{}" if isinstance(p, Figure) else _escape(p) for p in parts)
        return cls(template, tuple(p for p in parts if isinstance(p, Figure)))

    def then(self, text: str) -> Detail:
        """This detail followed by literal ``text``."""
        return Detail(self.template + _escape(text), self.figures)

    def with_rows_read(self, rows: int) -> Detail:
        """This detail with its ``read`` figures set to ``rows`` (the whole table's)."""
        figures = tuple(replace(f, value=rows) if f.combine == "read" else f for f in self.figures)
        return Detail(self.template, figures)

    def render(self) -> str:
        """The detail's text."""
        return self.template.format(*(f.render() for f in self.figures))

    def merge(self, other: Detail) -> Detail | None:
        """This detail combined with another part's, or ``None`` when their texts differ."""
        if other.template != self.template:
            return None
        figures = tuple(a.merge(b) for a, b in zip(self.figures, other.figures, strict=True))
        return Detail(self.template, figures)


def _escape(text: str) -> str:
    return text.replace("{", "{{").replace("}", "}}")
