"""Market ``collab`` on the network: publishers, edge devices and the resource pool (docs/models/collab.md)."""
