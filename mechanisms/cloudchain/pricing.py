"""The provider as Stackelberg leader (docs/models/cloudchain.md §Pricing).

The leader sets its unit price; the followers (requesters) answer with their tasks, each served by the
allocation contract. Against a known demand the leader's optimum is the price that maximises its margin on
the units it would win (:func:`leader_price`); observing only its own sales it follows a bounded
best-response step (:func:`best_response_price`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from .contract import allocate
from .model import Provider, Task

COST_SHARE = 0.6
"""A provider's marginal cost per unit as a share of its list price (its floor)."""


def leader_price(provider: Provider, demand: Sequence[Task], others: Sequence[Provider]) -> float:
    """The price maximising ``(P − c)·units won`` when ``demand`` is allocated by the contract among ``provider``
    at price P and ``others`` at theirs. Candidates: the cost, every task's maximum price and every rival's
    price (just under it), capped at twice the list price."""
    cost = COST_SHARE * provider.price
    cands = {round(cost, 6), provider.price}
    cands.update(t.max_price for t in demand if cost <= t.max_price <= 2 * provider.price)
    cands.update(round(o.price * 0.999, 6) for o in others if cost <= o.price * 0.999 <= 2 * provider.price)
    best, best_profit = provider.price, float("-inf")
    for price in sorted(cands):
        me = replace(provider, price=price)
        alloc = allocate(demand, [me, *others])
        units = sum(t.units for t, j in zip(demand, alloc.assignment, strict=True) if j == 0)
        profit = (price - cost) * units
        if profit > best_profit + 1e-12:
            best, best_profit = price, profit
    return best


def best_response_price(provider: Provider, observed_demand_units: float, previous_price: float, *,
                        target: float = 0.8, step: float = 0.05, low_water: float = 0.5) -> float:
    """One step of the provider's price: up by ``step`` (relative) when its utilisation exceeded ``target``,
    down when it fell below ``low_water``, never below its cost nor above twice its list price."""
    utilisation = observed_demand_units / provider.capacity
    price = previous_price
    if utilisation > target:
        price *= 1 + step
    elif utilisation < low_water:
        price *= 1 - step
    return min(2 * provider.price, max(COST_SHARE * provider.price, price))
