"""Shipped testnets (docs/testnets.md): package data read by ``bazaar testnet run NAME``."""
