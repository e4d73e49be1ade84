"""Message schemas of each market (importing a module registers its types)."""
