"""Fuzz live node processes over libp2p (issue #12), shared by tests/fuzz/test_live.py and
benchmarks/fuzz_live.py.

A hostile libp2p peer (its own key, outside the address book) joins a loopback network started by the launcher
and sends: gossip on the chain and market topics (structural messages of every registered type drawn by
hypothesis, byte mutations of valid envelopes, raw junk), direct requests on every protocol the nodes serve
(well-framed fuzzed requests), and raw streams with lying frame headers and truncated frames. Afterwards every
node process must be alive, answer ``GET /status`` and log no error-level event, and a round must still settle
on every node.
"""

from __future__ import annotations

import json
import re
import struct
import textwrap
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio
from hypothesis import strategies as st

from bazaar.deploy import scenario_file
from bazaar.node import launcher
from bazaar.node.httpapi import http_json
from bazaar.node.rounds.driver import run_rounds
from bazaar.node.waiting import wait_until_async
from bazaar.protocol import KeyPair, codec, seal
from bazaar.protocol.chainmsg import PROTO_MODEL, PROTO_SYNC, chain_topic, market_protocol, market_topic
from bazaar.protocol.envelope import now_ms
from bazaar.protocol.messages import REGISTRY, registered_types
from bazaar.protocol.p2p import open_libp2p_transport, peer_id_for
from bazaar.protocol.transport import MAX_GOSSIP, PeerUnavailable, RemoteRejected

from .campaign import collect
from .strategies import bodies, msgpack_values, mutations

MARKET = "ai-bazaar"
NETWORK_ID = "bazaar-fuzzlive"
REQUEST_TIMEOUT_S = 5.0


def write_scenario(folder: Path) -> Path:
    """A four-process ai-bazaar network (the CPP and three consumers, the smallest shipped parameter set) for
    the live fuzzer."""
    params = scenario_file("ai-bazaar").parent / "params"
    path = folder / "fuzz-live.toml"
    path.write_text(textwrap.dedent(f"""
        name = "fuzz-live"
        market = "ai-bazaar"
        network_id = "{NETWORK_ID}"
        consensus = "pol"

        [roles]
        cpp = 1
        consumer = 3

        [economy]
        initial_balance = 100000.0
        stake = 100.0
        block_reward = 40.0
        reward_per_tx = 0.5

        [deadlines]
        demand_s = 3.0
        mining_s = 2.0
        block_s = 10.0
        final_s = 10.0

        [mechanism]
        steps_per_unit = 0.5
        max_steps = 50

        [mechanism.param_sets]
        small3 = "{params / 'ai-bazaar-small3.toml'}"

        [[phases]]
        name = "eq"
        params = "small3"
        mode = "equilibrium"
        rounds = 100
        """))
    return path


@dataclass(frozen=True)
class LiveCase:
    """One hostile act: ``channel`` is gossip-chain, gossip-market, request or raw-stream."""

    channel: str
    payload: Any
    target: int
    how: str


def live_cases(wires: list[bytes]) -> st.SearchStrategy[LiveCase]:
    """Gossip of structural messages and mutations, fuzzed direct requests, raw frames that lie."""

    @st.composite
    def structural(draw: st.DrawFn) -> LiveCase:
        mtype = draw(st.sampled_from(registered_types()))
        body = draw(bodies(REGISTRY.schema(mtype)))
        channel = draw(st.sampled_from(["gossip-chain", "gossip-market", "request"]))
        return LiveCase(channel, (mtype, body, draw(st.integers(0, 2**20))), draw(st.integers(0, 7)), "structural")

    @st.composite
    def mutated(draw: st.DrawFn) -> LiveCase:
        return LiveCase(draw(st.sampled_from(["gossip-chain", "gossip-market", "request"])), draw(mutations(wires)),
                        draw(st.integers(0, 7)), "mutation")

    @st.composite
    def raw_request(draw: st.DrawFn) -> LiveCase:
        value = draw(st.one_of(st.fixed_dictionaries({"from": st.integers(-(2**63), 2**64 - 1)}),
                               st.fixed_dictionaries({"hash": st.binary(max_size=40)}), msgpack_values()))
        data = draw(st.one_of(st.just(codec.encode(value)), st.binary(max_size=80)))
        return LiveCase("request-raw", data, draw(st.integers(0, 7)), "raw")

    @st.composite
    def raw_stream(draw: st.DrawFn) -> LiveCase:
        announced = draw(st.sampled_from([0, 1, 100, 2**20, 2**24, 0xFFFFFFF0, 0xFFFFFFFF]))
        body = draw(st.binary(max_size=64))
        return LiveCase("raw-stream", (announced, body), draw(st.integers(0, 7)), "raw-frame")

    return st.one_of(structural(), structural(), mutated(), raw_request(), raw_stream())


