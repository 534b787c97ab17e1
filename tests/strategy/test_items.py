"""Item recommenders: co-purchase neighbours, fallback, leakage, errors, a real slice."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from ltvcast.data.datasets import load_online_retail
from ltvcast.exceptions import ArtifactError, ConfigError, NotFittedError, SchemaError
from ltvcast.strategy.items import (
    ITEM_COLUMNS,
    BuyAgainRecommender,
    ItemRecommender,
    PopularityRecommender,
)

AS_OF = pd.Timestamp("2024-03-31 23:59:59")


def _orders(rows: list[tuple[str, str, str, list[str]]]) -> pd.DataFrame:
    """(customer, order, day, items) -> canonical transactions, amount 1 per line."""
    lines = [(c, pd.Timestamp(day), 1.0, o, i) for c, o, day, items in rows for i in items]
    return pd.DataFrame(
        lines, columns=["customer_id", "timestamp", "amount", "order_id", "item_id"]
    ).astype({"customer_id": "str", "order_id": "str", "item_id": "str"})


@pytest.fixture()
def shop() -> pd.DataFrame:
    """A and B go together, C and D go together, E is the best-seller on its own."""
    return _orders(
        [
            ("u1", "o1", "2024-01-05", ["A", "B"]),
            ("u2", "o2", "2024-01-06", ["A", "B", "E"]),
            ("u3", "o3", "2024-02-01", ["C", "D"]),
            ("u4", "o4", "2024-02-02", ["C", "D", "E"]),
            ("u5", "o5", "2024-03-01", ["E"]),
            ("u6", "o6", "2024-03-02", ["E"]),
            ("u7", "o7", "2024-03-20", ["A"]),
            ("u8", "o8", "2024-03-25", ["C"]),
        ]
    )


def test_neighbours_of_the_customers_items_come_first(shop: pd.DataFrame) -> None:
    model = ItemRecommender(top=3, repeat_weight=0.0, popularity_days=90)
    recs = model.fit(shop, AS_OF).recommend(["u7", "u8"])
    assert tuple(recs.columns) == ITEM_COLUMNS
    first = recs[recs["rank"] == 1].set_index("customer_id")["item_id"]
    assert first.to_dict() == {"u7": "B", "u8": "D"}
    assert recs.groupby("customer_id")["rank"].apply(list).tolist() == [[1, 2, 3], [1, 2, 3]]


def test_a_customer_with_no_history_gets_the_popularity_fallback(shop: pd.DataFrame) -> None:
    ours = ItemRecommender(top=2, popularity_days=90).fit(shop, AS_OF)
    popular = PopularityRecommender(top=2, popularity_days=90).fit(shop, AS_OF)
    new = ours.recommend(["stranger"])
    assert new["item_id"].tolist() == ["E", "A"]  # E: 4 buyers; A, C: 3 each, ties by id
    assert new["score"].tolist() == [0.0, 0.0]
    pd.testing.assert_frame_equal(new, popular.recommend(["stranger"]))


def test_rows_after_as_of_change_no_recommendation(shop: pd.DataFrame) -> None:
    later = _orders(
        [
            ("u7", "o9", "2024-04-02", ["A", "D"]),
            ("u9", "o10", "2024-04-03", ["A", "C", "F"]),
            ("u9", "o11", "2024-05-01", ["F", "F"]),
        ]
    )
    everything = pd.concat([shop, later], ignore_index=True)
    wanted = [*shop["customer_id"].unique(), "u9", "stranger"]
    for model in (ItemRecommender(top=4), PopularityRecommender(), BuyAgainRecommender()):
        before = model.fit(shop, AS_OF).recommend(wanted)
        after = model.fit(everything, AS_OF).recommend(wanted)
        pd.testing.assert_frame_equal(before, after)


def test_items_bought_recently_are_excluded(shop: pd.DataFrame) -> None:
    recs = ItemRecommender(top=5, exclude_recent_days=30).fit(shop, AS_OF).recommend(["u7"])
    assert "A" not in set(recs["item_id"])
    again = ItemRecommender(top=5, repeat_weight=10.0).fit(shop, AS_OF).recommend(["u7"])
    assert "A" in set(again["item_id"])


def test_buy_again_ranks_own_items_by_recency_weighted_frequency() -> None:
    tx = _orders(
        [
            ("u1", "o1", "2024-01-01", ["old"]),
            ("u1", "o2", "2024-03-30", ["new"]),
            ("u1", "o3", "2024-02-01", ["twice"]),
            ("u1", "o4", "2024-03-01", ["twice"]),
            ("u2", "o5", "2024-03-30", ["other"]),
        ]
    )
    recs = BuyAgainRecommender(top=4, popularity_days=7).fit(tx, AS_OF).recommend(["u1"])
    assert recs["item_id"].tolist() == ["twice", "new", "old", "other"]
    assert recs["score"].iloc[-1] == 0.0  # the popularity fill


def test_buyer_value_weights_the_co_purchase_evidence() -> None:
    tx = _orders(
        [
            ("rich", "o1", "2024-01-01", ["X", "Y"]),
            ("poor", "o2", "2024-01-02", ["X", "Z"]),
            ("me", "o3", "2024-03-01", ["X"]),
        ]
    )

    def first(values: dict[str, float]) -> str:
        model = ItemRecommender(top=1, value_exponent=1.0, shrinkage=0.0, repeat_weight=0.0)
        recs = model.fit(tx, AS_OF, customer_value=pd.Series(values)).recommend(["me"])
        return str(recs["item_id"].iloc[0])

    assert first({"rich": 1000.0, "poor": 1.0, "me": 1.0}) == "Y"
    assert first({"rich": 1.0, "poor": 1000.0, "me": 1.0}) == "Z"


def test_baskets_are_customer_days_without_an_order_id(shop: pd.DataFrame) -> None:
    no_orders = shop.drop(columns="order_id")
    blank_orders = shop.assign(order_id=None)
    for tx in (no_orders, blank_orders):
        recs = ItemRecommender(top=1, repeat_weight=0.0).fit(tx, AS_OF).recommend(["u7"])
        assert recs["item_id"].tolist() == ["B"]


def test_results_do_not_depend_on_row_order_or_chunking(shop: pd.DataFrame) -> None:
    base = ItemRecommender(top=3).fit(shop, AS_OF).recommend()
    shuffled = shop.sample(frac=1.0, random_state=3).reset_index(drop=True)
    chunked = ItemRecommender(top=3, batch_size=1).fit(shuffled, AS_OF).recommend()
    pd.testing.assert_frame_equal(base, chunked)


def test_a_missing_item_column_names_the_column_and_the_flag(shop: pd.DataFrame) -> None:
    for model in (ItemRecommender(), PopularityRecommender(), BuyAgainRecommender()):
        with pytest.raises(SchemaError, match=r"'item_id' is missing.*--item-col"):
            model.fit(shop.drop(columns="item_id"), AS_OF)
    with pytest.raises(SchemaError, match="holds no value"):
        ItemRecommender().fit(shop.assign(item_id=None), AS_OF)


def test_bad_parameters_and_unfitted_use_are_refused(shop: pd.DataFrame) -> None:
    with pytest.raises(NotFittedError):
        ItemRecommender().recommend()
    with pytest.raises(ConfigError, match="top must be a positive integer"):
        ItemRecommender(top=0).fit(shop, AS_OF)
    with pytest.raises(ConfigError, match="alpha"):
        ItemRecommender(alpha=2.0).fit(shop, AS_OF)
    with pytest.raises(ConfigError, match="top must be a positive integer"):
        ItemRecommender().fit(shop, AS_OF).recommend(top=0)


@pytest.mark.realdata
def test_online_retail_slice(data_dir: Path) -> None:
    data, _ = load_online_retail(data_dir)
    as_of = pd.Timestamp("2011-01-31 23:59:59")
    tx = data.transactions[data.transactions["timestamp"] <= as_of]
    model = ItemRecommender().fit(tx, as_of)
    recs = model.recommend()
    assert set(recs["customer_id"]) == set(tx["customer_id"])  # returns-only: the fill
    assert (recs.groupby("customer_id").size() == 10).all()
    assert not recs.duplicated(["customer_id", "item_id"]).any()
    assert set(recs["item_id"]) <= set(tx["item_id"])
    # Most lists are personal (co-purchase or own items), not the fill.
    assert (recs["score"] > 0).mean() > 0.8


def test_a_fresher_history_moves_the_personal_items(shop: pd.DataFrame) -> None:
    model = ItemRecommender(top=3, repeat_weight=0.0, popularity_days=90).fit(shop, AS_OF)
    same = model.recommend_history(shop, AS_OF, ["u7", "u8", "stranger"])
    pd.testing.assert_frame_equal(same, model.recommend(["u7", "u8", "stranger"]))
    later = AS_OF + pd.Timedelta(days=2)
    bought = _orders([("u7", "o9", "2024-04-01", ["C"])])
    fresh = model.recommend_history(pd.concat([shop, bought]), later, ["u7"])
    assert "D" in fresh["item_id"].tolist()  # C's neighbour, now that u7 bought C
    assert "D" not in same.loc[same["customer_id"] == "u7", "item_id"].head(1).tolist()


def test_an_item_returned_in_full_is_not_the_customers(shop: pd.DataFrame) -> None:
    returned = _orders([("u7", "o9", "2024-03-22", ["A"])]).assign(amount=-1.0)
    model = BuyAgainRecommender(top=1, popularity_days=90)
    kept = model.fit(shop, AS_OF).recommend(["u7"])
    assert kept["item_id"].tolist() == ["A"]
    gone = model.fit(pd.concat([shop, returned]), AS_OF).recommend(["u7"])
    assert gone["item_id"].tolist() == ["E"]  # the popularity fill: u7 owns no item now


def test_fit_files_learns_what_fit_learns(shop: pd.DataFrame, tmp_path: Path) -> None:
    """Out of core, over files with and without order ids (customer-day baskets)."""
    later = _orders([("u1", "o9", "2024-05-01", ["C", "D"])])  # after as-of: ignored
    files = [tmp_path / "a.parquet", tmp_path / "b.parquet"]
    rows = pd.concat([shop, later], ignore_index=True)
    rows.iloc[::2].to_parquet(files[0], index=False)
    rows.iloc[1::2].drop(columns="order_id").to_parquet(files[1], index=False)
    both = pd.concat([rows.iloc[::2], rows.iloc[1::2].assign(order_id=None)])
    memory = ItemRecommender(top=3, popularity_days=90).fit(both, AS_OF)
    files_fit = ItemRecommender(top=3, popularity_days=90).fit_files(files, AS_OF)
    pd.testing.assert_frame_equal(files_fit.neighbours_, memory.neighbours_)
    pd.testing.assert_frame_equal(files_fit.popular_, memory.popular_)
    assert len(memory.neighbours_) >= 4 and len(memory.popular_) == 5
    with pytest.raises(NotFittedError, match="recommend_history"):
        files_fit.recommend()
    with pytest.raises(SchemaError, match="'item_id' is missing"):
        ItemRecommender().fit_files([_without_items(shop, tmp_path)], AS_OF)


def _without_items(shop: pd.DataFrame, tmp_path: Path) -> Path:
    path = tmp_path / "no-items.parquet"
    shop.drop(columns="item_id").to_parquet(path, index=False)
    return path


def test_saved_state_recommends_as_the_fitted_one(shop: pd.DataFrame, tmp_path: Path) -> None:
    for model in (
        ItemRecommender(top=3, popularity_days=90, alpha=0.5),
        PopularityRecommender(top=2, popularity_days=90),
        BuyAgainRecommender(top=2),
    ):
        model.fit(shop, AS_OF)
        loaded = type(model).load(model.save(tmp_path / type(model).__name__))
        assert _params(loaded) == _params(model)
        want = model.recommend_history(shop, AS_OF, ["u7", "u8", "stranger"])
        got = loaded.recommend_history(shop, AS_OF, ["u7", "u8", "stranger"])
        pd.testing.assert_frame_equal(got, want)
    with pytest.raises(ArtifactError, match="expected ItemRecommender"):
        ItemRecommender.load(tmp_path / "BuyAgainRecommender")
    with pytest.raises(ArtifactError, match="no readable"):
        ItemRecommender.load(tmp_path / "nowhere")
    with pytest.raises(NotFittedError):
        ItemRecommender().save(tmp_path / "unfitted")


def _params(model: object) -> dict[str, object]:
    """A recommender's hyperparameters (fitted state ends in ``_``)."""
    return {k: v for k, v in vars(model).items() if not k.endswith("_")}


def test_a_customer_whose_rows_name_no_item_gets_the_fill(shop: pd.DataFrame) -> None:
    model = ItemRecommender(top=2, popularity_days=90).fit(shop, AS_OF)
    bare = _orders([("new", "o9", "2024-03-30", ["X"])]).assign(item_id=None)
    assert model.recommend_history(bare, AS_OF, ["new"])["item_id"].tolist() == ["E", "A"]
