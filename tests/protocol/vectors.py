"""Golden envelope vectors: case definitions and the generator of tests/vectors/envelope.json.

Ed25519 signatures are deterministic (RFC 8032), keys come from ``KeyPair.from_label`` and timestamps are
fixed, so every byte is reproducible. Regenerate (only after a deliberate wire-format change, which must
also bump ``envelope.VERSION`` and docs/protocol.md)::

    python tests/protocol/vectors.py
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bazaar.protocol.envelope import Envelope, seal, sign_bytes
from bazaar.protocol.keys import KeyPair

VECTOR_FILE = Path(__file__).resolve().parents[1] / "vectors" / "envelope.json"
NETWORK_ID = "bazaar-golden"

CASES: list[dict[str, Any]] = [
    {
        "name": "market-price",
        "label": "golden-alice",
        "type": "ai-bazaar/price",
        "market": "ai-bazaar",
        "round": 3,
        "seq": 7,
        "ts": 1_700_000_000_000,
        "body": {"price": 1.25, "demand": [0.5, 2, 0.0], "task": b"\x11" * 32, "note": "ok"},
    },
    {
        "name": "empty-body",
        "label": "golden-bob",
        "type": "sync/ping",
        "market": "",
        "round": 0,
        "seq": 0,
        "ts": 0,
        "body": {},
    },
    {
        "name": "mixed-types",
        "label": "golden-carol",
        "type": "tx/transfer",
        "market": "",
        "round": 0,
        "seq": 2**40,
        "ts": 1_712_345_678_901,
        "body": {
            "amount": 10**12,
            "neg": -5,
            "flag": True,
            "none": None,
            "unicode": "prix en €",
            "nested": {"z": [1, [2, {"y": b""}]], "a": -1.5e-300},
        },
    },
]


def to_json(value: Any) -> Any:
    """Bytes become ``{"$bin": hex}`` so that bodies fit in JSON."""
    if isinstance(value, bytes):
        return {"$bin": value.hex()}
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_json(v) for v in value]
    return value


def from_json(value: Any) -> Any:
    """Inverse of :func:`to_json`."""
    if isinstance(value, dict):
        if set(value) == {"$bin"}:
            return bytes.fromhex(value["$bin"])
        return {k: from_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_json(v) for v in value]
    return value


def seal_case(case: dict[str, Any]) -> Envelope:
    """Seal one case definition."""
    return seal(
        KeyPair.from_label(case["label"]),
        NETWORK_ID,
        case["type"],
        case["body"],
        seq=case["seq"],
        market=case["market"],
        round=case["round"],
        ts=case["ts"],
    )


def build() -> dict[str, Any]:
    """The vector file's content."""
    out = []
    for case in CASES:
        env = seal_case(case)
        out.append(
            {
                "name": case["name"],
                "key_label": case["label"],
                "seed": KeyPair.from_label(case["label"]).seed.hex(),
                "public_key": env.sender.hex(),
                "header": {k: case[k] for k in ("type", "market", "round", "seq", "ts")},
                "body": to_json(case["body"]),
                "payload": env.payload.hex(),
                "sign_bytes": sign_bytes(NETWORK_ID, env.payload).hex(),
                "signature": env.signature.hex(),
                "wire": env.wire.hex(),
                "digest": env.digest.hex(),
            }
        )
    return {"network_id": NETWORK_ID, "version": 1, "vectors": out}


def main() -> None:
    """Write the vector file."""
    VECTOR_FILE.parent.mkdir(parents=True, exist_ok=True)
    VECTOR_FILE.write_text(json.dumps(build(), indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {VECTOR_FILE}")


if __name__ == "__main__":
    main()
