"""Ledger throughput: tx apply rate and block import vs raw Ed25519 verification; BLS backends.

Run: ``python benchmarks/bench_ledger.py [--quick]``. Every figure is printed with the baseline measured in
the same run (raw Ed25519 verification of the same transactions; py-ecc for BLS).
"""

from __future__ import annotations

import argparse
import time

from bazaar.ledger import bls
from bazaar.ledger.apply import apply, build_block
from bazaar.ledger.block import Block
from bazaar.ledger.consensus import pos_consensus, pos_proposer
from bazaar.ledger.genesis import make_genesis
from bazaar.ledger.state import State
from bazaar.ledger.txs import make_tx
from bazaar.protocol.envelope import open_envelope
from bazaar.protocol.keys import KeyPair

NID = "bench"


def _timeit(fn, repeat: int) -> float:  # type: ignore[no-untyped-def]
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def bench_apply(n_txs: int, repeat: int) -> None:
    users = [KeyPair.from_label(f"user-{i}") for i in range(50)]
    vals = [KeyPair.from_label(f"val-{i}") for i in range(4)]
    genesis = make_genesis(
        NID, "pos", balances={u.public: 10**9 for u in users}, validator_keys=vals, stake=10
    )
    state = State.from_genesis(genesis)
    nonces = dict.fromkeys(range(len(users)), 0)
    txs = []
    for i in range(n_txs):
        s = i % len(users)
        nonces[s] += 1
        body = {"to": users[(s + 1) % len(users)].public, "amount": 1, "nonce": nonces[s]}
        txs.append(make_tx(users[s], NID, "transfer", body).wire)
    key = next(v for v in vals if v.public == pos_proposer(state))
    proof = pos_consensus(bls.bls_keygen(key.seed), NID, 1)
    block, _, rejected = build_block(state, genesis, key, txs, timestamp_ms=1, consensus=proof)
    assert not rejected
    raw = block.encode()

    t_verify = _timeit(lambda: [open_envelope(t, NID) for t in txs], repeat)
    t_import = _timeit(lambda: apply(state, Block.decode(raw, NID), genesis), repeat)
    t_build = _timeit(lambda: build_block(state, genesis, key, txs, timestamp_ms=1, consensus=proof), repeat)
    print(f"block of {n_txs} transfers ({len(raw) / 1024:.0f} KiB), 50 accounts")
    print(f"  baseline: Ed25519 open_envelope {t_verify * 1e3:8.1f} ms  ({n_txs / t_verify:8.0f} tx/s)")
    print(
        f"  import (decode+apply+root)      {t_import * 1e3:8.1f} ms  ({n_txs / t_import:8.0f} tx/s)"
        f"  ratio {t_import / t_verify:5.2f}x"
    )
    print(
        f"  build_block (proposer)          {t_build * 1e3:8.1f} ms  ({n_txs / t_build:8.0f} tx/s)"
        f"  ratio {t_build / t_verify:5.2f}x"
    )


def bench_bls(n_signers: int, quick: bool) -> None:
    sks = [bls.keygen(bytes([i + 1]) * 32) for i in range(n_signers)]
    pks = [bls.sk_to_pk(sk) for sk in sks]
    msg = b"bazaar/attest/v1 bench"
    agg = bls.aggregate([bls.sign(sk, msg) for sk in sks])
    t_fast = _timeit(lambda: bls.FAST.fast_aggregate_verify(pks, msg, agg), 5)
    t_ref = _timeit(lambda: bls.REFERENCE.fast_aggregate_verify(pks, msg, agg), 1)
    print(f"BLS fast_aggregate_verify, {n_signers} signers")
    print(
        f"  baseline py-ecc {t_ref * 1e3:9.1f} ms;  pyblst {t_fast * 1e3:7.2f} ms;"
        f"  speed-up {t_ref / t_fast:7.0f}x"
    )


def main() -> None:
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes (seconds)")
    args = parser.parse_args()
    bench_apply(200 if args.quick else 2000, 2 if args.quick else 3)
    bench_bls(4 if args.quick else 16, args.quick)


if __name__ == "__main__":
    main()
