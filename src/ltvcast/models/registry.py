"""Model names -> forecaster classes: the one resolver every layer uses.

Entries are ``"module:Class"`` strings imported on first use, so naming a model never loads
torch or LightGBM early, and ``auto`` (a meta-estimator that runs an inner backtest, so it
lives in :mod:`ltvcast.evaluation.selection`) resolves like any other model without this
module importing the evaluation layer. :func:`register` adds a model (a plugin, or a toy
model in a test) under a new name.
"""

from __future__ import annotations

import importlib
import inspect
from typing import TYPE_CHECKING, Any

from ltvcast.exceptions import ConfigError

if TYPE_CHECKING:
    from ltvcast.models.base import Forecaster

#: The meta-model that picks among the others by an inner backtest.
AUTO = "auto"

_MODELS: dict[str, str | type[Forecaster]] = {
    "baseline": "ltvcast.models.baseline:SpendRateForecaster",
    "tenure_mean": "ltvcast.models.baseline:TenureMeanForecaster",
    "btyd": "ltvcast.models.btyd:BTYDForecaster",
    "btyd_cal": "ltvcast.models.btyd_cal:CalibratedBTYDForecaster",
    "pnbd": "ltvcast.models.btyd:ParetoNBDForecaster",
    "bgcnbd": "ltvcast.models.btyd:BetaGeoCNBDForecaster",
    "mbgcnbd": "ltvcast.models.btyd:ModifiedBetaGeoCNBDForecaster",
    "gbdt": "ltvcast.models.gbdt:GBDTForecaster",
    "seq": "ltvcast.models.seq.estimator:SeqForecaster",
    AUTO: "ltvcast.evaluation.selection:AutoForecaster",
}


def model_names() -> tuple[str, ...]:
    """The registered concrete models (``auto`` excluded), in registration order."""
    return tuple(name for name in _MODELS if name != AUTO)


def forecaster_class(name: str) -> type[Forecaster]:
    """The class registered under ``name`` (``auto`` included).

    Raises
    ------
    ConfigError
        For an unknown name (the message lists the known ones).
    ImportError
        When the model's module cannot be imported (a missing optional dependency).
    """
    try:
        target = _MODELS[name]
    except KeyError:
        raise ConfigError(
            f"unknown model {name!r}; choose one of {', '.join(sorted(_MODELS))}"
        ) from None
    if not isinstance(target, str):
        return target
    module_name, class_name = target.split(":")
    cls: type[Forecaster] = getattr(importlib.import_module(module_name), class_name)
    return cls


def create(name: str, *, random_state: int | None = None, **params: Any) -> Forecaster:
    """A fresh forecaster of the model ``name`` with hyperparameters ``params`` (lists are
    read as tuples where the default is one, as from JSON); ``random_state`` is passed when
    it takes one.

    Raises
    ------
    ConfigError
        For an unknown name, or a hyperparameter the model does not have.
    """
    cls = forecaster_class(name)
    accepted = inspect.signature(cls).parameters
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise ConfigError(
            f"model {name!r} has no hyperparameter {unknown[0]!r}; it has "
            f"{', '.join(accepted) or 'none'}"
        )
    if random_state is not None and "random_state" in accepted:
        params["random_state"] = random_state
    return cls.from_params(params)


def register(name: str, target: str | type[Forecaster]) -> None:
    """Register a model class (or ``"module:Class"``) under a name not taken yet."""
    if name in _MODELS:
        raise ConfigError(f"a model is already registered as {name!r}")
    _MODELS[name] = target
