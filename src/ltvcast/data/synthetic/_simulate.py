"""Simulating a store: in memory (:func:`simulate_store`) or chunk by chunk.

One pass draws, in this order from one random stream: signups and profiles, latent
parameters, orders, behaviour events, then dirty rows (so the clean tables do not depend
on ``dirty_rate``).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd

from ltvcast.data.schemas import CUSTOMER_ID
from ltvcast.data.synthetic._behaviour import draw_events, empty_events
from ltvcast.data.synthetic._clock import Clock
from ltvcast.data.synthetic._columns import id_array, to_time
from ltvcast.data.synthetic._dirt import dirty_events, dirty_transactions
from ltvcast.data.synthetic._orders import canonical_transactions, draw_orders, order_table
from ltvcast.data.synthetic._population import draw_customers, draw_latent
from ltvcast.data.synthetic._truth import SimulatedStore
from ltvcast.exceptions import ConfigError


def simulate_store(
    n_customers: int = 5000,
    *,
    start: str | pd.Timestamp = "2023-01-01",
    days: int = 730,
    dirty_rate: float = 0.0,
    events: bool = True,
    random_state: int | None = 0,
) -> SimulatedStore:
    """Simulate ``n_customers`` customers of a store over ``days`` days from ``start``.

    Parameters
    ----------
    n_customers
        Customers who sign up during the period (each has a profile).
    start
        First day (midnight); signups begin six hours later.
    days
        Length of the period; ``end = start + days``.
    dirty_rate
        Dirty rows added per clean row of transactions and events (see
        :mod:`ltvcast.data.synthetic`).
    events
        Whether to simulate behaviour events (an empty table otherwise; faster).
    random_state
        Seed; the same seed gives identical tables.
    """
    check_arguments(n_customers, days, dirty_rate)
    rng = np.random.default_rng(random_state)
    return _simulate(n_customers, 0, rng, start, days, dirty_rate, events)


def iter_simulated_chunks(
    n_customers: int,
    chunk_size: int = 500_000,
    *,
    start: str | pd.Timestamp = "2023-01-01",
    days: int = 730,
    dirty_rate: float = 0.0,
    events: bool = True,
    random_state: int | None = 0,
) -> Iterator[SimulatedStore]:
    """Simulate a large store as independent chunks of at most ``chunk_size`` customers.

    Chunks are simulated one at a time, as they are consumed, so memory is bounded by one
    chunk. Customer, order and session ids are unique across chunks. Keywords are those of
    :func:`simulate_store`.

    The chunks are a draw from the same model as ``simulate_store(n_customers)``
    (customers are independent given the model) but not the same draw: each chunk has
    its own signups (ids follow signup order within a chunk) and its own random stream.
    Chunk 0 draws from ``random_state`` itself, chunk k > 0 from the k-th child of
    ``SeedSequence(random_state)``, so a store that fits in one chunk *is*
    ``simulate_store(n_customers)``.
    """
    check_arguments(n_customers, days, dirty_rate)
    if chunk_size < 1:
        raise ConfigError(f"chunk_size must be a positive integer; got {chunk_size}")
    seed = np.random.SeedSequence(random_state)
    for k, offset in enumerate(range(0, n_customers, chunk_size)):
        # child k, made when needed, as seed.spawn(k + 1)[k] would make it
        stream = seed if k == 0 else np.random.SeedSequence(seed.entropy, spawn_key=(k,))
        size = min(chunk_size, n_customers - offset)
        yield _simulate(
            size, offset, np.random.default_rng(stream), start, days, dirty_rate, events
        )


def check_arguments(n_customers: int, days: int, dirty_rate: float) -> None:
    """Raise :class:`~ltvcast.exceptions.ConfigError` for an impossible store size or rate."""
    if n_customers < 1:
        raise ConfigError(f"n_customers must be a positive integer; got {n_customers}")
    if days < 1:
        raise ConfigError(f"days must be a positive integer; got {days}")
    if not 0.0 <= dirty_rate < 1.0:
        raise ConfigError(f"dirty_rate must be in [0, 1); got {dirty_rate}")


def _simulate(
    n: int,
    offset: int,
    rng: np.random.Generator,
    start: str | pd.Timestamp,
    days: int,
    dirty_rate: float,
    with_events: bool,
) -> SimulatedStore:
    """Customers ``offset + 1 .. offset + n`` of a store, drawn from ``rng``."""
    origin = pd.Timestamp(start).normalize()
    end = origin + pd.Timedelta(days=days)
    clock = Clock.seasonal(origin, 0.0, float(days))
    ids = id_array("C", offset + 1 + np.arange(n))

    profile, signup = draw_customers(rng, n, origin, clock, days)
    params = draw_latent(rng, profile, signup, origin)
    orders = draw_orders(rng, params, clock, float(days))
    orders_frame = order_table(orders, ids, origin)
    txn = canonical_transactions(orders_frame, end)
    if with_events:
        ev = draw_events(rng, params, orders, clock, float(days), ids, offset, origin)
    else:
        ev = empty_events()
    if dirty_rate > 0:
        txn = dirty_transactions(rng, txn, dirty_rate)
        ev = dirty_events(rng, ev, dirty_rate)

    stamp = to_time(origin, signup)
    profiles = pd.DataFrame({CUSTOMER_ID: ids, "signup_date": stamp, **profile})
    latent = pd.DataFrame(
        {
            CUSTOMER_ID: ids,
            "signup": stamp,
            "purchase_rate": params["purchase_rate"],
            "dropout_rate": params["dropout_rate"],
            "alive_until": to_time(origin, np.minimum(params["alive_until"], 1e5)),
            "first_order": params["first_order"],
            "spend_mean": params["spend_mean"],
            "return_prob": params["return_prob"],
            "engagement": params["engagement"],
            "browse_rate": params["browse_rate"],
        }
    )
    return SimulatedStore(txn, ev, profiles, latent, orders_frame, origin, end)
