"""Market apps: the role logic each node runs (one module per market, see ``node/runtime.py:APPS``)."""
