"""QBFT consensus messages, byte-identical to Besu's ``istanbul/100`` wire format.

Four messages, by sub-protocol code (Besu's ``QbftV1``): PROPOSAL 0x12, PREPARE 0x13, COMMIT 0x14,
ROUND_CHANGE 0x15. Every message carries one or more ``SignedData``: the RLP list
``[payload, signature65]`` whose signature is a low-s secp256k1 signature over
``keccak256(RLP[code, payload])`` (Besu's ``QbftPayload.hashForSignature``); the author is
recovered from it, never sent. Heights are RLP long scalars, rounds RLP int scalars.

- PREPARE  = SignedData<[height, round, digest]>
- COMMIT   = SignedData<[height, round, digest, commitSeal65]>
- PROPOSAL = [SignedData<[height, round, block(, bal)]>, [[SignedData<RoundChangePayload>…],
  [SignedData<PreparePayload>…]]]
- ROUND_CHANGE = [SignedData<[height, targetRound, [] | [preparedRound, preparedBlockHash]]>,
  preparedBlock | c0(, bal), [SignedData<PreparePayload>…]]

``digest`` is the proposed block's commit-seal hash at the message round
(``chain.qbft.hashing.commit_seal_hash``), ``preparedBlockHash`` the same at the prepared round.

Besu 26.1 (#9629) added a block-access-list slot: a 4th ProposalPayload item and a slot after the
prepared block in ROUND_CHANGE, ``80`` when absent. Both forms decode here (the item count tells
them apart, so an old ROUND_CHANGE is never misread); encoding follows ``WireFormat``, and the
default is ``WireFormat.BESU_26_1``, what current Besu writes. Choose ``WireFormat.LEGACY`` to
talk to Besu before 26.1 (``wire_format_for("25.12.0")``). A block access list is carried as
opaque RLP: QBFT networks do not produce them yet.

Decoding is strict: canonical RLP only, nothing after the message, exact item counts, 32-byte
digests, signatures Besu's ``SignedData`` accepts (recId 0/1, r and s in range, low s).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import ClassVar, Generic, TypeVar

from eth_hash.auto import keccak

from chain.abc import Signer
from chain.qbft.block import Block, encode_list_raw
from chain.qbft.hashing import commit_seal_hash
from chain.qbft.header import HeaderError
from chain.qbft.seals import SealError, check_seal_format, recover

PROPOSAL = 0x12
PREPARE = 0x13
COMMIT = 0x14
ROUND_CHANGE = 0x15
CODES = {PROPOSAL: "PROPOSAL", PREPARE: "PREPARE", COMMIT: "COMMIT", ROUND_CHANGE: "ROUND_CHANGE"}

MAX_HEIGHT = 2**63 - 1  # readLongScalar into a Java long
MAX_ROUND = 2**31 - 1  # readIntScalar into a Java int
_NULL = b"\x80"
_EMPTY_LIST = b"\xc0"


class MessageError(ValueError):
    """A consensus message Besu would refuse to decode, or whose signature does not recover."""


class WireFormat(enum.Enum):
    """Which Besu release's message layout to write (both are always read)."""

    LEGACY = "legacy"
    """Besu before 26.1: 3-item ProposalPayload, ROUND_CHANGE without the access-list slot."""
    BESU_26_1 = "26.1"
    """Besu 26.1 and later: the block-access-list slot present (``80`` when empty)."""


DEFAULT_FORMAT = WireFormat.BESU_26_1


def wire_format_for(besu_version: str) -> WireFormat:
    """The layout a Besu release writes, from its version string (``"25.12.0"``, ``"26.1.1"``)."""
    try:
        major, minor = (int(p) for p in besu_version.strip().lstrip("v").split(".")[:2])
    except ValueError:
        raise MessageError(
            f"Besu version {besu_version!r} is not MAJOR.MINOR[.PATCH], e.g. 26.1.0"
        ) from None
    return WireFormat.BESU_26_1 if (major, minor) >= (26, 1) else WireFormat.LEGACY


# --- strict RLP, by spans -------------------------------------------------------------------
# The proposal carries a whole block; splitting by byte spans hands its exact bytes to
# Block.decode without building and re-encoding a nested Python structure.


