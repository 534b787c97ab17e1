"""The next best action of each customer: the catalogue action with the largest expected
incremental value, or no contact when none pays for itself.

Every action has an ``uplift`` (a fraction) and a ``cost`` per contact, the assumptions
:func:`~ltvcast.strategy.plan.plan_contacts` takes, and a kind that says which value it moves:

- *growth* actions lift the forecast: ``gain = uplift * value * margin``;
- the *rescue* action saves part of what a churn would lose: ``gain = uplift * (1 - p_active) *
  value * margin`` (``plan --churn-rescue``'s value at stake).

``value`` is the forecast ``predicted_value``, less ``risk_aversion`` times its downside band
``predicted_value - value_p10`` where the forecasts have intervals (a contact is decided on a
value that is likely, not only expected). An action's expected incremental value is ``gain -
cost``; no contact is worth 0. The default catalogue (:data:`DEFAULT_CATALOGUE`):

===========================  ======  ============================================  ======  ====
action                       kind    eligible customers                            uplift  cost
===========================  ======  ============================================  ======  ====
retention_offer              rescue  repeat buyers with P(active) < ``at_risk``     0.10    1
second_purchase_incentive    growth  one purchase day so far                       0.10    1
cross_sell                   growth  P(active) >= ``at_risk``, items to recommend  0.05    1
loyalty_perk                 growth  the champions segment                         0.03    1
no_contact                   --      everyone                                      --      0
===========================  ======  ============================================  ======  ====

Uplifts and costs are assumptions to replace with the shop's own (a CSV ``action,uplift,cost``:
:func:`read_catalogue`); the eligibility rules are fixed and documented here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from ltvcast.data.schemas import CUSTOMER_ID
from ltvcast.exceptions import ConfigError, SchemaError
from ltvcast.strategy.segments import CHAMPIONS

RETENTION_OFFER = "retention_offer"
SECOND_PURCHASE = "second_purchase_incentive"
CROSS_SELL = "cross_sell"
LOYALTY_PERK = "loyalty_perk"
NO_CONTACT = "no_contact"

#: Columns :func:`next_best_actions` adds.
ACTION_COLUMNS = ("action", "action_value", "action_reason")


@dataclass(frozen=True)
class Action:
    """One contact a CRM team can make: what it moves (``kind``), by how much, at what cost."""

    name: str
    kind: Literal["growth", "rescue"]
    uplift: float
    cost: float


#: The catalogue's actions with their default assumptions (see the module docstring).
DEFAULT_CATALOGUE = (
    Action(RETENTION_OFFER, "rescue", 0.10, 1.0),
    Action(SECOND_PURCHASE, "growth", 0.10, 1.0),
    Action(CROSS_SELL, "growth", 0.05, 1.0),
    Action(LOYALTY_PERK, "growth", 0.03, 1.0),
)
ACTIONS = (*(action.name for action in DEFAULT_CATALOGUE), NO_CONTACT)


def next_best_actions(
    scored: pd.DataFrame,
    *,
    catalogue: tuple[Action, ...] = DEFAULT_CATALOGUE,
    margin: float = 1.0,
    at_risk: float = 0.5,
    risk_aversion: float = 0.5,
    has_items: pd.Series | None = None,
) -> pd.DataFrame:
    """The next best action of every customer of ``scored``.

    Parameters
    ----------
    scored
        :meth:`~ltvcast.pipeline.ScoringModel.score`'s table: ``customer_id``, ``segment``,
        ``predicted_value``, ``p_active``, ``purchases`` and, when the model has them,
        ``value_p10``.
    catalogue
        The actions and their assumptions (:func:`read_catalogue`); an action left out is never
        chosen.
    margin
        Share of revenue that is margin, in (0, 1].
    at_risk
        P(active) below which a repeat buyer is at risk.
    risk_aversion
        Share of the downside band ``predicted_value - value_p10`` taken off the value, in [0, 1].
    has_items
        Whether each customer (indexed by ``customer_id``) has items to recommend; cross-sell
        needs them (absent: nobody does).

    Returns
    -------
    DataFrame
        ``customer_id`` and :data:`ACTION_COLUMNS`, in the order of ``scored``:
        ``action_value`` is the chosen action's expected incremental value (0 for no contact),
        ``action_reason`` the figures that decided it.
    """
    missing = [
        col
        for col in (CUSTOMER_ID, "segment", "predicted_value", "p_active", "purchases")
        if col not in scored
    ]
    if missing:
        raise SchemaError(f"scored customers: missing column(s) {', '.join(map(repr, missing))}")
    if not 0.0 < margin <= 1.0:
        raise ConfigError(f"margin must lie in (0, 1]; got {margin}")
    for name, share in (("at_risk", at_risk), ("risk_aversion", risk_aversion)):
        if not 0.0 <= share <= 1.0:
            raise ConfigError(f"{name} must lie in [0, 1]; got {share}")
    ids = scored[CUSTOMER_ID]
    expected = np.clip(scored["predicted_value"].to_numpy(np.float64), 0.0, None)
    value = expected
    if "value_p10" in scored:
        low = np.clip(scored["value_p10"].to_numpy(np.float64), 0.0, expected)
        value = expected - risk_aversion * (expected - low)
    p_active = scored["p_active"].to_numpy(np.float64)
    purchases = scored["purchases"].fillna(0.0).to_numpy(np.float64)
    items = (
        np.zeros(len(ids), dtype=bool)
        if has_items is None
        else has_items.reindex(ids.to_numpy()).fillna(False).to_numpy(bool)
    )
    eligible = {
        RETENTION_OFFER: (purchases > 1) & (p_active < at_risk),
        SECOND_PURCHASE: purchases <= 1,
        CROSS_SELL: (p_active >= at_risk) & items,
        LOYALTY_PERK: scored["segment"].to_numpy() == CHAMPIONS,
    }
    stake = {"growth": value, "rescue": (1.0 - p_active) * value}
    names = [NO_CONTACT]
    nets = [np.zeros(len(ids))]
    for action in catalogue:
        gain = action.uplift * stake[action.kind] * margin
        nets.append(np.where(eligible[action.name], gain - action.cost, -np.inf))
        names.append(action.name)
    net = np.vstack(nets)
    best = np.argmax(net, axis=0)  # ties keep the earlier: no contact first
    chosen = np.asarray(names)[best]
    action_value = net[best, np.arange(len(ids))]
    by_name = {action.name: action for action in catalogue}
    reasons = [
        _reason(name, by_name.get(name), p, v, s, margin)
        for name, p, v, s in zip(
            chosen,
            p_active,
            value,
            np.where(chosen == RETENTION_OFFER, stake["rescue"], value),
            strict=True,
        )
    ]
    return pd.DataFrame(
        {
            CUSTOMER_ID: ids.to_numpy(),
            "action": chosen,
            "action_value": action_value,
            "action_reason": reasons,
        }
    )


def _reason(
    name: str, action: Action | None, p_active: float, value: float, stake: float, margin: float
) -> str:
    """The two or three figures that decided a customer's action."""
    if action is None:
        return f"no action pays for its cost (P(active) {p_active:.2f}, value {value:,.2f})"
    at_stake = "value at risk" if action.kind == "rescue" else "value"
    kept = "" if margin == 1.0 else f" x margin {margin:g}"
    return (
        f"P(active) {p_active:.2f}; {at_stake} {stake:,.2f} x uplift {action.uplift:.0%}{kept}"
        f" = {action.uplift * stake * margin:,.2f} > cost {action.cost:,.2f}"
    )


