"""What the RFM-level population models share: named positive parameters, ``set_params``,
the fitted check and ``repr`` (each model file keeps its paper's likelihood and formulas).

A model may also hold one value of a parameter per customer (``_per_row``):
that is how :mod:`ltvcast.models.covariates` predicts, each customer's parameters following
from their covariates (Fader & Hardie 2007), with every formula of the plain model.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any, ClassVar, Self, cast

import numpy as np
import numpy.typing as npt

from ltvcast.exceptions import ConfigError, NotFittedError

#: A parameter of the formulas: one value for everyone, or one per row of the inputs.
Param = float | npt.NDArray[np.float64]


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
    #: Per-row parameters in ``PARAMS`` order (:meth:`_per_row`), else None.
    _rows: tuple[Param, ...] | None = None

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

    def _per_row(self, rows: Sequence[Param]) -> Self:
        """Predict with these parameters (``PARAMS`` order), each a float or an array with
        one value per row of the inputs the predictions will be given; ``params_`` keeps the
        population's values."""
        self._rows = tuple(rows)
        return self

    def _params(self) -> tuple[float, float, float, float]:
        """The four parameters in ``PARAMS`` order; :class:`NotFittedError` before ``fit``.

        After :meth:`_per_row`, the per-row values: typed as floats, which they stand for in
        formulas that broadcast over the rows (those of BG/NBD, MBG/NBD and Pareto/NBD, tested
        in ``tests/models/test_covariates.py``; the covariate models bind no other).
        """
        if self._rows is not None:
            return cast(tuple[float, float, float, float], self._rows)
        if not hasattr(self, "params_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted; call {self._FIT_CALL}")
        first, second, third, fourth = (self.params_[k] for k in self.PARAMS)
        return first, second, third, fourth

    def __repr__(self) -> str:
        names = [p for p in inspect.signature(type(self)).parameters]
        args = ", ".join(f"{name}={getattr(self, name)!r}" for name in names)
        fitted: Any = getattr(self, "params_", "unfitted")
        return f"{type(self).__name__}({args}) [{fitted}]"
