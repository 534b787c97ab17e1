"""The model bundle: everything the service swaps when the model changes, as one reference.

A :class:`Model` holds the scoring model, its online scorer, segment cuts, version, the
forecasts of everyone at its as-of (:class:`Filled`, filled in the background by
:meth:`Model.fill_step`) and the answers of customers scored since (:class:`AnswerCache`).
:func:`prepare_bundle` builds one without scoring the whole store: segment cuts not in the
model are fitted on the forecasts of :data:`SEGMENT_SAMPLE` customers.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import repeat
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ltvcast.data.schemas import CUSTOMER_ID
from ltvcast.features.running import VersionSnapshot
from ltvcast.pipeline import FORECAST_COLUMNS, ScoringModel, label_segments
from ltvcast.scoring.artifacts import MANIFEST
from ltvcast.scoring.online import OnlineScorer
from ltvcast.strategy.segments import FittedSegmentRules

#: The cached answer of a customer, in order: forecast columns, then segment, as-of, model.
ANSWER_FIELDS = (*FORECAST_COLUMNS, "segment", "as_of", "model_version")
#: Customer answers kept per model (least recently used evicted first): about 0.5 KB
#: each, so 50 MB at most; an evicted customer is scored again on the next read.
ANSWER_CACHE = 100_000
#: Customers whose forecasts fit the segment cuts when the model carries none (spread
#: evenly over the customers; all of them in a smaller store).
SEGMENT_SAMPLE = 20_000
#: Customers on whom the running-summaries path is checked against ``predict``.
FAST_PATH_CHECK = 256


Answers = dict[str, tuple[tuple[int, int], tuple[Any, ...]]]


class AnswerCache:
    """Customer answers (history version, values) bounded to ``size``, the least recently
    used evicted first."""

    def __init__(self, size: int = ANSWER_CACHE) -> None:
        self.size = size
        self._entries: OrderedDict[str, tuple[tuple[int, int], tuple[Any, ...]]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, customer_id: object) -> bool:
        return customer_id in self._entries

    def __getitem__(self, customer_id: str) -> tuple[tuple[int, int], tuple[Any, ...]]:
        return self._entries[customer_id]

    def get(self, customer_id: str) -> tuple[tuple[int, int], tuple[Any, ...]] | None:
        """The customer's entry (now the most recently used), or ``None``."""
        entry = self._entries.get(customer_id)
        if entry is not None:
            self._entries.move_to_end(customer_id)
        return entry

    def update(self, answers: Answers) -> None:
        """Add or replace entries, evicting the least recently used beyond ``size``."""
        entries = self._entries
        for customer_id, entry in answers.items():
            entries[customer_id] = entry
            entries.move_to_end(customer_id)
        while len(entries) > self.size:
            entries.popitem(last=False)


class Filled:
    """Forecasts at a bundle's as-of of the customers known when it was made, one row per
    customer code (:meth:`VersionSnapshot.code
    <ltvcast.features.running.VersionSnapshot.code>`), in numpy columns; a row is valid
    once filled and while its customer has no new event."""

    def __init__(self, n: int) -> None:
        self.n = n
        #: codes below this have been filled (or tried: customers without rows stay unset)
        self.next = 0
        self.columns = {name: np.full(n, np.nan) for name in FORECAST_COLUMNS}
        self.present: set[str] = set()
        self.segment = np.full(n, None, dtype=object)
        self.done = np.zeros(n, dtype=bool)

    def row(self, code: int) -> tuple[Any, ...] | None:
        """The forecast columns (``None`` for columns the model does not give) and the
        segment of a customer, or ``None`` when not filled."""
        if code < 0 or code >= self.n or not self.done[code]:
            return None
        values = [
            self.columns[name][code].item() if name in self.present else None
            for name in FORECAST_COLUMNS
        ]
        return (*values, self.segment[code])

    def put(self, codes: np.ndarray, frame: pd.DataFrame, segments: np.ndarray) -> None:
        """Fill the rows ``codes`` from a forecast ``frame`` (same order) and its segments."""
        for name in FORECAST_COLUMNS:
            if name in frame.columns:
                self.columns[name][codes] = frame[name].to_numpy(np.float64)
                self.present.add(name)
        self.segment[codes] = segments
        self.done[codes] = True


