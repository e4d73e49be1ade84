"""``bazaar chain verify|show`` for people: one verdict line; blocks and accounts as tables with node names and
amounts in tokens (``--json`` prints the ledger's documents unchanged)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .output import names_of_data_dir, short_key, show, table, tokens


def verify_line(data_dir: Path, report: dict[str, Any]) -> str:
    """``bazaar chain verify`` in one sentence: what was re-checked, or where it first failed."""
    if report.get("ok"):
        supply = report.get("supply") or {}
        total = sum(v for k, v in supply.items() if k != "burned" and isinstance(v, int)) - supply.get("burned", 0)
        return (f"ok: {data_dir} — {report.get('height')} blocks re-verified (hashes, signatures, state roots, "
                f"certificates), finalized height {report.get('finalized_height')}, tokens conserved "
                f"({tokens(total)} tokens in supply), network {report.get('network_id')}")
    return (f"FAILED: {data_dir} — at height {report.get('height')}: {report.get('error')}"
            + (f" (finalized height held {report.get('finalized_height')})"
               if report.get("finalized_height") is not None else ""))


def show_chain(data_dir: Path, exported: dict[str, Any]) -> None:
    """``bazaar chain show``: the blocks (proposer by name), then the accounts (balances, stake, escrow)."""
    names = names_of_data_dir(data_dir)
    blocks = [(b["height"], b["hash"][:16], short_key(b.get("proposer"), names), len(b.get("txs", [])),
               tokens(b.get("reward")) if isinstance(b.get("reward"), int) else b.get("reward"))
              for b in exported.get("blocks", [])]
    show(table(f"chain of {data_dir} (finalized height {exported.get('finalized_height')})",
               ("height", "hash", "proposer", "txs", "reward (tokens)"), blocks,
               right=("height", "txs", "reward (tokens)")))
    escrowed: dict[str, int] = {}
    for esc in (exported.get("escrow") or {}).values():
        if isinstance(esc, dict) and isinstance(esc.get("amount"), int):
            owner = str(esc.get("payer") or esc.get("owner") or "")
            escrowed[owner] = escrowed.get(owner, 0) + esc["amount"]
    balances = exported.get("balances") or {}
    stake = exported.get("stake") or {}
    keys = sorted(set(balances) | set(stake), key=lambda k: (k not in names, names.get(k, k)))
    accounts = [(short_key(k, names), tokens(balances.get(k, 0)), tokens(stake.get(k, 0)),
                 tokens(escrowed.get(k, 0))) for k in keys]
    supply = exported.get("supply") or {}
    show(table("accounts", ("account", "balance (tokens)", "stake (tokens)", "in escrow (tokens)"), accounts,
               right=("balance (tokens)", "stake (tokens)", "in escrow (tokens)"),
               caption="supply: " + ", ".join(f"{k} {tokens(v)}" for k, v in supply.items() if isinstance(v, int))))
