"""Record proofs: made from a node in one place, checked in another with only the genesis file;
any changed byte, a left-out vote, another genesis or an altered record is refused."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import rfc8785
from conftest import write_genesis
from devchain import ChainBuilder
from hostile import HostileNode
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ledgerchain import LEDGER_ADDRESS, Ledger, order_fact

from chain.qbft.genesis import Genesis
from observer.proof import ProofFileError, check_proof, make_proof
from observer.rpc import RpcSource


def _changing_chain():
    """Epochs of 10 blocks; a validator voted in, another voted out, records throughout."""
    b = ChainBuilder(epoch=10)
    ledger = Ledger(b)
    b.extend(1)
    b.add(body=ledger.grant(["ta", "admin"]))
    b.add(body=ledger.append([[order_fact("ta", 1), order_fact("admin", 2)]]))
    b.vote_in(b.spare[0])
    b.add(body=ledger.append([[order_fact("ta", 3)], [order_fact("ta", 4), order_fact("admin", 5)]]))
    b.extend(4)
    b.vote_in(b.genesis_validators[0], add=False)
    b.extend(3)
    b.add(body=ledger.append([[order_fact("admin", 6), order_fact("ta", 7)]]))
    b.extend(2)
    return b.chain(), ledger


@pytest.fixture(scope="module")
def proved():
    chain, ledger = _changing_chain()
    with HostileNode(chain) as node:
        data = make_proof(RpcSource(node.url), chain.genesis, LEDGER_ADDRESS, 7)
        early = make_proof(RpcSource(node.url), chain.genesis, LEDGER_ADDRESS, 2)
    return chain, ledger, data, early


def test_proof_made_here_verifies_elsewhere_with_only_the_genesis(proved, tmp_path):
    chain, ledger, data, _ = proved
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "record-7.proof.json").write_bytes(data)
    shutil.copy(write_genesis(chain, tmp_path), elsewhere / "genesis.json")
    exe = Path(sys.executable).with_name("smartta-observer")
    done = subprocess.run([str(exe), "check-proof", "record-7.proof.json", "--genesis",
                           "genesis.json"], cwd=elsewhere, capture_output=True, text=True,
                          timeout=120, env={"PATH": "/usr/bin:/bin", "HOME": str(elsewhere)})
    out = " ".join(done.stdout.split())
    assert done.returncode == 0, out + done.stderr
    assert "VALID record 7 (ORDER_PLACED)" in out
    assert "3 validator set(s) derived from the genesis" in out
    proven = check_proof(data, chain.genesis)
    assert proven.record == ledger.records[6]


def test_proof_of_a_record_before_any_change_needs_no_lineage(proved):
    chain, _, _, early = proved
    doc = json.loads(early)
    assert doc["lineage"] == []
    assert check_proof(early, chain.genesis).record.seq == 2


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_every_changed_byte_of_a_proof_is_refused(proved, data):
    chain, _, proof, _ = proved
    pos = data.draw(st.integers(0, len(proof) - 1))
    flip = data.draw(st.integers(1, 255))
    forged = bytearray(proof)
    forged[pos] ^= flip
    with pytest.raises(ProofFileError):
        check_proof(bytes(forged), chain.genesis)


def _edit(proof: bytes, change) -> bytes:
    doc = json.loads(proof)
    change(doc)
    return bytes(rfc8785.dumps(doc))


def test_a_left_out_vote_is_refused(proved):
    chain, _, proof, _ = proved
    forged = _edit(proof, lambda d: d["lineage"].pop(1))
    with pytest.raises(ProofFileError, match="listed validators are not the set derived"):
        check_proof(forged, chain.genesis)


def test_an_altered_record_is_refused_even_in_canonical_form(proved):
    chain, _, proof, _ = proved

    def change(doc):
        doc["record"]["delta"] = doc["record"]["delta"].replace("EUR", "USD")

    with pytest.raises(ProofFileError, match="differs from the record the sealed log holds"):
        check_proof(_edit(proof, change), chain.genesis)


def test_proof_checked_against_another_genesis_is_refused(proved):
    _, _, proof, _ = proved
    other = Genesis(ChainBuilder(validators=5).genesis_json)
    with pytest.raises(ProofFileError, match="genesis"):
        check_proof(proof, other)


def test_a_checkpoint_spares_the_header_scan_and_gives_the_same_proof(proved, tmp_path):
    from conftest import run_verifier

    from observer.checkpoint import CheckpointStore

    chain, _, data, _ = proved
    with HostileNode(chain) as node:
        store = CheckpointStore.for_genesis(chain.genesis.hash, tmp_path / "state")
        assert run_verifier(chain.genesis, [node.url], store=store).failure is None
        node.calls.clear()
        again = make_proof(RpcSource(node.url), chain.genesis, LEDGER_ADDRESS, 7,
                           store.load(chain.genesis.hash))
        fetched = node.calls.count("eth_getBlockByNumber")
    assert again == data
    lineage = len(json.loads(data)["lineage"])
    assert fetched == lineage + 1  # the lineage and the record's block, nothing else


def test_a_checkpoint_before_the_record_is_gone_on_from(proved, tmp_path):
    from conftest import run_verifier

    from observer.checkpoint import CheckpointStore

    chain, _, data, _ = proved
    with HostileNode(chain) as node:
        store = CheckpointStore.for_genesis(chain.genesis.hash, tmp_path / "state")
        assert run_verifier(chain.genesis, [node.url], store=store, to=10).failure is None
        again = make_proof(RpcSource(node.url), chain.genesis, LEDGER_ADDRESS, 7,
                           store.load(chain.genesis.hash))
    assert again == data
