"""QBFT extraData: the RLP list [vanity, validators, vote, round, seals] Besu writes in headers.

Byte-for-byte as Besu's ``QbftExtraDataCodec``: an absent vote is the empty list ``c0`` (IBFT 2.0
used ``80``), a vote to add is ``[recipient, 0xff]``, a vote to drop is ``[recipient, ""]``
(``80``), the round is a minimal RLP scalar (round 0 is ``80``) and the seals are 65-byte
``r || s || recId`` strings. Decoding is as strict as Besu's and ignores items after the seals,
as Besu's ``leaveListLenient`` does.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace

from chain import fastrlp
from chain.qbft.seals import SealError, check_seal_format

VANITY_LENGTH = 32
ADD_BYTE = b"\xff"
_MAX_ROUND = 2**31 - 1  # Besu reads the round with readIntScalar into a Java int


class ExtraDataError(ValueError):
    """extraData that Besu's QBFT codec would refuse to decode."""


class Encoding(enum.Enum):
    """What goes into the RLP, as Besu's ``BftExtraDataCodec.EncodingType``."""

    ALL = "all"
    EXCLUDE_COMMIT_SEALS = "exclude_commit_seals"
    EXCLUDE_COMMIT_SEALS_AND_ROUND = "exclude_commit_seals_and_round"


@dataclass(frozen=True, slots=True)
class Vote:
    recipient: bytes
    add: bool

    def to_json(self) -> dict[str, str]:
        return {"recipient": "0x" + self.recipient.hex(), "type": "ADD" if self.add else "DROP"}


@dataclass(frozen=True, slots=True)
class ExtraData:
    vanity: bytes
    validators: tuple[bytes, ...]
    vote: Vote | None
    round: int
    seals: tuple[bytes, ...]

    def with_seals(self, seals: tuple[bytes, ...], round: int | None = None) -> ExtraData:
        return replace(self, seals=seals, round=self.round if round is None else round)

    def to_json(self) -> dict[str, object]:
        return {
            "vanity": "0x" + self.vanity.hex(),
            "validators": ["0x" + v.hex() for v in self.validators],
            "vote": None if self.vote is None else self.vote.to_json(),
            "round": self.round,
            "seals": ["0x" + s.hex() for s in self.seals],
        }


def _scalar(value: int) -> bytes:
    return b"" if value == 0 else value.to_bytes((value.bit_length() + 7) // 8, "big")


def encode(extra: ExtraData, encoding: Encoding = Encoding.ALL) -> bytes:
    if not 0 <= extra.round <= _MAX_ROUND:
        raise ExtraDataError(f"round {extra.round} is outside 0..{_MAX_ROUND}")
    for v in extra.validators:
        if len(v) != 20:
            raise ExtraDataError(f"validator 0x{v.hex()} is not a 20-byte address")
    vote: list[bytes] = []
    if extra.vote is not None:
        if len(extra.vote.recipient) != 20:
            raise ExtraDataError("vote recipient is not a 20-byte address")
        vote = [extra.vote.recipient, ADD_BYTE if extra.vote.add else b""]
    if encoding is Encoding.EXCLUDE_COMMIT_SEALS_AND_ROUND:
        seals: list[bytes]
        round_item, seals = b"", []
    elif encoding is Encoding.EXCLUDE_COMMIT_SEALS:
        round_item, seals = _scalar(extra.round), []
    else:
        round_item, seals = _scalar(extra.round), list(extra.seals)
    return fastrlp.encode([extra.vanity, list(extra.validators), vote, round_item, seals])


def encode_genesis(validators: list[bytes] | tuple[bytes, ...]) -> bytes:
    """Genesis extraData as ``QbftExtraDataCodec.encodeFromAddresses``: input order, no sort."""
    return encode(ExtraData(bytes(VANITY_LENGTH), tuple(validators), None, 0, ()))


def decode(raw: bytes) -> ExtraData:
    if not raw:
        raise ExtraDataError("extraData is empty: a QBFT header needs the RLP list of BFT fields")
    try:
        items = fastrlp.decode(raw)
    except fastrlp.RLPError as exc:
        raise ExtraDataError(f"extraData is not valid RLP: {exc}") from exc
    if not isinstance(items, list):
        raise ExtraDataError("extraData is an RLP string, expected a list")
    if len(items) < 5:
        raise ExtraDataError(f"extraData list has {len(items)} items, expected 5")
    vanity, validators_item, vote_item, round_item, seals_item = items[:5]
    if not isinstance(vanity, bytes):
        raise ExtraDataError("extraData vanity is a list, expected bytes")
    if not isinstance(validators_item, list):
        raise ExtraDataError("extraData validators is not a list")
    validators: list[bytes] = []
    for v in validators_item:
        if not isinstance(v, bytes) or len(v) != 20:
            raise ExtraDataError("extraData validator entry is not a 20-byte address")
        validators.append(v)
    vote = _decode_vote(vote_item)
    if not isinstance(round_item, bytes):
        raise ExtraDataError("extraData round is a list, expected a scalar")
    if round_item[:1] == b"\x00":
        raise ExtraDataError("extraData round has a leading zero byte (non-canonical scalar)")
    if len(round_item) > 4:
        raise ExtraDataError(f"extraData round is {len(round_item)} bytes, at most 4 allowed")
    round_ = int.from_bytes(round_item, "big")
    if round_ > _MAX_ROUND:
        raise ExtraDataError("extraData round does not fit a signed 32-bit integer")
    if not isinstance(seals_item, list):
        raise ExtraDataError("extraData seals is not a list")
    seals: list[bytes] = []
    for i, s in enumerate(seals_item):
        if not isinstance(s, bytes):
            raise ExtraDataError(f"extraData seal {i} is a list, expected 65 bytes")
        try:
            check_seal_format(s)
        except SealError as exc:
            raise ExtraDataError(f"extraData seal {i}: {exc}") from exc
        seals.append(s)
    return ExtraData(vanity, tuple(validators), vote, round_, tuple(seals))


def _decode_vote(item: object) -> Vote | None:
    if not isinstance(item, list):
        raise ExtraDataError(
            "extraData vote is not a list (an absent QBFT vote is c0; 80 is the IBFT 2.0 form)"
        )
    if not item:
        return None
    if len(item) != 2:
        raise ExtraDataError(f"extraData vote list has {len(item)} items, expected 2")
    recipient, kind = item
    if not isinstance(recipient, bytes) or len(recipient) != 20:
        raise ExtraDataError("extraData vote recipient is not a 20-byte address")
    # Besu reads an empty item (80, or even c0) as DROP, else exactly one byte: ff ADD, 00 DROP.
    if len(kind) == 0 or kind == b"\x00":
        return Vote(recipient, add=False)
    if kind == ADD_BYTE:
        return Vote(recipient, add=True)
    raise ExtraDataError("Vote field was of an incorrect binary value.")
