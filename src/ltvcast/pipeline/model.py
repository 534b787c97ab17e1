"""The scoring model: a fitted forecaster with its segment cuts and training summary."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import pandas as pd

from ltvcast.data.schemas import CUSTOMER_ID, QUANTILE_COLUMNS, CustomerData
from ltvcast.exceptions import ArtifactError, ConfigError, InsufficientDataError
from ltvcast.features.rfm import customer_history
from ltvcast.models.base import Forecaster
from ltvcast.pipeline.records import FORECAST_COLUMNS, CustomerForecast, TrainingSummary
from ltvcast.scoring.artifacts import load_model, save_model
from ltvcast.scoring.single import parse_score_request
from ltvcast.strategy.explain import (
    BASE,
    explain_customers,
    explain_sample,
    global_importance,
    only_customers,
    top_drivers,
)
from ltvcast.strategy.segments import FittedSegmentRules, SegmentRules
from ltvcast.timeframe import Horizon, parse_as_of, parse_horizons

if TYPE_CHECKING:
    from ltvcast.models.btyd import BTYDForecaster


@runtime_checkable
class CurveForecaster(Protocol):
    """A forecaster that gives forecasts at several horizons from one fitted model: BTYD
    models (:meth:`~ltvcast.models.btyd.BTYDForecaster.predict_curve`) and ``seq``
    (:meth:`~ltvcast.models.seq.estimator.SeqForecaster.predict_curve`)."""

    def predict_curve(
        self,
        data: CustomerData,
        as_of: pd.Timestamp,
        horizons: Sequence[Horizon],
        *,
        discount_rate: float | None = None,
    ) -> pd.DataFrame:
        """Per customer (index ``customer_id``), ``purchases_H``, ``value_H`` (non-decreasing
        in ``H``), a probability ``p_alive_H`` or ``p_active_H`` and with a
        ``discount_rate`` ``discounted_value_H`` per horizon ``H``."""
        ...


#: The segment of customers scored without cuts (see :meth:`ScoringModel.cuts_for`).
UNSEGMENTED = "unsegmented"
#: Fewest forecasts that cuts are fitted on when a model has none stored.
MIN_CUSTOMERS_FOR_CUTS = 100

Rules = SegmentRules | FittedSegmentRules | None


@dataclass(frozen=True)
class ScoringModel:
    """A fitted forecaster with its segment cuts and training summary: the unit the edges
    load, score with, explain with and save.

    Parameters
    ----------
    forecaster
        Any fitted :class:`~ltvcast.models.base.Forecaster` (``auto`` included).
    rules
        Segment cuts fitted at training (``None``: fitted on the forecasts being labelled
        when there are at least :data:`MIN_CUSTOMERS_FOR_CUTS`, else :data:`UNSEGMENTED`).
    training
        What the model was trained on (``None`` for a forecaster saved on its own).
    """

    forecaster: Forecaster
    rules: FittedSegmentRules | None = None
    training: TrainingSummary | None = None

    @property
    def manifest(self) -> dict[str, Any]:
        """The manifest keys this layer owns (:data:`MANIFEST_KEYS`), as :meth:`save` writes
        them next to the forecaster's own."""
        extra: dict[str, Any] = {} if self.training is None else self.training.to_manifest()
        if self.rules is not None:
            extra["segment_rules"] = self.rules.to_dict()
        return extra

    @property
    def horizon(self) -> Horizon:
        """The forecast horizon."""
        return self.forecaster.horizon_

    @property
    def name(self) -> str:
        """The model's name (``auto`` for a selector)."""
        return self.forecaster.name

    @property
    def covariates(self) -> tuple[str, ...]:
        """Profile columns the forecasting model uses as covariates (``()`` for none)."""
        return tuple(getattr(self.forecaster.chosen, "covariates", ()))

    @property
    def chosen_name(self) -> str:
        """The name of the model making the forecasts (``auto``'s pick)."""
        return self.forecaster.chosen.name

    @property
    def reason(self) -> str | None:
        """Why this model makes the forecasts (``auto``'s reason), if a meta-model chose it."""
        return self.forecaster.selection_reason

    def resolve_as_of(
        self, data: CustomerData, as_of: str | pd.Timestamp | None = None
    ) -> pd.Timestamp:
        """``as_of`` parsed (a bare date: through its end); default: the data's last time."""
        return parse_as_of(as_of, data.last_timestamp())

    def predict(
        self,
        data: CustomerData,
        as_of: str | pd.Timestamp | None = None,
        *,
        horizons: str | Sequence[str | Horizon] | None = None,
        discount_rate: float | None = None,
        intervals: bool = False,
        base: pd.DataFrame | None = None,
    ) -> pd.DataFrame:
        """The forecaster's predictions (one row per customer seen up to ``as_of``).

        With ``intervals`` they include ``value_p10`` and ``value_p90`` (a model's own
        quantiles, or for BTYD models :meth:`~ltvcast.models.btyd.BTYDForecaster.value_intervals`:
        the expected value under parameter uncertainty). With ``horizons`` or a
        ``discount_rate`` (then at the model's own horizon) the columns of
        :meth:`predict_curve` follow. ``base`` is the forecaster's own predictions of
        ``data`` at ``as_of`` when the caller has them (:func:`~ltvcast.pipeline.forecast`).

        Raises
        ------
        ConfigError
            For intervals or curves from a model that gives none.
        """
        when = self.resolve_as_of(data, as_of)
        out = self.forecaster.predict(data, when) if base is None else base
        if intervals and not set(QUANTILE_COLUMNS) <= set(out.columns):
            bands = self._btyd("prediction intervals").value_intervals(data, when)
            out = out.join(bands[list(QUANTILE_COLUMNS)], on=CUSTOMER_ID)
        if horizons is None and discount_rate is None:
            return out
        curve = self.predict_curve(
            data, when, horizons or (self.horizon,), discount_rate=discount_rate
        )
        return out.join(curve, on=CUSTOMER_ID)

    def predict_curve(
        self,
        data: CustomerData,
        as_of: str | pd.Timestamp | None,
        horizons: str | Sequence[str | Horizon],
        *,
        discount_rate: float | None = None,
    ) -> pd.DataFrame:
        """Per customer, expected purchases, value, P(alive) or P(active) (and discounted
        value) at each of ``horizons``, from the one fitted model (a :class:`CurveForecaster`):
        see :meth:`~ltvcast.models.btyd.BTYDForecaster.predict_curve` and
        :meth:`~ltvcast.models.seq.estimator.SeqForecaster.predict_curve`.

        Raises
        ------
        ConfigError
            When the model forecasting gives no curve (it learns one horizon), or a horizon
            is beyond the longest it was trained for.
        """
        when = self.resolve_as_of(data, as_of)
        chosen = self.forecaster.chosen
        if not isinstance(chosen, CurveForecaster):
            raise ConfigError(
                f"horizon curves need a BTYD model (btyd, btyd_cal, pnbd, bgcnbd, mbgcnbd) or "
                f"seq; {chosen.name} gives one expected value for its {self.horizon} horizon"
            )
        return chosen.predict_curve(
            data, when, parse_horizons(horizons), discount_rate=discount_rate
        )

    def new_customer(
        self,
        horizons: str | Sequence[str | Horizon] | None = None,
        *,
        discount_rate: float | None = None,
        profile: Mapping[str, Any] | None = None,
    ) -> pd.DataFrame:
        """What a customer who has just made a first purchase is expected to do, per horizon
        (default: the model's), with a ``profile`` for a model with covariates: see
        :meth:`~ltvcast.models.btyd.BTYDForecaster.new_customer`.

        Raises
        ------
        ConfigError
            When the model forecasting is not a BTYD model.
        """
        return self._btyd("new-customer forecasts").new_customer(
            parse_horizons(horizons or (self.horizon,)),
            discount_rate=discount_rate,
            profile=profile,
        )

    def coefficient_table(self) -> pd.DataFrame:
        """The covariates' effects, with standard errors: see
        :meth:`~ltvcast.models.btyd.BTYDForecaster.coefficient_table`."""
        return self._btyd("coefficient tables").coefficient_table()

    def _btyd(self, what: str) -> BTYDForecaster:
        """The BTYD forecaster making the forecasts, or :class:`ConfigError` naming ``what``."""
        from ltvcast.models.btyd import BTYDForecaster

        chosen = self.forecaster.chosen
        if not isinstance(chosen, BTYDForecaster):
            raise ConfigError(
                f"{what} need a BTYD model (btyd, btyd_cal, pnbd, bgcnbd, mbgcnbd); "
                f"{chosen.name} gives one expected value for its {self.horizon} horizon"
            )
        return chosen

    def cuts_for(self, predictions: pd.DataFrame, rules: Rules = None) -> FittedSegmentRules | None:
        """The cuts that label ``predictions``: ``rules`` fitted on them (a
        :class:`SegmentRules`) or as given (fitted ones); by default the model's own, else
        cuts fitted on ``predictions`` when there are enough of them."""
        if isinstance(rules, FittedSegmentRules):
            return rules
        if isinstance(rules, SegmentRules):
            return rules.fit(predictions)
        if self.rules is not None:
            return self.rules
        if len(predictions) >= MIN_CUSTOMERS_FOR_CUTS:
            return SegmentRules().fit(predictions)
        return None

    def score(
        self,
        data: CustomerData,
        as_of: str | pd.Timestamp | None = None,
        rules: Rules = None,
    ) -> pd.DataFrame:
        """Forecasts with each customer's segment and history.

        Returns
        -------
        DataFrame
            ``customer_id``, ``segment``, the prediction columns (quantiles where the model
            has them) and :data:`~ltvcast.features.rfm.HISTORY_COLUMNS`, sorted by id.
        """
        when = self.resolve_as_of(data, as_of)
        predictions = self.forecaster.predict(data, when)
        history = customer_history(data, when)
        table = predictions.merge(history, on=CUSTOMER_ID, how="left")
        cuts = self.cuts_for(predictions, rules)
        table.insert(1, "segment", label_segments(cuts, predictions, history).to_numpy())
        return table

    def score_one(
        self,
        request: Mapping[str, Any] | CustomerData,
        as_of: str | pd.Timestamp | None = None,
        *,
        customer_id: str | None = None,
        rules: FittedSegmentRules | None = None,
        explain: bool = False,
    ) -> CustomerForecast:
        """Score one customer: a score request (the JSON of ``ltvcast score`` and
        ``POST /v1/score``, see :mod:`ltvcast.scoring.single`), or ``customer_id`` of a
        bundle (a one-customer bundle needs no id).

        ``rules`` overrides the model's cuts; ``explain`` adds the forecast's contributions
        when the model gives explanations.

        Raises
        ------
        InsufficientDataError
            When the customer has no transaction or event up to ``as_of``.
        """
        if isinstance(request, CustomerData):
            data = request
            when = self.resolve_as_of(data, as_of)  # the bundle's clock, not the customer's
            if customer_id is not None:
                data = only_customers(data, [customer_id])
            subject = "the data" if customer_id is None else f"customer {customer_id!r}"
        else:
            data, requested = parse_score_request(dict(request))
            when = self.resolve_as_of(data, requested if as_of is None else as_of)
            subject = "as_of: the request"
        frame = self.forecaster.predict(data, when)
        if not len(frame):
            raise InsufficientDataError(
                f"{subject} has no transaction or event up to {when.isoformat()}"
            )
        if len(frame) > 1:
            raise ConfigError(f"score_one: {len(frame):,} customers given; name one")
        history = customer_history(data, when)
        cuts = rules if rules is not None else self.rules
        row = frame.iloc[0]
        contributions = None
        if explain:
            try:
                contributions = self.forecaster.explain(data, when).iloc[0]
            except ConfigError:  # a model without explanations
                contributions = None
        past = history.iloc[0]
        return CustomerForecast(
            customer_id=str(row[CUSTOMER_ID]),
            as_of=when,
            values={name: _scalar(row.get(name)) for name in FORECAST_COLUMNS},
            segment=str(label_segments(cuts, frame, history).iloc[0]),
            tenure_days=float(past["tenure_days"]),
            purchases=float(past["purchases"]),
            contributions=contributions,
        )

    def contributions(
        self,
        data: CustomerData,
        customer_ids: Iterable[str] | None = None,
        as_of: str | pd.Timestamp | None = None,
    ) -> pd.DataFrame:
        """Each customer's drivers plus ``base_value`` (rows sum to ``predicted_value``).

        Raises
        ------
        ConfigError
            When the model gives no explanations, or a customer has no row up to ``as_of``.
        """
        when = self.resolve_as_of(data, as_of)
        return explain_customers(self.forecaster, data, when, customer_ids)

    def explain(
        self,
        data: CustomerData,
        customer_ids: Iterable[str] | None = None,
        top: int = 5,
        as_of: str | pd.Timestamp | None = None,
    ) -> pd.DataFrame:
        """The ``top`` drivers of each customer's forecast.

        Returns
        -------
        DataFrame
            Long form: ``customer_id``, ``rank`` (1 = strongest), ``feature``,
            ``contribution`` and the customer's ``base_value``.
        """
        table = self.contributions(data, customer_ids, as_of)
        long = top_drivers(table, top)
        long[BASE] = table[BASE].reindex(long[CUSTOMER_ID]).to_numpy()
        return long

    def importance(
        self,
        data: CustomerData,
        as_of: str | pd.Timestamp | None = None,
        max_customers: int = 2000,
    ) -> pd.DataFrame:
        """Global driver importance over an even sample of at most ``max_customers``."""
        when = self.resolve_as_of(data, as_of)
        return global_importance(explain_sample(self.forecaster, data, when, max_customers))

    def save(self, directory: str | Path) -> Path:
        """Write the model directory (forecaster state and manifest; no pickle)."""
        return save_model(self.forecaster, directory, extra=self.manifest)