def _span(data: bytes, pos: int, end: int) -> tuple[int, int, bool]:
    """(payload start, item end, is list) of the canonical RLP item at ``pos``."""
    if pos >= end:
        raise MessageError("RLP ends before an expected item")
    b = data[pos]
    if b < 0x80:
        return pos, pos + 1, False
    if b < 0xC0:
        is_list, short, base = False, b <= 0xB7, 0x80
    else:
        is_list, short, base = True, b <= 0xF7, 0xC0
    if short:
        start, length = pos + 1, b - base
        if not is_list and length == 1 and start < end and data[start] < 0x80:
            raise MessageError("RLP single byte below 0x80 wrapped in a string (non-canonical)")
    else:
        size = b - base - 55
        start = pos + 1 + size
        if start > end:
            raise MessageError("RLP length prefix runs past the end of the data")
        if data[pos + 1] == 0:
            raise MessageError("RLP length has a leading zero byte (non-canonical)")
        length = int.from_bytes(data[pos + 1:start], "big")
        if length < 56:
            raise MessageError("RLP long form used for a payload under 56 bytes (non-canonical)")
    if start + length > end:
        raise MessageError("RLP item runs past the end of its enclosing data")
    return start, start + length, is_list


def _top(data: bytes) -> tuple[int, int, bool]:
    start, stop, is_list = _span(data, 0, len(data))
    if stop != len(data):
        raise MessageError(f"{len(data) - stop} bytes follow the RLP message")
    return start, stop, is_list


def _children(data: bytes, start: int, stop: int) -> list[bytes]:
    items: list[bytes] = []
    pos = start
    while pos < stop:
        _, end, _ = _span(data, pos, stop)
        items.append(data[pos:end])
        pos = end
    return items


def _list(raw: bytes, what: str, sizes: tuple[int, ...] | None = None) -> list[bytes]:
    start, stop, is_list = _top(raw)
    if not is_list:
        raise MessageError(f"{what} is an RLP string, expected a list")
    items = _children(raw, start, stop)
    if sizes is not None and len(items) not in sizes:
        want = " or ".join(str(s) for s in sizes)
        raise MessageError(f"{what} has {len(items)} items, expected {want}")
    return items


def _bytes(raw: bytes, what: str, size: int | None = None) -> bytes:
    start, stop, is_list = _top(raw)
    if is_list:
        raise MessageError(f"{what} is an RLP list, expected bytes")
    out = raw[start:stop]
    if size is not None and len(out) != size:
        raise MessageError(f"{what} is {len(out)} bytes, expected {size}")
    return out


def _scalar(raw: bytes, what: str, maximum: int) -> int:
    b = _bytes(raw, what)
    if b[:1] == b"\x00":
        raise MessageError(f"{what} has a leading zero byte (non-canonical scalar)")
    value = int.from_bytes(b, "big")
    if value > maximum:
        raise MessageError(f"{what} {value} exceeds {maximum}")
    return value