@dataclass
class LiveReport:
    """What the hostile peer sent and what the nodes did about it."""

    sent: Counter[str] = field(default_factory=Counter)
    remote_rejected: Counter[str] = field(default_factory=Counter)
    request_outcomes: Counter[str] = field(default_factory=Counter)
    rejected_by_nodes: dict[str, int] = field(default_factory=dict)
    alive: bool = False
    status_answers: bool = False
    error_events: list[str] = field(default_factory=list)
    round_after: dict[str, Any] = field(default_factory=dict)
    stream_failures: dict[str, int] = field(default_factory=dict)
    wall_s: float = 0.0

    @property
    def frames(self) -> int:
        """Frames (messages, requests, raw streams) sent."""
        return sum(self.sent.values())

    def to_json(self) -> dict[str, Any]:
        """The figures as one JSON object."""
        return {"frames": self.frames, "sent": dict(self.sent), "remote_rejected": dict(self.remote_rejected),
                "request_outcomes": dict(self.request_outcomes),
                "rejected_by_nodes_by_reason": self.rejected_by_nodes, "alive": self.alive,
                "status_answers": self.status_answers, "error_events": self.error_events[:20],
                "stream_failures_logged": self.stream_failures, "round_after": self.round_after,
                "wall_s": round(self.wall_s, 1)}


BUG_TYPES = ("TypeError", "KeyError", "AttributeError", "IndexError", "AssertionError", "ZeroDivisionError",
             "OverflowError", "RecursionError", "UnboundLocalError", "NameError", "UnicodeDecodeError")
"""Exception types that name a bug of ours when a request handler lets one escape (the transport then only
resets the stream and logs a warning: peers' own faults are OversizeError, PeerUnavailable, stream resets)."""
_FAILED = re.compile(r"request on (\S+) from \S+ failed: (\w+)")


def _node_errors(net: Path) -> list[str]:
    """Error-level events, tracebacks, and request handlers that failed with a bug's exception type, in the
    nodes' logs (a node's own bug that a catch-all kept alive)."""
    out = []
    for log in sorted((net / "nodes").glob("*/node.log")):
        for line in log.read_text(errors="replace").splitlines():
            parts = line.split(" ", 3)
            failed = _FAILED.search(line)
            if ((len(parts) > 2 and parts[1] == "E") or line.startswith("Traceback")
                    or (failed is not None and failed.group(2) in BUG_TYPES)):
                out.append(f"{log.parent.name}: {line[:300]}")
    return out


def handler_failures(net: Path) -> dict[str, int]:
    """``protocol exception-type -> count`` of the request-handler failures the nodes logged."""
    counts: Counter[str] = Counter()
    for log in sorted((net / "nodes").glob("*/node.log")):
        for m in _FAILED.finditer(log.read_text(errors="replace")):
            counts[f"{m.group(1)} {m.group(2)}"] += 1
    return dict(counts.most_common())


