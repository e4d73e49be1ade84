"""Choose the consensus driver from the genesis rule."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .base import ConsensusDriver, DriverHost
from .draw import DrawDriver
from .pol import PolDriver
from .pol_models import ModelStore


def make_driver(rule: str, node: DriverHost, *, learning_task: Any | None, data_dir: Path) -> ConsensusDriver:
    """The driver for ``rule``.

    Raises:
        ValueError: ``pol`` without a learning task (the market cannot run on Proof-of-Learning), or an
            unknown rule.
    """
    if rule == "pol":
        if learning_task is None:
            raise ValueError("this market has no learning task, so it cannot run on Proof-of-Learning")
        return PolDriver(node, learning_task, ModelStore(learning_task, data_dir / "models"),
                         fallback_s=node.deadline("block_s"), byzantine=node.config.byzantine)
    if rule in ("pos", "lottery"):
        return DrawDriver(node, rule, fallback_s=node.deadline("block_s"))
    raise ValueError(f"unknown consensus rule {rule!r}")
