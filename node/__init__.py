"""The trio runtime: libp2p host, roles, chain sync, CLI. The only package that does network I/O."""
