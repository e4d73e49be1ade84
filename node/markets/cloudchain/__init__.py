"""Market ``cloudchain`` on the network: providers, requesters (many agents a process) and SLA oracles."""
