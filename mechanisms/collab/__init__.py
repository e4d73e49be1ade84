"""Market ``collab`` (seed 003): publisher budget allocation with CPPI risk, and price regulation."""

from .book import Book, Ladder
from .market import MarketState, clear_market, evaluate_market
from .model import DataGain, Publisher, QuadraticDataGain, Seller
from .optimize import METHODS, optimize_portfolio
from .portfolio import Portfolio
from .pricing import ALGORITHMS, PricingConfig, PricingResult, run_pricing
from .problem import Bounds, PortfolioProblem
from .sgsa import SgsaConfig

__all__ = [
    "ALGORITHMS",
    "METHODS",
    "Book",
    "Bounds",
    "DataGain",
    "Ladder",
    "MarketState",
    "Portfolio",
    "PortfolioProblem",
    "PricingConfig",
    "PricingResult",
    "Publisher",
    "QuadraticDataGain",
    "Seller",
    "SgsaConfig",
    "clear_market",
    "evaluate_market",
    "optimize_portfolio",
    "run_pricing",
]
