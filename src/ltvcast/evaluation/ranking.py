"""Top-k recommendation metrics over a recommendations table and the next period's purchases.

``recs`` is long form (``customer_id, rank, item_id``, rank 1 = best); ``purchases`` holds the
next period's purchase lines (``customer_id, item_id, amount``). Every metric is a mean over
the customers who buy in the next period (those with at least one purchase line), whatever
``recs`` holds for them: a buyer without recommendations counts as a miss, recommendations
for non-buyers are ignored. Only ranks ``<= k`` count; an item is relevant to a customer when
they bought it in the period.

- hit rate@k: share of buyers with at least one relevant item in their top k;
- precision@k: relevant items in the top k over k;
- recall@k: relevant items in the top k over the customer's distinct bought items;
- NDCG@k: ``sum 1 / log2(rank + 1)`` over relevant ranks, over its best possible value
  (``min(k, bought items)`` hits at ranks 1, 2 ...);
- revenue-weighted hit rate@k: hit rate with each buyer weighted by their period revenue
  (sum of ``amount``, negatives as 0): the share of next-period revenue that comes from
  customers with a hit, which is how a CRM team reads "whom did we get right, in money".
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from ltvcast.data.schemas import AMOUNT, CUSTOMER_ID, ITEM_ID
from ltvcast.exceptions import ConfigError, SchemaError

RANK = "rank"


def hit_rate_at_k(recs: pd.DataFrame, purchases: pd.DataFrame, k: int = 10) -> float:
    """Share of next-period buyers with at least one bought item in their top ``k``."""
    return _hit_rate(_per_buyer(recs, purchases, k), k)


def precision_at_k(recs: pd.DataFrame, purchases: pd.DataFrame, k: int = 10) -> float:
    """Mean over buyers of (bought items in the top ``k``) / ``k``."""
    return _precision(_per_buyer(recs, purchases, k), k)


def recall_at_k(recs: pd.DataFrame, purchases: pd.DataFrame, k: int = 10) -> float:
    """Mean over buyers of (bought items in the top ``k``) / (distinct items bought)."""
    return _recall(_per_buyer(recs, purchases, k), k)


def ndcg_at_k(recs: pd.DataFrame, purchases: pd.DataFrame, k: int = 10) -> float:
    """Mean over buyers of DCG@k / ideal DCG@k with binary relevance."""
    return _ndcg(_per_buyer(recs, purchases, k), k)


def revenue_weighted_hit_rate_at_k(
    recs: pd.DataFrame, purchases: pd.DataFrame, k: int = 10
) -> float:
    """Share of next-period revenue (negatives as 0) from buyers with a hit in their top ``k``;
    NaN when the period has no positive revenue."""
    return _revenue_hit_rate(_per_buyer(recs, purchases, k), k)


def evaluate_ranking(recs: pd.DataFrame, purchases: pd.DataFrame, k: int = 10) -> dict[str, float]:
    """Every metric of :data:`RANKING_METRICS` at ``k``, plus ``buyers`` (their number)."""
    table = _per_buyer(recs, purchases, k)
    out = {name: fn(table, k) for name, fn in _BY_TABLE.items()}
    out["buyers"] = float(len(table))
    return out


def _hit_rate(table: pd.DataFrame, k: int) -> float:
    return float((table["hits"] > 0).mean())


def _precision(table: pd.DataFrame, k: int) -> float:
    return float((table["hits"] / k).mean())


def _recall(table: pd.DataFrame, k: int) -> float:
    return float((table["hits"] / table["relevant"]).mean())


def _ndcg(table: pd.DataFrame, k: int) -> float:
    ideal_gain = np.concatenate([[0.0], np.cumsum(1.0 / np.log2(np.arange(2, k + 2)))])
    ideal = ideal_gain[np.minimum(table["relevant"].to_numpy(), k)]
    return float((table["dcg"].to_numpy() / ideal).mean())


def _revenue_hit_rate(table: pd.DataFrame, k: int) -> float:
    revenue = table["revenue"].clip(lower=0.0)
    total = float(revenue.sum())
    if total <= 0:
        return float("nan")
    return float(revenue[table["hits"] > 0].sum() / total)


#: Metric name -> function, in the order tables show them.
RANKING_METRICS: dict[str, Callable[[pd.DataFrame, pd.DataFrame, int], float]] = {
    "hit_rate": hit_rate_at_k,
    "precision": precision_at_k,
    "recall": recall_at_k,
    "ndcg": ndcg_at_k,
    "revenue_hit_rate": revenue_weighted_hit_rate_at_k,
}
_BY_TABLE: dict[str, Callable[[pd.DataFrame, int], float]] = {
    "hit_rate": _hit_rate,
    "precision": _precision,
    "recall": _recall,
    "ndcg": _ndcg,
    "revenue_hit_rate": _revenue_hit_rate,
}


def _per_buyer(recs: pd.DataFrame, purchases: pd.DataFrame, k: int) -> pd.DataFrame:
    """One row per buyer: ``relevant`` (distinct items bought), ``revenue``, ``hits`` and
    ``dcg`` of their top ``k``."""
    if not isinstance(k, int | np.integer) or k < 1:
        raise ConfigError(f"k must be a positive integer, got {k!r}")
    _require(recs, "recommendations", (CUSTOMER_ID, RANK, ITEM_ID))
    _require(purchases, "purchases", (CUSTOMER_ID, ITEM_ID, AMOUNT))
    if not len(purchases):
        raise SchemaError("purchases: no purchase in the evaluation period; nothing to score")
    bought = purchases[[CUSTOMER_ID, ITEM_ID]].astype("str").drop_duplicates()
    buyers = pd.DataFrame(
        {
            "relevant": bought.groupby(CUSTOMER_ID).size(),
            "revenue": purchases.groupby(purchases[CUSTOMER_ID].astype("str"))[AMOUNT].sum(),
        }
    )
    top = recs.loc[(recs[RANK] <= k).to_numpy(), [CUSTOMER_ID, ITEM_ID, RANK]]
    top = top.astype({CUSTOMER_ID: "str", ITEM_ID: "str"}).drop_duplicates([CUSTOMER_ID, ITEM_ID])
    hits = top.merge(bought, on=[CUSTOMER_ID, ITEM_ID], how="inner")
    gain = 1.0 / np.log2(hits[RANK].to_numpy(dtype="float64") + 1.0)
    per = pd.DataFrame({CUSTOMER_ID: hits[CUSTOMER_ID], "gain": gain}).groupby(CUSTOMER_ID)
    buyers["hits"] = per.size().reindex(buyers.index, fill_value=0)
    buyers["dcg"] = per["gain"].sum().reindex(buyers.index, fill_value=0.0)
    return buyers


def _require(frame: pd.DataFrame, name: str, columns: tuple[str, ...]) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise SchemaError(f"{name}: missing column(s) {missing} (have {list(frame.columns)})")
