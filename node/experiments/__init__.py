"""``bazaar experiment`` figures, one module per market (see ``node/cli_registry.py``)."""
