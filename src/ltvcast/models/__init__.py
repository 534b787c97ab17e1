"""L3 estimators.

Every model is a :class:`~ltvcast.models.base.Forecaster`; :func:`get_forecaster_class` maps the
names the CLI accepts to classes without importing heavy dependencies (torch, lightgbm) early.
"""

from __future__ import annotations

import importlib

from ltvcast.exceptions import ConfigError
from ltvcast.models.base import Forecaster

#: CLI name -> "module:Class". ``auto`` lives in evaluation (it runs an inner backtest).
_REGISTRY = {
    "baseline": "ltvcast.models.baseline:SpendRateForecaster",
    "tenure_mean": "ltvcast.models.baseline:TenureMeanForecaster",
    "btyd": "ltvcast.models.btyd:BTYDForecaster",
    "btyd_cal": "ltvcast.models.btyd_cal:CalibratedBTYDForecaster",
    "gbdt": "ltvcast.models.gbdt:GBDTForecaster",
    "seq": "ltvcast.models.seq.estimator:SeqForecaster",
}

MODEL_NAMES = tuple(_REGISTRY)


def get_forecaster_class(name: str) -> type[Forecaster]:
    """Return the forecaster class registered under ``name``.

    Raises
    ------
    ConfigError
        For an unknown name (the message lists the known ones).
    """
    try:
        target = _REGISTRY[name]
    except KeyError:
        raise ConfigError(
            f"unknown model {name!r}; choose one of {', '.join(sorted((*_REGISTRY, 'auto')))}"
        ) from None
    module_name, class_name = target.split(":")
    cls: type[Forecaster] = getattr(importlib.import_module(module_name), class_name)
    return cls
