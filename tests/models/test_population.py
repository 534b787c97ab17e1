"""What every RFM-level population model shares (``PopulationModel`` and ``prepare_fit``):
input checks, the fitted check and ``set_params``, on each model of the
``fit(frequency, recency, T)`` family."""

from __future__ import annotations

import numpy as np
import pytest

from ltvcast.exceptions import ConfigError, InsufficientDataError, NotFittedError
from ltvcast.models.bgnbd import BetaGeoModel, ModifiedBetaGeoModel
from ltvcast.models.cnbd import BetaGeoCNBDModel, ModifiedBetaGeoCNBDModel
from ltvcast.models.pareto_nbd import ParetoNBDModel

MODELS = [BetaGeoModel, ModifiedBetaGeoModel, ParetoNBDModel, BetaGeoCNBDModel,
          ModifiedBetaGeoCNBDModel]  # fmt: skip


@pytest.mark.parametrize("cls", MODELS)
def test_shared_input_checks(cls: type[BetaGeoModel]) -> None:
    with pytest.raises(NotFittedError, match="fit\\(frequency, recency, T\\)"):
        cls().p_alive([0], [0], [1])
    with pytest.raises(InsufficientDataError, match="at least one repeat purchase"):
        cls().fit([0, 0, 0, 0, 0], [0] * 5, [5, 6, 7, 8, 9])
    with pytest.raises(InsufficientDataError, match="at least 4 customers"):
        cls().fit([1, 2], [1, 2], [3, 4])
    with pytest.raises(ConfigError, match="recency"):
        cls().fit([1, 2, 0, 1], [5, 2, 0, 1], [3, 4, 4, 4])
    with pytest.raises(ConfigError, match="frequency must be finite"):
        cls().fit([1, np.nan, 0, 1], [1, 2, 0, 1], [3, 4, 4, 4])
    with pytest.raises(ConfigError, match="penalizer_coef"):
        cls(penalizer_coef=-1.0).fit([1, 2, 0, 1], [1, 2, 0, 1], [3, 4, 4, 4])


@pytest.mark.parametrize("cls", MODELS)
def test_set_params_and_repr(cls: type[BetaGeoModel]) -> None:
    params = dict.fromkeys(cls.PARAMS, 1.5)
    model = cls().set_params(params)
    assert model.params_ == params and "unfitted" not in repr(model)
    assert repr(cls()).startswith(f"{cls.__name__}(") and "unfitted" in repr(cls())
    with pytest.raises(ConfigError, match="positive"):
        cls().set_params(params | {cls.PARAMS[-1]: 0.0})
    with pytest.raises(ConfigError, match="lack"):
        cls().set_params({cls.PARAMS[0]: 1.0})
    with pytest.raises(ConfigError, match="t must"):
        model.expected_purchases(-1.0, [1], [1], [2])
