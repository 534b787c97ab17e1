"""ProfileDesign: standardised numbers with missing indicators, one-hot levels against a
reference, pooled rare and unseen levels, duplicate columns, JSON state and the errors."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from ltvcast.exceptions import ConfigError, NotFittedError
from ltvcast.features.profile_design import ProfileDesign


def _profiles() -> tuple[pd.DataFrame, pd.Index]:
    """100 customers: ``age`` (numeric, 40 missing), ``city`` (a 45, b 30, c 15, d 6, e 4),
    ``tier`` (gold 60, missing 40: the customers without an age); customer ``c99`` (an
    ``e``) has no profile row."""
    ids = pd.Index([f"c{i:02d}" for i in range(100)], name="customer_id")
    age = np.where(np.arange(100) < 60, 20.0 + np.arange(100) % 30, np.nan)
    city = np.array(["a"] * 45 + ["b"] * 30 + ["c"] * 15 + ["d"] * 6 + ["e"] * 4)
    tier = np.where(np.arange(100) < 60, "gold", None)
    frame = pd.DataFrame({"customer_id": ids, "age": age, "city": city, "tier": tier})
    return frame.iloc[:99], ids


def test_encoding() -> None:
    profiles, ids = _profiles()
    design = ProfileDesign(["age", "city", "tier"], min_count=10).fit(profiles, ids)
    # c99 has no row: every column of it is missing.
    assert design.missing_ == {"age": 40, "city": 1, "tier": 40}
    assert design.levels_["city"] == {"reference": "a", "levels": ["b", "c"], "other": True}
    assert design.duplicates_ == {"tier=(missing)": "age=(missing)"}
    assert design.feature_names == [
        "age", "age=(missing)", "city=b", "city=c", "city=(other)",
    ]  # fmt: skip
    x = design.transform(profiles, ids)
    assert list(x.columns) == design.feature_names and x.index.equals(ids)
    present = x["age=(missing)"] == 0
    assert x.loc[present, "age"].mean() == pytest.approx(0.0, abs=1e-12)
    assert x.loc[present, "age"].std(ddof=0) == pytest.approx(1.0)
    assert (x.loc[~present, "age"] == 0).all()
    # d, e and the missing city (10 customers) are pooled; a is the reference.
    assert x.loc["c95", "city=(other)"] == 1 and x.loc["c00"].iloc[2:].sum() == 0
    assert x.loc["c99", "city=(other)"] == 1 and x.loc["c99", "age=(missing)"] == 1


def test_unseen_levels_pool_and_json_round_trip() -> None:
    profiles, ids = _profiles()
    design = ProfileDesign(["age", "city"], min_count=10).fit(profiles, ids)
    later = profiles.assign(city=profiles["city"].replace({"b": "zz"}), age="unknown")
    x = design.transform(later, ids)
    was_b = profiles.loc[profiles["city"] == "b", "customer_id"]
    assert (x.loc[was_b, "city=(other)"] == 1).all() and (x["city=b"] == 0).all()
    assert (x["age"] == 0).all() and (x["age=(missing)"] == 1).all()
    copy = ProfileDesign.from_dict(json.loads(json.dumps(design.to_dict())))
    pd.testing.assert_frame_equal(copy.transform(profiles, ids), design.transform(profiles, ids))
    # No profiles at all: everyone missing.
    empty = design.transform(None, ids)
    assert (empty["age=(missing)"] == 1).all() and (empty["city=(other)"] == 1).all()


def test_small_pool_joins_the_reference() -> None:
    profiles, ids = _profiles()
    design = ProfileDesign(["city"], min_count=13).fit(profiles, ids)
    # d, e and the missing city pool 10 < 13 customers: they join the reference.
    assert design.levels_["city"] == {"reference": "a", "levels": ["b", "c"], "other": False}
    x = design.transform(profiles, ids)
    assert x.loc["c95"].sum() == 0 and x.loc["c99"].sum() == 0
    strict = ProfileDesign(["city"], min_count=31).fit(profiles, ids)
    assert strict.levels_["city"] == {"reference": "a", "levels": [], "other": True}
    only = ProfileDesign(["city"], min_count=10, max_levels=1).fit(profiles, ids)
    assert only.feature_names == ["city=b", "city=(other)"]


def test_errors_name_the_column() -> None:
    profiles, ids = _profiles()
    with pytest.raises(ConfigError, match="no profiles were given"):
        ProfileDesign(["age"]).fit(None, ids)
    with pytest.raises(ConfigError, match=r"\['colour'\] are not profile columns"):
        ProfileDesign(["colour"]).fit(profiles, ids)
    with pytest.raises(ConfigError, match="'one' has 1 distinct value"):
        ProfileDesign(["one"]).fit(profiles.assign(one=3.0), ids)
    with pytest.raises(ConfigError, match="'kind' has one level"):
        ProfileDesign(["kind"]).fit(profiles.assign(kind="x"), ids[:99])
    with pytest.raises(ConfigError, match="'seen' holds dates"):
        ProfileDesign(["seen"]).fit(profiles.assign(seen=pd.Timestamp("2024-01-01")), ids)
    with pytest.raises(ConfigError, match="no level but 'a' held by at least 60"):
        ProfileDesign(["city"], min_count=60).fit(profiles, ids)
    with pytest.raises(NotFittedError):
        ProfileDesign(["age"]).transform(profiles, ids)