def load_scoring_model(directory: str | Path) -> ScoringModel:
    """Load a model directory written by :meth:`ScoringModel.save` (or ``ltvcast train``).

    Raises
    ------
    ArtifactError
        When the directory is missing, corrupt or from another artifact schema.
    """
    forecaster, manifest = load_model(directory)
    stored = manifest.get("segment_rules")
    try:
        rules = None if stored is None else FittedSegmentRules.from_dict(stored)
    except ConfigError as err:
        raise ArtifactError(f"{directory}: manifest segment_rules: {err}") from err
    return ScoringModel(forecaster, rules, TrainingSummary.from_manifest(manifest))


def label_segments(
    rules: FittedSegmentRules | None, predictions: pd.DataFrame, history: pd.DataFrame
) -> pd.Series:
    """Segment names of ``predictions`` (indexed by ``customer_id``, in its order);
    :data:`UNSEGMENTED` for everyone when there are no cuts."""
    if rules is None:
        ids = pd.Index(predictions[CUSTOMER_ID].to_numpy(), name=CUSTOMER_ID)
        return pd.Series(UNSEGMENTED, index=ids, name="segment", dtype=object)
    return rules.assign(predictions, history)


def _scalar(value: Any) -> float | None:
    return None if value is None or pd.isna(value) else float(value)
