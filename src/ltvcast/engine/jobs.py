"""What every partitioned job shares, whatever maps it over the buckets.

A job cleans and summarises each bucket (:func:`clean_part`), gathers the buckets' results
into the whole table's (:func:`gather`) and trains on the summary
(:meth:`BucketJob.train`); :class:`~ltvcast.engine.local.LocalJob` maps the buckets over a
pool of worker processes, :class:`~ltvcast.engine.spark.SparkJob` over Spark executors.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Protocol, TypeVar

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from ltvcast.data.clean import CleaningOptions, CleaningReport
from ltvcast.data.io import ColumnMap
from ltvcast.data.schemas import CustomerData
from ltvcast.data.times import date_order_at_stake
from ltvcast.data.validate import EVENTS, PROFILES, TRANSACTIONS, check_whole_table
from ltvcast.engine.buckets import (
    LITT,
    RawTable,
    clean_bucket,
    customer_hashes,
    profile_kinds,
    summarise_bucket,
    typed_profiles,
)
from ltvcast.engine.fit import (
    fit_purchases,
    fit_spend,
    fits_from_summary,
    fitted,
    needs_litt,
    purchase_rows,
    spend_rows,
    summary_inputs,
)
from ltvcast.engine.plan import (
    SAMPLE_CUSTOMERS,
    SAMPLED_MODELS,
    SCORED_BY_CUSTOMER,
    partitioned_models_message,
)
from ltvcast.exceptions import ConfigError, InsufficientDataError
from ltvcast.features.rfm import rfm_later
from ltvcast.models.base import Forecaster
from ltvcast.models.btyd import WEEK_DAYS, BTYDForecaster
from ltvcast.models.registry import create
from ltvcast.pipeline import ScoringModel, TrainingSummary, train_model, with_fallback
from ltvcast.strategy.segments import SegmentRules
from ltvcast.timeframe import Horizon, parse_as_of

A = TypeVar("A")
B = TypeVar("B")

#: Texts of the time column whose day/month order a whole column decides (a regular
#: expression RE2 and Java read alike).
NUMERIC_DATE = r"^\d{1,2}[/.\-]\d"
#: First rows of a table that fix its canonical columns
#: (:func:`~ltvcast.engine.buckets.empty_part`: what a bucket without its rows holds).
FIRST_ROWS = 100


@dataclass(frozen=True)
class Predicted:
    """What a job's ``predict`` wrote: the output, its customers and their total value."""

    path: Path
    customers: int
    total_value: float
    as_of: pd.Timestamp


@dataclass(frozen=True)
class Cleaned:
    """One cleaned bucket: its report, first and last times of transactions and events
    (``None``: no row left), RFM summary and customers up to the as-of (when summarised),
    with the :func:`~ltvcast.engine.buckets.customer_hashes` of those customers, and the
    :func:`~ltvcast.engine.buckets.profile_kinds` of its profiles."""

    report: CleaningReport
    first: pd.Timestamp | None
    last: pd.Timestamp | None
    rfm: pd.DataFrame | None
    customers: int
    hashes: NDArray[np.uint64] | None = None
    kinds: dict[str, bool | None] = field(default_factory=dict)
    event_types: tuple[str, ...] = ()


def clean_part(
    raw: Mapping[str, RawTable],
    columns: ColumnMap,
    options: CleaningOptions,
    as_of: pd.Timestamp | None,
    *,
    summarise: bool,
    with_litt: bool,
) -> tuple[CustomerData, Cleaned]:
    """One bucket's raw tables by table name (transactions; events and profiles when given)
    cleaned (:func:`~ltvcast.engine.buckets.clean_bucket`) and, with ``summarise``,
    summarised (:func:`~ltvcast.engine.buckets.summarise_bucket`)."""
    data, report = clean_bucket(
        *raw[TRANSACTIONS], columns, options, events=raw.get(EVENTS), profiles=raw.get(PROFILES)
    )
    kinds, types = profile_kinds(data.profiles), data.event_types
    if not len(data.transactions) and (data.events is None or not len(data.events)):
        return data, Cleaned(report, None, None, None, 0, None, kinds, types)
    first, last = data.first_timestamp(), data.last_timestamp()
    if not summarise:
        return data, Cleaned(report, first, last, None, 0, None, kinds, types)
    rfm, customers, seen = summarised(data, as_of, with_litt=with_litt)
    return data, Cleaned(report, first, last, rfm, customers, seen, kinds, types)


