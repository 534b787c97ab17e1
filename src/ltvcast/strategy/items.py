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

All the relational work is DuckDB SQL over one relation, :data:`TRANSACTIONS`: ``fit``
registers a frame under that name, ``fit_files`` a view of Parquet files (read out of core);
``save`` writes the shared state (popularity, neighbours) as Parquet with a small JSON that
``load`` reads, so that worker processes recommend with :meth:`recommend_history` from their
customers' own rows. Scores equal to 12 decimals are ties (broken by popularity, then item id),
so the order of rows, which moves the last bits of a sum, moves no rank.

Defaults were chosen by the inner backtest of ``bench/bench_recommend.py --tune`` (Online
Retail and Complete Journey, each cut 91 days before its test cutoff, training data only):
``repeat_weight=3, alpha=1`` (the conditional probability P(j | i) with shrinkage: damping
best-sellers as targets lost there), half-life 365 days, 20 neighbours, no exclusion window,
and ``value_exponent=0``: weighting baskets by the buyers' value moved hit rates by less than
0.01 either way, so ``customer_value`` only acts when ``value_exponent > 0``.
"""

from __future__ import annotations

import inspect
import json
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, Self

import numpy as np
import pandas as pd

from ltvcast.data.schemas import AMOUNT, CUSTOMER_ID, ITEM_ID, ORDER_ID, TIMESTAMP
from ltvcast.exceptions import ArtifactError, ConfigError, NotFittedError, SchemaError

if TYPE_CHECKING:
    import duckdb

#: Columns of every recommendation table, in order.
ITEM_COLUMNS = (CUSTOMER_ID, "rank", ITEM_ID, "score")
#: The relation the fit's SQL reads transactions from: a registered frame in memory, a view
#: of Parquet files out of core.
TRANSACTIONS = "_transactions"
#: Version of the state :meth:`ItemRecommender.save` writes.
_STATE_VERSION = 1


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
    #: Fitted tables (attributes ending in ``_``) that :meth:`save` writes.
    _tables: tuple[str, ...] = ("popular",)

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
        """Learn the item relations, popularity and every customer's history from rows up
        to ``as_of``.

        Parameters
        ----------
        transactions
            Canonical transactions with ``item_id`` (and ``order_id`` for baskets).
        as_of
            Rows after it are ignored.
        customer_value
            Value per customer (indexed by ``customer_id``, e.g. predicted LTV) weighting
            the baskets where the recommender does (:class:`ItemRecommender`); default each
            customer's net spend up to ``as_of``.
        """
        self._check()
        con = _connect()
        try:
            con.register(TRANSACTIONS, transactions)
            self._fit_relations(con, as_of, customer_value)
            self.customers_ = (
                con.execute(
                    f"SELECT DISTINCT CAST({CUSTOMER_ID} AS VARCHAR) AS id FROM {TRANSACTIONS} "
                    f"WHERE {TIMESTAMP} <= $as_of ORDER BY id",
                    {"as_of": _when(self.as_of_)},
                )
                .df()["id"]
                .to_numpy(dtype=object)
                .astype("str")
            )
            self.history_ = customer_history(con, self.as_of_, self.half_life_days)
        finally:
            con.close()
        return self

    def fit_files(
        self,
        files: Sequence[str | Path],
        as_of: pd.Timestamp,
        customer_value: pd.Series | None = None,
        *,
        memory_limit: str = "2GB",
    ) -> Self:
        """Learn the item relations and popularity as :meth:`fit` does, from Parquet files of
        canonical transactions that DuckDB reads out of core (within ``memory_limit``,
        spilling beyond it).

        No customer's history is kept: recommend with :meth:`recommend_history`, from the
        customers' own rows; :meth:`save` writes what it needs.
        """
        self._check()
        if not files:
            raise ConfigError("fit_files needs at least one Parquet file")
        with tempfile.TemporaryDirectory(prefix="ltvcast-items-") as spill:
            con = _connect()
            try:
                con.execute(f"SET memory_limit = '{memory_limit}'")
                con.execute(f"SET temp_directory = '{_quoted(spill)}'")
                listed = ", ".join(f"'{_quoted(str(f))}'" for f in files)
                con.execute(
                    f"CREATE VIEW {TRANSACTIONS} AS SELECT * FROM "
                    f"read_parquet([{listed}], union_by_name = true)"
                )
                self._fit_relations(con, as_of, customer_value)
            finally:
                con.close()
        return self

    def _fit_relations(
        self,
        con: duckdb.DuckDBPyConnection,
        as_of: pd.Timestamp,
        customer_value: pd.Series | None,
    ) -> None:
        """Fit what every customer shares from relation :data:`TRANSACTIONS` of ``con``:
        the purchase lines (table ``_lines``) and popularity; subclasses add relations."""
        _require_items(con)
        self.as_of_ = pd.Timestamp(as_of)
        purchase_lines(con, self.as_of_)
        self.popular_ = popular_items(con, self.as_of_, self.popularity_days)

    def save(self, directory: str | Path) -> Path:
        """Write what :meth:`recommend_history` needs (hyperparameters, as-of, popularity,
        item relations) to ``directory``: Parquet tables and ``items.json``; see :meth:`load`."""
        self._top(None)
        folder = Path(directory)
        folder.mkdir(parents=True, exist_ok=True)
        names = [p for p in inspect.signature(type(self).__init__).parameters if p != "self"]
        state = {
            "kind": type(self).__name__,
            "version": _STATE_VERSION,
            "as_of": self.as_of_.isoformat(),
            "params": {name: getattr(self, name) for name in names},
        }
        for table in self._tables:
            getattr(self, f"{table}_").to_parquet(folder / f"{table}.parquet", index=False)
        (folder / "items.json").write_text(json.dumps(state, indent=2), encoding="utf-8")
        return folder

    @classmethod
    def load(cls, directory: str | Path) -> Self:
        """The recommender :meth:`save` wrote to ``directory`` (no customer histories: use
        :meth:`recommend_history`).

        Raises
        ------
        ArtifactError
            When the directory holds no such state, another kind's or another version's.
        """
        folder = Path(directory)
        try:
            state = json.loads((folder / "items.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise ArtifactError(f"{folder}: no readable item recommender state ({err})") from err
        if state.get("kind") != cls.__name__ or state.get("version") != _STATE_VERSION:
            raise ArtifactError(
                f"{folder}: holds {state.get('kind')} state version {state.get('version')}; "
                f"expected {cls.__name__} version {_STATE_VERSION}"
            )
        model = cls(**state["params"])
        model.as_of_ = pd.Timestamp(state["as_of"])
        for table in cls._tables:
            setattr(model, f"{table}_", pd.read_parquet(folder / f"{table}.parquet"))
        return model

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
        if not hasattr(self, "history_"):
            raise NotFittedError(
                f"{type(self).__name__} was fitted without customer histories (fit_files or "
                "load); use recommend_history"
            )
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
        when = pd.Timestamp(as_of)
        con = _connect()
        try:
            con.register(TRANSACTIONS, transactions)
            purchase_lines(con, when)
            history = customer_history(con, when, self.half_life_days)
        finally:
            con.close()
        wanted = transactions[CUSTOMER_ID].unique() if customers is None else customers
        return self._recommend(wanted, k, history)

    def _top(self, top: int | None) -> int:
        """Items per customer for a call (checked), once fitted."""
        if not hasattr(self, "popular_"):
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
                        PARTITION BY {CUSTOMER_ID}
                        ORDER BY fill, round(score, 12) DESC, pop_rank, {ITEM_ID}
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

    _tables = ("popular", "neighbours")

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

    def _fit_relations(
        self,
        con: duckdb.DuckDBPyConnection,
        as_of: pd.Timestamp,
        customer_value: pd.Series | None,
    ) -> None:
        """Also learn each item's neighbours, from value-weighted baskets."""
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
        super()._fit_relations(con, as_of, customer_value)
        buyer_weights(con, self.as_of_, customer_value, self.value_exponent)
        self.neighbours_ = item_neighbours(
            con, self.neighbours, self.alpha, self.shrinkage, self.max_basket_items
        )

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
    con = _connect()
    try:
        con.register(TRANSACTIONS, transactions)
        _require_items(con)
    finally:
        con.close()


