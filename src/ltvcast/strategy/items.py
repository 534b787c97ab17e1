"""Next best items: item-to-item co-purchase, personalised and value-weighted, with baselines.

:class:`ItemRecommender` scores, for customer *c* and item *j* not bought in the last
``exclude_recent_days`` days before as-of,

``score(c, j) = sum_i h(c, i) * sim(i, j) + repeat_weight * h_old(c, j)``

where ``h(c, i)`` is the customer's recency-weighted purchase history (each purchase day
counts ``0.5 ** (age_days / half_life_days)``, normalised to sum 1 per customer), ``h_old`` the
same restricted to items last bought before the exclusion window, and ``sim`` the co-purchase
similarity of item *i* to item *j* over baskets (the order, else customer and day) up to as-of:

``sim(i, j) = co(i, j) / (n_i ** alpha * n_j ** (1 - alpha) + shrinkage)``

with ``co(i, j)`` the summed weight of baskets holding both, ``n_i`` that of baskets holding
*i*, and a basket's weight its buyer's value ``(1 + v / mean(v)) ** value_exponent`` (``v``:
``customer_value``, default past spend, negatives as 0). ``alpha = 0.5`` is the cosine; a larger
``alpha`` damps best-sellers as targets less, a smaller one more (Aiolli 2013, asymmetric
cosine). Only the ``neighbours`` most similar items of each item are kept (a window function in
DuckDB), so nothing item x item is ever dense. Short lists are filled from the most popular
items (distinct buyers in the last ``popularity_days``), with score 0; customers unknown to the
fit get that fill alone.

Baselines with the same interface: :class:`PopularityRecommender` (that fill for everyone) and
:class:`BuyAgainRecommender` (the customer's own items by recency-weighted frequency, then the
fill).

Defaults were chosen by the inner backtest of ``bench/bench_recommend.py --tune`` (Online
Retail and Complete Journey, each cut 91 days before its test cutoff, training data only):
``repeat_weight=3, alpha=1`` (the conditional probability P(j | i) with shrinkage: damping
best-sellers as targets lost there), half-life 365 days, 20 neighbours, no exclusion window,
and ``value_exponent=0``: weighting baskets by the buyers' value moved hit rates by less than
0.01 either way, so ``customer_value`` only acts when ``value_exponent > 0``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol, Self

import duckdb
import numpy as np
import pandas as pd

from ltvcast.data.schemas import AMOUNT, CUSTOMER_ID, ITEM_ID, ORDER_ID, TIMESTAMP
from ltvcast.exceptions import ConfigError, NotFittedError, SchemaError

#: Columns of every recommendation table, in order.
ITEM_COLUMNS = (CUSTOMER_ID, "rank", ITEM_ID, "score")


class Recommender(Protocol):
    """What :func:`ltvcast.pipeline.item_backtest.backtest_recommenders` and the edges call."""

    def fit(
        self,
        transactions: pd.DataFrame,
        as_of: pd.Timestamp,
        customer_value: pd.Series | None = None,
    ) -> Recommender: ...

    def recommend(
        self, customers: Iterable[str] | None = None, top: int | None = None
    ) -> pd.DataFrame: ...


class _Recommender:
    """Shared fit (history, popularity) and chunked recommend; subclasses add candidates."""

    top: int
    exclude_recent_days: float
    half_life_days: float
    popularity_days: float
    batch_size: int

    def _check(self) -> None:
        for name in ("top", "batch_size"):
            value = getattr(self, name)
            if not isinstance(value, int | np.integer) or value < 1:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        for name in ("exclude_recent_days", "half_life_days", "popularity_days"):
            value = getattr(self, name)
            if (
                not np.isfinite(value)
                or value < 0
                or (name != "exclude_recent_days" and value == 0)
            ):
                raise ConfigError(f"{name} must be a positive number of days, got {value!r}")

    def fit(
        self,
        transactions: pd.DataFrame,
        as_of: pd.Timestamp,
        customer_value: pd.Series | None = None,
    ) -> Self:
        """Learn the histories and popularity from rows up to ``as_of`` (``customer_value``
        is part of the common interface; only :class:`ItemRecommender` uses it)."""
        self._fit_common(transactions, as_of)
        return self

    def _fit_common(self, transactions: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
        self._check()
        require_items(transactions)
        lines = purchase_lines(transactions, as_of)
        self.as_of_ = pd.Timestamp(as_of)
        past = transactions.loc[(transactions[TIMESTAMP] <= as_of).to_numpy(), CUSTOMER_ID]
        self.customers_ = np.sort(past.astype("str").unique())
        self.history_ = customer_history(lines, self.as_of_, self.half_life_days)
        self.popular_ = popular_items(lines, self.as_of_, self.popularity_days)
        return lines

    def _candidates(self, con: duckdb.DuckDBPyConnection) -> str:
        """SQL of the personal ``customer_id, item_id, score`` of the customers in table
        ``_hist`` (default none: popularity alone)."""
        return f"SELECT {CUSTOMER_ID}, {ITEM_ID}, weight AS score FROM _hist WHERE false"

    def recommend(
        self, customers: Iterable[str] | None = None, top: int | None = None
    ) -> pd.DataFrame:
        """Top items per customer, long form (``customer_id, rank, item_id, score``).

        Parameters
        ----------
        customers
            Ids to recommend for (default: every customer with a transaction up to as-of);
            ids unknown to the fit get the popularity fill. Work runs in chunks of
            ``batch_size`` customers.
        top
            Items per customer (default: the ``top`` hyperparameter).
        """
        k = self._top(top)
        wanted = self.customers_ if customers is None else list(customers)
        return self._recommend(wanted, k, self.history_)

    def recommend_history(
        self,
        transactions: pd.DataFrame,
        as_of: pd.Timestamp,
        customers: Iterable[str] | None = None,
        top: int | None = None,
    ) -> pd.DataFrame:
        """Top items for ``customers`` (default: those of ``transactions``) personalised by
        the rows of ``transactions`` up to ``as_of`` (a fresher history than the fit's, e.g.
        one customer's after a new purchase), with the item relations and popularity learned
        at fit; otherwise as :meth:`recommend`."""
        k = self._top(top)
        lines = purchase_lines(transactions, as_of)
        history = customer_history(lines, pd.Timestamp(as_of), self.half_life_days)
        wanted = transactions[CUSTOMER_ID].unique() if customers is None else customers
        return self._recommend(wanted, k, history)

    def _top(self, top: int | None) -> int:
        """Items per customer for a call (checked), once fitted."""
        if not hasattr(self, "history_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted; call fit() first")
        k = self.top if top is None else top
        if not isinstance(k, int | np.integer) or k < 1:
            raise ConfigError(f"top must be a positive integer, got {k!r}")
        return int(k)

    def _recommend(self, wanted: Iterable[str], k: int, history: pd.DataFrame) -> pd.DataFrame:
        ids = pd.Series(pd.unique(pd.Series(list(wanted), dtype="str")), dtype="str")
        parts = [
            self._recommend_chunk(ids.iloc[start : start + self.batch_size], k, history)
            for start in range(0, len(ids), self.batch_size)
        ]
        if not parts:
            return no_items()
        return pd.concat(parts, ignore_index=True)

    def _recommend_chunk(self, ids: pd.Series, k: int, history: pd.DataFrame) -> pd.DataFrame:
        con = _connect()
        try:
            chunk = pd.DataFrame({CUSTOMER_ID: ids.to_numpy()}).astype({CUSTOMER_ID: "str"})
            con.register("_chunk", chunk)
            con.register("_history", history)
            con.register("_popular", self.popular_.head(3 * k))
            con.execute(
                "CREATE TEMP TABLE _hist AS SELECT h.* FROM _history h JOIN _chunk USING "
                f"({CUSTOMER_ID})"
            )
            exclude = (
                f"SELECT {CUSTOMER_ID}, {ITEM_ID} FROM _hist WHERE days_ago < "
                f"{float(self.exclude_recent_days)!r}"
            )
            sql = f"""
                WITH excluded AS ({exclude}),
                candidates AS ({self._candidates(con)}),
                personal AS (
                    SELECT p.{CUSTOMER_ID}, p.{ITEM_ID}, p.score, 0 AS fill, 0 AS pop_rank
                    FROM candidates p ANTI JOIN excluded e USING ({CUSTOMER_ID}, {ITEM_ID})
                    WHERE p.score > 0
                ),
                fill AS (
                    SELECT c.{CUSTOMER_ID}, p.{ITEM_ID}, 0.0 AS score, 1 AS fill, p.pop_rank
                    FROM _chunk c CROSS JOIN _popular p
                    ANTI JOIN excluded e USING ({CUSTOMER_ID}, {ITEM_ID})
                    ANTI JOIN personal q USING ({CUSTOMER_ID}, {ITEM_ID})
                ),
                ranked AS (
                    SELECT {CUSTOMER_ID}, {ITEM_ID}, score, row_number() OVER (
                        PARTITION BY {CUSTOMER_ID} ORDER BY fill, score DESC, pop_rank, {ITEM_ID}
                    ) AS rank
                    FROM (SELECT * FROM personal UNION ALL SELECT * FROM fill)
                )
                SELECT {CUSTOMER_ID}, rank, {ITEM_ID}, score FROM ranked WHERE rank <= {k}
                ORDER BY {CUSTOMER_ID}, rank
            """
            out = con.execute(sql).df()
        finally:
            con.close()
        return out.astype({CUSTOMER_ID: "str", "rank": "int64", ITEM_ID: "str", "score": "float64"})


class ItemRecommender(_Recommender):
    """Next best items from value-weighted basket co-purchase and the customer's own history.

    Parameters
    ----------
    top
        Items per customer.
    exclude_recent_days
        Items the customer bought in the last this many days before as-of are not
        recommended (0: none excluded).
    neighbours
        Most similar items kept per item.
    alpha
        Asymmetric-cosine exponent on the source item's basket count (0.5: cosine).
    shrinkage
        Added to the similarity's denominator (damps pairs seen in few baskets).
    repeat_weight
        Weight of the customer's own older items against their co-purchase neighbours.
    half_life_days
        Half-life of a purchase's weight in the customer's history.
    value_exponent
        Exponent of the buyer-value weight of a basket (0: every basket counts 1).
    max_basket_items
        Baskets with more distinct items give no pairs (they still count as history).
    max_history_items
        The customer's heaviest items whose neighbours are looked up.
    popularity_days
        Window of the popularity fill.
    batch_size
        Customers per chunk in :meth:`recommend`.
    """

    def __init__(
        self,
        top: int = 10,
        exclude_recent_days: float = 0.0,
        neighbours: int = 20,
        alpha: float = 1.0,
        shrinkage: float = 5.0,
        repeat_weight: float = 3.0,
        half_life_days: float = 365.0,
        value_exponent: float = 0.0,
        max_basket_items: int = 100,
        max_history_items: int = 50,
        popularity_days: float = 30.0,
        batch_size: int = 10_000,
    ) -> None:
        self.top = top
        self.exclude_recent_days = exclude_recent_days
        self.neighbours = neighbours
        self.alpha = alpha
        self.shrinkage = shrinkage
        self.repeat_weight = repeat_weight
        self.half_life_days = half_life_days
        self.value_exponent = value_exponent
        self.max_basket_items = max_basket_items
        self.max_history_items = max_history_items
        self.popularity_days = popularity_days
        self.batch_size = batch_size

    def fit(
        self,
        transactions: pd.DataFrame,
        as_of: pd.Timestamp,
        customer_value: pd.Series | None = None,
    ) -> Self:
        """Learn item neighbours, histories and popularity from rows up to ``as_of``.

        Parameters
        ----------
        transactions
            Canonical transactions with ``item_id`` (and ``order_id`` for baskets).
        as_of
            Rows after it are ignored.
        customer_value
            Value per customer (indexed by ``customer_id``, e.g. predicted LTV) weighting
            the baskets; default each customer's net spend up to ``as_of``.
        """
        if not 0 <= self.alpha <= 1:
            raise ConfigError(f"alpha must be in [0, 1], got {self.alpha!r}")
        if self.neighbours < 1 or self.max_history_items < 1 or self.max_basket_items < 2:
            raise ConfigError(
                "neighbours and max_history_items must be >= 1 and max_basket_items >= 2, got "
                f"{self.neighbours!r}, {self.max_history_items!r} and {self.max_basket_items!r}"
            )
        for name in ("shrinkage", "repeat_weight", "value_exponent"):
            value = getattr(self, name)
            if not np.isfinite(value) or value < 0:
                raise ConfigError(f"{name} must be a finite number >= 0, got {value!r}")
        lines = self._fit_common(transactions, as_of)
        weights = buyer_weights(transactions, self.as_of_, customer_value, self.value_exponent)
        self.neighbours_ = item_neighbours(
            lines, weights, self.neighbours, self.alpha, self.shrinkage, self.max_basket_items
        )
        return self

    def _candidates(self, con: duckdb.DuckDBPyConnection) -> str:
        con.register("_neighbours", self.neighbours_)
        return f"""
            SELECT {CUSTOMER_ID}, {ITEM_ID}, sum(score) AS score FROM (
                SELECT h.{CUSTOMER_ID}, n.neighbour AS {ITEM_ID}, h.weight * n.similarity AS score
                FROM (
                    SELECT * FROM _hist QUALIFY row_number() OVER (
                        PARTITION BY {CUSTOMER_ID} ORDER BY weight DESC, {ITEM_ID}
                    ) <= {int(self.max_history_items)}
                ) h JOIN _neighbours n ON h.{ITEM_ID} = n.{ITEM_ID}
                UNION ALL
                SELECT {CUSTOMER_ID}, {ITEM_ID}, {float(self.repeat_weight)!r} * weight AS score
                FROM _hist WHERE days_ago >= {float(self.exclude_recent_days)!r}
            ) GROUP BY ALL
            """


class PopularityRecommender(_Recommender):
    """Most bought items (distinct buyers in the last ``popularity_days``) for everyone,
    less the items each customer bought in the last ``exclude_recent_days``."""

    #: Not a hyperparameter: the history serves the exclusion only.
    half_life_days = 365.0

    def __init__(
        self,
        top: int = 10,
        exclude_recent_days: float = 0.0,
        popularity_days: float = 30.0,
        batch_size: int = 10_000,
    ) -> None:
        self.top = top
        self.exclude_recent_days = exclude_recent_days
        self.popularity_days = popularity_days
        self.batch_size = batch_size


class BuyAgainRecommender(_Recommender):
    """The customer's own items by recency-weighted purchase-day count, then popularity."""

    #: Not a hyperparameter: buying again is the point, nothing is excluded.
    exclude_recent_days = 0.0

    def __init__(
        self,
        top: int = 10,
        half_life_days: float = 60.0,
        popularity_days: float = 30.0,
        batch_size: int = 10_000,
    ) -> None:
        self.top = top
        self.half_life_days = half_life_days
        self.popularity_days = popularity_days
        self.batch_size = batch_size

    def _candidates(self, con: duckdb.DuckDBPyConnection) -> str:
        return f"SELECT {CUSTOMER_ID}, {ITEM_ID}, weight AS score FROM _hist"


def require_items(transactions: pd.DataFrame) -> None:
    """Check that ``transactions`` has an ``item_id`` column holding at least one value.

    Raises
    ------
    SchemaError
        Naming the column and the ``--item-col`` flag.
    """
    if ITEM_ID not in transactions.columns:
        raise SchemaError(
            f"transactions: column '{ITEM_ID}' is missing; item recommendations need an item "
            "column (pass --item-col, e.g. StockCode or product_id)"
        )
    if not transactions[ITEM_ID].notna().any():
        raise SchemaError(
            f"transactions: column '{ITEM_ID}' holds no value in {len(transactions):,} rows; "
            "pass the item column with --item-col"
        )


def purchase_lines(transactions: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    """Purchase lines up to ``as_of`` (positive amount, known item) with their basket.

    Items a customer returned in full (net amount of the customer's rows of the item up to
    ``as_of`` at most 0) are left out: a return says they did not want it. The basket is
    ``order_id`` where present, else the customer and the calendar day (the item column must
    exist; a few customers' rows may name no item).
    """
    if ITEM_ID not in transactions.columns:
        require_items(transactions)
    known = ((transactions[TIMESTAMP] <= as_of) & transactions[ITEM_ID].notna()).to_numpy()
    past = transactions.loc[known]
    pair = [past[CUSTOMER_ID], past[ITEM_ID]]
    kept = past[AMOUNT].groupby(pair, sort=False).transform("sum") > 0
    tx = past.loc[(past[AMOUNT] > 0) & kept]
    day = tx[TIMESTAMP].dt.floor("D")
    if ORDER_ID in tx.columns:
        basket = tx[ORDER_ID].astype("str")
    else:
        basket = pd.Series(None, index=tx.index, dtype="str")
    missing = basket.isna().to_numpy()
    if missing.any():
        day_text = day[missing].dt.strftime("%Y-%m-%d")
        basket[missing] = tx.loc[missing, CUSTOMER_ID].astype("str") + "|" + day_text
    return pd.DataFrame(
        {
            CUSTOMER_ID: tx[CUSTOMER_ID].astype("str").to_numpy(),
            ITEM_ID: tx[ITEM_ID].astype("str").to_numpy(),
            "basket": basket.astype("str").to_numpy(),
            "day": day.to_numpy(),
        }
    )


def customer_history(
    lines: pd.DataFrame, as_of: pd.Timestamp, half_life_days: float
) -> pd.DataFrame:
    """Per customer and item: recency weight (purchase days, halved every ``half_life_days``,
    normalised to sum 1 per customer) and ``days_ago`` of the last purchase (floored days)."""
    con = _connect()
    try:
        con.register("_lines", lines[[CUSTOMER_ID, ITEM_ID, "day"]])
        out = con.execute(
            f"""
            WITH days AS (
                SELECT DISTINCT {CUSTOMER_ID}, {ITEM_ID},
                    date_diff('day', day, ?::TIMESTAMP) AS days_ago FROM _lines
            ),
            items AS (
                SELECT {CUSTOMER_ID}, {ITEM_ID}, sum(pow(0.5, days_ago / ?)) AS raw,
                    min(days_ago) AS days_ago
                FROM days GROUP BY ALL
            )
            SELECT {CUSTOMER_ID}, {ITEM_ID},
                raw / sum(raw) OVER (PARTITION BY {CUSTOMER_ID}) AS weight, days_ago
            FROM items ORDER BY {CUSTOMER_ID}, {ITEM_ID}
            """,
            [pd.Timestamp(as_of).floor("D").to_pydatetime(), float(half_life_days)],
        ).df()
    finally:
        con.close()
    return out.astype(
        {CUSTOMER_ID: "str", ITEM_ID: "str", "weight": "float64", "days_ago": "float64"}
    )


def popular_items(
    lines: pd.DataFrame, as_of: pd.Timestamp, days: float, limit: int = 500
) -> pd.DataFrame:
    """The ``limit`` items with most distinct buyers in the ``days`` before ``as_of``
    (``item_id, buyers, pop_rank``; ties by item id)."""
    since = pd.Timestamp(as_of) - pd.Timedelta(days=days)
    recent = lines.loc[(lines["day"] > since.floor("D")).to_numpy(), [CUSTOMER_ID, ITEM_ID]]
    buyers = recent.drop_duplicates().groupby(ITEM_ID).size()
    ranked = (
        buyers.rename("buyers")
        .reset_index()
        .sort_values(["buyers", ITEM_ID], ascending=[False, True], kind="stable")
        .head(limit)
        .reset_index(drop=True)
    )
    ranked["pop_rank"] = np.arange(1, len(ranked) + 1, dtype="int64")
    return ranked.astype({ITEM_ID: "str", "buyers": "int64"})


def buyer_weights(
    transactions: pd.DataFrame,
    as_of: pd.Timestamp,
    customer_value: pd.Series | None,
    exponent: float,
) -> pd.Series:
    """Basket weight per customer: ``(1 + v / mean(v)) ** exponent`` with ``v`` the
    customer's value (default net spend up to ``as_of``; negatives and missing as 0)."""
    if customer_value is None:
        past = transactions.loc[(transactions[TIMESTAMP] <= as_of).to_numpy()]
        value = past.groupby(CUSTOMER_ID)[AMOUNT].sum()
    else:
        value = pd.Series(customer_value, dtype="float64")
        value.index = value.index.astype("str")
    value = value.astype("float64").fillna(0.0).clip(lower=0.0)
    mean = float(value.mean()) if len(value) else 0.0
    scaled = value / mean if mean > 0 else value * 0.0
    weights = (1.0 + scaled) ** exponent
    weights.index = weights.index.astype("str").rename(CUSTOMER_ID)
    return weights.rename("weight")


def item_neighbours(
    lines: pd.DataFrame,
    weights: pd.Series,
    neighbours: int,
    alpha: float,
    shrinkage: float,
    max_basket_items: int,
) -> pd.DataFrame:
    """Each item's ``neighbours`` most co-purchased items (``item_id, neighbour, similarity``).

    ``similarity = co / (n_i ** alpha * n_j ** (1 - alpha) + shrinkage)`` over value-weighted
    baskets; pairs come from baskets of at most ``max_basket_items`` distinct items.
    """
    item_code, items = pd.factorize(lines[ITEM_ID], sort=True)
    basket_code, _ = pd.factorize(lines["basket"])
    weight = lines[CUSTOMER_ID].map(weights).fillna(1.0).to_numpy(dtype="float64")
    coded = pd.DataFrame({"basket": basket_code, "item": item_code, "weight": weight})
    con = _connect()
    try:
        con.register("_lines", coded)
        out = con.execute(
            """
            WITH baskets AS (SELECT basket, item, max(weight) AS weight FROM _lines GROUP BY ALL),
            sized AS (SELECT *, count(*) OVER (PARTITION BY basket) AS size FROM baskets),
            counts AS (SELECT item, sum(weight) AS n FROM sized GROUP BY ALL),
            small AS (SELECT basket, item, weight FROM sized WHERE size <= ?),
            pairs AS (
                SELECT a.item, b.item AS neighbour, sum(a.weight) AS co
                FROM small a JOIN small b ON a.basket = b.basket AND a.item <> b.item
                GROUP BY ALL
            ),
            scored AS (
                SELECT p.item, p.neighbour,
                    p.co / (pow(ci.n, ?) * pow(cj.n, 1 - ?) + ?) AS similarity
                FROM pairs p
                JOIN counts ci ON p.item = ci.item
                JOIN counts cj ON p.neighbour = cj.item
            )
            SELECT * FROM scored
            QUALIFY row_number() OVER (
                PARTITION BY item ORDER BY similarity DESC, neighbour
            ) <= ?
            ORDER BY item, similarity DESC, neighbour
            """,
            [max_basket_items, float(alpha), float(alpha), float(shrinkage), int(neighbours)],
        ).df()
    finally:
        con.close()
    names = np.asarray(items, dtype=object)
    return pd.DataFrame(
        {
            ITEM_ID: pd.Series(names[out["item"].to_numpy()], dtype="str"),
            "neighbour": pd.Series(names[out["neighbour"].to_numpy()], dtype="str"),
            "similarity": out["similarity"].to_numpy(dtype="float64"),
        }
    )


def _connect() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection without the progress bar."""
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    return con


def no_items() -> pd.DataFrame:
    return pd.DataFrame(
        {
            CUSTOMER_ID: pd.Series([], dtype="str"),
            "rank": pd.Series([], dtype="int64"),
            ITEM_ID: pd.Series([], dtype="str"),
            "score": pd.Series([], dtype="float64"),
        }
    )
