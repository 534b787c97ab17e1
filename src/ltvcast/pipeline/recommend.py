"""Recommendations: each customer's next best action and next best items, in long form.

One row per customer and recommended item (``customer_id, rank, item_id, score``) with the
customer's ``action, action_value, action_reason`` repeated on each of its rows; a customer
without items gets one row with an empty ``item_id``. The items come from
:class:`~ltvcast.strategy.items.ItemRecommender` fitted on the history up to as-of (baskets
weighted by the buyers' forecast value where its ``value_exponent`` is above 0; the default 0
won its inner backtests) and personalised by each customer's own rows; the action from
:func:`~ltvcast.strategy.actions.next_best_actions` on the model's forecasts. Both are
functions of each customer's rows and the shared item relations, so a table too large for
memory is recommended bucket by bucket (:meth:`Recommender.fit_files`, :meth:`Recommender.
save_items`, :mod:`ltvcast.engine.recommend`) and summarised from its parts
(:class:`RecommendationSummary`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ltvcast.data.schemas import CUSTOMER_ID, ITEM_ID, CustomerData
from ltvcast.pipeline.model import ScoringModel
from ltvcast.strategy.actions import (
    ACTION_COLUMNS,
    DEFAULT_CATALOGUE,
    Action,
    action_mix,
    merge_action_mix,
    next_best_actions,
)
from ltvcast.strategy.items import ITEM_COLUMNS, ItemRecommender, no_items

#: Columns of :func:`recommend`'s table, in order.
RECOMMENDATION_COLUMNS = (*ITEM_COLUMNS, *ACTION_COLUMNS)


@dataclass(frozen=True)
class ActionPolicy:
    """The assumptions an action is chosen by (see :mod:`ltvcast.strategy.actions`)."""

    catalogue: tuple[Action, ...] = DEFAULT_CATALOGUE
    margin: float = 1.0
    at_risk: float = 0.5
    risk_aversion: float = 0.5


@dataclass
class Recommender:
    """A model's forecasts turned into actions and items, for a batch or one customer.

    :meth:`fit` learns the item relations from the history up to as-of;
    :meth:`recommend` answers for any customers of ``data`` (the
    service calls it with one customer's fresh history).
    """

    scoring: ScoringModel
    top: int = 10
    policy: ActionPolicy = field(default_factory=ActionPolicy)
    with_items: bool = True
    items_: ItemRecommender | None = field(default=None, init=False)

    def fit(
        self, data: CustomerData, as_of: pd.Timestamp, scored: pd.DataFrame | None = None
    ) -> Recommender:
        """Fit the item relations (skipped without items) on ``data`` up to ``as_of``;
        ``scored`` (the model's forecasts of ``data`` at ``as_of``) saves scoring again."""
        if not self.with_items:
            return self
        items = ItemRecommender(top=self.top)
        value = None
        if items.value_exponent > 0:  # buyers weighted by their forecast value
            if scored is None:
                scored = self.scoring.predict(data, as_of)
            value = scored.set_index(CUSTOMER_ID)["predicted_value"]
        self.items_ = items.fit(data.transactions, as_of, customer_value=value)
        return self

    def fit_files(self, files: Sequence[str | Path], as_of: pd.Timestamp) -> Recommender:
        """As :meth:`fit`, from Parquet files of cleaned transactions (e.g. customer buckets)
        that DuckDB reads out of core (:meth:`~ltvcast.strategy.items.ItemRecommender.fit_files`;
        a buyer's value, where baskets are weighted by it, is their net spend)."""
        if self.with_items:
            self.items_ = ItemRecommender(top=self.top).fit_files(files, as_of)
        return self

    def save_items(self, directory: str | Path) -> Path | None:
        """Write the fitted item relations to ``directory`` for :meth:`load_items` (``None``:
        no items, nothing written)."""
        return None if self.items_ is None else self.items_.save(directory)

    def load_items(self, directory: str | Path | None) -> Recommender:
        """Fitted with the item relations :meth:`save_items` wrote to ``directory`` (``None``:
        without items)."""
        self.items_ = None if directory is None else ItemRecommender.load(directory)
        return self

    def recommend(
        self,
        data: CustomerData,
        as_of: pd.Timestamp,
        scored: pd.DataFrame | None = None,
        *,
        top: int | None = None,
    ) -> pd.DataFrame:
        """The long table of :data:`RECOMMENDATION_COLUMNS` for the customers of ``data`` up
        to ``as_of`` (all of them, or the one the service passes), sorted by customer and
        rank, with ``top`` items each (default :attr:`top`); ``scored`` is
        :meth:`~ltvcast.pipeline.ScoringModel.score`'s table when the caller has it."""
        if scored is None:
            scored = self.scoring.score(data.until(as_of), as_of)
        items = self._items(data, as_of, scored[CUSTOMER_ID], top or self.top)
        has_items = pd.Series(True, index=pd.Index(items[CUSTOMER_ID].unique()))
        policy = self.policy
        actions = next_best_actions(
            scored,
            catalogue=policy.catalogue,
            margin=policy.margin,
            at_risk=policy.at_risk,
            risk_aversion=policy.risk_aversion,
            has_items=has_items,
        )
        table = actions.merge(items, on=CUSTOMER_ID, how="left")
        table["rank"] = table["rank"].fillna(0).astype(np.int64)
        table[ITEM_ID] = table[ITEM_ID].fillna("")
        return (
            table[list(RECOMMENDATION_COLUMNS)]
            .sort_values([CUSTOMER_ID, "rank"], kind="stable")
            .reset_index(drop=True)
        )

    def _items(
        self, data: CustomerData, as_of: pd.Timestamp, customers: pd.Series, top: int
    ) -> pd.DataFrame:
        """Items from the customers' own rows of ``data`` up to ``as_of`` (so a new
        purchase moves them) and the item relations learned at fit."""
        if self.items_ is None:
            return no_items()
        return self.items_.recommend_history(data.transactions, as_of, customers.tolist(), top=top)


def recommend(
    scoring: ScoringModel,
    data: CustomerData,
    as_of: str | pd.Timestamp | None = None,
    *,
    top: int = 10,
    policy: ActionPolicy | None = None,
    with_items: bool = True,
) -> pd.DataFrame:
    """Every customer's next best action and top ``top`` items as of ``as_of`` (default: the
    data's last time); see :class:`Recommender`."""
    when = scoring.resolve_as_of(data, as_of)
    recommender = Recommender(
        scoring, top=top, policy=policy or ActionPolicy(), with_items=with_items
    )
    return recommender.fit(data, when).recommend(data, when)


@dataclass(frozen=True)
class RecommendationSummary:
    """What a recommendation table says in brief: its :func:`~ltvcast.strategy.actions.
    action_mix`, customers, customers with items and most items any customer got."""

    mix: pd.DataFrame
    customers: int
    with_items: int
    most_items: int

    @classmethod
    def of(cls, table: pd.DataFrame) -> RecommendationSummary:
        """The summary of a :func:`recommend` table."""
        got = table[ITEM_ID] != ""
        return cls(
            action_mix(table),
            int(table[CUSTOMER_ID].nunique()),
            int(table.loc[got, CUSTOMER_ID].nunique()),
            int(table.loc[got, "rank"].max()) if got.any() else 0,
        )

    @classmethod
    def merge(cls, parts: Sequence[RecommendationSummary]) -> RecommendationSummary:
        """The summary of the tables of disjoint sets of customers (e.g. customer buckets)."""
        return cls(
            merge_action_mix(part.mix for part in parts),
            sum(part.customers for part in parts),
            sum(part.with_items for part in parts),
            max((part.most_items for part in parts), default=0),
        )


def most_recommended(table: pd.DataFrame, customers: pd.Index, top: int = 10) -> pd.DataFrame:
    """The ``top`` items recommended to most of ``customers`` in a :func:`recommend` table.

    Returns
    -------
    DataFrame
        ``item_id``, ``customers`` (how many got it), ``share`` (of ``customers``) and
        ``mean_rank``, most recommended first (ties: better rank, then id).
    """
    chosen = table[table[CUSTOMER_ID].isin(customers) & (table[ITEM_ID] != "")]
    counts = (
        chosen.groupby(ITEM_ID)
        .agg(customers=(CUSTOMER_ID, "nunique"), mean_rank=("rank", "mean"))
        .reset_index()
        .sort_values(["customers", "mean_rank", ITEM_ID], ascending=[False, True, True])
        .head(top)
        .reset_index(drop=True)
    )
    counts.insert(2, "share", counts["customers"] / max(len(customers), 1))
    return counts
