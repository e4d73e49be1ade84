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


# the reasons each code folder may raise: its own enum and those of the layers below it
MAY_RAISE: dict[str, tuple[type[StrEnum], ...]] = {
    "protocol": (ProtocolReason,),
    "ledger": (LedgerReason, ProtocolReason),
    "node": (NodeReason, LedgerReason, ProtocolReason),
}
REQUESTER = {"unavailable", "timeout", "refused", "bad-answer"}  # RequestFailed: what a requester saw


@pytest.mark.parametrize("folder", sorted(MAY_RAISE))
def test_every_raised_reason_is_documented(folder: str) -> None:
    known = {m.value for enum in MAY_RAISE[folder] for m in enum} | (REQUESTER if folder == "node" else set())
    assert {(f, r) for f, r in raised_reasons(folder) if r not in known} == set()


@pytest.mark.parametrize("folder", sorted(MAY_RAISE))
def test_every_enum_member_named_in_the_code_exists(folder: str) -> None:
    enums = {e.__name__: e for e in (ProtocolReason, LedgerReason, NodeReason)}
    missing = set()
    for path in (ROOT / folder).rglob("*.py"):
        for enum, member in re.findall(r"\b(ProtocolReason|LedgerReason|NodeReason)\.([A-Z][A-Z0-9_]*)\b",
                                       path.read_text()):
            if member not in enums[enum].__members__:
                missing.add((str(path.relative_to(ROOT)), f"{enum}.{member}"))
    assert missing == set()


def test_the_scan_sees_literal_reasons() -> None:
    sample = 'raise InvalidTx("bad-nonce", "x")\nraise SchemaError("d", reason="unknown-type")\n    reason = "gap"\n'
    assert {r for pattern in PATTERNS for r in pattern.findall(sample)} == {"bad-nonce", "unknown-type", "gap"}


def test_one_error_base_with_reason_and_detail() -> None:
    for err in (ProtocolError("d", reason="schema"), LedgerError("bad-nonce", "d")):
        assert isinstance(err, BazaarError) and err.reason in {"schema", "bad-nonce"} and err.detail == "d"
    assert ProtocolError("x").reason == ProtocolReason.PROTOCOL_ERROR == "protocol-error"