def _require_items(con: duckdb.DuckDBPyConnection) -> None:
    """:func:`require_items` on relation :data:`TRANSACTIONS` of ``con``."""
    if ITEM_ID not in _columns(con):
        raise SchemaError(
            f"transactions: column '{ITEM_ID}' is missing; item recommendations need an item "
            "column (pass --item-col, e.g. StockCode or product_id)"
        )
    counts = f"SELECT count(*), count({ITEM_ID}) FROM {TRANSACTIONS}"
    rows, known = con.execute(counts).fetchall()[0]
    if not known:
        raise SchemaError(
            f"transactions: column '{ITEM_ID}' holds no value in {rows:,} rows; "
            "pass the item column with --item-col"
        )


def _columns(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {str(row[0]) for row in con.execute(f"DESCRIBE {TRANSACTIONS}").fetchall()}


def purchase_lines(con: duckdb.DuckDBPyConnection, as_of: pd.Timestamp) -> None:
    """Table ``_lines`` of ``con``: the purchase lines up to ``as_of`` (positive amount, known
    item) of relation :data:`TRANSACTIONS`, ``customer_id, item_id, basket, day``.

    Items a customer returned in full (net amount of the customer's rows of the item up to
    ``as_of`` at most 0, summed exactly to six decimals) are left out: a return says they did
    not want it. The basket is ``order_id`` where present, else the customer and the calendar
    day (the item column must exist; a few customers' rows may name no item).
    """
    columns = _columns(con)
    if ITEM_ID not in columns:
        _require_items(con)
    order = f"CAST({ORDER_ID} AS VARCHAR)" if ORDER_ID in columns else "CAST(NULL AS VARCHAR)"
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE _lines AS
        WITH past AS (
            SELECT CAST({CUSTOMER_ID} AS VARCHAR) AS {CUSTOMER_ID},
                CAST({ITEM_ID} AS VARCHAR) AS {ITEM_ID}, {order} AS {ORDER_ID},
                CAST({AMOUNT} AS DOUBLE) AS {AMOUNT},
                CAST(date_trunc('day', {TIMESTAMP}) AS TIMESTAMP) AS day
            FROM {TRANSACTIONS} WHERE {TIMESTAMP} <= $as_of AND {ITEM_ID} IS NOT NULL
        ),
        kept AS (
            SELECT *, sum(CAST({AMOUNT} AS DECIMAL(38, 6))) OVER (
                PARTITION BY {CUSTOMER_ID}, {ITEM_ID}
            ) AS net
            FROM past
        )
        SELECT {CUSTOMER_ID}, {ITEM_ID},
            coalesce({ORDER_ID}, {CUSTOMER_ID} || '|' || strftime(day, '%Y-%m-%d')) AS basket,
            day
        FROM kept WHERE {AMOUNT} > 0 AND net > 0
        """,
        {"as_of": _when(as_of)},
    )


def customer_history(
    con: duckdb.DuckDBPyConnection, as_of: pd.Timestamp, half_life_days: float
) -> pd.DataFrame:
    """Per customer and item of table ``_lines`` (:func:`purchase_lines`): recency weight
    (purchase days, halved every ``half_life_days``, normalised to sum 1 per customer) and
    ``days_ago`` of the last purchase (floored days)."""
    out = con.execute(
        f"""
        WITH days AS (
            SELECT DISTINCT {CUSTOMER_ID}, {ITEM_ID},
                date_diff('day', day, $day) AS days_ago FROM _lines
        ),
        items AS (
            SELECT {CUSTOMER_ID}, {ITEM_ID}, sum(pow(0.5, days_ago / $half_life)) AS raw,
                min(days_ago) AS days_ago
            FROM days GROUP BY ALL
        )
        SELECT {CUSTOMER_ID}, {ITEM_ID},
            raw / sum(raw) OVER (PARTITION BY {CUSTOMER_ID}) AS weight, days_ago
        FROM items ORDER BY {CUSTOMER_ID}, {ITEM_ID}
        """,
        {"day": _when(pd.Timestamp(as_of).floor("D")), "half_life": float(half_life_days)},
    ).df()
    return out.astype(
        {CUSTOMER_ID: "str", ITEM_ID: "str", "weight": "float64", "days_ago": "float64"}
    )


def popular_items(
    con: duckdb.DuckDBPyConnection, as_of: pd.Timestamp, days: float, limit: int = 500
) -> pd.DataFrame:
    """The ``limit`` items of table ``_lines`` (:func:`purchase_lines`) with most distinct
    buyers in the ``days`` before ``as_of`` (``item_id, buyers, pop_rank``; ties by item id)."""
    since = (pd.Timestamp(as_of) - pd.Timedelta(days=days)).floor("D")
    out = con.execute(
        f"""
        SELECT {ITEM_ID}, count(DISTINCT {CUSTOMER_ID}) AS buyers FROM _lines
        WHERE day > $since GROUP BY ALL ORDER BY buyers DESC, {ITEM_ID} LIMIT $limit
        """,
        {"since": _when(since), "limit": int(limit)},
    ).df()
    out["pop_rank"] = np.arange(1, len(out) + 1, dtype="int64")
    return out.astype({ITEM_ID: "str", "buyers": "int64"})


def buyer_weights(
    con: duckdb.DuckDBPyConnection,
    as_of: pd.Timestamp,
    customer_value: pd.Series | None,
    exponent: float,
) -> None:
    """Table ``_weights`` of ``con``, the basket weight per customer: ``(1 + v / mean(v)) **
    exponent`` with ``v`` the customer's value (default net spend up to ``as_of`` in relation
    :data:`TRANSACTIONS`; negatives and missing as 0)."""
    params: dict[str, Any] = {"exponent": float(exponent)}
    if customer_value is None:
        source = (
            f"SELECT CAST({CUSTOMER_ID} AS VARCHAR) AS {CUSTOMER_ID}, sum({AMOUNT}) AS v "
            f"FROM {TRANSACTIONS} WHERE {TIMESTAMP} <= $as_of GROUP BY ALL"
        )
        params["as_of"] = _when(as_of)
    else:
        value = pd.Series(customer_value, dtype="float64")
        frame = pd.DataFrame({CUSTOMER_ID: value.index.astype("str"), "v": value.to_numpy()})
        con.register("_value", frame)
        source = "SELECT * FROM _value"
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE _weights AS
        WITH value AS (
            SELECT {CUSTOMER_ID}, greatest(coalesce(CAST(v AS DOUBLE), 0), 0) AS v
            FROM ({source})
        ),
        mean AS (SELECT coalesce(avg(v), 0) AS mean FROM value)
        SELECT {CUSTOMER_ID},
            pow(1 + CASE WHEN mean > 0 THEN v / mean ELSE 0 END, $exponent) AS weight
        FROM value, mean
        """,
        params,
    )


