"""``bazaar sim``: the deployed role apps over the in-memory transport in one process, on a virtual clock
(docs/sim.md)."""
