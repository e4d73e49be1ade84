"""Transactions, blocks, the pure state transition, proposer selection, finality and the store."""

from .amounts import UNIT, from_units, to_units
from .apply import apply, block_reward, build_block
from .block import (
    Block,
    Header,
    decode_signed_header,
    merkle_proof,
    merkle_root,
    sign_header,
    verify_merkle_proof,
)
from .chain import Chain, verify_data_dir
from .checks import BlockCheck
from .consensus import (
    lottery_consensus,
    lottery_next,
    lottery_winner,
    make_reveal,
    pol_consensus,
    pol_ranking,
    pol_winner,
    pol_winner_of,
    pos_consensus,
    pos_proposer,
)
from .errors import (
    InvalidAttestation,
    InvalidBlock,
    InvalidTx,
    LedgerError,
    LedgerReason,
    StoreCorrupt,
    UnknownParent,
)
from .evidence import Evidence, check_evidence, evidence_from_blocks
from .execute import check_tx
from .finality import Attestation, Certificate, FinalityTracker, make_attestation, verify_certificate
from .genesis import Genesis, make_genesis
from .state import Escrow, ModelCommit, State, Supply
from .store import MemoryStore, SqliteStore, Store, StoredBlock, StoreError
from .txs import KINDS, decode_tx, make_tx

__all__ = [
    "KINDS",
    "UNIT",
    "Attestation",
    "Block",
    "BlockCheck",
    "Certificate",
    "Chain",
    "Escrow",
    "Evidence",
    "FinalityTracker",
    "Genesis",
    "Header",
    "InvalidAttestation",
    "InvalidBlock",
    "InvalidTx",
    "LedgerError",
    "LedgerReason",
    "MemoryStore",
    "ModelCommit",
    "SqliteStore",
    "State",
    "Store",
    "StoreCorrupt",
    "StoreError",
    "StoredBlock",
    "Supply",
    "UnknownParent",
    "apply",
    "block_reward",
    "build_block",
    "check_evidence",
    "check_tx",
    "decode_signed_header",
    "decode_tx",
    "evidence_from_blocks",
    "from_units",
    "lottery_consensus",
    "lottery_next",
    "lottery_winner",
    "make_attestation",
    "make_genesis",
    "make_reveal",
    "make_tx",
    "merkle_proof",
    "merkle_root",
    "pol_consensus",
    "pol_ranking",
    "pol_winner",
    "pol_winner_of",
    "pos_consensus",
    "pos_proposer",
    "sign_header",
    "to_units",
    "verify_certificate",
    "verify_data_dir",
    "verify_merkle_proof",
]