def item_neighbours(
    con: duckdb.DuckDBPyConnection,
    neighbours: int,
    alpha: float,
    shrinkage: float,
    max_basket_items: int,
) -> pd.DataFrame:
    """Each item's ``neighbours`` most co-purchased items (``item_id, neighbour, similarity``)
    in table ``_lines`` (:func:`purchase_lines`), baskets weighted by table ``_weights``
    (:func:`buyer_weights`; a customer missing from it weighs 1).

    ``similarity = co / (n_i ** alpha * n_j ** (1 - alpha) + shrinkage)`` over value-weighted
    baskets; pairs come from baskets of at most ``max_basket_items`` distinct items.
    """
    out = con.execute(
        f"""
        WITH weighted AS (
            SELECT l.basket, l.{ITEM_ID} AS item, coalesce(w.weight, 1.0) AS weight
            FROM _lines l LEFT JOIN _weights w USING ({CUSTOMER_ID})
        ),
        baskets AS (SELECT basket, item, max(weight) AS weight FROM weighted GROUP BY ALL),
        sized AS (SELECT *, count(*) OVER (PARTITION BY basket) AS size FROM baskets),
        counts AS (SELECT item, sum(weight) AS n FROM sized GROUP BY ALL),
        small AS (SELECT basket, item, weight FROM sized WHERE size <= $max_items),
        pairs AS (
            SELECT a.item, b.item AS neighbour, sum(a.weight) AS co
            FROM small a JOIN small b ON a.basket = b.basket AND a.item <> b.item
            GROUP BY ALL
        ),
        scored AS (
            SELECT p.item, p.neighbour,
                p.co / (pow(ci.n, $alpha) * pow(cj.n, 1 - $alpha) + $shrinkage) AS similarity
            FROM pairs p
            JOIN counts ci ON p.item = ci.item
            JOIN counts cj ON p.neighbour = cj.item
        )
        SELECT item AS {ITEM_ID}, neighbour, similarity FROM scored
        QUALIFY row_number() OVER (
            PARTITION BY item ORDER BY similarity DESC, neighbour
        ) <= $neighbours
        ORDER BY item, similarity DESC, neighbour
        """,
        {
            "max_items": int(max_basket_items),
            "alpha": float(alpha),
            "shrinkage": float(shrinkage),
            "neighbours": int(neighbours),
        },
    ).df()
    return out.astype({ITEM_ID: "str", "neighbour": "str", "similarity": "float64"})


def _when(time: pd.Timestamp) -> Any:
    """A time as DuckDB takes it as a parameter (a TIMESTAMP, to the microsecond)."""
    return pd.Timestamp(time).to_pydatetime(warn=False)


def _quoted(text: str) -> str:
    """``text`` inside a single-quoted SQL string."""
    return text.replace("'", "''")


def _connect() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection without the progress bar (DuckDB is imported here,
    not by ``forecast``, which prints through this module's callers)."""
    import duckdb

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
