"""Peer authentication: both sides prove their node key over fresh nonces, then key a MAC.

The exchange, symmetric, one frame each way and then one more:

1. HELLO = RLP[version, networkId(32), nodeId(64), nonce(32), ephemeralKey(33)]
2. AUTH  = RLP[signature65]: the node key's signature over
   keccak256("smartta-p2p/1" || role || HELLO_initiator || HELLO_responder), role being
   ``b"I"`` or ``b"R"``. Both HELLOs carry a fresh nonce, so a recorded AUTH never verifies again.

The signature must recover the address of the nodeId the HELLO claimed, and that nodeId must be
on the allowlist (for a dialled peer: the one expected). Frames after the handshake carry an
HMAC-SHA256 (16 bytes, with a per-direction sequence number) under keys derived from an ECDH of
the ephemeral keys and the transcript, so nothing can be injected into an authenticated stream.
Only ``Signer.sign_digest`` is used with the node key, so a KMS-held key works too.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass

from coincurve import PrivateKey, PublicKey
from eth_hash.auto import keccak

from chain import fastrlp
from chain.abc import Signer
from chain.qbft.seals import SealError, public_key_to_address, recover

VERSION = 1
TAG = b"smartta-p2p/1"
MAC_SIZE = 16


class HandshakeError(ConnectionError):
    """A peer that failed to authenticate; the message says which check failed."""


def node_id_of(signer: Signer) -> bytes:
    """The 64-byte public key (enode id) behind ``signer``, recovered from one signature."""
    digest = keccak(b"smartta node id")
    sig = signer.sign_digest(digest)
    pub = PublicKey.from_signature_and_message(sig, digest, hasher=None)
    return bytes(pub.format(compressed=False)[1:])


def address_of_node(node_id: bytes) -> bytes:
    return public_key_to_address(node_id)


@dataclass(frozen=True, slots=True)
class Hello:
    network_id: bytes
    node_id: bytes
    nonce: bytes
    ephemeral: bytes
    raw: bytes

    @classmethod
    def decode(cls, raw: bytes) -> Hello:
        try:
            items = fastrlp.decode(raw)
        except fastrlp.RLPError as exc:
            raise HandshakeError(f"HELLO is not valid RLP: {exc}") from exc
        if not isinstance(items, list) or len(items) != 5:
            raise HandshakeError("HELLO must be [version, networkId, nodeId, nonce, ephemeralKey]")
        fields = [i for i in items if isinstance(i, bytes)]
        if len(fields) != 5:
            raise HandshakeError("HELLO fields must be byte strings")
        version, network_id, node_id, nonce, ephemeral = fields
        if int.from_bytes(version, "big") != VERSION:
            raise HandshakeError(f"peer speaks protocol version {int.from_bytes(version, 'big')}, "
                                 f"this node speaks {VERSION}: upgrade the older node")
        if len(network_id) != 32 or len(node_id) != 64 or len(nonce) != 32 or len(ephemeral) != 33:
            raise HandshakeError("HELLO field sizes are wrong (networkId 32, nodeId 64, nonce 32, "
                                 "ephemeralKey 33 bytes)")
        try:
            PublicKey(b"\x04" + node_id)
            PublicKey(ephemeral)
        except ValueError as exc:
            raise HandshakeError(f"HELLO carries a key that is not on secp256k1: {exc}") from exc
        return cls(network_id, node_id, nonce, ephemeral, raw)


@dataclass
class Session:
    """The result of a completed handshake."""

    peer_id: bytes
    send_key: bytes
    recv_key: bytes


class Handshake:
    """One side of the exchange; feed it the peer's frames, send what it returns."""

    def __init__(self, signer: Signer, node_id: bytes, network_id: bytes, *, initiator: bool,
                 allowed: frozenset[bytes], expected: bytes | None = None) -> None:
        self.signer = signer
        self.node_id = node_id
        self.network_id = network_id
        self.initiator = initiator
        self.allowed = allowed
        self.expected = expected
        self._ephemeral = PrivateKey()
        nonce = os.urandom(32)
        self.hello = Hello(network_id, node_id, nonce, self._ephemeral.public_key.format(), b"")
        self.hello_raw = fastrlp.encode([VERSION.to_bytes(1, "big"), network_id, node_id, nonce,
                                         self.hello.ephemeral])
        self.peer: Hello | None = None

    def on_hello(self, raw: bytes) -> bytes:
        """Check the peer's HELLO; returns this side's AUTH payload."""
        peer = Hello.decode(raw)
        if peer.network_id != self.network_id:
            raise HandshakeError(f"peer is on network 0x{peer.network_id.hex()[:16]}…, this node on "
                                 f"0x{self.network_id.hex()[:16]}… (a different genesis)")
        if peer.node_id == self.node_id:
            raise HandshakeError("connected to itself (its own node id answered)")
        if self.expected is not None and peer.node_id != self.expected:
            raise HandshakeError(f"dialled 0x{self.expected.hex()[:16]}… but "
                                 f"0x{peer.node_id.hex()[:16]}… answered: check the static peer list")
        if peer.node_id not in self.allowed:
            raise HandshakeError(f"node 0x{peer.node_id.hex()[:16]}… (address "
                                 f"0x{address_of_node(peer.node_id).hex()}) is not on the node "
                                 "allowlist of this network")
        self.peer = peer
        return fastrlp.encode([self.signer.sign_digest(self._auth_digest(self.initiator))])

    def on_auth(self, raw: bytes) -> Session:
        """Check the peer's AUTH; returns the session keys."""
        if self.peer is None:
            raise HandshakeError("AUTH before HELLO")
        try:
            items = fastrlp.decode(raw)
        except fastrlp.RLPError as exc:
            raise HandshakeError(f"AUTH is not valid RLP: {exc}") from exc
        if not isinstance(items, list) or len(items) != 1 or not isinstance(items[0], bytes):
            raise HandshakeError("AUTH must be [signature]")
        try:
            who = recover(items[0], self._auth_digest(not self.initiator))
        except SealError as exc:
            raise HandshakeError(f"AUTH signature does not recover: {exc}") from exc
        if who != address_of_node(self.peer.node_id):
            raise HandshakeError("AUTH is not signed by the key the peer claimed: it does not hold "
                                 "that node key")
        shared = self._ephemeral.ecdh(self.peer.ephemeral)
        th = self._transcript()
        i2r = hashlib.sha256(b"i2r" + shared + th).digest()
        r2i = hashlib.sha256(b"r2i" + shared + th).digest()
        send, recv = (i2r, r2i) if self.initiator else (r2i, i2r)
        return Session(self.peer.node_id, send, recv)

    def _transcript(self) -> bytes:
        assert self.peer is not None
        first, second = ((self.hello_raw, self.peer.raw) if self.initiator
                         else (self.peer.raw, self.hello_raw))
        return bytes(keccak(first + second))

    def _auth_digest(self, initiator_side: bool) -> bytes:
        return bytes(keccak(TAG + (b"I" if initiator_side else b"R") + self._transcript()))


def mac(key: bytes, seq: int, kind: int, payload: bytes) -> bytes:
    return hmac.digest(key, seq.to_bytes(8, "big") + bytes([kind]) + payload, "sha256")[:MAC_SIZE]


def check_mac(key: bytes, seq: int, kind: int, payload: bytes, tag: bytes) -> bool:
    return hmac.compare_digest(mac(key, seq, kind, payload), tag)
