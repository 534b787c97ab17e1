"""L3 estimators.

Every model is a :class:`~ltvcast.models.base.Forecaster`; :mod:`ltvcast.models.registry`
maps the names the CLI accepts to classes. Everything here loads on first access, so
``import ltvcast.models`` imports neither pandas, torch nor LightGBM.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ltvcast._lazy import load

if TYPE_CHECKING:
    from ltvcast.models.base import Forecaster
    from ltvcast.models.baseline import SpendRateForecaster, TenureMeanForecaster
    from ltvcast.models.bgbb import BetaGeoBetaBinomModel
    from ltvcast.models.bgnbd import BetaGeoModel, ModifiedBetaGeoModel
    from ltvcast.models.btyd import (
        BetaGeoCNBDForecaster,
        BTYDForecaster,
        ModifiedBetaGeoCNBDForecaster,
        ParetoNBDForecaster,
    )
    from ltvcast.models.btyd_cal import CalibratedBTYDForecaster
    from ltvcast.models.cnbd import BetaGeoCNBDModel, ModifiedBetaGeoCNBDModel
    from ltvcast.models.covariates import (
        BetaGeoCovariateModel,
        ModifiedBetaGeoCovariateModel,
        ParetoNBDCovariateModel,
    )
    from ltvcast.models.gamma_gamma import GammaGammaModel
    from ltvcast.models.gbdt import GBDTForecaster
    from ltvcast.models.pareto_nbd import ParetoNBDModel
    from ltvcast.models.registry import create, forecaster_class, model_names
    from ltvcast.models.seq.estimator import SeqForecaster
    from ltvcast.models.spend_covariates import GammaGammaCovariateModel

#: Public class -> defining module, imported on first attribute access.
_LAZY = {
    "Forecaster": "ltvcast.models.base",
    "create": "ltvcast.models.registry",
    "forecaster_class": "ltvcast.models.registry",
    "model_names": "ltvcast.models.registry",
    "BTYDForecaster": "ltvcast.models.btyd",
    "BetaGeoBetaBinomModel": "ltvcast.models.bgbb",
    "BetaGeoCNBDForecaster": "ltvcast.models.btyd",
    "BetaGeoCNBDModel": "ltvcast.models.cnbd",
    "BetaGeoCovariateModel": "ltvcast.models.covariates",
    "BetaGeoModel": "ltvcast.models.bgnbd",
    "CalibratedBTYDForecaster": "ltvcast.models.btyd_cal",
    "GBDTForecaster": "ltvcast.models.gbdt",
    "GammaGammaCovariateModel": "ltvcast.models.spend_covariates",
    "GammaGammaModel": "ltvcast.models.gamma_gamma",
    "ModifiedBetaGeoCNBDForecaster": "ltvcast.models.btyd",
    "ModifiedBetaGeoCNBDModel": "ltvcast.models.cnbd",
    "ModifiedBetaGeoCovariateModel": "ltvcast.models.covariates",
    "ModifiedBetaGeoModel": "ltvcast.models.bgnbd",
    "ParetoNBDForecaster": "ltvcast.models.btyd",
    "ParetoNBDCovariateModel": "ltvcast.models.covariates",
    "ParetoNBDModel": "ltvcast.models.pareto_nbd",
    "SeqForecaster": "ltvcast.models.seq.estimator",
    "SpendRateForecaster": "ltvcast.models.baseline",
    "TenureMeanForecaster": "ltvcast.models.baseline",
}

__all__ = [
    "BTYDForecaster",
    "BetaGeoBetaBinomModel",
    "BetaGeoCNBDForecaster",
    "BetaGeoCNBDModel",
    "BetaGeoCovariateModel",
    "BetaGeoModel",
    "CalibratedBTYDForecaster",
    "Forecaster",
    "GBDTForecaster",
    "GammaGammaCovariateModel",
    "GammaGammaModel",
    "ModifiedBetaGeoCNBDForecaster",
    "ModifiedBetaGeoCNBDModel",
    "ModifiedBetaGeoCovariateModel",
    "ModifiedBetaGeoModel",
    "ParetoNBDCovariateModel",
    "ParetoNBDForecaster",
    "ParetoNBDModel",
    "SeqForecaster",
    "SpendRateForecaster",
    "TenureMeanForecaster",
    "create",
    "forecaster_class",
    "model_names",
]


def __getattr__(name: str) -> Any:
    return load(globals(), _LAZY, name)
