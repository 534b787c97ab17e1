"""Backtest of item recommenders on time: fit up to a cutoff, recommend, score the next period.

Each recommender sees only transactions up to the cutoff. It recommends for the customers who
buy in ``(cutoff, cutoff + horizon_days]`` (new customers get its popularity fill), and its
top ``k`` is scored against the items they bought then (:mod:`ltvcast.evaluation.ranking`).
"""

from __future__ import annotations

import time
from collections.abc import Mapping

import pandas as pd

from ltvcast.data.schemas import AMOUNT, CUSTOMER_ID, ITEM_ID, TIMESTAMP, CustomerData
from ltvcast.evaluation.ranking import evaluate_ranking
from ltvcast.exceptions import ConfigError, InsufficientDataError
from ltvcast.strategy.items import Recommender, purchase_lines


def next_period_purchases(
    data: CustomerData, cutoff: pd.Timestamp, horizon_days: float
) -> pd.DataFrame:
    """Purchase lines (positive amount, known item) in ``(cutoff, cutoff + horizon_days]``:
    ``customer_id, item_id, amount``."""
    tx = data.transactions
    purchase_lines(tx, cutoff)  # the same item-column checks as fit
    end = cutoff + pd.Timedelta(days=horizon_days)
    keep = (
        (tx[TIMESTAMP] > cutoff) & (tx[TIMESTAMP] <= end) & (tx[AMOUNT] > 0) & tx[ITEM_ID].notna()
    ).to_numpy()
    return tx.loc[keep, [CUSTOMER_ID, ITEM_ID, AMOUNT]].reset_index(drop=True)


def backtest_recommenders(
    data: CustomerData,
    cutoff: pd.Timestamp,
    horizon_days: float,
    recommenders: Mapping[str, Recommender],
    k: int = 10,
    customer_value: pd.Series | None = None,
) -> pd.DataFrame:
    """Fit each recommender up to ``cutoff`` and score its top ``k`` on the next period.

    Parameters
    ----------
    data
        Canonical bundle whose transactions hold ``item_id``.
    cutoff
        Training ends here (inclusive).
    horizon_days
        Length of the evaluation period after the cutoff.
    recommenders
        Name -> unfitted recommender (fit/recommend, see :class:`~ltvcast.strategy.items.
        Recommender`).
    k
        Recommendations scored per customer.
    customer_value
        Passed to every ``fit`` (e.g. predicted LTV at the cutoff); default past spend.

    Returns
    -------
    pandas.DataFrame
        One row per recommender (index ``recommender``): the metrics of
        :data:`~ltvcast.evaluation.ranking.RANKING_METRICS`, ``buyers``, ``fit_s`` and
        ``recommend_s``.
    """
    if horizon_days <= 0:
        raise ConfigError(f"horizon_days must be positive, got {horizon_days!r}")
    cutoff = pd.Timestamp(cutoff)
    truth = next_period_purchases(data, cutoff, horizon_days)
    if not len(truth):
        raise InsufficientDataError(
            f"no purchase with an item in the {horizon_days:g} days after {cutoff}; "
            "nothing to score"
        )
    buyers = pd.unique(truth[CUSTOMER_ID])
    train = data.until(cutoff).transactions
    rows = {}
    for name, recommender in recommenders.items():
        start = time.perf_counter()
        recommender.fit(train, cutoff, customer_value)
        fitted = time.perf_counter()
        recs = recommender.recommend(buyers, top=k)
        done = time.perf_counter()
        metrics = evaluate_ranking(recs, truth, k)
        rows[name] = {**metrics, "fit_s": fitted - start, "recommend_s": done - fitted}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("recommender")
