"""``bazaar solve`` sub-commands, one module per market (see ``node/cli_registry.py``)."""
