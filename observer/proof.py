"""Self-contained proofs of one ledger record, checked offline from the genesis file alone.

A proof file is canonical JSON (RFC 8785), every byte of which is checked:

- ``record``: the record as exported (``LedgerRecord.to_json``), with its attestation proof;
- ``block``: the sealed header (RLP, commit seals included) of the block holding it, the
  index of the receipt and of the ``RecordsAppended`` log in it, and the Merkle-Patricia proof
  of that receipt under the header's ``receiptsRoot``;
- ``lineage``: every header (with its seals) before that block that carried a validator vote
  or was the first sealed by a new validator set, so that the set sealing the record's block is
  re-derived from the genesis set vote by vote.

``check_proof`` walks the lineage from the genesis: between two given headers it assumes the
blocks carried no vote (Besu's epoch resets and the genesis transitions still apply), and
every given header must list exactly the derived set, be built by one of them and carry a
quorum of their distinct valid seals. A vote left out changes the derived set, which the next
header's own list then contradicts. What a proof cannot rule out is what no light client can:
a quorum of some past validator set colluding, later, to seal a false history.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import rfc8785

from chain import proofs
from chain.abc import AttestationError, LedgerDomain
from chain.attest import verify as verify_attestation
from chain.ledger import onchain
from chain.ledger.record import LedgerRecord, parse_delta, record_hash
from chain.ledger.schema import DeltaError, check_delta
from chain.qbft import extra_data as xd
from chain.qbft.genesis import Genesis
from chain.qbft.hashing import block_hash
from chain.qbft.header import BFT_MIX_HASH, BlockHeader, HeaderError
from chain.qbft.verify import verify_commit_seals
from chain.qbft.votes import EpochSchedule, VoteTally
from observer.abc import ChainSource, SourceError
from observer.blocks import BlockFault, ChainTracker, TrackerState, parse_block
from observer.checkpoint import Checkpoint

FORMAT = "smartta-observer-proof/1"


class ProofFileError(Exception):
    """A proof that does not prove what it claims; the message names the part that fails."""


# --- re-deriving the validator set from a sparse set of headers ----------------------------


@dataclass
class Lineage:
    """Validator sets from the genesis through the headers given, assuming the blocks between
    them carried no vote (as ``chain.qbft.votes.ValidatorHistory`` over a full chain)."""

    epoch: EpochSchedule
    overrides: Mapping[int, frozenset[bytes]]
    tally: VoteTally
    head: int = 0
    changes: list[tuple[int, tuple[bytes, ...]]] = field(default_factory=list)

    @classmethod
    def start(cls, genesis: Genesis) -> Lineage:
        lineage = cls(genesis.qbft.epoch,
                      {b: frozenset(v) for b, v in genesis.validator_overrides.items()},
                      VoteTally(set(genesis.validators)), -1)
        lineage.changes.append((0, tuple(sorted(genesis.validators))))
        g = genesis.header()
        lineage.apply(0, g.coinbase, genesis.validators, None)
        return lineage

    def validators(self) -> tuple[bytes, ...]:
        return tuple(sorted(self.tally.validators))

    def apply(self, number: int, coinbase: bytes, listed: Sequence[bytes], vote: xd.Vote | None) -> None:
        before = self.validators()  # the tally is changed in place below
        override = self.overrides.get(number + 1)
        if override is not None:
            tally = VoteTally(set(override))
        elif self.epoch.is_epoch_block(number):
            tally = VoteTally(set(listed))
        else:
            tally = self.tally
        if self.epoch.is_epoch_block(number + 1):
            tally.discard_outstanding()
        elif vote is not None:
            tally.add_vote(coinbase, vote)
        self.tally = tally
        self.head = number
        if self.validators() != before:
            self.changes.append((number + 1, self.validators()))

    def skip_to(self, number: int) -> None:
        """Account for blocks ``head + 1 .. number - 1``, taken to carry no vote."""
        lo, hi = self.head + 1, number - 1
        marks: set[int] = set()
        length = self.epoch.length
        origin = 0 if self.epoch.start_block == 0 else self.epoch.start_block - 1
        first = max(lo, origin)
        e = origin + -(-(first - origin) // length) * length
        while e <= hi + 1:
            marks.update((e - 1, e))
            e += length
        marks.update(b - 1 for b in self.overrides)
        for m in sorted(x for x in marks if lo <= x <= hi):
            self.apply(m, b"", self.validators(), None)
        self.head = max(self.head, hi)


def check_sealed(header: BlockHeader, validators: Sequence[bytes]
                 ) -> tuple[xd.ExtraData, tuple[bytes, ...]]:
    """The QBFT rules a header can be held to without its parent (its decoded extraData and
    committers); HeaderError otherwise."""
    n = header.number
    try:
        extra = xd.decode(header.extra_data)
    except xd.ExtraDataError as exc:
        raise HeaderError(f"block {n}: {exc}") from None
    if header.mix_hash != BFT_MIX_HASH or header.difficulty != 1:
        raise HeaderError(f"block {n}: mixHash or difficulty is not QBFT's")
    if list(extra.validators) != sorted(validators):
        raise HeaderError(f"block {n}: its listed validators are not the set derived from the "
                          "genesis and the votes given: a vote is missing from the proof, or the "
                          "header is not of this chain")
    if header.coinbase not in set(validators):
        raise HeaderError(f"block {n}: coinbase 0x{header.coinbase.hex()} is not a validator")
    return extra, verify_commit_seals(header, validators, extra)


# --- the file ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProvenRecord:
    record: LedgerRecord
    block: int
    block_hash: bytes
    committers: tuple[bytes, ...]
    validators: tuple[bytes, ...]
    lineage: list[tuple[int, tuple[bytes, ...]]]


def _hex(b: bytes) -> str:
    return "0x" + b.hex()


def _unhex(value: Any, what: str) -> bytes:
    if not isinstance(value, str) or not value.startswith("0x") or value != value.lower():
        raise ProofFileError(f"{what} is not a lower-case 0x hex string")
    try:
        return bytes.fromhex(value[2:])
    except ValueError:
        raise ProofFileError(f"{what} is not hex") from None


def _keys(obj: Any, keys: set[str], what: str) -> dict[str, Any]:
    if not isinstance(obj, dict) or set(obj) != keys:
        raise ProofFileError(f"{what} must be an object with exactly the keys {sorted(keys)}")
    return obj


def _int(value: Any, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ProofFileError(f"{what} must be a non-negative integer")
    return value


def check_proof(data: bytes, genesis: Genesis) -> ProvenRecord:
    """Verify a proof file with nothing but the genesis; ProofFileError naming what fails."""
    try:
        doc = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ProofFileError(f"the proof is not JSON: {exc}") from None
    try:
        canonical = bytes(rfc8785.dumps(doc))
    except rfc8785.CanonicalizationError as exc:
        raise ProofFileError(f"the proof cannot be canonicalised: {exc}") from None
    if canonical != data:
        raise ProofFileError("the proof is not in canonical form (RFC 8785): it was edited "
                             "after it was made")
    doc = _keys(doc, {"format", "genesis", "ledger", "record", "block", "lineage"}, "the proof")
    if doc["format"] != FORMAT:
        raise ProofFileError(f"format {doc['format']!r} is not {FORMAT}")
    if _unhex(doc["genesis"], "genesis") != genesis.hash:
        raise ProofFileError(f"the proof is for genesis {doc['genesis']}, the genesis file given "
                             f"hashes to {_hex(genesis.hash)}")
    ledger = _unhex(doc["ledger"], "ledger")
    if len(ledger) != 20:
        raise ProofFileError("ledger is not a 20-byte address")
    domain = LedgerDomain(genesis.chain_id, ledger)
    block = _keys(doc["block"], {"header", "receiptIndex", "logIndex", "receiptProof"}, "block")
    if not isinstance(doc["lineage"], list) or not isinstance(block["receiptProof"], list):
        raise ProofFileError("lineage and receiptProof must be lists")
    try:
        headers = [BlockHeader.decode(_unhex(h, "a lineage header")) for h in doc["lineage"]]
        target = BlockHeader.decode(_unhex(block["header"], "block header"))
    except HeaderError as exc:
        raise ProofFileError(f"a header does not decode: {exc}") from None
    numbers = [h.number for h in headers] + [target.number]
    if any(a >= b for a, b in itertools.pairwise(numbers)) or numbers[0] < 1:
        raise ProofFileError("the lineage headers must be after the genesis, in ascending order, "
                             "and before the record's block")

    lineage = Lineage.start(genesis)
    previous: tuple[int, bytes] | None = None
    committers: tuple[bytes, ...] = ()
    for header in [*headers, target]:
        lineage.skip_to(header.number)
        validators = lineage.validators()
        try:
            extra, committers = check_sealed(header, validators)
        except HeaderError as exc:
            raise ProofFileError(str(exc)) from None
        if previous is not None and previous[0] == header.number - 1 and previous[1] != header.parent_hash:
            raise ProofFileError(f"block {header.number}: parentHash does not link to block "
                                 f"{previous[0]} of the proof")
        previous = (header.number, block_hash(header, extra))
        lineage.apply(header.number, header.coinbase, extra.validators, extra.vote)
    validators_of_target = tuple(sorted(xd.decode(target.extra_data).validators))

    receipt_index = _int(block["receiptIndex"], "receiptIndex")
    log_index = _int(block["logIndex"], "logIndex")
    nodes = [_unhex(n, "a receipt proof node") for n in block["receiptProof"]]
    try:
        receipt = proofs.verify_receipt(target.receipts_root, receipt_index, nodes)
    except proofs.ProofError as exc:
        raise ProofFileError(f"receipt {receipt_index} of block {target.number}: {exc}") from None
    if receipt.status != 1:
        raise ProofFileError("the receipt is of a failed transaction: it recorded nothing")
    if log_index >= len(receipt.logs):
        raise ProofFileError(f"the receipt has {len(receipt.logs)} logs, no log {log_index}")
    log = receipt.logs[log_index]
    if log.address != ledger:
        raise ProofFileError(f"log {log_index} is from 0x{log.address.hex()}, not the ledger")
    try:
        appended = onchain.decode_log(log.topics, log.data, block_number=target.number,
                                      timestamp=target.timestamp)
    except onchain.OnchainFormatError as exc:
        raise ProofFileError(f"the ledger log does not decode: {exc}") from None
    try:
        claimed = LedgerRecord.from_json(doc["record"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ProofFileError(f"the record does not read as a ledger record: {exc}") from None
    position = claimed.seq - appended.first_seq
    if not 0 <= position < len(appended.records):
        raise ProofFileError(f"the log holds records {appended.first_seq}.."
                             f"{appended.first_seq + len(appended.records) - 1}, not {claimed.seq}")
    logged = appended.records[position]
    computed = record_hash(logged)
    if logged.record_hash is not None and logged.record_hash != computed:
        raise ProofFileError(f"record {logged.seq}: the contract's head hash "
                             f"{_hex(logged.record_hash)} is not the record's hash {_hex(computed)}")
    proven = replace(logged, record_hash=computed, attestation=claimed.attestation)
    if proven.to_json() != doc["record"]:
        raise ProofFileError(f"record {claimed.seq} in the file differs from the record the "
                             "sealed log holds")
    try:
        check_delta(proven.event_type, parse_delta(proven.delta))
    except DeltaError as exc:
        raise ProofFileError(f"record {proven.seq}: {exc}") from None
    if proven.attestation is None or proven.attestation.id != proven.attestation_id:
        raise ProofFileError(f"record {proven.seq}: the attestation proof is missing or is not "
                             f"the one its attestationId {_hex(proven.attestation_id)} names")
    try:
        verify_attestation(proven.event(), domain, proven.attestation)
    except AttestationError as exc:
        raise ProofFileError(f"record {proven.seq}: {exc}") from None
    return ProvenRecord(proven, target.number, block_hash(target), committers,
                        validators_of_target, list(lineage.changes))


# --- making one ----------------------------------------------------------------------------------


def find_record(source: ChainSource, ledger: bytes, seq: int, head: int,
                window: int = 2048) -> tuple[int, bytes]:
    """(block number, transaction hash) of the call that appended record ``seq``, found with
    eth_getLogs from the head backwards. Only a hint: the proof made from it is checked."""
    hi = head
    while hi >= 0:
        lo = max(0, hi - window + 1)
        for log in reversed(source.logs(ledger, onchain.RECORDS_APPENDED_TOPIC, lo, hi)):
            try:
                first = int(log["topics"][1], 16)
                count = int(log["data"][2:66], 16)
            except (KeyError, IndexError, TypeError, ValueError):
                continue
            if first <= seq < first + count:
                return int(log["blockNumber"], 16), bytes.fromhex(log["transactionHash"][2:])
            if first + count <= seq:
                raise SourceError(f"record {seq} is not on the ledger yet (the last record "
                                  f"before block {hi + 1} is {first + count - 1})")
        hi = lo - 1
    raise SourceError(f"no RecordsAppended log holds record {seq}")


def _record_in(receipt: proofs.Receipt, ledger: bytes, seq: int, number: int, timestamp: int
               ) -> tuple[int, LedgerRecord] | None:
    for log_index, log in enumerate(receipt.logs):
        if log.address != ledger or not log.topics or log.topics[0] != onchain.RECORDS_APPENDED_TOPIC:
            continue
        appended = onchain.decode_log(log.topics, log.data, block_number=number, timestamp=timestamp)
        if appended.first_seq <= seq < appended.first_seq + len(appended.records):
            return log_index, appended.records[seq - appended.first_seq]
    return None


def make_proof(source: ChainSource, genesis: Genesis, ledger: bytes, seq: int,
               checkpoint: Checkpoint | None = None) -> bytes:
    """Fetch what proves record ``seq`` and write it as a proof file (checked before it is
    returned). SourceError if the node cannot provide it.

    A checkpoint of this installation spares reading the headers it covers to find the
    votes: it lists the blocks that carried one.
    """
    head = source.head()
    number, tx_hash = find_record(source, ledger, seq, head)
    # The lineage: every vote header before the record's block, and the first block of each
    # validator set. Only extraData is read here; check_proof verifies what is kept.
    if checkpoint is not None and checkpoint.block >= number - 1:
        votes = set(checkpoint.vote_blocks)
        changes = {int(c["block"]) for c in checkpoint.history["changes"][1:]}
    else:
        if checkpoint is not None:
            tracker = ChainTracker.resume(
                genesis, TrackerState(checkpoint.header, checkpoint.hash, checkpoint.history),
                checkpoint.vote_blocks)
        else:
            tracker = ChainTracker.start(genesis)
        for start in range(tracker.history.head + 1, number, 500):
            end = min(start + 499, number - 1)
            _, failure, _ = tracker.prepare(start, source.blocks(list(range(start, end + 1))))
            if failure is not None:
                raise SourceError(f"the node's block {failure.block} is unusable: "
                                  f"{failure.message}")
        votes = set(tracker.vote_blocks)
        changes = {c.block for c in tracker.history.changes[1:]}
    keep = votes | {b for b in changes if b <= number}
    wanted = sorted(b for b in keep if 0 < b < number)
    raws = source.blocks([*wanted, number]) if wanted else source.blocks([number])
    headers = []
    for n, raw in zip([*wanted, number], raws, strict=True):
        try:
            headers.append(parse_block(n, raw)[0])
        except BlockFault as fault:
            raise SourceError(f"the node's block {n} is unusable: {fault.failure.message}") from None
    target = headers.pop()
    [receipts] = source.receipts([number])
    if receipts is None:
        raise SourceError(f"the node has no receipts for block {number}")
    values = [proofs.encode_receipt(r) for r in receipts]
    if proofs.trie_root(values) != target.receipts_root:
        raise SourceError(f"the node's receipts of block {number} do not match its header")
    index = next((i for i, r in enumerate(receipts)
                  if r.get("transactionHash") == _hex(tx_hash)), None)
    if index is None:
        raise SourceError(f"block {number} has no receipt of transaction {_hex(tx_hash)}")
    receipt = proofs.Receipt.decode(values[index])
    [tx] = source.transactions([tx_hash])
    entries = onchain.decode_calldata(bytes.fromhex(str((tx or {}).get("input", "0x"))[2:]))
    found = _record_in(receipt, ledger, seq, number, target.timestamp)
    if found is None:
        raise SourceError(f"no ledger log of transaction {_hex(tx_hash)} holds record {seq}")
    log_index, logged = found
    record = onchain.with_proofs([logged], entries)[0]
    record = replace(record, record_hash=record_hash(record))
    doc: dict[str, Any] = {
        "format": FORMAT,
        "genesis": _hex(genesis.hash),
        "ledger": _hex(ledger),
        "record": record.to_json(),
        "block": {"header": _hex(target.encode()), "receiptIndex": index, "logIndex": log_index,
                  "receiptProof": [_hex(n) for n in proofs.prove(values, index)]},
        "lineage": [_hex(h.encode()) for h in headers],
    }
    data = bytes(rfc8785.dumps(doc))
    check_proof(data, genesis)
    return data
