"""Besu-identical QBFT formats and rules; see docs/formats.md for the bytes."""

from chain.qbft.extra_data import Encoding, ExtraData, ExtraDataError, Vote
from chain.qbft.genesis import Genesis, GenesisError, QbftSettings, build_genesis
from chain.qbft.hashing import block_hash, commit_seal_hash
from chain.qbft.header import BFT_MIX_HASH, BlockHeader, HeaderError
from chain.qbft.proposer import select_proposer
from chain.qbft.quorum import future_round_change_quorum, quorum, vote_threshold
from chain.qbft.seals import SealError, recover, sign
from chain.qbft.verify import SealedBlock, verify_commit_seals, verify_header
from chain.qbft.votes import EpochSchedule, ValidatorHistory, VoteTally

__all__ = [
    "BFT_MIX_HASH",
    "BlockHeader",
    "Encoding",
    "EpochSchedule",
    "ExtraData",
    "ExtraDataError",
    "Genesis",
    "GenesisError",
    "HeaderError",
    "QbftSettings",
    "SealError",
    "SealedBlock",
    "ValidatorHistory",
    "Vote",
    "VoteTally",
    "block_hash",
    "build_genesis",
    "commit_seal_hash",
    "future_round_change_quorum",
    "quorum",
    "recover",
    "select_proposer",
    "sign",
    "verify_commit_seals",
    "verify_header",
    "vote_threshold",
]
