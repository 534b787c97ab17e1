"""Model directories: ``manifest.json`` plus the forecaster's own non-pickle state files.

The manifest records the package and artifact-schema versions, the model name, its
hyperparameters, horizon, as-of time and training window, and whatever metrics the caller
passes. :func:`load_model` refuses a directory written by another schema version.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from ltvcast._version import __version__
from ltvcast.exceptions import ArtifactError, ConfigError
from ltvcast.models.base import Forecaster
from ltvcast.models.registry import forecaster_class
from ltvcast.timeframe import parse_horizon

MANIFEST = "manifest.json"
#: Bumped whenever the layout of a model directory changes incompatibly.
ARTIFACT_SCHEMA_VERSION = 1


def save_model(
    forecaster: Forecaster, directory: str | Path, extra: dict[str, Any] | None = None
) -> Path:
    """Write a fitted forecaster to ``directory`` (created; existing files are replaced).

    The manifest is written last, through a temporary file and an atomic rename, so a reader
    never sees a manifest that points at half-written state.
    """
    forecaster.check_fitted()
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    state = forecaster.save_state(path)
    manifest = {
        "ltvcast_version": __version__,
        "artifact_schema_version": ARTIFACT_SCHEMA_VERSION,
        "model": forecaster.name,
        "params": forecaster.get_params(),
        "horizon": str(forecaster.horizon_),
        "as_of": forecaster.as_of_.isoformat(),
        "state": state,
        **(extra or {}),
    }
    fd, tmp = tempfile.mkstemp(dir=path, prefix=".manifest-", suffix=".json")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(manifest, handle, indent=2, default=str)
    os.replace(tmp, path / MANIFEST)
    return path


def read_manifest(directory: str | Path) -> dict[str, Any]:
    """Read and check a model directory's manifest.

    Raises
    ------
    ArtifactError
        When the directory or manifest is missing, unreadable (not UTF-8, not JSON, not an
        object), of another schema version, or lacks a required key.
    """
    path = Path(directory) / MANIFEST
    if not path.is_file():
        raise ArtifactError(f"{directory}: not a model directory (no {MANIFEST})")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ArtifactError(f"{path}: unreadable manifest ({err})") from err
    if not isinstance(manifest, dict):
        raise ArtifactError(
            f"{path}: the manifest must be a JSON object; got {type(manifest).__name__}"
        )
    version = manifest.get("artifact_schema_version")
    if version != ARTIFACT_SCHEMA_VERSION:
        raise ArtifactError(
            f"{path}: artifact schema version {version!r} (written by ltvcast "
            f"{manifest.get('ltvcast_version', '?')}) does not match this ltvcast's "
            f"{ARTIFACT_SCHEMA_VERSION}; retrain the model"
        )
    for key in ("model", "params", "horizon", "as_of", "state"):
        if key not in manifest:
            raise ArtifactError(f"{path}: manifest lacks {key!r}")
    if not isinstance(manifest["model"], str):
        raise ArtifactError(
            f"{path}: manifest 'model' must be a name; got {manifest['model']!r:.60}"
        )
    return manifest


def load_model(directory: str | Path) -> tuple[Forecaster, dict[str, Any]]:
    """Load a forecaster saved by :func:`save_model`; returns it with its manifest.

    Raises
    ------
    ArtifactError
        For any problem with the directory, in one line: a bad manifest, an unknown model,
        a state file that is missing, corrupt, or named outside the directory.
    """
    manifest = read_manifest(directory)
    where = Path(directory) / MANIFEST
    cls = _forecaster_class(manifest["model"])
    try:
        horizon = parse_horizon(manifest["horizon"])
        as_of = pd.Timestamp(manifest["as_of"])
        if pd.isna(as_of):
            raise ValueError(f"as_of {manifest['as_of']!r} is not a time")
    except (ConfigError, ValueError, TypeError) as err:
        raise ArtifactError(f"{where}: bad horizon or as_of ({err})") from err
    try:
        forecaster = cls.from_params(manifest["params"])
        forecaster.load_state(Path(directory), manifest["state"])
    except ArtifactError:
        raise
    except Exception as err:  # any failure to rebuild the model is the directory's
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ArtifactError(
            f"{directory}: cannot load {manifest['model']!r} model ({reason})"
        ) from err
    forecaster.horizon_ = horizon
    forecaster.as_of_ = as_of
    return forecaster, manifest


def _forecaster_class(name: str) -> type[Forecaster]:
    try:
        return forecaster_class(name)
    except (ConfigError, ImportError) as err:
        raise ArtifactError(f"unknown model {name!r} in manifest ({err})") from err
