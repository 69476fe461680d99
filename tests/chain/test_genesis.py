"""Besu QBFT genesis: build, read back as Besu reads it, and compute the genesis block."""

from __future__ import annotations

import json

import pytest
from eth.db.account import AccountDB
from eth.db.atomic import AtomicDB

from chain.qbft import extra_data as xd
from chain.qbft.genesis import AllocAccount, Genesis, GenesisError, QbftSettings, build_genesis, state_root
from chain.qbft.header import BFT_MIX_HASH, EMPTY_TRIE_ROOT

V = [bytes([i]) * 20 for i in (3, 1, 2)]
ALLOC = {
    b"\xaa" * 20: AllocAccount(balance=10**21),
    b"\xbb" * 20: AllocAccount(balance=5, nonce=3, code=bytes.fromhex("6001600055"),
                               storage={0: 7, 2**255: 1, 5: 0}),
    b"\xcc" * 20: AllocAccount(),
}


def test_state_root_matches_py_evm_for_balances_code_storage_and_empty_accounts():
    db = AccountDB(AtomicDB())
    for address, acct in ALLOC.items():
        db.touch_account(address)
        db.set_balance(address, acct.balance)
        db.set_nonce(address, acct.nonce)
        db.set_code(address, acct.code)
        for slot, value in acct.storage.items():
            db.set_storage(address, slot, value)
    db.persist()
    assert state_root(ALLOC) == db.state_root


def test_empty_alloc_has_the_empty_trie_root():
    assert state_root({}) == EMPTY_TRIE_ROOT


def test_built_genesis_reads_back_with_every_setting():
    settings = QbftSettings(block_period_seconds=2, epoch_length=100, request_timeout_seconds=4,
                            empty_block_period_seconds=10)
    g = Genesis(build_genesis(chain_id=1337, validators=V, qbft=settings, alloc=ALLOC,
                              contract_size_limit=2**20))
    assert g.chain_id == 1337
    assert g.qbft == settings
    assert g.validators == tuple(V)  # input order kept, as Besu's tooling
    assert g.zero_base_fee and g.contract_size_limit == 2**20
    assert g.alloc == ALLOC
    header = g.header()
    assert header.base_fee == 0 and header.withdrawals_root == EMPTY_TRIE_ROOT
    assert header.blob_gas_used == 0 and header.parent_beacon_block_root == bytes(32)
    assert header.mix_hash == BFT_MIX_HASH and header.difficulty == 1
    assert g.hash == header.raw_hash()


def test_genesis_keys_are_read_case_insensitively_as_besu_normalises_them():
    raw = build_genesis(chain_id=5, validators=V, qbft=QbftSettings())
    raw["config"]["qbft"] = {"blockPeriodSeconds": 3, "EpochLength": 9, "requestTimeoutSeconds": 6}
    raw["config"]["ChainId"] = raw["config"].pop("chainId")
    g = Genesis(json.loads(json.dumps(raw)))
    assert (g.chain_id, g.qbft.block_period_seconds, g.qbft.epoch_length,
            g.qbft.request_timeout_seconds) == (5, 3, 9, 6)


def test_london_genesis_without_forks_after_it_has_no_shanghai_or_cancun_fields():
    g = Genesis(build_genesis(chain_id=5, validators=V, qbft=QbftSettings(), fork="london"))
    header = g.header()
    assert header.base_fee == 0
    assert header.withdrawals_root is None and header.blob_gas_used is None


def test_misspelt_empty_block_period_is_refused_because_besu_ignores_it():
    raw = build_genesis(chain_id=5, validators=V, qbft=QbftSettings())
    raw["config"]["qbft"]["emptyblockperiodseconds"] = 30
    with pytest.raises(GenesisError, match="xemptyblockperiodseconds"):
        Genesis(raw)


@pytest.mark.parametrize(
    ("patch", "reason"),
    [
        ({"config": {"chainId": 1}}, "qbft"),
        ({"config": {"chainId": 1, "qbft": {"blockperiodseconds": 0}}}, "blockperiodseconds"),
        ({"config": {"chainId": 1, "qbft": {"epochlength": 0}}}, "epochlength"),
        ({"extraData": "0x80"}, "extraData"),
    ],
)
def test_invalid_genesis_is_refused_with_the_field_named(patch, reason):
    raw = build_genesis(chain_id=5, validators=V, qbft=QbftSettings())
    raw.update(patch)
    with pytest.raises(GenesisError, match=reason):
        Genesis(raw)


def test_contract_mode_genesis_lists_no_validators():
    g = Genesis(build_genesis(chain_id=5, validators=[], qbft=QbftSettings(
        validator_contract_address=b"\x12" * 20)))
    assert g.contract_mode and g.validators == ()
    assert xd.encode_genesis([]).hex() in json.dumps(g.raw)


def test_load_reports_a_missing_or_broken_file(tmp_path):
    with pytest.raises(GenesisError, match="does not exist"):
        Genesis.load(tmp_path / "nope.json")
    (tmp_path / "g.json").write_text("{not json")
    with pytest.raises(GenesisError, match="not JSON"):
        Genesis.load(tmp_path / "g.json")
