"""Market ``tbcim`` on the network: requester, edge servers and edge devices (SPEC §7)."""