async def fuzz_live(net: Path, n: int, *, seed: int = 0, pace_s: float = 0.002) -> LiveReport:
    """Send ``n`` hostile acts to the running network in ``net``, then check liveness and one round."""
    report = LiveReport()
    start = time.monotonic()
    info = launcher.NetDir(net).load()
    nodes = list(info["nodes"].values())
    network_id = json.loads((net / "genesis.json").read_text())["network_id"]
    topics = [chain_topic(network_id), market_topic(network_id, MARKET)]
    rogue = KeyPair.generate()
    before = [await http_json(n_["http_port"], "GET", "/status", timeout=10) for n_ in nodes]
    errors_before = len(_node_errors(net))
    seq = now_ms() * 1000
    wires = [seal(rogue, network_id, "chain/txs", {"txs": [b"x" * 8]}, seq=seq).wire,
             seal(rogue, network_id, "ai-bazaar/price", {"price": 1.0}, seq=seq + 1, market=MARKET).wire]
    protocols = [PROTO_SYNC, PROTO_MODEL, market_protocol(MARKET)]
    peers = [(bytes.fromhex(n_["key"]), n_["listen"]) for n_ in nodes]
    cases = collect(live_cases(wires), n, seed)
    async with open_libp2p_transport(rogue, peers=peers, topics=topics) as t:
        await wait_until_async(lambda: all(t.mesh_peers(tp) for tp in topics), timeout=60,
                               what="a gossip mesh peer on both topics")
        for case in cases:
            key = peers[case.target % len(peers)][0]
            if case.how == "structural":
                mtype, body, _ = case.payload
                seq += 1
                try:
                    data = seal(rogue, network_id, mtype, body, seq=seq,
                                market=MARKET if case.channel != "gossip-chain" else "").wire
                except (TypeError, ValueError, OverflowError):
                    continue
            else:
                data = case.payload
            report.sent[case.channel] += 1
            if case.channel.startswith("gossip"):
                topic = topics[0] if case.channel == "gossip-chain" else topics[1]
                if len(data) > MAX_GOSSIP:  # a hostile peer ignores our send cap: straight to pubsub (< 1 MiB)
                    await t._ps.publish(topic, bytes(data))
                else:
                    await t.publish(topic, data)
            elif case.channel == "raw-stream":
                await _raw_stream(t, key, protocols[case.target % len(protocols)], *data)
            else:
                protocol = market_protocol(MARKET) if case.channel == "request" else \
                    protocols[case.target % len(protocols)]
                await _request(t, key, protocol, data, report)
            await trio.sleep(pace_s)
    # the nodes must all be alive and answering, and log nothing at error level
    await trio.sleep(1.0)  # let the last gossip drain before reading the counters (not a wait for an event)
    rows = await trio.to_thread.run_sync(lambda: launcher.net_status(net)["nodes"])
    report.alive = all(r["alive"] for r in rows)
    after = []
    for n_ in nodes:
        try:
            after.append(await http_json(n_["http_port"], "GET", "/status", timeout=10))
        except Exception:
            after.append(None)
    report.status_answers = all(a is not None for a in after)
    reasons: Counter[str] = Counter()
    for b, a in zip(before, after, strict=True):
        if a is None:
            continue
        for reason, count in a.get("rejected", {}).items():
            reasons[reason] += count - b.get("rejected", {}).get(reason, 0)
    report.rejected_by_nodes = {r: c for r, c in reasons.most_common() if c}
    report.error_events = _node_errors(net)[errors_before:]
    report.stream_failures = handler_failures(net)
    summary = (await trio.to_thread.run_sync(lambda: list(run_rounds(net, 1))))[0]
    report.round_after = {k: summary.get(k) for k in ("round", "final", "final_everywhere", "height", "left_out")}
    report.wall_s = time.monotonic() - start
    return report


async def _request(t: Any, key: bytes, protocol: str, data: bytes, report: LiveReport) -> None:
    try:
        await t.request(key, protocol, data, timeout=REQUEST_TIMEOUT_S)
        report.request_outcomes["answered"] += 1
    except RemoteRejected as err:
        report.request_outcomes["rejected"] += 1
        report.remote_rejected[err.reason] += 1
    except PeerUnavailable:
        report.request_outcomes["reset"] += 1
    except trio.TooSlowError:
        report.request_outcomes["timeout"] += 1
    except ValueError:
        report.request_outcomes["not-sent"] += 1


async def _raw_stream(t: Any, key: bytes, protocol: str, announced: int, body: bytes) -> None:
    """Open a stream and send a frame header announcing ``announced`` bytes, then ``body`` (usually fewer)."""
    host: Any = t._host
    with trio.move_on_after(REQUEST_TIMEOUT_S):
        try:
            stream = await host.new_stream(peer_id_for(key), [protocol])
            await stream.write(struct.pack(">I", announced) + body)
            await stream.close()
        except Exception:
            return
