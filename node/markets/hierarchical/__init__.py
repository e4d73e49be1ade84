"""Market ``hierarchical`` on the market layer: CCSPs, MESPs and miners (docs/models/hierarchical.md)."""