def read_catalogue(path: str | Path) -> tuple[Action, ...]:
    """The default catalogue with the uplifts and costs of a CSV ``action,uplift,cost``.

    Actions the file leaves out keep their defaults; an uplift of 0 switches an action off.
    """
    try:
        frame = pd.read_csv(path, dtype={"action": str})
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise SchemaError(f"{path}: cannot read the action catalogue ({err})") from err
    missing = [col for col in ("action", "uplift", "cost") if col not in frame.columns]
    if missing:
        raise SchemaError(
            f"{path}: missing column(s) {', '.join(map(repr, missing))}; "
            "expected a CSV with columns action,uplift,cost"
        )
    known = {action.name: action for action in DEFAULT_CATALOGUE}
    unknown = sorted(set(frame["action"]) - set(known))
    if unknown:
        raise SchemaError(
            f"{path}: column 'action' names unknown action(s) {unknown}; known: {', '.join(known)}"
        )
    duplicated = frame["action"][frame["action"].duplicated()].unique().tolist()
    if duplicated:
        raise SchemaError(f"{path}: column 'action' repeats {duplicated}")
    uplift = pd.to_numeric(frame["uplift"], errors="coerce")
    cost = pd.to_numeric(frame["cost"], errors="coerce")
    for column, values, ok in (
        ("uplift", uplift, (uplift >= 0) & (uplift <= 1)),
        ("cost", cost, (cost >= 0) & np.isfinite(cost)),
    ):
        bad = frame.index[values.isna() | ~ok]
        if len(bad):
            rows = ", ".join(str(i + 2) for i in bad[:3])
            rule = "a number in [0, 1]" if column == "uplift" else "a number >= 0"
            raise SchemaError(
                f"{path}: column '{column}' must be {rule}; {len(bad)} rows are not (lines {rows})"
            )
    for name, lift, price in zip(frame["action"], uplift, cost, strict=True):
        known[name] = replace(known[name], uplift=float(lift), cost=float(price))
    return tuple(known.values())


