"""The ledger event record, its canonical encoding, its hash chain and its verifier."""

from chain.ledger.record import (
    LedgerRecord,
    build_record,
    canonical_delta,
    data_hash,
    ledger_anchor,
    parse_delta,
    record_hash,
)
from chain.ledger.schema import SCHEMAS, DeltaError, PersonalDataError, check_delta
from chain.ledger.verify import Finding, LedgerReport, LedgerWalker, verify_records

__all__ = [
    "SCHEMAS",
    "DeltaError",
    "Finding",
    "LedgerRecord",
    "LedgerReport",
    "LedgerWalker",
    "PersonalDataError",
    "build_record",
    "canonical_delta",
    "check_delta",
    "data_hash",
    "ledger_anchor",
    "parse_delta",
    "record_hash",
    "verify_records",
]