def summarised(
    data: CustomerData, as_of: pd.Timestamp | None, *, with_litt: bool
) -> tuple[pd.DataFrame, int, NDArray[np.uint64]]:
    """A cleaned bucket's :func:`~ltvcast.engine.buckets.summarise_bucket` and the
    :func:`~ltvcast.engine.buckets.customer_hashes` of its customers up to ``as_of``."""
    rfm, customers = summarise_bucket(data, as_of, with_litt=with_litt)
    seen = customer_hashes((data if as_of is None else data.until(as_of)).customers())
    return rfm, customers, seen


def with_kinds(data: CustomerData, kinds: dict[str, bool | None]) -> CustomerData:
    """A cleaned bucket with its profile columns of the whole table's ``kinds``
    (:func:`~ltvcast.engine.buckets.typed_profiles`): what it is scored and sampled as."""
    if data.profiles is None:
        return data
    return CustomerData(data.transactions, data.events, typed_profiles(data.profiles, kinds))


@dataclass(frozen=True)
class Gathered:
    """The whole table's cleaning report, time span, (when summarised) RFM summary in
    customer order with its customer count and their
    :func:`~ltvcast.engine.buckets.customer_hashes`, and the profile columns that hold
    numbers (:func:`agreed_kinds`)."""

    report: CleaningReport
    span: tuple[pd.Timestamp, pd.Timestamp]
    summary: tuple[pd.DataFrame, int] | None
    hashes: NDArray[np.uint64] | None = None
    kinds: dict[str, bool | None] = field(default_factory=dict)
    event_types: tuple[str, ...] = ()


def gather(
    done: Sequence[Cleaned],
    source: str,
    as_of: pd.Timestamp | None,
    *,
    summarise: bool,
    events: str | None = None,
    profiles: str | None = None,
) -> Gathered:
    """The buckets' results merged; summaries made without an as-of (each at its bucket's
    last time) are moved to the last time of all. ``events`` and ``profiles`` name those
    tables when the buckets hold them.

    Raises
    ------
    SchemaError
        When the in-memory path would refuse a table (a rule that drops every row, no row
        left).
    ConfigError
        For a profile column typed apart by the buckets (:func:`agreed_kinds`).
    """
    report = CleaningReport.merge(d.report for d in done)
    check_whole_table(report, TRANSACTIONS, source)
    if events is not None:
        check_whole_table(report, EVENTS, events)
    kinds = {} if profiles is None else agreed_kinds(profiles, [d.kinds for d in done])
    spans = [(d.first, d.last) for d in done if d.first is not None and d.last is not None]
    span = (min(first for first, _ in spans), max(last for _, last in spans))
    summary = None
    hashes = None
    if summarise:
        summary, hashes = merge_summaries(
            [d.rfm for d in done if d.rfm is not None],
            sum(d.customers for d in done),
            [d.hashes for d in done if d.hashes is not None],
        )
        if as_of is None:
            summary = (rfm_later(summary[0], span[1], time_unit_days=WEEK_DAYS), summary[1])
    types = tuple(sorted({t for d in done for t in d.event_types}))
    return Gathered(report, span, summary, hashes, kinds, types)


def merge_summaries(
    rfms: Sequence[pd.DataFrame], customers: int, hashes: Sequence[NDArray[np.uint64]]
) -> tuple[tuple[pd.DataFrame, int], NDArray[np.uint64]]:
    """The buckets' RFM summaries as one in customer order (what the BTYD fits need to be
    the in-memory ones to the last bit), with the customer count; their customers'
    :func:`~ltvcast.engine.buckets.customer_hashes` as one array."""
    rfm = pd.concat(list(rfms)).sort_index(kind="stable")
    return (rfm, customers), (np.concatenate(hashes) if hashes else np.zeros(0, np.uint64))


def agreed_kinds(source: str, kinds: Sequence[dict[str, bool | None]]) -> dict[str, bool | None]:
    """Whether each profile column holds numbers in the whole table, from the buckets'
    :func:`~ltvcast.engine.buckets.profile_kinds` (``None``: no value anywhere).

    A column is numeric when every value is a number (as the in-memory path types it), so
    the buckets agree unless some buckets' values are all numbers and others' are not.

    Raises
    ------
    ConfigError
        For such a column: its codes would differ between buckets.
    """
    agreed: dict[str, bool | None] = {}
    for part in kinds:
        for column, numeric in part.items():
            known = agreed.get(column)
            if numeric is None or known is None:
                agreed[column] = numeric if known is None else known
            elif known != numeric:
                raise ConfigError(
                    f"{source}: column '{column}' holds numbers for some customers and text "
                    "for others, which ltvcast types from the whole column; make it one kind "
                    "or use --partitions 0 (in memory)"
                )
    return agreed


