"""Market ``collab`` (seed 003): publisher budget allocation with CPPI risk, and price regulation."""

from .book import Book, Ladder
from .model import DataGain, Publisher, QuadraticDataGain, Seller
from .optimize import METHODS, optimize_portfolio
from .portfolio import Portfolio
from .problem import Bounds, PortfolioProblem
from .sgsa import SgsaConfig

__all__ = [
    "METHODS",
    "Book",
    "Bounds",
    "DataGain",
    "Ladder",
    "Portfolio",
    "PortfolioProblem",
    "Publisher",
    "QuadraticDataGain",
    "Seller",
    "SgsaConfig",
    "optimize_portfolio",
]
