"""The ledger record walk: every record of the CeFi Event Ledger, read only from receipts that
a verified header commits to.

For each verified block whose (sealed) logs bloom may hold a log of the ledger contract, the
block's receipts are fetched, encoded and hashed into their trie; the root must be the header's
``receiptsRoot``, so no log can be added, altered or withheld. The ledger's logs are then read
in order: ``RoleGranted``/``RoleRevoked`` keep the set of authorised attesters, and each
``RecordsAppended`` gives records whose attestation proofs come from the calldata of the
call's transaction, read from the block's transactions, whose trie root must be the header's
``transactionsRoot`` (and each proof must hash to the ``attestationId`` its record carries).
Every record then goes through ``chain.ledger.LedgerWalker``: sequence, canonical delta, data
hash, link, record hash, attestation signature, and the actor's authorisation at that point of
the chain.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from chain import proofs
from chain.abc import LedgerDomain
from chain.ledger import onchain
from chain.ledger.record import LedgerRecord, ledger_anchor
from chain.ledger.verify import LedgerWalker
from chain.qbft.header import BlockHeader
from observer.abc import ChainSource, RpcTransaction
from observer.blocks import Failure, Sealed, root_mismatch, served_transactions


@dataclass
class WalkedRecord:
    """A verified record with where it sits, for exports and proofs."""

    record: LedgerRecord
    block_hash: bytes
    tx_index: int
    tx_hash: bytes


@dataclass(frozen=True, slots=True)
class Call:
    """One ledger call as the verified receipts show it: its ``RecordsAppended`` log, the
    calldata the node served for its transaction, and the attesters at that point."""

    block: int
    timestamp: int
    block_hash: bytes
    tx_index: int
    tx_hash: bytes
    topics: tuple[bytes, ...]
    data: bytes
    calldata: bytes | None
    attesters: frozenset[bytes]


@dataclass(frozen=True, slots=True)
class RecordJob:
    """Consecutive ledger calls whose records a worker decodes and checks."""

    domain: LedgerDomain
    require_attestation: bool
    calls: tuple[Call, ...]
    keep: bool = False


@dataclass(frozen=True, slots=True)
class RecordResult:
    checked: int
    first_seq: int
    first_link: bytes
    """The first record's sequence number and previousHash: the caller holds them against the
    job before (a worker starts from them, so it cannot)."""
    failure: Failure | None
    head_seq: int
    head_hash: bytes
    walked: tuple[WalkedRecord, ...] = ()
    failed: WalkedRecord | None = None
    """The record that failed (kept jobs only)."""


def _refusal(actor: bytes) -> str:
    return (f"actor 0x{actor.hex()} does not hold ATTESTER_ROLE at this point: no RoleGranted "
            "for it (or a later RoleRevoked) in the ledger's verified logs")


def check_records(job: RecordJob) -> RecordResult:
    """Decode and check the records of ``job``'s calls as ``LedgerWalker`` does: sequence,
    canonical delta, data hash, link, record hash, attestation, the actor's authorisation."""
    walker: LedgerWalker | None = None
    attesters: list[frozenset[bytes]] = [frozenset()]  # the current call's, read by authorise
    first_seq, first_link = 0, b""
    walked: list[WalkedRecord] = []

    def result(failure: Failure | None, failed: WalkedRecord | None = None) -> RecordResult:
        rep = walker.report if walker is not None else None
        return RecordResult(rep.checked if rep else 0, first_seq, first_link, failure,
                            rep.head_seq if rep else 0, rep.head_hash if rep else b"",
                            tuple(walked), failed)

    for call in job.calls:
        attesters[0] = call.attesters
        entries = _entries(call.calldata)
        try:
            got = onchain.decode_log(call.topics, call.data, block_number=call.block,
                                     timestamp=call.timestamp,
                                     proofs={(e.actor, e.nonce): e.attestation for e in entries})
        except onchain.OnchainFormatError as exc:
            return result(Failure(call.block, "record-log", str(exc)))
        records = got.records
        if walker is None:
            first_seq, first_link = records[0].seq, records[0].previous_hash
            walker = LedgerWalker(job.domain, head_seq=first_seq - 1, head_hash=first_link,
                                  require_attestation=job.require_attestation,
                                  authorise=lambda r: None if r.actor in attesters[0]
                                  else _refusal(r.actor))
        # got.hashes: decode_log hashed these very records (their proofs are no part of any
        # hash), so the walker does not hash them again.
        for record, decoded in zip(records, got.hashes, strict=True):
            finding = walker.check(record, decoded=decoded)
            if finding is not None:
                message = finding.message
                if finding.check == "attestation" and not entries:
                    message += (f" (the node served no ledger call as transaction "
                                f"0x{call.tx_hash.hex()}, which should carry it)")
                failed = (WalkedRecord(record, call.block_hash, call.tx_index, call.tx_hash)
                          if job.keep else None)
                return result(Failure(finding.block, finding.check, message, record=finding.seq),
                              failed)
            if job.keep:  # with its hash, which the walk has just computed (or verified)
                walked.append(WalkedRecord(replace(record, record_hash=walker.report.head_hash),
                                           call.block_hash, call.tx_index, call.tx_hash))
    return result(None)


