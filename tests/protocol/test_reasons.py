"""Reject reasons are a documented, tested contract: the tables of docs/protocol.md §5 equal the enums, and
every reason literal the code raises is one of them."""

from __future__ import annotations

import re
from enum import StrEnum
from pathlib import Path

import pytest

from bazaar.ledger.errors import LedgerError, LedgerReason
from bazaar.node.reasons import NodeReason
from bazaar.protocol.errors import BazaarError, ProtocolError, ProtocolReason

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "protocol.md"
TABLES: dict[str, type[StrEnum]] = {"Protocol reasons": ProtocolReason, "Ledger reasons": LedgerReason,
                                     "Node reasons": NodeReason}


def documented(title: str) -> set[str]:
    """The reason codes of one table of docs/protocol.md §5."""
    text = DOC.read_text()
    section = text.split(f"### {title}\n", 1)[1].split("\n### ", 1)[0].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `([a-z-]+)` \|", section, flags=re.M))


@pytest.mark.parametrize("title", sorted(TABLES))
def test_the_tables_equal_the_enums(title: str) -> None:
    assert documented(title) == {m.value for m in TABLES[title]}


PATTERNS = (
    re.compile(r'\b(?:InvalidTx|InvalidBlock|InvalidAttestation|UnknownParent|LedgerError|StoreError|Refuse|'
               r'RequestFailed)\(\s*"([a-z-]+)"'),
    re.compile(r'\breason="([a-z-]+)"'),
    re.compile(r'^\s+reason = "([a-z-]+)"', re.M),
)


def raised_reasons(folder: str) -> set[tuple[str, str]]:
    """``(file, reason)`` for every reason literal in a code folder."""
    found = set()
    for path in (ROOT / folder).rglob("*.py"):
        text = path.read_text()
        for pattern in PATTERNS:
            found |= {(str(path.relative_to(ROOT)), r) for r in pattern.findall(text)}
    return found


@pytest.mark.parametrize("folder", ["protocol", "ledger", "node"])
def test_every_raised_reason_is_documented(folder: str) -> None:
    known = {m.value for enum in TABLES.values() for m in enum}
    known |= {"unavailable", "timeout", "refused", "bad-answer"}  # RequestFailed: what a requester saw
    assert {(f, r) for f, r in raised_reasons(folder) if r not in known} == set()


def test_one_error_base_with_reason_and_detail() -> None:
    for err in (ProtocolError("d", reason="schema"), LedgerError("bad-nonce", "d")):
        assert isinstance(err, BazaarError) and err.reason in {"schema", "bad-nonce"} and err.detail == "d"
    assert ProtocolError("x").reason == ProtocolReason.PROTOCOL_ERROR == "protocol-error"
