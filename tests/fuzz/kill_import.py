"""SIGKILL during block import (issue #12), shared by tests/fuzz/test_kill_import.py and
benchmarks/kill_import.py.

A prepared ``pos`` chain (blocks with transfers and escrows, a finality certificate for every block) is
imported by a child process into a node-shaped data directory (``genesis.json``, ``chain.sqlite3``,
``finalized.json``) exactly as a syncing node does: ``Chain.import_block`` then ``Chain.add_certificate`` and the
durable finalized note (``record_finalized``) per block. The parent SIGKILLs the child at a random instant of
the import; then the data directory must verify (``bazaar chain verify``: every hash, signature, state root
and certificate from genesis, no recorded-final block missing), its finalized height must be at least the last
one the child reported as durable, and a restarted importer must resync it to the prepared head.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bazaar.ledger.block import Block
from bazaar.ledger.chain import Chain
from bazaar.ledger.finality import Certificate, FinalityTracker, make_attestation
from bazaar.ledger.store import MemoryStore
from bazaar.node.chaintools import verify_data_dir
from bazaar.protocol import codec
from tests.ledger.helpers import NID, Net

ROOT = Path(__file__).resolve().parents[2]
CHILD = (
    "import sys; sys.path.insert(0, sys.argv[1]); from tests.fuzz.kill_import import child; "
    "child(sys.argv[2], sys.argv[3])"
)
CHILD_DEADLINE_S = 120.0


def prepare_chain(blocks: int, folder: Path) -> Path:
    """Build a certified chain of ``blocks`` blocks; returns the file holding ``{genesis, blocks, certs}``."""
    from bazaar.ledger import bls

    net = Net("pos", stakes=[1, 1, 1])
    chain = Chain(MemoryStore(), net.genesis)
    raws, certs = [], []
    for i in range(blocks):
        txs = [net.tx("alice", "transfer", to=net.acct("bob"), amount=1 + i),
               net.tx("carol", "transfer", to=net.acct("dave"), amount=2 + i)]
        if i % 5 == 0:
            txs.append(net.tx("bob", "escrow_lock", id=i.to_bytes(32, "big"), payee=net.acct("alice"), amount=3,
                              expires=10**6))
        key, proof = net.proposer_and_proof(chain.state)
        block, _ = chain.build_and_import(key, txs, timestamp_ms=chain.state.timestamp_ms + 1000, consensus=proof)
        net.state = chain.state
        tracker = FinalityTracker(NID)
        cert: Certificate | None = None
        for v in net.validators:
            att = make_attestation(bls.bls_keygen(v.seed), v.public, NID, block.height, block.hash)
            cert = tracker.add(att, chain.validator_set(block.height)) or cert
        assert cert is not None
        chain.add_certificate(cert)
        raws.append(block.encode())
        certs.append(cert.encode())
    path = folder / "prepared.msgpack"
    path.write_bytes(codec.encode({"genesis": json.dumps(net.genesis.to_dict(json=True)), "blocks": raws,
                                   "certs": certs, "head": chain.head_hash}))
    return path


def child(data_dir: str, prepared: str) -> None:
    """The importer (run in a child process): resume from the store's head, import and finalize every
    prepared block, printing ``ready``, then ``final H`` once height ``H``'s certificate and note are durable,
    then ``done``."""
    from bazaar.ledger.genesis import Genesis
    from bazaar.ledger.store import SqliteStore
    from bazaar.node.chaintools import record_finalized

    d = Path(data_dir)
    doc = codec.decode(Path(prepared).read_bytes())
    genesis = Genesis.from_dict(json.loads(doc["genesis"]))
    if not (d / "genesis.json").exists():
        (d / "genesis.json").write_text(doc["genesis"])
    store = SqliteStore.in_dir(d)
    chain = Chain(store, genesis)  # re-verifies what the killed importer left
    print("ready", chain.height, chain.finalized_height, flush=True)
    for raw, cert_raw in zip(doc["blocks"], doc["certs"], strict=True):
        block = Block.decode(raw, genesis.network_id)
        if block.height > chain.height:
            chain.import_block(block)
        if block.height > chain.finalized_height:
            chain.add_certificate(Certificate.decode(cert_raw))
            record_finalized(d, block.height, block.hash)
            print("final", block.height, flush=True)
    print("done", chain.height, flush=True)
    store.close()


@dataclass
class KillReport:
    """Figures of a kill campaign."""

    kills: int = 0
    verified: int = 0
    resynced: int = 0
    lost_final: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    heights_at_kill: list[int] = field(default_factory=list)
    restart_s: list[float] = field(default_factory=list)
    wall_s: float = 0.0

    def to_json(self) -> dict[str, Any]:
        """The figures as one JSON object."""
        rs = sorted(self.restart_s)

        def q(p: float) -> float | None:
            return round(rs[min(len(rs) - 1, int(p * len(rs)))], 3) if rs else None

        return {"kills": self.kills, "verified_after_kill": self.verified, "resynced_to_head": self.resynced,
                "finalized_blocks_lost": len(self.lost_final), "failures": self.failures[:20],
                "distinct_heights_at_kill": len(set(self.heights_at_kill)),
                "resync_s_p50": q(0.5), "resync_s_p95": q(0.95), "wall_s": round(self.wall_s, 1)}


def _spawn(data_dir: Path, prepared: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", CHILD, str(ROOT), str(data_dir), str(prepared)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _durable_final(lines: list[str]) -> int:
    finals = [int(x.split()[1]) for x in lines if x.startswith("final ")]
    return max(finals, default=0)


def run_kills(kills: int, folder: Path, *, blocks: int = 60, seed: int = 0) -> KillReport:
    """``kills`` SIGKILLs at random instants of an import, each followed by verify and (the next cycle's)
    resync; a cycle whose importer finished before the kill starts over from an empty data directory."""
    rng = random.Random(seed)
    report = KillReport()
    start = time.monotonic()
    prepared = prepare_chain(blocks, folder)
    doc = codec.decode(prepared.read_bytes())
    head = doc["head"]
    # how long one whole import takes here, to draw kill instants inside it
    probe = folder / "probe"
    probe.mkdir()
    t0 = time.monotonic()
    proc = _spawn(probe, prepared)
    out, err = proc.communicate(timeout=CHILD_DEADLINE_S)
    full_s = time.monotonic() - t0
    if proc.returncode != 0 or "done" not in out:
        report.failures.append(f"uninterrupted import failed: {err[-500:]}")
        return report
    data = folder / "node"
    data.mkdir()
    cycle = 0
    while report.kills < kills:
        cycle += 1
        for f in data.iterdir():  # every cycle imports the prepared chain from nothing
            f.unlink()
        proc = _spawn(data, prepared)
        time.sleep(rng.uniform(0.0, full_s))  # the child runs on its own; the instant of the kill is drawn
        if proc.poll() is not None:  # it finished first: draw again
            out, _ = proc.communicate()
            if "done" not in out:
                report.failures.append(f"cycle {cycle}: importer exited {proc.returncode} without finishing")
            continue
        os.kill(proc.pid, signal.SIGKILL)  # our own child, by PID
        out, _ = proc.communicate(timeout=CHILD_DEADLINE_S)
        report.kills += 1
        durable = _durable_final(out.splitlines())
        if (data / "chain.sqlite3").exists():
            verdict = verify_data_dir(data)
            if not verdict.get("ok"):
                report.failures.append(f"kill {report.kills}: chain verify failed: {verdict.get('error')}")
                continue
            held_final = int(verdict.get("finalized_height") or 0)
            report.heights_at_kill.append(int(verdict.get("height") or 0))
        else:  # killed before the store was created (interpreter start-up)
            held_final = 0
            report.heights_at_kill.append(0)
        report.verified += 1
        if held_final < durable:
            report.lost_final.append(f"kill {report.kills}: child reported {durable} final, store holds {held_final}")
        # restart: the importer re-verifies what is left and resyncs to the prepared head
        t1 = time.monotonic()
        proc = _spawn(data, prepared)
        out, err = proc.communicate(timeout=CHILD_DEADLINE_S)
        report.restart_s.append(time.monotonic() - t1)
        verdict = verify_data_dir(data)
        if proc.returncode == 0 and "done" in out and verdict.get("ok") and verdict.get("head") == head.hex() \
                and verdict.get("finalized_height") == len(doc["blocks"]):
            report.resynced += 1
        else:
            report.failures.append(f"kill {report.kills}: resync failed: rc={proc.returncode} {err[-300:]} "
                                   f"{ {k: verdict.get(k) for k in ('ok', 'height', 'finalized_height', 'error')} }")
    report.wall_s = time.monotonic() - start
    return report
