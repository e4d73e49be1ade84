"""A node's own configuration (written by the launcher, or by hand for ``bazaar node --config``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .params import Field, ParamError, check_params, read_toml


@dataclass(frozen=True)
class PeerEntry:
    """Another node of the network: its name, role, account key and listen multiaddr."""

    name: str
    role: str
    key: bytes
    addr: str


@dataclass(frozen=True)
class NodeConfig:
    """Everything one node process needs.

    Attributes:
        name: the node's name in the scenario (``consumer-3``).
        role: its role (``cpp``, ``consumer``, ...).
        data_dir: key, chain database, models, logs.
        genesis: path of the network's genesis JSON.
        scenario: path of the scenario TOML.
        listen: libp2p listen multiaddr (``/ip4/127.0.0.1/tcp/0`` for any port).
        http_port: local status/control port (0 = any; the bound port is written to ``ready.json``).
        peers: the address book (every other node); the first entries double as the bootstrap list.
        log_json: log one JSON object per line.
        byzantine: misbehaviours this node is started with (a testnet's Byzantine node; the names a market's
            spec declares, docs/testnets.md); empty for an honest node.
        clock_skew_ms: added to this node's wall clock (a testnet perturbation); 0 for an honest clock.
        nice: how much the node process lowers its CPU priority at start (``os.nice``; 0: unchanged). The launcher
            sets it for the leaves of a sparse network on one machine (docs/adr/0198).
    """

    name: str
    role: str
    data_dir: Path
    genesis: Path
    scenario: Path
    listen: str = "/ip4/127.0.0.1/tcp/0"
    http_port: int = 0
    peers: tuple[PeerEntry, ...] = field(default=())
    log_json: bool = False
    byzantine: tuple[str, ...] = ()
    clock_skew_ms: int = 0
    nice: int = 0

    def to_toml(self) -> str:
        """Serialise (the launcher writes ``node.toml`` with this)."""
        lines = [
            f'name = "{self.name}"', f'role = "{self.role}"', f'data_dir = "{self.data_dir}"',
            f'genesis = "{self.genesis}"', f'scenario = "{self.scenario}"', f'listen = "{self.listen}"',
            f"http_port = {self.http_port}", f"log_json = {'true' if self.log_json else 'false'}",
            "byzantine = [" + ", ".join(f'"{b}"' for b in self.byzantine) + "]",
            f"clock_skew_ms = {self.clock_skew_ms}", f"nice = {self.nice}", "",
        ]
        for p in self.peers:
            lines += ["[[peers]]", f'name = "{p.name}"', f'role = "{p.role}"', f'key = "{p.key.hex()}"',
                      f'addr = "{p.addr}"', ""]
        return "\n".join(lines)


_TOP = (
    Field("name", "str"), Field("role", "str"), Field("data_dir", "str"), Field("genesis", "str"),
    Field("scenario", "str"), Field("listen", "str", required=False, default="/ip4/127.0.0.1/tcp/0"),
    Field("http_port", "int", required=False, default=0, low=0, high=65535),
    Field("log_json", "bool", required=False, default=False),
    Field("byzantine", "list_str", required=False, default=[]),
    Field("clock_skew_ms", "int", required=False, default=0, low=-86_400_000, high=86_400_000),
    Field("nice", "int", required=False, default=0, low=0, high=19),
)
_PEER = (Field("name", "str"), Field("role", "str"), Field("key", "str"), Field("addr", "str"))


def _peer(raw: Any, i: int) -> PeerEntry:
    if not isinstance(raw, dict):
        raise ParamError(f"peers[{i}]", "expected a table")
    p = check_params(raw, _PEER)
    try:
        key = bytes.fromhex(p["key"])
    except ValueError as err:
        raise ParamError(f"peers[{i}].key", "not hex") from err
    if len(key) != 32:
        raise ParamError(f"peers[{i}].key", "expected a 32-byte Ed25519 public key in hex")
    return PeerEntry(p["name"], p["role"], key, p["addr"])


def load_node_config(path: str | Path, **overrides: Any) -> NodeConfig:
    """Read ``node.toml``; keyword overrides (from CLI flags) win over the file.

    Raises:
        ParamError: naming the key.
    """
    data = read_toml(path)
    peers_raw = data.pop("peers", [])
    if not isinstance(peers_raw, list):
        raise ParamError("peers", "expected [[peers]] tables")
    top = check_params(data, _TOP)
    top.update({k: v for k, v in overrides.items() if v is not None})
    return NodeConfig(
        name=top["name"], role=top["role"], data_dir=Path(top["data_dir"]), genesis=Path(top["genesis"]),
        scenario=Path(top["scenario"]), listen=top["listen"], http_port=top["http_port"],
        peers=tuple(_peer(p, i) for i, p in enumerate(peers_raw)), log_json=top["log_json"],
        byzantine=_byzantine(top["byzantine"]), clock_skew_ms=top["clock_skew_ms"], nice=top["nice"],
    )


def _byzantine(raw: Any) -> tuple[str, ...]:
    if not isinstance(raw, list) or not all(isinstance(b, str) and b for b in raw):
        raise ParamError("byzantine", "expected a list of behaviour names")
    return tuple(raw)
