"""Transactions, blocks, the pure state transition, proposer selection, finality and the store."""
