"""The report's recommendations section: the action mix by segment and the items most
recommended to high-value customers (:mod:`ltvcast.pipeline.recommend`)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from ltvcast.data.schemas import CUSTOMER_ID, ITEM_ID, CustomerData
from ltvcast.pipeline import ScoringModel
from ltvcast.pipeline.recommend import Recommender, most_recommended
from ltvcast.strategy.actions import action_mix
from ltvcast.strategy.segments import CHAMPIONS, HIGH_VALUE_AT_RISK

#: Segments whose customers count as high value for the items table.
HIGH_VALUE_SEGMENTS = (CHAMPIONS, HIGH_VALUE_AT_RISK)


def recommendation_tables(
    model: ScoringModel, data: CustomerData, as_of: pd.Timestamp, scored: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """The action mix by segment and (when the transactions name items) the items most
    recommended to the customers of :data:`HIGH_VALUE_SEGMENTS`; ``scored`` is the model's
    :meth:`~ltvcast.pipeline.ScoringModel.score` table at ``as_of``."""
    with_items = ITEM_ID in data.transactions.columns
    recommender = Recommender(model, with_items=with_items).fit(data, as_of, scored)
    table = recommender.recommend(data, as_of, scored)
    segments = scored.set_index(CUSTOMER_ID)["segment"]
    mix = action_mix(table, segments)
    if not with_items:
        return mix, None
    high = pd.Index(segments.index[segments.isin(HIGH_VALUE_SEGMENTS)])
    return mix, most_recommended(table, high)


def recommendation_context(mix: pd.DataFrame, items: pd.DataFrame | None) -> dict[str, Any]:
    """What the template shows of :func:`recommendation_tables`' output."""
    rows = [
        {
            "segment": str(r["segment"]).replace("_", " "),
            "action": str(r["action"]).replace("_", " "),
            "customers": f"{int(r['customers']):,}",
            "share": f"{r['share']:.1%}",
            "value": f"{r['expected_value']:,.0f}",
        }
        for r in mix.to_dict("records")
    ]
    top = None
    if items is not None:
        top = [
            {
                "item": r[ITEM_ID],
                "customers": f"{int(r['customers']):,}",
                "share": f"{r['share']:.1%}",
                "rank": f"{r['mean_rank']:.1f}",
            }
            for r in items.to_dict("records")
        ]
    total = float(mix["expected_value"].sum())
    return {"rows": rows, "top_items": top, "total": f"{total:,.0f}"}
