"""Attestation schemes and keys."""

from __future__ import annotations

import json

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data

from chain.abc import Attestation, AttestationError, AttestedEvent, LedgerDomain
from chain.attest import BlsAggregateScheme, Eip712Scheme, verify
from chain.attest.bls import BlsKey, check_proof_of_possession
from chain.attest.eip712 import DOMAIN_NAME, DOMAIN_VERSION, digest, event_type_bytes32
from chain.attest.keys import KeystoreError, LocalSigner, open_keystore, write_keystore
from chain.qbft.seals import SECP256K1_N

ACTOR = LocalSigner((7).to_bytes(32, "big"))
OTHER = LocalSigner((8).to_bytes(32, "big"))
DOMAIN = LedgerDomain(1337, b"\x42" * 20)
EVENT = AttestedEvent(ACTOR.address, "NAV_PUBLISHED", b"\x11" * 32, 5)


def test_eip712_digest_equals_eth_accounts_independent_encoding():
    message = encode_typed_data(full_message={
        "types": {
            "EIP712Domain": [{"name": "name", "type": "string"}, {"name": "version", "type": "string"},
                             {"name": "chainId", "type": "uint256"},
                             {"name": "verifyingContract", "type": "address"}],
            "LedgerEvent": [{"name": "actor", "type": "address"}, {"name": "eventType", "type": "bytes32"},
                            {"name": "dataHash", "type": "bytes32"}, {"name": "nonce", "type": "uint64"}],
        },
        "primaryType": "LedgerEvent",
        "domain": {"name": DOMAIN_NAME, "version": DOMAIN_VERSION, "chainId": DOMAIN.chain_id,
                   "verifyingContract": "0x" + DOMAIN.ledger_address.hex()},
        "message": {"actor": "0x" + EVENT.actor.hex(), "eventType": event_type_bytes32(EVENT.event_type),
                    "dataHash": EVENT.data_hash, "nonce": EVENT.nonce},
    })
    signed = Account.sign_message(message, (7).to_bytes(32, "big"))
    ours = Eip712Scheme().attest(EVENT, DOMAIN, [ACTOR])
    assert ours.proof == bytes(signed.signature)
    assert digest(EVENT, DOMAIN) == bytes(signed.message_hash)


def test_eip712_attestation_verifies_and_binds_every_field():
    att = Eip712Scheme().attest(EVENT, DOMAIN, [ACTOR])
    verify(EVENT, DOMAIN, att)
    for other in (AttestedEvent(EVENT.actor, "ORDER_PLACED", EVENT.data_hash, EVENT.nonce),
                  AttestedEvent(EVENT.actor, EVENT.event_type, b"\x12" * 32, EVENT.nonce),
                  AttestedEvent(EVENT.actor, EVENT.event_type, EVENT.data_hash, 6)):
        with pytest.raises(AttestationError, match="recovers"):
            verify(other, DOMAIN, att)
    for domain in (LedgerDomain(1, DOMAIN.ledger_address), LedgerDomain(1337, b"\x43" * 20)):
        with pytest.raises(AttestationError, match="recovers"):
            verify(EVENT, domain, att)


def test_signature_by_someone_else_is_a_forged_attestation():
    att = Eip712Scheme().attest(AttestedEvent(OTHER.address, "NAV_PUBLISHED", b"\x11" * 32, 5),
                                DOMAIN, [OTHER])
    with pytest.raises(AttestationError, match="not the actor"):
        verify(EVENT, DOMAIN, att)
    with pytest.raises(AttestationError, match="is not the actor"):
        Eip712Scheme().attest(EVENT, DOMAIN, [OTHER])


def test_high_s_twin_of_a_valid_signature_is_refused():
    proof = Eip712Scheme().attest(EVENT, DOMAIN, [ACTOR]).proof
    s = int.from_bytes(proof[32:64], "big")
    twin = proof[:32] + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - proof[64]])
    with pytest.raises(AttestationError, match="high-s"):
        verify(EVENT, DOMAIN, Attestation(1, twin))


def test_attestation_id_names_the_exact_proof():
    a = Eip712Scheme().attest(EVENT, DOMAIN, [ACTOR])
    assert a.id != Attestation(2, a.proof).id
    assert len(a.id) == 32


def test_unknown_scheme_is_named():
    with pytest.raises(AttestationError, match="unknown attestation scheme 9"):
        verify(EVENT, DOMAIN, Attestation(9, b""))


def test_bls_aggregate_of_two_cosigners_verifies_and_a_missing_signer_does_not():
    admin, depositary = BlsKey.from_seed(b"a" * 32), BlsKey.from_seed(b"d" * 32)
    check_proof_of_possession(admin.public_key, admin.proof_of_possession())
    scheme = BlsAggregateScheme()
    att = scheme.attest(EVENT, DOMAIN, [admin, depositary])
    verify(EVENT, DOMAIN, att)
    assert scheme.signers(att) == [admin.public_key, depositary.public_key]
    claims_admin_alone = Attestation(2, bytes([1]) + admin.public_key + att.proof[-96:])
    with pytest.raises(AttestationError, match="does not verify"):
        verify(EVENT, DOMAIN, claims_admin_alone)
    truncated = Attestation(2, bytes([2]) + admin.public_key + att.proof[-96:])
    with pytest.raises(AttestationError, match="2 signers need"):
        verify(EVENT, DOMAIN, truncated)


def test_keystore_round_trip_and_clear_errors(tmp_path):
    path = tmp_path / "key.json"
    write_keystore(path, (7).to_bytes(32, "big"), "s3cret", scrypt_n=2**10)
    assert open_keystore(path, "s3cret").address == ACTOR.address
    with pytest.raises(KeystoreError, match="wrong password"):
        open_keystore(path, "nope")
    with pytest.raises(KeystoreError, match="refusing to overwrite"):
        write_keystore(path, (9).to_bytes(32, "big"), "x", scrypt_n=2**10)
    data = json.loads(path.read_text())
    data["crypto"]["ciphertext"] = "00" * 32
    (tmp_path / "corrupt.json").write_text(json.dumps(data))
    with pytest.raises(KeystoreError, match="wrong password|corrupt"):
        open_keystore(tmp_path / "corrupt.json", "s3cret")
    (tmp_path / "garbage.json").write_text("{")
    with pytest.raises(KeystoreError, match="not JSON"):
        open_keystore(tmp_path / "garbage.json", "s3cret")
    with pytest.raises(KeystoreError, match="does not exist"):
        open_keystore(tmp_path / "missing.json", "s3cret")
    assert (7).to_bytes(32, "big").hex() not in repr(open_keystore(path, "s3cret"))