@dataclass
class LedgerWalk:
    """The sequential half of the walk (receipts, logs, roles, proofs); the records themselves
    are checked by ``check_records`` in worker processes, in ``RecordJob``s."""

    source: ChainSource
    domain: LedgerDomain
    require_attestation: bool = True
    keep: bool = False
    """Keep every verified record in ``walked`` (for exports and proofs)."""
    job_records: int = 1000
    """About this many records go into one job."""
    first_slice: int = 2
    max_slice: int = 32
    """Blocks whose receipts are read at once: ``first_slice`` for the first of a run of
    verified blocks, so that workers start early, doubling up to ``max_slice``."""
    roles: dict[bytes, set[bytes]] = field(default_factory=dict)
    walked: list[WalkedRecord] = field(default_factory=list)
    failed: WalkedRecord | None = None
    count: int = 0
    head_seq: int = 0
    head_hash: bytes = b""
    trust_start: bool = False
    """Take the next record's sequence and link as given (records before ``--from``)."""
    _pending: list[tuple[Call, int]] = field(default_factory=list)
    _raw_calls: list[tuple[BlockHeader, Sealed, int, bytes, proofs.ReceiptLog, frozenset[bytes]]] = (
        field(default_factory=list))

    def __post_init__(self) -> None:
        if not self.head_hash:
            self.head_hash = ledger_anchor(self.domain)

    @property
    def records(self) -> int:
        return self.count

    # --- checkpoint state ---------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        return {"ledger": "0x" + self.domain.ledger_address.hex(), "seq": self.head_seq,
                "hash": "0x" + self.head_hash.hex(), "count": self.count,
                "roles": {"0x" + r.hex(): sorted("0x" + a.hex() for a in accounts)
                          for r, accounts in sorted(self.roles.items())}}

    def resume(self, state: dict[str, Any]) -> None:
        if state.get("ledger") != "0x" + self.domain.ledger_address.hex():
            return  # a checkpoint of another ledger's walk: this one starts afresh
        self.head_seq = int(state["seq"])
        self.head_hash = bytes.fromhex(state["hash"][2:])
        self.count = int(state.get("count", 0))
        self.roles = {bytes.fromhex(r[2:]): {bytes.fromhex(a[2:]) for a in accounts}
                      for r, accounts in state.get("roles", {}).items()}

    # --- the sequential half ------------------------------------------------------------------

    def blocks_verified(self, headers: Sequence[BlockHeader], sealed: Sequence[Sealed]
                        ) -> Iterator[RecordJob | Failure]:
        """Record jobs for these verified blocks, each yielded as soon as its blocks' receipts
        and transactions are read (so workers check the first records while the rest are
        fetched); a failure found on the way (receipts, transactions, logs) is yielded last,
        after the jobs for the records before it."""
        wanted = self._wanted(headers, sealed)
        size = self.first_slice
        start = 0
        while start < len(wanted):
            part = wanted[start:start + size]
            start += len(part)
            failure = self._collect(part, with_calldata=True)
            yield from self._jobs(flush=failure is not None or start >= len(wanted))
            if failure is not None:
                yield failure
                return
            size = min(2 * size, self.max_slice)

    def _wanted(self, headers: Sequence[BlockHeader], sealed: Sequence[Sealed]
                ) -> list[tuple[BlockHeader, Sealed]]:
        """The blocks whose (sealed) logs bloom may hold a log of the ledger contract."""
        address = self.domain.ledger_address
        return [(h, s) for h, s in zip(headers, sealed, strict=False)
                if proofs.bloom_may_contain(h.logs_bloom, address)]

    def _collect(self, wanted: Sequence[tuple[BlockHeader, Sealed]], *,
                 with_calldata: bool) -> Failure | None:
        failure: Failure | None = None
        if not wanted:
            return None
        answers = self.source.receipts([h.number for h, _ in wanted])
        for (header, block), rpc_receipts in zip(wanted, answers, strict=True):
            failure = self._block(header, block, rpc_receipts)
            if failure is not None:
                break
        calls, self._raw_calls = self._raw_calls, []
        if not calls or not with_calldata:
            return failure
        # The calls' calldata (which carries the attestation proofs) is read only from
        # transactions the sealed header's transactionsRoot commits to.
        numbers = sorted({c[0].number for c in calls})
        blocks = dict(zip(numbers, self.source.block_transactions(numbers), strict=True))
        verified: dict[int, list[dict[str, Any]]] = {}
        for header in sorted({c[0].number: c[0] for c in calls}.values(), key=lambda h: h.number):
            problem = self._transactions(header, blocks[header.number])
            if problem is not None:
                if failure is None or problem.block < failure.block:
                    failure = problem
                break
            verified[header.number] = blocks[header.number] or []
        for header, block, index, tx_hash, log, attesters in calls:
            txs = verified.get(header.number)
            if txs is None:
                break  # at or after a block whose transactions failed
            tx = txs[index] if index < len(txs) else None
            # The count is a guess for sizing jobs only (a log holds about 100 bytes a record).
            self._pending.append((Call(header.number, header.timestamp, block.hash, index,
                                       tx_hash, log.topics, log.data, _calldata(tx), attesters),
                                  max(1, len(log.data) // 100)))
        return failure

    def _transactions(self, header: BlockHeader, txs: list[dict[str, Any]] | None
                      ) -> Failure | None:
        served = served_transactions(header, txs, self.source.name,
                                     "whose receipts hold ledger calls")
        return served if isinstance(served, Failure) else None

    def _jobs(self, *, flush: bool) -> list[RecordJob]:
        """Jobs of about ``job_records`` records from the pending calls; with ``flush`` the
        rest too, else the rest stays pending for the next blocks."""
        jobs: list[RecordJob] = []
        start = size = 0
        for end, (_, count) in enumerate(self._pending, 1):
            size += count
            if size >= self.job_records or (flush and end == len(self._pending)):
                jobs.append(RecordJob(self.domain, self.require_attestation,
                                      tuple(c for c, _ in self._pending[start:end]), self.keep))
                start, size = end, 0
        self._pending = self._pending[start:]  # part of a job: it goes on with the next blocks
        return jobs

    def _block(self, header: BlockHeader, block: Sealed,
               rpc_receipts: list[dict[str, Any]] | None) -> Failure | None:
        n = header.number
        name = self.source.name
        if rpc_receipts is None:
            return Failure(n, "receipts", "the node has no receipts for this block, whose logs "
                           "bloom says it may hold ledger logs", source=name)
        try:
            receipts = [proofs.Receipt.from_rpc(r) for r in rpc_receipts]
        except proofs.ProofError as exc:
            return Failure(n, "receipts", str(exc), source=name)
        failure = root_mismatch(n, "receipts", [r.encode() for r in receipts],
                                header.receipts_root, "a receipt or log", name)
        if failure is not None:
            return failure
        calls: list[tuple[int, bytes, proofs.ReceiptLog]] = []
        for index, (receipt, raw) in enumerate(zip(receipts, rpc_receipts, strict=True)):
            for log in receipt.logs:
                if log.address != self.domain.ledger_address or not log.topics:
                    continue
                topic = log.topics[0]
                if topic in (onchain.ROLE_GRANTED_TOPIC, onchain.ROLE_REVOKED_TOPIC):
                    # Roles change between calls: the calls before this change see the old set.
                    self._calls(header, block, calls)
                    calls = []
                    self._role(log, granted=topic == onchain.ROLE_GRANTED_TOPIC)
                elif topic == onchain.RECORDS_APPENDED_TOPIC:
                    calls.append((index, _tx_hash(raw), log))
        self._calls(header, block, calls)
        return None

    def _role(self, log: proofs.ReceiptLog, *, granted: bool) -> None:
        if len(log.topics) != 4:
            return
        role, account = log.topics[1], log.topics[2][12:]
        members = self.roles.setdefault(role, set())
        if granted:
            members.add(account)
        else:
            members.discard(account)

    def _calls(self, header: BlockHeader, block: Sealed,
               calls: list[tuple[int, bytes, proofs.ReceiptLog]]) -> None:
        attesters = frozenset(self.roles.get(onchain.ATTESTER_ROLE, ()))
        for index, tx_hash, log in calls:
            self._raw_calls.append((header, block, index, tx_hash, log, attesters))

    # --- the results, in order ----------------------------------------------------------------

    def skip(self, headers: Sequence[BlockHeader], sealed: Sequence[Sealed]) -> Failure | None:
        """Blocks before ``--from``: follow the roles, take their records on trust."""
        failure = self._collect(self._wanted(headers, sealed), with_calldata=False)
        self._pending = []
        self.trust_start = True
        return failure

    def job_done(self, job: RecordJob, result: RecordResult) -> Failure | None:
        if result.first_seq and self.trust_start:
            self.head_seq, self.head_hash = result.first_seq - 1, result.first_link
            self.trust_start = False
        if result.first_seq:
            seq, block = result.first_seq, job.calls[0].block
            if seq != self.head_seq + 1:
                if seq > self.head_seq + 1:
                    missing = f"{self.head_seq + 1}" + (f"..{seq - 1}" if seq > self.head_seq + 2
                                                        else "")
                    message = f"records {missing} are missing before record {seq}"
                else:
                    message = f"expected record {self.head_seq + 1}, found {seq} again"
                return Failure(block, "sequence", message, record=seq)
            if result.first_link != self.head_hash:
                return Failure(block, "link",
                               f"previousHash 0x{result.first_link.hex()} does not link to record "
                               f"{self.head_seq} (0x{self.head_hash.hex()})", record=seq)
        self.count += result.checked
        if result.failure is not None:
            self.walked.extend(result.walked)
            self.failed = result.failed
            return result.failure
        self.head_seq, self.head_hash = result.head_seq, result.head_hash
        self.walked.extend(result.walked)
        return None


def _tx_hash(raw: dict[str, Any]) -> bytes:
    value = raw.get("transactionHash")
    if isinstance(value, str) and value.startswith("0x") and len(value) == 66:
        return bytes.fromhex(value[2:])
    return bytes(32)


def _calldata(tx: RpcTransaction | None) -> bytes | None:
    if tx is None:
        return None
    data = tx.get("input", tx.get("data"))
    if not isinstance(data, str) or not data.startswith("0x"):
        return None
    try:
        return bytes.fromhex(data[2:])
    except ValueError:
        return None


def _entries(calldata: bytes | None) -> list[onchain.Entry]:
    """The ledger entries of a call's calldata; none if it is not a ledger call."""
    if calldata is None:
        return []
    try:
        return onchain.decode_calldata(calldata)
    except onchain.OnchainFormatError:
        return []
