"""The forecaster contract shared by every model.

A forecaster turns canonical :class:`~ltvcast.data.schemas.CustomerData` into per-customer
forecasts over a horizon. It follows the scikit-learn estimator rules: ``__init__`` only
stores hyperparameters (all defaulted), ``fit`` learns from data up to ``as_of`` and returns
``self``, learned state ends in ``_``, and predicting before ``fit`` raises
:class:`~ltvcast.exceptions.NotFittedError`.

Persistence never pickles: :meth:`Forecaster.save_state` writes JSON parameters and arrays
(safetensors, LightGBM text) into a directory, :meth:`Forecaster.load_state` reads them back;
:mod:`ltvcast.scoring.artifacts` adds the manifest and version checks around them.
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar, Protocol, Self

import pandas as pd

from ltvcast.data.schemas import CUSTOMER_ID, PREDICTION_COLUMNS, QUANTILE_COLUMNS, CustomerData
from ltvcast.exceptions import ArtifactError, ConfigError, InsufficientDataError, NotFittedError
from ltvcast.timeframe import Horizon


class RFMScorer(Protocol):
    """A model that forecasts straight from RFM summaries (:data:`~ltvcast.features.rfm.RFM_COLUMNS`
    in the weeks of :func:`~ltvcast.features.rfm.rfm_summary`)."""

    def predict_rfm(self, rfm: pd.DataFrame) -> pd.DataFrame:
        """Prediction columns (no ``customer_id``) for the rows of ``rfm``, in its order."""
        ...


class Forecaster(ABC):
    """Base class: ``fit(data, as_of, horizon)`` then ``predict(data, as_of)``.

    Subclasses set ``name`` (the CLI name), implement :meth:`_fit`, :meth:`_predict`,
    :meth:`save_state` and :meth:`load_state`, and list hyperparameters as ``__init__``
    keyword arguments stored under the same names.
    """

    name: ClassVar[str] = ""
    #: True when the model gives value quantiles (``value_p10``, ``value_p90``).
    has_quantiles: ClassVar[bool] = False

    horizon_: Horizon
    as_of_: pd.Timestamp

    def fit(self, data: CustomerData, as_of: pd.Timestamp, horizon: Horizon) -> Self:
        """Learn from ``data`` up to ``as_of`` to forecast ``horizon`` ahead; returns ``self``.

        Rows after ``as_of`` are dropped before the model sees them.

        Raises
        ------
        InsufficientDataError
            When no transaction is dated up to ``as_of`` (or when the model needs more
            history than the data holds).
        """
        past = data.until(as_of)
        if past.transactions.empty:
            raise InsufficientDataError(
                f"{self.name or type(self).__name__}: no transaction up to "
                f"{as_of:%Y-%m-%d %H:%M}; nothing to learn from"
            )
        self._fit(past, as_of, horizon)
        self.horizon_ = horizon
        self.as_of_ = as_of
        return self

    def predict(self, data: CustomerData, as_of: pd.Timestamp) -> pd.DataFrame:
        """Forecast the fitted horizon after ``as_of`` for every customer seen up to ``as_of``.

        Returns
        -------
        DataFrame
            One row per customer, sorted by ``customer_id``, with ``PREDICTION_COLUMNS``
            (+ ``QUANTILE_COLUMNS`` when ``has_quantiles``); a fresh RangeIndex.
        """
        self.check_fitted()
        past = data.until(as_of)
        out = self._predict(past, as_of)
        columns = list(PREDICTION_COLUMNS) + (list(QUANTILE_COLUMNS) if self.has_quantiles else [])
        out = out.reset_index(drop=CUSTOMER_ID in out.columns)[columns]
        return out.sort_values(CUSTOMER_ID, kind="stable").reset_index(drop=True)

    def check_fitted(self) -> None:
        """Raise :class:`NotFittedError` unless ``fit`` (or ``load_state``) has run."""
        if not hasattr(self, "horizon_"):
            raise NotFittedError(
                f"{type(self).__name__} is not fitted; call fit(data, as_of, horizon) first"
            )

    def get_params(self) -> dict[str, Any]:
        """Hyperparameters as given to ``__init__`` (JSON-serialisable)."""
        names = [p for p in inspect.signature(type(self).__init__).parameters if p != "self"]
        return {name: getattr(self, name) for name in names}

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> Self:
        """An unfitted forecaster from :meth:`get_params` output read back from JSON (the
        tuples JSON turned into lists are restored, so ``get_params`` round-trips).

        Raises
        ------
        ConfigError
            When ``params`` is not a mapping of this class's hyperparameters.
        """
        if not isinstance(params, dict):
            raise ConfigError(f"{cls.__name__} params must be an object; got {params!r:.60}")
        defaults = inspect.signature(cls).parameters
        unknown = sorted(set(params) - set(defaults))
        if unknown:
            raise ConfigError(f"{cls.__name__} has no hyperparameter {unknown[0]!r}")
        restored = {
            key: tuple(value)
            if isinstance(value, list) and isinstance(defaults[key].default, tuple)
            else value
            for key, value in params.items()
        }
        return cls(**restored)

    def clone(self) -> Self:
        """A fresh, unfitted forecaster with the same hyperparameters."""
        return type(self)(**self.get_params())

    @property
    def chosen(self) -> Forecaster:
        """The fitted model that makes the forecasts: ``self``, or the one a meta-model picked."""
        return self

    @property
    def selection_reason(self) -> str | None:
        """Why this model makes the forecasts, when a meta-model chose it (else ``None``)."""
        return None

    @property
    def rfm_scorer(self) -> RFMScorer | None:
        """The online fast path: an object that forecasts from per-customer RFM summaries
        exactly as :meth:`predict` does (BTYD models), or ``None`` when the model needs the
        customer's rows."""
        return None

    def explain(self, data: CustomerData, as_of: pd.Timestamp) -> pd.DataFrame:
        """Per-customer drivers of ``predicted_value``.

        Returns
        -------
        DataFrame
            Indexed by ``customer_id`` (customers seen up to ``as_of``), one column per driver
            plus ``base_value``; each row sums to that customer's ``predicted_value``. Models
            whose raw contributions live in another space (log, logit) say in their docstring
            how they map them to value units.
        """
        raise ConfigError(f"model {self.name!r} does not provide explanations")

    @abstractmethod
    def _fit(self, data: CustomerData, as_of: pd.Timestamp, horizon: Horizon) -> None:
        """Learn from ``data`` (already cut at ``as_of``)."""

    @abstractmethod
    def _predict(self, data: CustomerData, as_of: pd.Timestamp) -> pd.DataFrame:
        """Predictions for the customers of ``data`` (already cut at ``as_of``)."""

    @abstractmethod
    def save_state(self, directory: Path) -> dict[str, Any]:
        """Write learned state (no pickle) into ``directory``; return JSON-able metadata.

        The returned dict is stored in the manifest under ``"state"`` and given back to
        :meth:`load_state`.
        """

    @staticmethod
    def state_file(directory: Path, name: object) -> Path:
        """The state file ``name`` of a model directory, checked: a plain relative name that
        resolves inside ``directory`` to an existing file.

        Raises
        ------
        ArtifactError
            For a name that is not a string, points outside the directory, or is missing.
        """
        if not isinstance(name, str) or not name:
            raise ArtifactError(f"{directory}: state file name must be a string; got {name!r:.60}")
        root = Path(directory).resolve()
        path = (root / name).resolve()
        if root not in path.parents:
            raise ArtifactError(
                f"{directory}: state file {name!r} lies outside the model directory"
            )
        if not path.is_file():
            raise ArtifactError(f"{directory}: state file {name!r} is missing")
        return path

    @abstractmethod
    def load_state(self, directory: Path, state: dict[str, Any]) -> None:
        """Restore learned state written by :meth:`save_state` (``horizon_``/``as_of_`` are
        restored by the caller)."""
