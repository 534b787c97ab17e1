"""The service's lazy customer state: nothing scored at start-up, forecasts on first read or
filled in the background, a bounded answer cache, restarts from the store."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from ltvcast.data.schemas import CustomerData
from ltvcast.data.store import Store
from ltvcast.pipeline import load_scoring_model
from ltvcast.service.bundle import AnswerCache
from ltvcast.service.state import FILL_SLICE, Service

COLUMNS = ("predicted_value", "predicted_purchases", "p_active")


def _expected(model_dir: Path, data: CustomerData, as_of: pd.Timestamp) -> pd.DataFrame:
    return load_scoring_model(model_dir).predict(data, as_of).set_index("customer_id")


def _same(body: Any, row: pd.Series) -> None:
    for column in COLUMNS:
        assert getattr(body, column) == pytest.approx(row[column], rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("name", ["baseline", "btyd"])  # rows from the store / summaries
def test_first_reads_and_the_fill_equal_batch_predict(
    name: str, model_dirs: dict[str, Path], db_path: Path, store_data: CustomerData
) -> None:
    service = Service(model_dirs[name], db_path)  # no event loop: nothing filled
    model = service.model
    assert len(model.answers) == 0 and not model.filled.done.any()
    as_of = store_data.last_timestamp()
    expected = _expected(model_dirs[name], store_data, as_of)
    customers = expected.index[::37].tolist()
    lazy = {c: service.customer(c) for c in customers}
    for customer, body in lazy.items():
        _same(body, expected.loc[customer])
        assert pd.Timestamp(body.as_of) == as_of
    assert len(model.answers) == len(customers)
    ids = model.scorer.history.ids()
    while model.filled.next < model.filled.n:
        model.fill_step(ids, FILL_SLICE)
    assert model.filled.done.sum() == len(expected)
    for customer in customers:
        filled = service.customer(customer)
        assert filled == lazy[customer]  # the same answer, now from the columns
    scoring = load_scoring_model(model_dirs[name])
    assert model.rules == scoring.cuts_for(scoring.forecaster.predict(store_data, as_of))
    asyncio.run(service.aclose())


def test_the_answer_cache_is_bounded_least_recently_used_first(
    model_dirs: dict[str, Path], db_path: Path, store_data: CustomerData
) -> None:
    cache = AnswerCache(size=2)
    entry = ((1, 1), ("v",))
    cache.update({"a": entry, "b": entry})
    assert cache.get("a") == entry  # now the most recent
    cache.update({"c": entry})
    assert "b" not in cache and "a" in cache and "c" in cache and len(cache) == 2
    service = Service(model_dirs["btyd"], db_path)
    service.model.answers.size = 5
    customers = store_data.customers().tolist()[:20]
    first = {c: service.customer(c) for c in customers}
    assert len(service.model.answers) == 5
    assert customers[0] not in service.model.answers  # evicted, scored again on read
    assert service.customer(customers[0]) == first[customers[0]]
    asyncio.run(service.aclose())


def _purchase(customer: str, stamp: str, i: int) -> dict[str, Any]:
    return {"customer_id": customer, "timestamp": stamp, "event_type": "purchase",
            "amount": 30.0 + i, "event_id": f"lazy-{i}"}  # fmt: skip


def test_events_for_a_customer_never_read_and_a_restart(
    model_dirs: dict[str, Path], db_path: Path, store_data: CustomerData
) -> None:
    model_dir = model_dirs["btyd"]
    customer = str(store_data.transactions["customer_id"].iloc[-1])
    service = Service(model_dir, db_path, clock=lambda: pd.Timestamp("2024-02-01"))
    untouched = str(store_data.transactions["customer_id"].iloc[0])
    before = service.customer(untouched)
    out = asyncio.run(service.ingest([_purchase(customer, "2024-01-10T08:00:00Z", 1)]))
    assert out.accepted == 1
    body = service.customer(customer)
    stamp = pd.Timestamp("2024-01-10 08:00")
    assert pd.Timestamp(body.as_of).tz_localize(None) == stamp
    assert pd.Timestamp(body.last_event_at).tz_localize(None) == stamp
    with Store(db_path) as check:
        stored = check.read()
    _same(body, _expected(model_dir, stored, stamp).loc[customer])
    assert service.customer(untouched) == before  # still at the start-up as-of
    asyncio.run(service.aclose())
    again = Service(model_dir, db_path, clock=lambda: pd.Timestamp("2024-02-01"))
    assert again.model.as_of == stamp  # the store replayed: the clock is the event's time
    restarted = again.customer(customer)
    assert restarted.model_dump(exclude={"segment"}) == body.model_dump(exclude={"segment"})
    asyncio.run(again.aclose())
