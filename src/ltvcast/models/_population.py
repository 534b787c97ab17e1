"""What the RFM-level population models share: named positive parameters, ``set_params``,
the fitted check and ``repr`` (each model file keeps its paper's likelihood and formulas)."""

from __future__ import annotations

import inspect
from typing import Any, ClassVar, Self

from ltvcast.exceptions import ConfigError, NotFittedError


class PopulationModel:
    """Base of :class:`~ltvcast.models.bgnbd.BetaGeoModel` and its siblings.

    Subclasses set ``PARAMS`` (their four parameter names, in the order the formulas unpack
    them),
    ``_NAME`` (the model's name in messages) and ``_FIT_CALL`` (how to fit it).
    """

    PARAMS: ClassVar[tuple[str, ...]]
    _NAME: ClassVar[str]
    _FIT_CALL: ClassVar[str] = "fit(frequency, recency, T)"
    params_: dict[str, float]

    def __init__(self, penalizer_coef: float = 0.0) -> None:
        self.penalizer_coef = penalizer_coef

    def set_params(self, params: dict[str, float]) -> Self:
        """Use given parameters (e.g. loaded from JSON) instead of fitting.

        Raises
        ------
        ConfigError
            When a parameter is missing or not positive.
        """
        missing = set(self.PARAMS) - set(params)
        if missing:
            raise ConfigError(f"{self._NAME} parameters lack {sorted(missing)}")
        bad = {k: params[k] for k in self.PARAMS if not float(params[k]) > 0}
        if bad:
            raise ConfigError(f"{self._NAME} parameters must be positive; got {bad}")
        self.params_ = {k: float(params[k]) for k in self.PARAMS}
        return self

    def _params(self) -> tuple[float, float, float, float]:
        """The four fitted parameters in ``PARAMS`` order; :class:`NotFittedError` before
        ``fit``."""
        if not hasattr(self, "params_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted; call {self._FIT_CALL}")
        first, second, third, fourth = (self.params_[k] for k in self.PARAMS)
        return first, second, third, fourth

    def __repr__(self) -> str:
        names = [p for p in inspect.signature(type(self)).parameters]
        args = ", ".join(f"{name}={getattr(self, name)!r}" for name in names)
        fitted: Any = getattr(self, "params_", "unfitted")
        return f"{type(self).__name__}({args}) [{fitted}]"
