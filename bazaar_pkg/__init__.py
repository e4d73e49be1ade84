"""Bazaar: a peer-to-peer compute-power market (see README.md and docs/)."""

__version__ = "0.1.0"
