"""The ledger record walk: every record of the CeFi Event Ledger, read only from receipts that
a verified header commits to.

For each verified block whose (sealed) logs bloom may hold a log of the ledger contract, the
block's receipts are fetched, encoded and hashed into their trie; the root must be the header's
``receiptsRoot``, so no log can be added, altered or withheld. The ledger's logs are then read
in order: ``RoleGranted``/``RoleRevoked`` keep the set of authorised attesters, and each
``RecordsAppended`` gives records whose attestation proofs come from the calldata of the
transaction (each proof is bound to its record by ``attestationId``, its hash, which the
verified log carries). Every record then goes through ``chain.ledger.LedgerWalker``: sequence,
canonical delta, data hash, link, record hash, attestation signature, and the actor's
authorisation at that point of the chain.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from chain import proofs
from chain.abc import LedgerDomain
from chain.ledger import onchain
from chain.ledger.record import LedgerRecord
from chain.ledger.verify import LedgerWalker
from chain.qbft.header import BlockHeader
from observer.abc import ChainSource, RpcTransaction
from observer.blocks import Failure, Sealed


@dataclass
class WalkedRecord:
    """A verified record with where it sits, for exports and proofs."""

    record: LedgerRecord
    block_hash: bytes
    tx_index: int
    tx_hash: bytes


@dataclass
class LedgerWalk:
    source: ChainSource
    domain: LedgerDomain
    require_attestation: bool = True
    keep: bool = False
    """Keep every verified record in ``walked`` (for exports); off for plain verification."""
    walker: LedgerWalker = field(init=False)
    attesters: set[bytes] = field(default_factory=set)
    roles: dict[bytes, set[bytes]] = field(default_factory=dict)
    walked: list[WalkedRecord] = field(default_factory=list)
    count: int = 0

    def __post_init__(self) -> None:
        self.walker = LedgerWalker(self.domain, require_attestation=self.require_attestation,
                                   authorise=self._authorise)

    @property
    def records(self) -> int:
        return self.count

    def _authorise(self, record: LedgerRecord) -> str | None:
        if record.actor in self.roles.get(onchain.ATTESTER_ROLE, set()):
            return None
        return (f"actor 0x{record.actor.hex()} does not hold ATTESTER_ROLE at this point: no "
                "RoleGranted for it (or a later RoleRevoked) in the ledger's verified logs")

    # --- checkpoint state ---------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        rep = self.walker.report
        return {"ledger": "0x" + self.domain.ledger_address.hex(), "seq": rep.head_seq,
                "hash": "0x" + rep.head_hash.hex(), "count": self.count,
                "roles": {"0x" + r.hex(): sorted("0x" + a.hex() for a in accounts)
                          for r, accounts in sorted(self.roles.items())}}

    def resume(self, state: dict[str, Any]) -> None:
        if state.get("ledger") != "0x" + self.domain.ledger_address.hex():
            return  # a checkpoint of another ledger's walk: this one starts afresh
        self.walker = LedgerWalker(self.domain, head_seq=int(state["seq"]),
                                   head_hash=bytes.fromhex(state["hash"][2:]),
                                   require_attestation=self.require_attestation,
                                   authorise=self._authorise)
        self.count = int(state.get("count", 0))
        self.roles = {bytes.fromhex(r[2:]): {bytes.fromhex(a[2:]) for a in accounts}
                      for r, accounts in state.get("roles", {}).items()}

    # --- the walk -----------------------------------------------------------------------------

    def blocks_verified(self, headers: Sequence[BlockHeader], sealed: Sequence[Sealed]
                        ) -> Failure | None:
        address = self.domain.ledger_address
        wanted = [(h, s) for h, s in zip(headers, sealed, strict=False)
                  if proofs.bloom_may_contain(h.logs_bloom, address)]
        if not wanted:
            return None
        answers = self.source.receipts([h.number for h, _ in wanted])
        for (header, block), rpc_receipts in zip(wanted, answers, strict=True):
            failure = self._block(header, block, rpc_receipts)
            if failure is not None:
                return failure
        return None

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
        root = proofs.trie_root([r.encode() for r in receipts])
        if root != header.receipts_root:
            return Failure(
                n, "receipts",
                f"the node's {len(receipts)} receipts hash to 0x{root.hex()}, but the sealed header "
                f"commits to 0x{header.receipts_root.hex()}: the node added, altered, reordered or "
                "withheld a receipt or log", source=name)
        appended: list[tuple[int, bytes, onchain.AppendedRecords]] = []
        for index, (receipt, raw) in enumerate(zip(receipts, rpc_receipts, strict=True)):
            for log in receipt.logs:
                if log.address != self.domain.ledger_address or not log.topics:
                    continue
                topic = log.topics[0]
                if topic in (onchain.ROLE_GRANTED_TOPIC, onchain.ROLE_REVOKED_TOPIC):
                    if appended:
                        # Roles change between records of this block: walk what came before.
                        failure = self._walk(n, block, appended)
                        appended = []
                        if failure is not None:
                            return failure
                    self._role(log, granted=topic == onchain.ROLE_GRANTED_TOPIC)
                elif topic == onchain.RECORDS_APPENDED_TOPIC:
                    try:
                        got = onchain.decode_log(log.topics, log.data, block_number=n,
                                                 timestamp=header.timestamp)
                    except onchain.OnchainFormatError as exc:
                        return Failure(n, "record-log", str(exc))
                    tx_hash = _tx_hash(raw)
                    appended.append((index, tx_hash, got))
        return self._walk(n, block, appended) if appended else None

    def _role(self, log: proofs.ReceiptLog, *, granted: bool) -> None:
        if len(log.topics) != 4:
            return
        role, account = log.topics[1], log.topics[2][12:]
        members = self.roles.setdefault(role, set())
        if granted:
            members.add(account)
        else:
            members.discard(account)

    def _walk(self, n: int, block: Sealed,
              appended: list[tuple[int, bytes, onchain.AppendedRecords]]) -> Failure | None:
        txs = self.source.transactions([tx for _, tx, _ in appended])
        for (index, tx_hash, got), tx in zip(appended, txs, strict=True):
            entries = _entries(tx, tx_hash)
            records = onchain.with_proofs(got.records, entries)
            for record in records:
                finding = self.walker.check(record)
                self.count += 1
                if finding is not None:
                    message = finding.message
                    if finding.check == "attestation" and not entries:
                        message += (f" (the node served no ledger call as transaction "
                                    f"0x{tx_hash.hex()}, which should carry the proof)")
                    return Failure(n, finding.check, message, record=finding.seq)
                if self.keep:
                    self.walked.append(WalkedRecord(record, block.hash, index, tx_hash))
        return None


def _tx_hash(raw: dict[str, Any]) -> bytes:
    value = raw.get("transactionHash")
    if isinstance(value, str) and value.startswith("0x") and len(value) == 66:
        return bytes.fromhex(value[2:])
    return bytes(32)


def _entries(tx: RpcTransaction | None, tx_hash: bytes) -> list[onchain.Entry]:
    """The ledger entries of a transaction's calldata; none if it is not a ledger call."""
    if tx is None or tx.get("hash") != "0x" + tx_hash.hex():
        return []
    data = tx.get("input", tx.get("data"))
    if not isinstance(data, str) or not data.startswith("0x"):
        return []
    try:
        return onchain.decode_calldata(bytes.fromhex(data[2:]))
    except (onchain.OnchainFormatError, ValueError):
        return []
