from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from ltvcast.data.datasets import load_cdnow
from ltvcast.data.schemas import CustomerData
from ltvcast.exceptions import ArtifactError, NotFittedError
from ltvcast.models.btyd import BTYDForecaster
from ltvcast.scoring.artifacts import MANIFEST, load_model, read_manifest, save_model
from ltvcast.timeframe import parse_as_of, parse_horizon


@pytest.fixture(scope="module")
def cdnow_sample(data_dir: Path) -> CustomerData:
    data, _ = load_cdnow(data_dir, which="sample")
    return data


def test_round_trip_gives_identical_predictions(cdnow_sample: CustomerData, tmp_path: Path) -> None:
    as_of = parse_as_of("1997-09-30", cdnow_sample.last_timestamp())
    model = BTYDForecaster().fit(cdnow_sample, as_of, parse_horizon("39w"))
    save_model(model, tmp_path / "m", extra={"note": "test"})
    loaded, manifest = load_model(tmp_path / "m")
    assert manifest["model"] == "btyd" and manifest["horizon"] == "39w"
    assert manifest["note"] == "test"
    assert loaded.as_of_ == as_of
    pd.testing.assert_frame_equal(
        model.predict(cdnow_sample, as_of), loaded.predict(cdnow_sample, as_of)
    )
    assert not list((tmp_path / "m").glob("*.pkl"))


def test_unfitted_model_cannot_be_saved(tmp_path: Path) -> None:
    with pytest.raises(NotFittedError):
        save_model(BTYDForecaster(), tmp_path)


def test_missing_and_foreign_manifests_are_refused(
    cdnow_sample: CustomerData, tmp_path: Path
) -> None:
    with pytest.raises(ArtifactError, match="not a model directory"):
        load_model(tmp_path)
    as_of = parse_as_of("1997-09-30", cdnow_sample.last_timestamp())
    save_model(BTYDForecaster().fit(cdnow_sample, as_of, parse_horizon("13w")), tmp_path)
    manifest = json.loads((tmp_path / MANIFEST).read_text())
    manifest["artifact_schema_version"] = 999
    (tmp_path / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="schema version 999"):
        read_manifest(tmp_path)
    (tmp_path / MANIFEST).write_text("{not json")
    with pytest.raises(ArtifactError, match="unreadable"):
        read_manifest(tmp_path)
