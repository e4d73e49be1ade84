"""Shipped parameter sets for the offline solvers and scenarios (TOML)."""