def action_mix(actions: pd.DataFrame, segments: pd.Series | None = None) -> pd.DataFrame:
    """Customers and expected incremental value per action (per segment and action with
    ``segments``, a Series indexed by ``customer_id``).

    ``actions`` holds one row per customer, or the long recommendation table (one row per
    customer and item; each customer counts once).

    Returns
    -------
    DataFrame
        [``segment``], ``action``, ``customers``, ``share`` (of all customers) and
        ``expected_value`` (the sum of ``action_value``), catalogue order.
    """
    once = actions.drop_duplicates(CUSTOMER_ID)
    keys = ["action"]
    if segments is not None:
        once = once.assign(segment=segments.reindex(once[CUSTOMER_ID].to_numpy()).to_numpy())
        keys = ["segment", "action"]
    mix = (
        once.groupby(keys, sort=False)
        .agg(customers=(CUSTOMER_ID, "size"), expected_value=("action_value", "sum"))
        .reset_index()
    )
    return _shared(mix, keys, len(once))


def merge_action_mix(mixes: Iterable[pd.DataFrame]) -> pd.DataFrame:
    """One :func:`action_mix` of the mixes of disjoint sets of customers (e.g. customer
    buckets): customers and values add up, shares are of all of them."""
    parts = [mix.drop(columns="share") for mix in mixes]
    keys = [col for col in parts[0].columns if col in ("segment", "action")]
    mix = pd.concat(parts).groupby(keys, sort=False).sum().reset_index()
    return _shared(mix, keys, int(mix["customers"].sum()))


def _shared(mix: pd.DataFrame, keys: list[str], total: int) -> pd.DataFrame:
    """``mix`` (``keys``, ``customers``, ``expected_value``) with each row's share of
    ``total`` customers, in catalogue order."""
    mix.insert(len(keys) + 1, "share", mix["customers"] / max(total, 1))
    order = {name: i for i, name in enumerate(ACTIONS)}
    mix["_order"] = mix["action"].map(order)
    return (
        mix.sort_values([*keys[:-1], "_order"], kind="stable")
        .drop(columns="_order")
        .reset_index(drop=True)
    )
