"""Walk a sequence of ledger records and name the first one that does not hold.

Checks, per record and in this order: the sequence number follows the one before (a record
removed from the middle shows as a gap); ``data_hash`` is keccak256(delta); ``previous_hash`` is
the record hash before it (or the ledger's anchor); the claimed record hash, when the source
gives one, is the recomputed one; the delta is canonical and carries no personal data; the
attestation proof, when the source gives one, matches ``attestation_id`` and verifies; the
actor is authorised, when the caller says how to tell.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from eth_abi.exceptions import EncodingError

from chain import attest
from chain.abc import AttestationError, LedgerDomain
from chain.ledger.record import LedgerRecord, data_hash, ledger_anchor, parse_delta, record_hash
from chain.ledger.schema import DeltaError, check_delta

Authoriser = Callable[[LedgerRecord], str | None]
"""Returns None if the record's actor may write it, else the reason it may not."""


@dataclass(frozen=True, slots=True)
class Finding:
    seq: int
    block: int
    check: str
    message: str

    def __str__(self) -> str:
        return f"record {self.seq} (block {self.block}): {self.check}: {self.message}"


@dataclass
class LedgerReport:
    checked: int = 0
    head_seq: int = 0
    head_hash: bytes = b""
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings

    @property
    def first_failure(self) -> Finding | None:
        return self.findings[0] if self.findings else None


class LedgerWalker:
    """Incremental verifier: feed records in order with ``check``; state survives between calls,
    so a verification can resume from a checkpoint (``head_seq``, ``head_hash``)."""

    def __init__(
        self,
        domain: LedgerDomain,
        *,
        head_seq: int = 0,
        head_hash: bytes | None = None,
        require_attestation: bool = False,
        authorise: Authoriser | None = None,
    ) -> None:
        self.domain = domain
        self.report = LedgerReport(head_seq=head_seq,
                                   head_hash=head_hash if head_hash else ledger_anchor(domain))
        self.require_attestation = require_attestation
        self.authorise = authorise
        self._computed: bytes | None = None  # the record hash _check computed, reused by check
        self.delta: dict[str, Any] | None = None
        """The last checked record's delta, parsed, once it passed the schema check (else None):
        a fresh dict per record, the caller's to keep or change."""

    def check(self, r: LedgerRecord, *, decoded: bytes | None = None) -> Finding | None:
        """``decoded``: the record hash that ``onchain.decode_log`` computed for ``r`` (its
        ``AppendedRecords.hashes``), for a record taken as decode_log built it (proofs joined
        by ``with_proofs`` or by decode_log's ``proofs``, at most). decode_log set
        ``r.data_hash`` to keccak256(``r.delta``) and hashed ``r``'s fields, the same functions
        over the same bytes as the data_hash check and the record hash here, so both are taken
        rather than computed again; the checks that can fail for such a record (the link, a
        claimed ``record_hash`` such as the log's head hash, the delta, the attestation) run as
        for any other record. Leave it None for records from anywhere else (JSON, a database):
        then everything is hashed."""
        self._computed = None
        self.delta = None
        finding = self._check(r, decoded)
        self.report.checked += 1
        if finding is not None:
            self.report.findings.append(finding)
        # Continue from the hash the next record should link to, so one bad record is reported
        # once rather than again at every record after it.
        self.report.head_seq = r.seq
        if r.record_hash is not None:
            self.report.head_hash = r.record_hash
        else:
            self.report.head_hash = self._computed or _hash_or_zero(r)
        return finding

    def _check(self, r: LedgerRecord, decoded: bytes | None) -> Finding | None:
        rep = self.report

        def fail(check: str, message: str) -> Finding:
            return Finding(r.seq, r.block_height, check, message)

        if r.seq != rep.head_seq + 1:
            if r.seq > rep.head_seq + 1:
                missing = f"{rep.head_seq + 1}" + (f"..{r.seq - 1}" if r.seq > rep.head_seq + 2
                                                   else "")
                return fail("sequence", f"records {missing} are missing before record {r.seq}")
            return fail("sequence", f"expected record {rep.head_seq + 1}, found {r.seq} again")
        if decoded is None:
            computed_data = data_hash(r.delta)
            if computed_data != r.data_hash:
                return fail("data_hash", f"dataHash 0x{r.data_hash.hex()} is not keccak256(delta)"
                                         f" 0x{computed_data.hex()}: the delta or its hash was "
                                         "altered")
        if r.previous_hash != rep.head_hash:
            return fail("link", f"previousHash 0x{r.previous_hash.hex()} does not link to "
                                f"record {rep.head_seq} (0x{rep.head_hash.hex()})")
        if decoded is not None:
            computed = self._computed = decoded
        else:
            try:
                computed = self._computed = record_hash(r)
            except (AttestationError, ValueError, EncodingError) as exc:
                return fail("record_hash", f"the record cannot be hashed as the contract hashes "
                                           f"it ({exc}): a field is not what the contract writes")
        if r.record_hash is not None and r.record_hash != computed:
            return fail("record_hash", f"recordHash 0x{r.record_hash.hex()} is not the hash of "
                                       f"the record's fields 0x{computed.hex()}")
        # The content check comes after the hash checks: a record whose delta is off-schema
        # must still have its hashes and link checked, or a reader that tolerates such
        # records (an indexer) would miss a forgery hidden behind one.
        try:
            delta = parse_delta(r.delta)
            check_delta(r.event_type, delta)
        except DeltaError as exc:
            return fail("delta", str(exc))
        self.delta = delta
        if r.attestation is None:
            if self.require_attestation:
                return fail("attestation", "the attestation proof is missing")
        else:
            if r.attestation.id != r.attestation_id:
                return fail("attestation", "the proof does not match attestationId "
                                           f"0x{r.attestation_id.hex()}")
            try:
                attest.verify(r.event(), self.domain, r.attestation)
            except AttestationError as exc:
                return fail("attestation", str(exc))
        if self.authorise is not None:
            reason = self.authorise(r)
            if reason is not None:
                return fail("authorisation", reason)
        return None


def _hash_or_zero(r: LedgerRecord) -> bytes:
    try:
        return record_hash(r)
    except (AttestationError, ValueError, EncodingError):
        return bytes(32)  # reported at this record; nothing can link to it


def verify_records(
    records: Iterable[LedgerRecord],
    domain: LedgerDomain,
    *,
    require_attestation: bool = False,
    authorise: Authoriser | None = None,
) -> LedgerReport:
    walker = LedgerWalker(domain, require_attestation=require_attestation, authorise=authorise)
    for r in records:
        walker.check(r)
    return walker.report
