"""Campaign targeting under a budget: whom to contact to maximise expected incremental margin.

Contacting customer *i* costs ``cost_i`` and is expected to return

- ``gain_i = uplift_i * predicted_value_i * margin`` (growth campaign: the contact lifts the
  customer's forecast value by the fraction ``uplift_i``), or
- ``gain_i = uplift_i * (1 - p_active_i) * predicted_value_i * margin`` (churn rescue: the
  value at stake is the forecast weighted by P(churn) = 1 - P(active), and the contact saves the
  fraction ``uplift_i`` of it).

The plan maximises ``sum(gain_i - cost_i)`` over the chosen customers subject to
``sum(cost_i) <= budget``. A customer whose gain does not exceed their cost is never chosen.

Solvers (:func:`select_within_budget`):

- equal costs: take the customers with the largest net gain, as many as the budget pays for;
  this is optimal;
- unequal costs on a cent grid with ``n x budget/resolution <= exact_max_cells``: the exact 0/1
  knapsack by dynamic programming over integer costs;
- otherwise: greedy by net gain per unit cost (skipping customers that no longer fit), or the
  single best customer if that is worth more; this returns at least half of the optimum and the
  summary reports the fractional-knapsack upper bound so the gap is visible.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ltvcast.data.schemas import CUSTOMER_ID
from ltvcast.exceptions import ConfigError, SchemaError
from ltvcast.strategy.segments import SEGMENTS

METHOD_ALL = "every customer worth contacting fits the budget (optimal)"
METHOD_EQUAL = "greedy by net gain (equal costs: optimal)"
METHOD_EXACT = "exact 0/1 knapsack"
METHOD_RATIO = "greedy by gain/cost ratio (>= 1/2 of optimum; see upper_bound)"


@dataclass(frozen=True)
class PlanSummary:
    """Totals of a contact plan.

    ``expected_return`` is the expected incremental margin of the contacts, ``expected_net``
    that minus ``expected_cost``, and ``roi`` is ``expected_net / expected_cost`` (NaN when
    nothing is spent). ``upper_bound`` bounds the best achievable ``expected_net``; it equals
    ``expected_net`` when the method is optimal.
    """

    customers: int
    eligible: int
    contacts: int
    budget: float
    expected_cost: float
    expected_return: float
    expected_net: float
    roi: float
    upper_bound: float
    method: str


@dataclass(frozen=True)
class ContactPlan:
    """The contact list (best expected net gain first) and its :class:`PlanSummary`."""

    contacts: pd.DataFrame
    summary: PlanSummary


def plan_contacts(
    predictions: pd.DataFrame,
    *,
    budget: float,
    cost_per_contact: float | pd.Series,
    uplift: float | pd.Series,
    margin: float = 1.0,
    churn_rescue: bool = False,
    segments: pd.Series | None = None,
    exact_max_cells: int = 20_000_000,
    cost_resolution: float = 0.01,
) -> ContactPlan:
    """Choose whom to contact to maximise expected incremental margin within ``budget``.

    Parameters
    ----------
    predictions
        ``customer_id``, ``predicted_value``, ``p_active`` (a forecaster's output).
    budget
        Total spend allowed (``inf`` for no limit).
    cost_per_contact, uplift
        A constant, or a Series indexed by ``customer_id`` (uplift: see
        :func:`uplift_by_segment`). Uplift is a fraction in [0, 1].
    margin
        Share of revenue that is margin, in (0, 1].
    churn_rescue
        Weigh value by P(churn) = 1 - ``p_active`` (see the module docstring).
    segments
        Optional segment of each customer (indexed by ``customer_id``), copied to the list.
    exact_max_cells, cost_resolution
        Limits of the exact solver for unequal costs (see :func:`select_within_budget`).

    Returns
    -------
    ContactPlan
        ``contacts`` has ``customer_id``, [``segment``], ``predicted_value``, ``p_active``,
        ``value_at_stake``, ``uplift``, ``expected_gain``, ``cost``, ``expected_net``.
    """
    missing = [c for c in (CUSTOMER_ID, "predicted_value", "p_active") if c not in predictions]
    if missing:
        raise SchemaError(f"predictions: missing column(s) {', '.join(map(repr, missing))}")
    if not 0.0 < margin <= 1.0:
        raise ConfigError(f"margin must lie in (0, 1]; got {margin}")
    ids = predictions[CUSTOMER_ID]
    cost = _per_customer(cost_per_contact, ids, "cost per contact")
    lift = _per_customer(uplift, ids, "uplift")
    if (cost < 0).any():
        raise ConfigError(f"cost per contact must be >= 0; got {float(cost.min())}")
    if ((lift < 0) | (lift > 1)).any():
        bad = ids[(lift < 0) | (lift > 1)].head(3).tolist()
        raise ConfigError(f"uplift must lie in [0, 1]; customers {bad} have {lift.max():g}")
    value = predictions["predicted_value"].to_numpy(np.float64)
    p_active = predictions["p_active"].to_numpy(np.float64)
    stake = np.clip(value, 0.0, None) * ((1.0 - p_active) if churn_rescue else 1.0)
    gain = lift * stake * margin
    chosen, method, bound = select_within_budget(
        gain,
        cost,
        budget,
        exact_max_cells=exact_max_cells,
        cost_resolution=cost_resolution,
    )
    table = pd.DataFrame(
        {
            CUSTOMER_ID: ids.to_numpy(),
            "predicted_value": value,
            "p_active": p_active,
            "value_at_stake": stake,
            "uplift": lift,
            "expected_gain": gain,
            "cost": cost,
            "expected_net": gain - cost,
        }
    )
    if segments is not None:
        table.insert(1, "segment", segments.reindex(ids).to_numpy())
    contacts = (
        table[chosen]
        .sort_values(["expected_net", CUSTOMER_ID], ascending=[False, True], kind="stable")
        .reset_index(drop=True)
    )
    spent = float(contacts["cost"].sum())
    returned = float(contacts["expected_gain"].sum())
    summary = PlanSummary(
        customers=len(table),
        eligible=int((gain > cost).sum()),
        contacts=len(contacts),
        budget=float(budget),
        expected_cost=spent,
        expected_return=returned,
        expected_net=returned - spent,
        roi=(returned - spent) / spent if spent > 0 else float("nan"),
        upper_bound=bound,
        method=method,
    )
    return ContactPlan(contacts=contacts, summary=summary)


def select_within_budget(
    gain: np.ndarray,
    cost: np.ndarray,
    budget: float,
    *,
    exact_max_cells: int = 20_000_000,
    cost_resolution: float = 0.01,
) -> tuple[np.ndarray, str, float]:
    """Maximise ``sum(gain - cost)`` over a subset with ``sum(cost) <= budget``.

    Only items with ``gain > cost`` are ever chosen. See the module docstring for the solvers.
    The exact solver needs every cost to be a multiple of ``cost_resolution`` and
    ``items x budget / cost_resolution <= exact_max_cells``.

    Returns
    -------
    tuple
        Boolean mask of chosen items, the method used, and an upper bound on the optimum.
    """
    if np.isnan(budget) or budget < 0:
        raise ConfigError(f"budget must be >= 0; got {budget}")
    gain = np.asarray(gain, dtype=np.float64)
    cost = np.asarray(cost, dtype=np.float64)
    net = gain - cost
    eligible = np.flatnonzero(net > 0)
    chosen = np.zeros(len(gain), dtype=bool)
    if cost[eligible].sum() <= budget:  # everyone worth contacting is affordable
        chosen[eligible] = True
        return chosen, METHOD_ALL, float(net[eligible].sum())
    if _equal(cost[eligible]):
        each = float(cost[eligible[0]])
        order = eligible[np.argsort(-net[eligible], kind="stable")]
        chosen[order[: int(np.floor(budget / each + 1e-9))]] = True
        return chosen, METHOD_EQUAL, float(net[chosen].sum())
    units = np.round(cost[eligible] / cost_resolution)
    on_grid = np.allclose(units * cost_resolution, cost[eligible], rtol=0.0, atol=1e-9)
    capacity = int(np.floor(budget / cost_resolution + 1e-9))
    if on_grid and len(eligible) * (capacity + 1) <= exact_max_cells:
        picked = _knapsack(net[eligible], units.astype(np.int64), capacity)
        chosen[eligible[picked]] = True
        return chosen, METHOD_EXACT, float(net[chosen].sum())
    picked, bound = _greedy_by_ratio(net[eligible], cost[eligible], budget)
    chosen[eligible[picked]] = True
    return chosen, METHOD_RATIO, bound


def uplift_by_segment(segments: pd.Series, table: Mapping[str, float]) -> pd.Series:
    """Uplift of each customer from their segment; segments absent from ``table`` get 0.

    Raises
    ------
    ConfigError
        When ``table`` names a segment that does not exist (a typo would silently zero it).
    """
    unknown = sorted(set(table) - set(SEGMENTS))
    if unknown:
        raise ConfigError(
            f"uplift table names unknown segment(s) {unknown}; known: {', '.join(SEGMENTS)}"
        )
    return segments.map(dict(table)).fillna(0.0).astype(np.float64).rename("uplift")


def read_uplift_table(path: str | Path) -> dict[str, float]:
    """Read a CSV with columns ``segment,uplift`` (one row per segment)."""
    try:
        frame = pd.read_csv(path, dtype={"segment": str})
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise SchemaError(f"{path}: cannot read uplift table ({err})") from err
    missing = [col for col in ("segment", "uplift") if col not in frame.columns]
    if missing:
        raise SchemaError(
            f"{path}: missing column(s) {', '.join(map(repr, missing))}; "
            "expected a CSV with columns segment,uplift"
        )
    uplift = pd.to_numeric(frame["uplift"], errors="coerce")
    bad = frame.index[uplift.isna() | (uplift < 0) | (uplift > 1)]
    if len(bad):
        rows = ", ".join(str(i + 2) for i in bad[:3])
        raise SchemaError(
            f"{path}: column 'uplift' must be a number in [0, 1]; {len(bad)} rows are not "
            f"(lines {rows})"
        )
    duplicated = frame["segment"][frame["segment"].duplicated()].unique().tolist()
    if duplicated:
        raise SchemaError(f"{path}: column 'segment' repeats {duplicated}")
    return dict(zip(frame["segment"], uplift.astype(float), strict=True))


def _per_customer(value: float | pd.Series, ids: pd.Series, name: str) -> np.ndarray:
    """A constant or a Series indexed by customer id, as an array aligned with ``ids``."""
    if not isinstance(value, pd.Series):
        if np.isnan(value):
            raise ConfigError(f"{name} must be a number; got {value}")
        return np.full(len(ids), float(value))
    aligned = value.reindex(ids.to_numpy())
    absent = ids[aligned.isna().to_numpy()]
    if len(absent):
        raise ConfigError(
            f"{name} is missing for {len(absent)} customers (e.g. {absent.head(3).tolist()})"
        )
    return aligned.to_numpy(np.float64)


def _equal(cost: np.ndarray) -> bool:
    return bool(len(cost) == 0 or np.ptp(cost) <= 1e-12 * max(1.0, float(np.abs(cost).max())))


def _knapsack(net: np.ndarray, weight: np.ndarray, capacity: int) -> np.ndarray:
    """Exact 0/1 knapsack by dynamic programming; returns the mask of chosen items.

    One vectorised pass over capacities per item (``O(items x capacity)`` time and bits).
    """
    best = np.zeros(capacity + 1)
    take = np.zeros((len(net), capacity + 1), dtype=bool)
    for i, (value, w) in enumerate(zip(net, weight, strict=True)):
        if w > capacity:
            continue
        candidate = np.full(capacity + 1, -np.inf)
        candidate[w:] = best[: capacity + 1 - w] + value
        take[i] = candidate > best
        best = np.maximum(best, candidate)
    picked = np.zeros(len(net), dtype=bool)
    room = capacity
    for i in range(len(net) - 1, -1, -1):
        if take[i, room]:
            picked[i] = True
            room -= int(weight[i])
    return picked


def _greedy_by_ratio(net: np.ndarray, cost: np.ndarray, budget: float) -> tuple[np.ndarray, float]:
    """Greedy by ``net / cost`` (skipping items that no longer fit) vs the best single item.

    Returns the chosen mask and the fractional-knapsack (Dantzig) upper bound on the optimum.
    """
    with np.errstate(divide="ignore"):
        ratio = np.where(cost > 0, net / np.where(cost > 0, cost, 1.0), np.inf)
    order = np.argsort(-ratio, kind="stable")
    sorted_cost = cost[order]
    fits = np.cumsum(sorted_cost) <= budget
    stop = int(np.argmin(fits)) if not fits.all() else len(order)
    bound = float(net[order[:stop]].sum())
    if stop < len(order):
        room = budget - float(sorted_cost[:stop].sum())
        bound += net[order[stop]] * room / sorted_cost[stop]
    picked = np.zeros(len(net), dtype=bool)
    room = budget
    start = 0
    while start < len(order):  # each pass takes the prefix of what still fits
        positions = start + np.flatnonzero(sorted_cost[start:] <= room)
        if not len(positions):
            break
        within = np.cumsum(sorted_cost[positions]) <= room
        taken = positions if within.all() else positions[: int(np.argmin(within))]
        picked[order[taken]] = True
        room -= float(sorted_cost[taken].sum())
        start = len(order) if within.all() else int(positions[len(taken)]) + 1
    affordable = np.flatnonzero(cost <= budget)
    single = affordable[np.argmax(net[affordable])] if len(affordable) else None
    if single is not None and net[single] > net[picked].sum():
        picked[:] = False
        picked[single] = True
    return picked, bound