def sample_cut(hashes: NDArray[np.uint64], size: int) -> int | None:
    """The largest :func:`~ltvcast.engine.buckets.customer_hashes` value in a sample of
    ``size`` customers (the smallest hashes); ``None`` when the sample is everyone.

    Raises
    ------
    ConfigError
        For a size under 1.
    """
    if size < 1:
        raise ConfigError(f"--sample-customers must be at least 1; got {size}")
    if size >= len(hashes):
        return None
    return int(np.partition(hashes, size - 1)[size - 1])


def check_date_order(source: str, time: str, texts: pd.Series) -> None:
    """Refuse numeric dates whose day/month order the whole column decides.

    ``texts`` are the distinct values of column ``time`` that match :data:`NUMERIC_DATE`.

    Raises
    ------
    ConfigError
        When their order is at stake (give ``date_format``).
    """
    order = date_order_at_stake(texts)
    if order is not None:
        raise ConfigError(
            f"{source}: column '{time}' holds dates such as '{texts.iloc[0]}' ({order}), "
            "whose day/month order ltvcast tells from the whole column; give it with "
            "--date-format ('%d/%m/%Y' or '%m/%d/%Y', with the time if any) or use "
            "--partitions 0 (in memory)"
        )


class Pair(Protocol):
    """Runs two independent calls, perhaps at once: ``(first(), second())``."""

    def __call__(self, first: Callable[[], A], second: Callable[[], B]) -> tuple[A, B]: ...


def one_after_other(first: Callable[[], A], second: Callable[[], B]) -> tuple[A, B]:
    """:class:`Pair` in this process."""
    return first(), second()


def check_scorable(scoring: ScoringModel) -> None:
    """Refuse a model whose forecasts are not a function of each customer's own rows alone
    (BTYD models and the models of :data:`~ltvcast.engine.plan.SCORED_BY_CUSTOMER` are
    scored bucket by bucket)."""
    chosen = scoring.forecaster.chosen
    if not (isinstance(chosen, BTYDForecaster) or chosen.name in SCORED_BY_CUSTOMER):
        raise ConfigError(partitioned_models_message(scoring.chosen_name, scoring=True))


