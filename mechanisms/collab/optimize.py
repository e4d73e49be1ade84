"""One entry point for every portfolio solver: ``optimize_portfolio(publisher, book, method)``."""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import MechanismError
from .book import Book
from .exhaustive import exhaustive
from .greedy import greedy
from .model import Publisher, Seller
from .newton import newton_continuous
from .portfolio import (
    Portfolio,
    infeasibility_reason,
    infeasible_portfolio,
    make_portfolio,
    round_to_integers,
)
from .problem import PortfolioProblem
from .sgsa import SgsaConfig, sgsa_continuous

METHODS = ("sgsa", "newton", "greedy", "exhaustive")


def optimize_portfolio(publisher: Publisher, book: Book | Sequence[Seller], method: str = "sgsa",
                       integral: bool = True, sgsa: SgsaConfig | None = None) -> Portfolio:
    """Solve the publisher's OPT-1 against a book.

    Args:
        publisher: the buyer.
        book: a ``Book`` or the list of sellers (their full capacities).
        method: ``"sgsa"`` (default), ``"newton"``, ``"greedy"`` or ``"exhaustive"``.
        integral: buy whole shares and data units (``"exhaustive"`` always does). Continuous solvers
            then round their optimum to the best integer neighbour; ``"greedy"`` steps one unit at a time
            either way. With ``integral=False`` the continuous optimum is returned, or its best integer
            neighbour when that is better (both are feasible continuous portfolios).
        sgsa: SGSA tolerances.

    Returns:
        The portfolio; ``feasible=False`` (nothing bought, payoff (1 − ω)·b) when OPT-1 has no feasible point.

    Raises:
        MechanismError: unknown method, or an exhaustive grid too large.
    """
    if method not in METHODS:
        raise MechanismError(f"unknown portfolio method {method!r} (one of {', '.join(METHODS)})")
    if not isinstance(book, Book):
        book = Book.from_sellers(list(book))
    prob = PortfolioProblem(publisher, book)
    if method == "exhaustive":
        res = exhaustive(prob)
        if res is None:
            return infeasible_portfolio(prob, method, "no integer portfolio is feasible")
        return make_portfolio(prob, res[0], res[1], method, res[2])
    if method == "greedy":
        g = greedy(prob, 1.0)
        if g is None:
            return infeasible_portfolio(prob, method, infeasibility_reason(prob) if prob.d_max() < 0 else
                                        "no integer portfolio is feasible")
        return make_portfolio(prob, g[0], g[1], method, g[2])
    d_max = prob.d_max()
    if d_max < 0:
        return infeasible_portfolio(prob, method, infeasibility_reason(prob))
    if method == "sgsa":
        x, D, its = sgsa_continuous(prob, d_max, sgsa)
    else:
        x, D, its = newton_continuous(prob, d_max)
    r = round_to_integers(prob, D, d_max)
    if integral:
        if r is None:
            return infeasible_portfolio(prob, method, "no integer portfolio is feasible")
        return make_portfolio(prob, r[0], r[1], method, its)
    # Integer portfolios are feasible points of the continuous problem too: the continuous answer is never
    # worse than its best integer neighbour (polishes the iterative solvers' last digits).
    continuous = make_portfolio(prob, x, D, method, its)
    if r is not None:
        lattice = make_portfolio(prob, r[0], r[1], method, its)
        if lattice.payoff > continuous.payoff:
            return lattice
    return continuous
