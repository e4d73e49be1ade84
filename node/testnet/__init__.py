"""Testnets as data (docs/testnets.md): a scenario, a schedule of perturbations, Byzantine nodes and the invariants
checked at the end, run on a local multi-process network by ``bazaar testnet run``."""

from .plan import ACTIONS, BEHAVIOURS, INVARIANTS, Perturbation, Testnet, load_testnet
from .runner import run_testnet

__all__ = ["ACTIONS", "BEHAVIOURS", "INVARIANTS", "Perturbation", "Testnet", "load_testnet", "run_testnet"]
