"""Market ``hierarchical`` on the market layer: CCSPs, MESPs and miners (SPEC §8)."""