@dataclass(frozen=True)
class Model:
    """Everything that changes when the model does; swapped as one reference."""

    scoring: ScoringModel
    scorer: OnlineScorer
    version: str
    #: The model's own cuts, or cuts fitted on a sample of the store's forecasts.
    rules: FittedSegmentRules | None
    #: The stream clock when the bundle was made: customers without a new event since
    #: are forecast at it (``None``: an empty store).
    as_of: pd.Timestamp | None = None
    #: History epoch and per-customer versions when the bundle was made.
    base: tuple[int, VersionSnapshot] | None = None
    #: Everyone's forecast at ``as_of``, filled in the background (see :class:`Filled`).
    filled: Filled = field(default_factory=lambda: Filled(0))
    #: customer -> (history version the answer reflects, answer values in ANSWER_FIELDS
    #: order); tuples rather than dicts: cheap to build by the thousand, light for the GC
    answers: AnswerCache = field(default_factory=AnswerCache)

    def as_of_for(self, customer_id: str, version: tuple[int, int]) -> pd.Timestamp | None:
        """The bundle's as-of for a customer without a new event since it was made, else
        ``None`` (the stream clock)."""
        if self.base is None or version != (self.base[0], self.base[1].get(customer_id)):
            return None
        return self.as_of

    def fill_step(self, ids: np.ndarray, size: int) -> int:
        """Fill the next ``size`` rows of :attr:`filled` (``ids``: the customers by code,
        :meth:`CustomerHistory.ids <ltvcast.scoring.history.CustomerHistory.ids>`), all
        vectorised; customers with a new event since are skipped (scored on read).
        Returns how many customers were forecast."""
        filled, history = self.filled, self.scorer.history
        start = filled.next
        stop = min(filled.n, start + size)
        filled.next = stop
        if self.base is None or self.as_of is None or start >= stop:
            return 0
        with history.lock:  # no event learned between the check and the scoring
            unchanged = np.flatnonzero(~history.changed(self.base, start, stop))
            scored = self.scorer.rescore(ids[start + unchanged].tolist(), self.as_of)
        frame = scored.frame
        codes = start + pd.Index(ids[start:stop]).get_indexer(frame[CUSTOMER_ID])
        filled.put(codes, frame, label_segments(self.rules, frame, scored.stats).to_numpy())
        return len(frame)

    def answer_batch(
        self,
        frame: pd.DataFrame,
        stats: pd.DataFrame,
        as_of: pd.Timestamp,
        versions: Sequence[tuple[int, int]],
    ) -> Answers:
        """Cache entries for a batch forecast (``versions[i]``: the history version row ``i``
        reflects; ``stats``: tenure and purchases in the same rows as ``frame``)."""
        segments = label_segments(self.rules, frame, stats).tolist()
        n = len(frame)
        columns = [
            frame[name].tolist() if name in frame.columns else [None] * n
            for name in FORECAST_COLUMNS
        ]
        fixed = (repeat(as_of, n), repeat(self.version, n))
        values = zip(*columns, segments, *fixed, strict=True)
        ids = frame[CUSTOMER_ID].tolist()
        return dict(zip(ids, zip(versions, values, strict=True), strict=True))


def prepare_bundle(scoring: ScoringModel, scorer: OnlineScorer, version: str) -> Model:
    """The bundle of a model: its own segment cuts or cuts fitted on the forecasts of
    :data:`SEGMENT_SAMPLE` customers (see :meth:`~ltvcast.pipeline.ScoringModel.cuts_for`),
    the fast rescoring path checked against ``predict`` on :data:`FAST_PATH_CHECK`;
    everyone's forecasts are filled in later (:meth:`Model.fill_step`)."""
    as_of = scorer.clock
    history = scorer.history
    base = history.versions()
    if as_of is not None:
        scorer.check_fast_path(history.sample(FAST_PATH_CHECK), as_of)
    rules = scoring.rules
    if rules is None and as_of is not None:
        sample = scorer.rescore(history.sample(SEGMENT_SAMPLE), as_of).frame
        rules = scoring.cuts_for(sample)
    return Model(scoring, scorer, version, rules, as_of, base, Filled(len(base[1])))


def model_version(model_dir: Path, scoring: ScoringModel) -> str:
    """``<model>-<first 12 hex of the manifest's sha256>``."""
    digest = hashlib.sha256((model_dir / MANIFEST).read_bytes()).hexdigest()[:12]
    return f"{scoring.name}-{digest}"
