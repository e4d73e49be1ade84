"""Market ``ai-bazaar`` on the market layer: the CPP (leader) and the AI consumers (followers, PoL miners)."""
