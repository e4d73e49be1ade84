"""Network commands of the CLI: node, net, round, chain, demo (filled in by the node runtime)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the network sub-commands to the top-level parser."""
