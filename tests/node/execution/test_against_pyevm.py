"""Our execution (StateDB, batch trie, executor) gives the roots stock py-evm gives.

The same transactions, in the order our block builder chose, run through py-evm's own chain
(its AccountDB, py-trie and VM classes); every block must end in the same state root, receipts
root, logs bloom and gas. The workload covers what changes state in unusual ways: storage
deletion, reverts, out-of-gas, value transfers creating accounts, zero-value calls to empty
accounts (EIP-161), contract creation from a contract, self-destruct (EIP-6780), fees paid to
the coinbase, all three transaction types with access lists, and the genesis alloc's code and
storage.
"""

from __future__ import annotations

import pytest
from eth.chains.base import MiningChain
from eth.db.atomic import AtomicDB
from eth.vm.forks.cancun import CancunVM
from eth.vm.forks.prague import PragueVM
from eth_account import Account
from eth_utils import keccak, to_checksum_address

from chain.qbft.genesis import AllocAccount
from chain.qbft.header import BFT_MIX_HASH

from .devnet import PROBE_CODE, USERS, addr, call_data, genesis, open_chain, produce, sign, signers

STORED = bytes.fromhex("60016000540160005500")  # slot0 += 1 (reads and writes alloc storage)


def _workload(probe: bytes, nonces: dict[bytes, int]) -> list[list[bytes]]:
    def tx(user, **kw) -> bytes:
        a = addr(user)
        n = nonces.get(a, 0)
        nonces[a] = n + 1
        return sign(user, nonce=n, **kw)

    fresh = [Account.create().address for _ in range(3)]
    u = USERS
    return [
        [tx(u[1], to=probe, data=call_data("bump(bytes32)", b"a" * 32)),
         tx(u[2], to=probe, data=call_data("set(uint256,uint256)", 7, 99), type=0),
         tx(u[3], to=probe, data=call_data("fill(uint256)", 5), type=1,
            access_list=[{"address": to_checksum_address(probe), "storageKeys": ["0x" + "00" * 32]}]),
         tx(u[4], to=bytes.fromhex(fresh[0][2:]), value=10**18, gas=21_000),
         tx(u[5], to=bytes.fromhex(fresh[1][2:]), value=0, gas=21_000),
         tx(u[6], to=probe, data=call_data("fail(string)", "nope")),
         tx(u[7], to=probe, data=call_data("fill(uint256)", 50), gas=60_000),
         tx(u[8], to=probe, data=call_data("bump(bytes32)", b"b" * 32), price=7, tip=3),
         tx(u[9], to=b"\x00" * 19 + b"\x04", data=b"identity", gas=30_000)],
        [tx(u[2], to=probe, data=call_data("clear(uint256)", 7)),
         tx(u[3], to=probe, data=call_data("set(uint256,uint256)", 3, 0)),
         tx(u[1], to=probe, data=call_data("spawn(bytes)", PROBE_CODE), gas=2_000_000),
         tx(u[1], to=probe, data=call_data("spawnAndDestroy()"), gas=1_000_000),
         tx(u[4], to=probe, data=call_data("pay(address)", bytes.fromhex(fresh[2][2:])),
            value=12345),
         tx(u[6], to=probe, data=call_data("failCustom(uint256)", 5), type=0, price=2),
         tx(u[10], to=b"\x42" * 20, data=b"", gas=100_000),
         tx(u[11], to=probe, data=call_data("destroy(address)", addr(u[11])), gas=100_000)],
        [tx(u[i], to=probe, data=call_data("bump(bytes32)", bytes([i]) * 32), type=i % 3)
         for i in range(12, 30)],
    ]


@pytest.mark.parametrize("fork, vm", [("cancun", CancunVM), ("prague", PragueVM)])
def test_blocks_execute_to_the_roots_stock_py_evm_computes(tmp_path, fork, vm):
    alloc = {b"\x42" * 20: AllocAccount(balance=3, code=STORED, storage={0: 41, 5: 1})}
    g = genesis(1, fork=fork, alloc=alloc)
    chain = open_chain(tmp_path / "ours", g)
    keys = signers(1)
    deployer = USERS[0]
    chain.pool.add(sign(deployer, nonce=0, data=PROBE_CODE, gas=3_000_000))
    blocks = [produce(chain, keys)]
    probe = chain.receipts(1)[0].contract_address
    nonces = {addr(deployer): 1}
    for batch in _workload(probe, nonces):
        for raw in batch:
            chain.pool.add(raw)
        blocks.append(produce(chain, keys))
    assert sum(len(b.transactions) for b in blocks) == 1 + sum(len(b) for b in _workload(probe, {}))

    h = g.header()
    params = dict(coinbase=h.coinbase, difficulty=0, gas_limit=h.gas_limit, timestamp=h.timestamp,
                  extra_data=h.extra_data, mix_hash=h.mix_hash, nonce=h.nonce,
                  base_fee_per_gas=h.base_fee)
    state = {a: {"balance": x.balance, "nonce": x.nonce, "code": x.code, "storage": dict(x.storage)}
             for a, x in g.alloc.items()}
    reference = MiningChain.configure(__name__="Reference", vm_configuration=((0, vm),),
                                      chain_id=g.chain_id).from_genesis(AtomicDB(), params, state)
    assert reference.get_canonical_head().state_root == h.state_root
    builder = reference.get_vm().get_transaction_builder()
    for block in blocks:
        ours = block.header
        reference.header = reference.header.copy(coinbase=ours.coinbase, timestamp=ours.timestamp,
                                                  mix_hash=BFT_MIX_HASH, gas_limit=ours.gas_limit)
        for raw in block.transactions:
            reference.apply_transaction(builder.decode(raw))
        mined = reference.mine_block(coinbase=ours.coinbase, timestamp=ours.timestamp,
                                     mix_hash=BFT_MIX_HASH).header
        assert (mined.state_root, mined.receipt_root, mined.transaction_root, mined.gas_used) == \
            (ours.state_root, ours.receipts_root, ours.transactions_root, ours.gas_used), \
            f"block {ours.number} differs from py-evm"
        assert mined.bloom.to_bytes(256, "big") == ours.logs_bloom
    failed = [r.tx_hash for r in chain.receipts(2) if r.status == 0]
    assert len(failed) == 2  # the revert and the out-of-gas transaction
    assert keccak(chain.code(probe, chain.head.number)) == keccak(
        reference.get_vm().state.get_code(probe))
