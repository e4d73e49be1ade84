"""The node's chain service, split by job: import and proposing, finality, sync, own nonces, hooks."""
