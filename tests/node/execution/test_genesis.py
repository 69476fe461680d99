"""The genesis block our node stores is the one py-evm computes from the same genesis file: the
same header hash (over the raw extraData, as Besu hashes block 0) and the same state root."""

from __future__ import annotations

import pytest
from eth.chains.base import MiningChain
from eth.db.atomic import AtomicDB
from eth.vm.forks.cancun import CancunVM
from eth.vm.forks.london import LondonVM
from eth.vm.forks.prague import PragueVM
from eth.vm.forks.shanghai import ShanghaiVM

from chain.qbft.genesis import AllocAccount, Genesis, QbftSettings, build_genesis

from .devnet import open_chain

ALLOC = {
    b"\x01" * 20: AllocAccount(balance=5, nonce=2, code=bytes.fromhex("6000"), storage={1: 7, 2: 0}),
    b"\x02" * 20: AllocAccount(),
    b"\x03" * 20: AllocAccount(balance=10**30),
}
VALIDATORS = [b"\x09" * 20, b"\x03" * 20]  # unsorted, as Besu's tooling writes them


@pytest.mark.parametrize("fork, vm", [("london", LondonVM), ("shanghai", ShanghaiVM),
                                      ("cancun", CancunVM), ("prague", PragueVM)])
def test_genesis_hash_and_state_root_are_what_py_evm_computes(tmp_path, fork, vm):
    g = Genesis(build_genesis(chain_id=2026, validators=VALIDATORS, qbft=QbftSettings(),
                              alloc=ALLOC, fork=fork, timestamp=1234))
    h = g.header()
    fields = dict(coinbase=h.coinbase, difficulty=h.difficulty, gas_limit=h.gas_limit,
                  timestamp=h.timestamp, extra_data=h.extra_data, mix_hash=h.mix_hash,
                  nonce=h.nonce, base_fee_per_gas=h.base_fee)
    for name, value in (("withdrawals_root", h.withdrawals_root), ("blob_gas_used", h.blob_gas_used),
                        ("excess_blob_gas", h.excess_blob_gas),
                        ("parent_beacon_block_root", h.parent_beacon_block_root),
                        ("requests_hash", h.requests_hash)):
        if value is not None:
            fields[name] = value
    header_class = dict(vm.block_class._meta.fields)["header"]
    pyevm_header = header_class(parent_hash=h.parent_hash, uncles_hash=h.ommers_hash,
                                state_root=h.state_root, transaction_root=h.transactions_root,
                                receipt_root=h.receipts_root, bloom=0, block_number=0, gas_used=0,
                                **fields)
    assert pyevm_header.hash == g.hash
    # py-evm builds the genesis state from the alloc itself (its genesis header rules want
    # difficulty 0 after the merge, which a QBFT genesis is not, so only the state is compared)
    state = {a: {"balance": x.balance, "nonce": x.nonce, "code": x.code, "storage": dict(x.storage)}
             for a, x in g.alloc.items()}
    params = {**fields, "difficulty": 1 if fork == "london" else 0}
    params = {k: v for k, v in params.items() if k in ("coinbase", "difficulty", "gas_limit",
                                                         "timestamp", "extra_data", "mix_hash",
                                                         "nonce", "base_fee_per_gas")}
    reference = MiningChain.configure(__name__="Ref", vm_configuration=((0, vm),),
                                      chain_id=2026).from_genesis(AtomicDB(), params, state)
    assert reference.get_canonical_head().state_root == h.state_root
    chain = open_chain(tmp_path, g)
    assert chain.head_hash == g.hash and chain.head.state_root == h.state_root
    assert chain.account(b"\x01" * 20, 0).nonce == 2 and chain.storage_at(b"\x01" * 20, 1, 0) == 7
    assert chain.code(b"\x01" * 20, 0) == bytes.fromhex("6000")
