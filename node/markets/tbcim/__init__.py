"""Market ``tbcim`` on the network: requester, edge servers and edge devices (docs/models/tbcim.md)."""