class BucketJob:
    """A job's resolved times and the fit on its gathered buckets; a subclass maps the
    buckets and sets :attr:`_gathered` (see :func:`gather`)."""

    def __init__(self, as_of: str | pd.Timestamp | None) -> None:
        self._as_of = as_of
        self._gathered: Gathered | None = None

    @property
    def last_timestamp(self) -> pd.Timestamp:
        """The latest time of the cleaned transactions."""
        return self._cleaned()[1]

    @property
    def as_of(self) -> pd.Timestamp:
        """The job's as-of time, resolved (after ``clean``)."""
        return parse_as_of(self._as_of, self.last_timestamp)

    @property
    def summary(self) -> pd.DataFrame:
        """The RFM summary of the buyers up to the job's as-of, in customer order (after
        ``clean(summarise=True)``): what :meth:`train` fits on."""
        return self._summary()[0]

    def _summary(self) -> tuple[pd.DataFrame, int]:
        if self._gathered is None or self._gathered.summary is None:
            raise ConfigError(
                f"{type(self).__name__}: call split() and clean(summarise=True) first"
            )
        return self._gathered.summary

    def _bucket_as_of(self) -> pd.Timestamp | None:
        """The as-of buckets are summarised at (``None``: each at its own last time; a bare
        date needs no default time)."""
        return None if self._as_of is None else parse_as_of(self._as_of, pd.Timestamp(0))

    def _done(self) -> Gathered:
        if self._gathered is None:
            raise ConfigError(f"{type(self).__name__}: call split() and clean() first")
        return self._gathered

    def _cleaned(self) -> tuple[pd.Timestamp, pd.Timestamp]:
        return self._done().span

    def _pair(self) -> Pair:
        """How the purchase and spend fits run (override to run them at once)."""
        return one_after_other

    def _sample(self, cut: int | None) -> CustomerData:
        """The cleaned rows up to the job's as-of of the customers whose hash is at most
        ``cut`` (``None``: everyone), in the in-memory path's order (a job that keeps its
        buckets implements it)."""
        raise ConfigError(
            f"{type(self).__name__} gathers no customer sample to train "
            f"{', '.join(SAMPLED_MODELS)} on: use --engine local"
        )

    def train(
        self,
        model: str,
        horizon: Horizon,
        *,
        on_note: Callable[[str], None] | None = None,
        sample_customers: int = SAMPLE_CUSTOMERS,
    ) -> ScoringModel:
        """Fit ``model`` on the data up to the job's as-of: a model fitted from the summary
        (see :func:`~ltvcast.engine.fit.fits_from_summary`) on every customer's, with the
        fallback and segment cuts of :func:`~ltvcast.pipeline.train_model` (the same model
        as in memory); a model of :data:`~ltvcast.engine.plan.SAMPLED_MODELS` by
        :func:`~ltvcast.pipeline.train_model` itself on the rows of a sample of
        ``sample_customers`` customers (:meth:`train_sample`).

        Raises
        ------
        ConfigError
            For a model the partitioned path does not train, or a CNBD-k model when the
            buckets were cleaned without ``with_litt``.
        InsufficientDataError
            When no transaction is dated up to the as-of time, or the model cannot be fitted.
        """
        if model in SAMPLED_MODELS:
            return self.train_sample(model, horizon, sample_customers, on_note=on_note)
        rfm, customers = self._summary()
        when = self.as_of
        first = create(model)
        if not fits_from_summary(type(first)):
            raise ConfigError(partitioned_models_message(model))
        notes: list[str] = []
        pair = self._pair()

        def note(text: str) -> None:
            notes.append(text)
            if on_note is not None:
                on_note(text)

        def fit(name: str) -> Forecaster:
            forecaster = first if name == model else create(name)
            assert isinstance(forecaster, BTYDForecaster)
            if needs_litt(forecaster) and LITT not in rfm:
                raise ConfigError(f"{name}: clean the buckets with with_litt=True to train it")
            if not customers:
                raise InsufficientDataError(
                    f"{forecaster.name}: no transaction up to {when:%Y-%m-%d %H:%M}; "
                    "nothing to learn from"
                )
            inputs = summary_inputs(forecaster, rfm)
            purchases, spend = pair(
                partial(fit_purchases, forecaster, purchase_rows(forecaster, rfm)),
                partial(fit_spend, forecaster, spend_rows(forecaster, inputs)),
            )
            return fitted(forecaster, purchases, spend, inputs, when, horizon)

        forecaster = with_fallback(model, fit, note)
        assert isinstance(forecaster, BTYDForecaster)
        forecasts = forecaster.predict_rfm(rfm)
        idle = np.zeros(customers - len(rfm))  # seen, no purchase: 0 for everything
        rules = SegmentRules().fit(
            pd.DataFrame(
                {
                    "predicted_value": np.r_[forecasts["predicted_value"].to_numpy(), idle],
                    "p_active": np.r_[forecasts["p_active"].to_numpy(), idle],
                }
            )
        )
        summary = replace(self._whole(customers), end=when, notes=tuple(notes))
        return ScoringModel(forecaster, rules, summary)

    def _whole(self, customers: int) -> TrainingSummary:
        """The training summary of the whole tables (``customers`` up to the as-of)."""
        done = self._done()
        return TrainingSummary(
            done.span[0],
            self.as_of,
            customers,
            event_types=done.event_types,
            profile_columns=tuple(done.kinds),
            cleaning=done.report.to_dict(),
        )

    def sample(self, size: int) -> CustomerData:
        """The cleaned rows up to the job's as-of of the ``size`` customers with the smallest
        :func:`~ltvcast.engine.buckets.customer_hashes` (after ``clean(summarise=True)``):
        what :meth:`train_sample` trains on, in the in-memory path's order.

        Raises
        ------
        ConfigError
            For a size under 1, or a job that keeps no rows to sample.
        """
        self._summary()
        hashes = self._done().hashes
        assert hashes is not None
        return self._sample(sample_cut(hashes, size))

    def train_sample(
        self,
        model: str,
        horizon: Horizon,
        size: int,
        *,
        on_note: Callable[[str], None] | None = None,
    ) -> ScoringModel:
        """:func:`~ltvcast.pipeline.train_model` of ``model`` on a sample of ``size``
        customers seen up to the job's as-of: those with the smallest
        :func:`~ltvcast.engine.buckets.customer_hashes` (the same customers in every run),
        with all their cleaned rows up to the as-of.

        What the model learns from all its training customers (the event-type vocabulary,
        the profile encoder's categories and medians, the segment cuts; a fallback model's
        fit) comes from the sample. The training summary is the whole table's (its
        customers, start and cleaning report) with a note on the sample.
        """
        _, customers = self._summary()
        data = self.sample(size)
        taken = len(data.customers())
        scoring = train_model(
            data,
            horizon=horizon,
            model=model,
            as_of=self.as_of,
            cleaning=self._done().report,
            on_note=on_note,
        )
        text = f"trained on a sample of {taken:,} of {customers:,} customers (--sample-customers)"
        if on_note is not None:
            on_note(text)
        training = scoring.training
        assert training is not None
        whole = replace(
            self._whole(customers), reason=training.reason, notes=(*training.notes, text)
        )
        return replace(scoring, training=whole)