def _enc_bytes(b: bytes) -> bytes:
    if len(b) == 1 and b[0] < 0x80:
        return b
    if len(b) < 56:
        return bytes([0x80 + len(b)]) + b
    size = len(b).to_bytes((len(b).bit_length() + 7) // 8, "big")
    return bytes([0xB7 + len(size)]) + size + b


def _enc_int(value: int) -> bytes:
    return _enc_bytes(value.to_bytes((value.bit_length() + 7) // 8, "big") if value else b"")


def _check_round_id(height: int, round: int) -> None:
    if not 0 <= height <= MAX_HEIGHT:
        raise MessageError(f"height {height} is outside 0..{MAX_HEIGHT}")
    if not 0 <= round <= MAX_ROUND:
        raise MessageError(f"round {round} is outside 0..{MAX_ROUND}")


# --- payloads ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PreparePayload:
    height: int
    round: int
    digest: bytes
    code: ClassVar[int] = PREPARE

    def encode(self) -> bytes:
        _check_round_id(self.height, self.round)
        if len(self.digest) != 32:
            raise MessageError("PREPARE digest must be 32 bytes")
        return encode_list_raw([_enc_int(self.height), _enc_int(self.round), _enc_bytes(self.digest)])

    @classmethod
    def decode(cls, raw: bytes) -> PreparePayload:
        h, r, d = _list(raw, "PREPARE payload", (3,))
        return cls(_scalar(h, "PREPARE height", MAX_HEIGHT), _scalar(r, "PREPARE round", MAX_ROUND),
                   _bytes(d, "PREPARE digest", 32))


@dataclass(frozen=True, slots=True)
class CommitPayload:
    height: int
    round: int
    digest: bytes
    seal: bytes
    code: ClassVar[int] = COMMIT

    def encode(self) -> bytes:
        _check_round_id(self.height, self.round)
        if len(self.digest) != 32:
            raise MessageError("COMMIT digest must be 32 bytes")
        return encode_list_raw([_enc_int(self.height), _enc_int(self.round),
                                _enc_bytes(self.digest), _enc_bytes(self.seal)])

    @classmethod
    def decode(cls, raw: bytes) -> CommitPayload:
        h, r, d, s = _list(raw, "COMMIT payload", (4,))
        seal = _bytes(s, "COMMIT seal")
        try:
            check_seal_format(seal)
        except SealError as exc:
            raise MessageError(f"COMMIT seal: {exc}") from exc
        return cls(_scalar(h, "COMMIT height", MAX_HEIGHT), _scalar(r, "COMMIT round", MAX_ROUND),
                   _bytes(d, "COMMIT digest", 32), seal)


@dataclass(frozen=True, slots=True)
class PreparedRound:
    """Besu's ``PreparedRoundMetadata``: the round a block was prepared in and its digest there."""

    round: int
    block_hash: bytes


@dataclass(frozen=True, slots=True)
class RoundChangePayload:
    height: int
    round: int
    """The target round."""
    prepared: PreparedRound | None = None
    code: ClassVar[int] = ROUND_CHANGE

    def encode(self) -> bytes:
        _check_round_id(self.height, self.round)
        meta: list[bytes] = []
        if self.prepared is not None:
            if not 0 <= self.prepared.round <= MAX_ROUND or len(self.prepared.block_hash) != 32:
                raise MessageError("prepared round metadata needs a round in range and a 32-byte hash")
            meta = [_enc_int(self.prepared.round), _enc_bytes(self.prepared.block_hash)]
        return encode_list_raw([_enc_int(self.height), _enc_int(self.round), encode_list_raw(meta)])

    @classmethod
    def decode(cls, raw: bytes) -> RoundChangePayload:
        h, r, m = _list(raw, "ROUND_CHANGE payload", (3,))
        meta = _list(m, "ROUND_CHANGE prepared metadata", (0, 2))
        prepared = None
        if meta:
            prepared = PreparedRound(_scalar(meta[0], "prepared round", MAX_ROUND),
                                     _bytes(meta[1], "prepared block hash", 32))
        return cls(_scalar(h, "ROUND_CHANGE height", MAX_HEIGHT),
                   _scalar(r, "ROUND_CHANGE round", MAX_ROUND), prepared)


@dataclass(frozen=True, slots=True)
class ProposalPayload:
    height: int
    round: int
    block: Block
    bal: bytes | None = None
    """The block access list as raw RLP, or None (written ``80`` in the 26.1 layout)."""
    fmt: WireFormat = DEFAULT_FORMAT
    code: ClassVar[int] = PROPOSAL

    @property
    def digest(self) -> bytes:
        """What PREPAREs and COMMITs for this proposal carry: the commit-seal hash at its round."""
        return commit_seal_hash(self.block.header)

    def encode(self) -> bytes:
        _check_round_id(self.height, self.round)
        items = [_enc_int(self.height), _enc_int(self.round), self.block.encode()]
        if self.fmt is WireFormat.BESU_26_1:
            items.append(_NULL if self.bal is None else self.bal)
        elif self.bal is not None:
            raise MessageError("a block access list cannot be sent in the pre-26.1 wire format")
        return encode_list_raw(items)

    @classmethod
    def decode(cls, raw: bytes) -> ProposalPayload:
        items = _list(raw, "PROPOSAL payload", (3, 4))
        height = _scalar(items[0], "PROPOSAL height", MAX_HEIGHT)
        round_ = _scalar(items[1], "PROPOSAL round", MAX_ROUND)
        block = _block(items[2], "PROPOSAL block")
        if len(items) == 3:
            return cls(height, round_, block, None, WireFormat.LEGACY)
        return cls(height, round_, block, _bal(items[3]), WireFormat.BESU_26_1)


def _bal(raw: bytes) -> bytes | None:
    """The access-list slot: ``80`` for none, else kept as raw RLP (it must be a list)."""
    if raw == _NULL:
        return None
    _list(raw, "block access list")
    return raw


def _block(raw: bytes, what: str) -> Block:
    try:
        return Block.decode(raw)
    except (HeaderError, ValueError) as exc:
        raise MessageError(f"{what}: {exc}") from exc


Payload = PreparePayload | CommitPayload | RoundChangePayload | ProposalPayload
P = TypeVar("P", PreparePayload, CommitPayload, RoundChangePayload, ProposalPayload)


def signing_hash(code: int, payload_rlp: bytes) -> bytes:
    """keccak256(RLP[code, payload]): what the author of a SignedData signs."""
    return bytes(keccak(encode_list_raw([_enc_int(code), payload_rlp])))


@dataclass(frozen=True, slots=True)
class Signed(Generic[P]):
    """Besu's ``SignedData``: a payload, its signature and the author recovered from it."""

    payload: P
    signature: bytes
    author: bytes
    payload_rlp: bytes = field(repr=False, compare=False)

    @classmethod
    def create(cls, payload: P, signer: Signer) -> Signed[P]:
        raw = payload.encode()
        return cls(payload, signer.sign_digest(signing_hash(payload.code, raw)), signer.address, raw)

    def encode(self) -> bytes:
        return encode_list_raw([self.payload_rlp, _enc_bytes(self.signature)])

    @property
    def height(self) -> int:
        return self.payload.height

    @property
    def round(self) -> int:
        return self.payload.round


def _signed(raw: bytes, kind: type[P], what: str) -> Signed[P]:
    payload_rlp, sig_item = _list(raw, f"{what} signed data", (2,))
    payload: P = kind.decode(payload_rlp)
    signature = _bytes(sig_item, f"{what} signature")
    try:
        author = recover(signature, signing_hash(kind.code, payload_rlp), require_low_s=True)
    except SealError as exc:
        raise MessageError(f"{what} signature: {exc}") from exc
    return Signed(payload, signature, author, payload_rlp)


def _signed_list(raw: bytes, kind: type[P], what: str) -> tuple[Signed[P], ...]:
    return tuple(_signed(item, kind, what) for item in _list(raw, f"{what} list"))


# --- messages ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Prepare:
    signed: Signed[PreparePayload]
    code: ClassVar[int] = PREPARE

    @classmethod
    def create(cls, signer: Signer, height: int, round: int, digest: bytes) -> Prepare:
        return cls(Signed.create(PreparePayload(height, round, digest), signer))

    @property
    def author(self) -> bytes:
        return self.signed.author

    @property
    def height(self) -> int:
        return self.signed.payload.height

    @property
    def round(self) -> int:
        return self.signed.payload.round

    @property
    def digest(self) -> bytes:
        return self.signed.payload.digest

    def encode(self) -> bytes:
        return self.signed.encode()

    @classmethod
    def decode(cls, data: bytes) -> Prepare:
        return cls(_signed(data, PreparePayload, "PREPARE"))


@dataclass(frozen=True, slots=True)
class Commit:
    signed: Signed[CommitPayload]
    code: ClassVar[int] = COMMIT

    @classmethod
    def create(cls, signer: Signer, height: int, round: int, digest: bytes, seal: bytes) -> Commit:
        return cls(Signed.create(CommitPayload(height, round, digest, seal), signer))

    @property
    def author(self) -> bytes:
        return self.signed.author

    @property
    def height(self) -> int:
        return self.signed.payload.height

    @property
    def round(self) -> int:
        return self.signed.payload.round

    @property
    def digest(self) -> bytes:
        return self.signed.payload.digest

    @property
    def seal(self) -> bytes:
        return self.signed.payload.seal

    def encode(self) -> bytes:
        return self.signed.encode()

    @classmethod
    def decode(cls, data: bytes) -> Commit:
        return cls(_signed(data, CommitPayload, "COMMIT"))


@dataclass(frozen=True, slots=True)
class Proposal:
    signed: Signed[ProposalPayload]
    round_changes: tuple[Signed[RoundChangePayload], ...] = ()
    prepares: tuple[Signed[PreparePayload], ...] = ()
    code: ClassVar[int] = PROPOSAL

    @classmethod
    def create(cls, signer: Signer, height: int, round: int, block: Block, *,
               round_changes: tuple[Signed[RoundChangePayload], ...] = (),
               prepares: tuple[Signed[PreparePayload], ...] = (),
               bal: bytes | None = None, fmt: WireFormat = DEFAULT_FORMAT) -> Proposal:
        payload = ProposalPayload(height, round, block, bal, fmt)
        return cls(Signed.create(payload, signer), round_changes, prepares)

    @property
    def author(self) -> bytes:
        return self.signed.author

    @property
    def height(self) -> int:
        return self.signed.payload.height

    @property
    def round(self) -> int:
        return self.signed.payload.round

    @property
    def block(self) -> Block:
        return self.signed.payload.block

    def encode(self) -> bytes:
        justification = encode_list_raw([
            encode_list_raw([rc.encode() for rc in self.round_changes]),
            encode_list_raw([p.encode() for p in self.prepares]),
        ])
        return encode_list_raw([self.signed.encode(), justification])

    @classmethod
    def decode(cls, data: bytes) -> Proposal:
        signed_raw, justification = _list(data, "PROPOSAL", (2,))
        rcs_raw, prepares_raw = _list(justification, "PROPOSAL justification", (2,))
        return cls(_signed(signed_raw, ProposalPayload, "PROPOSAL"),
                   _signed_list(rcs_raw, RoundChangePayload, "PROPOSAL round-change"),
                   _signed_list(prepares_raw, PreparePayload, "PROPOSAL prepare"))


@dataclass(frozen=True, slots=True)
class RoundChange:
    signed: Signed[RoundChangePayload]
    prepared_block: Block | None = None
    prepares: tuple[Signed[PreparePayload], ...] = ()
    bal: bytes | None = None
    fmt: WireFormat = DEFAULT_FORMAT
    code: ClassVar[int] = ROUND_CHANGE

    @classmethod
    def create(cls, signer: Signer, height: int, round: int, *,
               prepared: PreparedRound | None = None, prepared_block: Block | None = None,
               prepares: tuple[Signed[PreparePayload], ...] = (), bal: bytes | None = None,
               fmt: WireFormat = DEFAULT_FORMAT) -> RoundChange:
        payload = RoundChangePayload(height, round, prepared)
        return cls(Signed.create(payload, signer), prepared_block, prepares, bal, fmt)

    @property
    def author(self) -> bytes:
        return self.signed.author

    @property
    def height(self) -> int:
        return self.signed.payload.height

    @property
    def round(self) -> int:
        return self.signed.payload.round

    @property
    def prepared(self) -> PreparedRound | None:
        return self.signed.payload.prepared

    def encode(self) -> bytes:
        items = [self.signed.encode(),
                 _EMPTY_LIST if self.prepared_block is None else self.prepared_block.encode()]
        if self.fmt is WireFormat.BESU_26_1:
            items.append(_NULL if self.bal is None else self.bal)
        elif self.bal is not None:
            raise MessageError("a block access list cannot be sent in the pre-26.1 wire format")
        items.append(encode_list_raw([p.encode() for p in self.prepares]))
        return encode_list_raw(items)

    @classmethod
    def decode(cls, data: bytes) -> RoundChange:
        items = _list(data, "ROUND_CHANGE", (3, 4))
        signed = _signed(items[0], RoundChangePayload, "ROUND_CHANGE")
        block = None if items[1] == _EMPTY_LIST else _block(items[1], "ROUND_CHANGE prepared block")
        prepares = _signed_list(items[-1], PreparePayload, "ROUND_CHANGE prepare")
        if len(items) == 3:
            return cls(signed, block, prepares, None, WireFormat.LEGACY)
        return cls(signed, block, prepares, _bal(items[2]), WireFormat.BESU_26_1)


Message = Proposal | Prepare | Commit | RoundChange
_DECODERS: dict[int, type[Proposal] | type[Prepare] | type[Commit] | type[RoundChange]] = {
    PROPOSAL: Proposal, PREPARE: Prepare, COMMIT: Commit, ROUND_CHANGE: RoundChange,
}


def decode(code: int, data: bytes) -> Message:
    """Decode a message received with sub-protocol ``code``; MessageError says what is wrong."""
    kind = _DECODERS.get(code)
    if kind is None:
        raise MessageError(
            f"message code 0x{code:02x} is not a QBFT message (expected 0x12 PROPOSAL, 0x13 PREPARE,"
            " 0x14 COMMIT or 0x15 ROUND_CHANGE)"
        )
    if not data:
        raise MessageError(f"{CODES[code]} message is empty")
    try:
        return kind.decode(data)
    except MessageError as exc:
        raise MessageError(f"{CODES[code]}: {exc}") from exc
