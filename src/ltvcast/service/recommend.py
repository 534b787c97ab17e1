"""``GET /v1/customers/{id}/recommendations``: one customer's next best action and items.

The item relations are learned from the whole store (:class:`~ltvcast.pipeline.recommend.
Recommender`) on the first request for a model version, not at start-up, and kept until the
model changes; every answer then reads the customer's own rows at the stream clock, so a new
purchase moves their forecast, their action and (when it names items) their items at once.
"""

from __future__ import annotations

import threading

import pandas as pd

from ltvcast.data.schemas import CUSTOMER_ID, ITEM_ID, CustomerData
from ltvcast.pipeline import ScoringModel
from ltvcast.pipeline.recommend import Recommender
from ltvcast.scoring.stored import StoreHistory
from ltvcast.service.wire import RecommendationsOut, RecommendedItem


class ItemRelations:
    """The store's :class:`Recommender`, fitted once per model version (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._fitted: tuple[str, Recommender] | None = None

    def get(self, scoring: ScoringModel, version: str, history: StoreHistory) -> Recommender:
        """The recommender of ``version``, fitted on the store at the stream clock on first
        use (later requests wait for that fit, then share it)."""
        with self._lock:
            if self._fitted is None or self._fitted[0] != version:
                data, _, _ = history.snapshot()
                as_of = history.clock
                assert as_of is not None  # a known customer means a non-empty store
                tx = data.transactions
                with_items = ITEM_ID in tx.columns and bool(tx[ITEM_ID].notna().any())
                recommender = Recommender(scoring, with_items=with_items).fit(data, as_of)
                self._fitted = (version, recommender)
            return self._fitted[1]


def recommend_one(
    recommender: Recommender,
    own: CustomerData,
    as_of: pd.Timestamp,
    version: str,
    segment: str,
    top: int,
) -> RecommendationsOut:
    """The answer for the one customer of ``own`` at ``as_of``."""
    table = recommender.recommend(own, as_of, top=top)
    first = table.iloc[0]
    items = [
        RecommendedItem(rank=int(r["rank"]), item_id=str(r[ITEM_ID]), score=float(r["score"]))
        for r in table[table[ITEM_ID] != ""].to_dict("records")
    ]
    return RecommendationsOut(
        customer_id=str(first[CUSTOMER_ID]),
        as_of=as_of,
        model_version=version,
        segment=segment,
        action=str(first["action"]),
        action_value=float(first["action_value"]),
        action_reason=str(first["action_reason"]),
        items=items,
    )
