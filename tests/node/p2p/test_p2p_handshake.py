"""Peer authentication: only holders of allowlisted node keys complete the handshake."""

from __future__ import annotations

import pytest

from chain.attest.keys import LocalSigner
from chain.qbft.seals import address_of
from node.p2p.handshake import Handshake, HandshakeError, address_of_node, check_mac, mac, node_id_of
from node.p2p.peers import PeerSpec, PeerSpecError, allowlist

NET = b"\x42" * 32
ALICE, BOB, MALLORY = (LocalSigner((k).to_bytes(32, "big")) for k in (0xA11CE, 0xB0B, 0x3A11))
IDS = {s.address: node_id_of(s) for s in (ALICE, BOB, MALLORY)}
ALLOWED = frozenset({IDS[ALICE.address], IDS[BOB.address]})


def pair(initiator=ALICE, responder=BOB, *, allowed=ALLOWED, expected=None, net_b=NET):
    a = Handshake(initiator, IDS[initiator.address], NET, initiator=True, allowed=allowed,
                  expected=expected if expected is not None else IDS[responder.address])
    b = Handshake(responder, IDS[responder.address], net_b, initiator=False, allowed=allowed)
    return a, b


def run(a: Handshake, b: Handshake):
    auth_a = a.on_hello(b.hello_raw)
    auth_b = b.on_hello(a.hello_raw)
    return a.on_auth(auth_b), b.on_auth(auth_a)


def test_node_id_is_the_public_key_of_the_signer():
    assert address_of_node(IDS[ALICE.address]) == ALICE.address == address_of(
        (0xA11CE).to_bytes(32, "big"))


def test_allowlisted_peers_authenticate_each_other_and_share_directional_keys():
    sa, sb = run(*pair())
    assert sa.peer_id == IDS[BOB.address] and sb.peer_id == IDS[ALICE.address]
    assert sa.send_key == sb.recv_key and sa.recv_key == sb.send_key
    assert sa.send_key != sa.recv_key


def test_node_not_on_the_allowlist_is_refused_by_its_peer():
    a, b = pair(MALLORY, BOB, allowed=ALLOWED | {IDS[MALLORY.address]})
    b.allowed = ALLOWED
    with pytest.raises(HandshakeError, match="not on the node allowlist"):
        b.on_hello(a.hello_raw)


def test_dialled_node_answering_with_another_key_is_refused():
    a, b = pair(expected=IDS[MALLORY.address])
    with pytest.raises(HandshakeError, match="check the static peer list"):
        a.on_hello(b.hello_raw)


def test_claiming_an_allowlisted_id_without_its_key_fails_at_auth():
    # Mallory sends Bob's node id in her HELLO but can only sign with her own key.
    impostor = Handshake(MALLORY, IDS[BOB.address], NET, initiator=True, allowed=ALLOWED,
                         expected=IDS[ALICE.address])
    alice = Handshake(ALICE, IDS[ALICE.address], NET, initiator=False, allowed=ALLOWED)
    auth_from_impostor = impostor.on_hello(alice.hello_raw)
    alice.on_hello(impostor.hello_raw)
    with pytest.raises(HandshakeError, match="does not hold that node key"):
        alice.on_auth(auth_from_impostor)


def test_recorded_auth_does_not_verify_in_a_new_session():
    a, b = pair()
    b.on_hello(a.hello_raw)
    recorded = a.on_hello(b.hello_raw)
    b.on_auth(recorded)
    # A replay of Alice's old AUTH against Bob's fresh nonce.
    _, b2 = pair()
    b2.on_hello(a.hello_raw)
    with pytest.raises(HandshakeError):
        b2.on_auth(recorded)


def test_peer_of_another_network_is_refused():
    a, b = pair(net_b=b"\x43" * 32)
    with pytest.raises(HandshakeError, match="different genesis"):
        b.on_hello(a.hello_raw)


def test_reflected_auth_is_refused():
    a, b = pair()
    a.on_hello(b.hello_raw)
    own = b.on_hello(a.hello_raw)
    with pytest.raises(HandshakeError):
        b.on_auth(own)  # Bob's own AUTH sent back to him


def test_frame_mac_binds_key_sequence_kind_and_payload():
    sa, sb = run(*pair())
    tag = mac(sa.send_key, 7, 1, b"payload")
    assert check_mac(sb.recv_key, 7, 1, b"payload", tag)
    assert not check_mac(sb.recv_key, 8, 1, b"payload", tag)
    assert not check_mac(sb.recv_key, 7, 2, b"payload", tag)
    assert not check_mac(sb.recv_key, 7, 1, b"paylaod", tag)
    assert not check_mac(sb.send_key, 7, 1, b"payload", tag)


@pytest.mark.parametrize("raw", [b"", b"\xc0", b"\x80" * 10, b"\xc5\x01\x02\x03\x04\x05"])
def test_garbage_hello_is_refused_with_a_reason(raw):
    _, b = pair()
    with pytest.raises(HandshakeError):
        b.on_hello(raw)


def test_enode_urls_round_trip_and_bad_ones_say_what_is_expected():
    spec = PeerSpec(IDS[BOB.address], "127.0.0.1", 30303, "bob")
    assert PeerSpec.from_enode(spec.enode, "bob") == spec
    assert spec.address == BOB.address
    assert allowlist([spec.enode, IDS[ALICE.address].hex()]) == ALLOWED
    with pytest.raises(PeerSpecError, match="enode://"):
        PeerSpec.from_enode("enode://abc@host:1")
    with pytest.raises(PeerSpecError, match="port"):
        PeerSpec(IDS[BOB.address], "h", 70000)
