"""A simulated e-commerce store with known ground truth.

:func:`simulate_store` draws customers, their profiles, behaviour events and transactions
from a fully specified generative model and keeps every customer's latent parameters, so
:meth:`SimulatedStore.truth` can state the *exact* expected value of any future window.
It feeds ``ltvcast demo`` (nothing is downloaded), tests with known truth, and stores of
any size: :func:`iter_simulated_chunks` and :func:`write_simulated_store` work chunk by
chunk, in bounded memory.

Generative model (time in days since ``start``, midnight)
---------------------------------------------------------
1. **Acquisition.** Signup times follow a non-homogeneous Poisson process whose intensity
   grows linearly (+60% over the period) and peaks with the retail calendar (cohort
   seasonality). Profiles: ``age`` (18-80), ``gender`` (no effect on behaviour: a null
   feature), ``city_tier`` (1-3), ``channel`` (organic, paid_search, paid_social, referral,
   email), ``device`` (mobile, desktop).
2. **Latent parameters** (Pareto/NBD with gamma-gamma spend, Schmittlein, Morrison &
   Colombo 1987; Fader, Hardie & Lee 2005), each scaled by profile multipliers:

   - a customer is a *never-repeat* customer (purchase rate 0) with a channel-dependent
     probability (20-35%); everyone else has ``purchase_rate`` λ ~ Gamma(0.6, mean 4/year)
     per day at seasonal level 1, times channel, city-tier and age effects; customers
     acquired in the holiday season (15 Nov - 31 Dec) buy 25% less often and churn 30%
     faster;
   - ``dropout_rate`` μ ~ Gamma(1, mean 1/300 per day) times channel effects; the customer
     is alive until ``alive_until`` = signup + Exp(μ) (exponential lifetime);
   - ``spend_mean`` m = 65 · effects · 3 / G with G ~ Gamma(4, 1) (an inverse-gamma order
     value, as in the gamma-gamma model of Colombo & Jiang 1999); an order holds
     ``q = 1 + Poisson(0.5)`` items and is worth Gamma(3q, m / (3 · 1.5)), so E[order] = m;
   - ``return_prob`` ρ ~ Beta(1.2, 10) (younger customers return more); a returned order
     gives back k ~ U{1..q} items (amount · k / q) after 2 + Exp(10) days, as a negative row
     with the same ``order_id``;
   - ``engagement`` ~ Gamma(2, 0.5) (mobile users browse 30% more, desktop 25% less).
3. **Orders.** A fraction of customers (55-65% by channel) registers at checkout and places
   a first order at signup. While alive, orders arrive as a non-homogeneous Poisson process
   with intensity λ · s(t), where s is the seasonal profile of :func:`seasonality`
   (hour of day × day of week × retail calendar: Black Friday, Christmas run-up and
   post-Christmas lull, January and mid-July sales, a mild winter high), drawn exactly
   by time rescaling on an hourly grid (Brown et al. 2002).
4. **Behaviour events** (Moe & Fader 2004: visits precede and predict purchases). Every
   order ends a session of views and clicks, at least one cart and one checkout event, and
   the purchase event at the order time; the session starts 5 minutes to 6 hours before.
   Browse-only sessions (views, clicks, sometimes a cart, rarely an abandoned checkout)
   arrive at rate engagement · (0.02 + 3λ) · s(t), decaying to 20% of that over the 30
   days before ``alive_until`` and to 4% after it (thinning, Lewis & Shedler 1979). So
   recent browsing carries signal about being alive that transactions alone do not.
   Customers who register at checkout have their first session just before signup
   (identity stitched at checkout); the others open a browse session at signup, and
   some of them never buy.
5. **Dirty rows** (``dirty_rate`` > 0): copies of clean rows with a missing customer id,
   an unparsable timestamp or amount (text), exact duplicates, zero amounts (copies of
   sales: keeping them adds no purchase day); events also get unknown event types
   (page, popup_view, search, wishlist: the kinds a Segment-style tracker emits).
   Timestamps and amounts are then text (as read from a raw file), and a share of valid
   timestamps carry a UTC offset (same instant). The clean rows stay the truth:
   :meth:`SimulatedStore.clean_transactions` returns them.

Ground truth (:meth:`SimulatedStore.truth`) is analytic: for a customer alive at ``as_of``
(a) with window end e, E[orders] = λ ∫_a^e s(t) e^{-μ(t-a)} dt, integrated exactly over
the hourly seasonal grid per calendar day (the survival term at the intensity-weighted day
midpoint); the value nets out the expected returns that land inside the window, including
those still pending for orders placed before ``as_of``.

Modules
-------
``_clock`` (seasonality, time rescaling), ``_population`` (signups, profiles, latent
parameters), ``_orders`` (orders, returns, transactions), ``_behaviour`` (events),
``_dirt`` (dirty rows), ``_truth`` (:class:`SimulatedStore`: truth and re-simulation),
``_simulate`` (the draws in order, in memory or by chunk), ``_files`` (writing).

References
----------
Schmittlein, Morrison & Colombo (1987), Counting your customers, Management Science 33(1).
Fader, Hardie & Lee (2005), "Counting your customers" the easy way, Marketing Science 24(2).
Colombo & Jiang (1999), A stochastic RFM model, Journal of Interactive Marketing 13(3).
Moe & Fader (2004), Dynamic conversion behavior at e-commerce sites, Management Science 50(3).
Lewis & Shedler (1979), Simulation of nonhomogeneous Poisson processes by thinning.
Brown, Barbieri, Ventura, Kass & Frank (2002), The time-rescaling theorem, Neural Computation.
"""

from ltvcast.data.synthetic._clock import seasonality
from ltvcast.data.synthetic._files import write_simulated_store, write_store
from ltvcast.data.synthetic._simulate import iter_simulated_chunks, simulate_store
from ltvcast.data.synthetic._truth import SimulatedStore, WindowSamples

__all__ = [
    "SimulatedStore",
    "WindowSamples",
    "iter_simulated_chunks",
    "seasonality",
    "simulate_store",
    "write_simulated_store",
    "write_store",
]
