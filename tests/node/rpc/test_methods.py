"""What each method answers, in Besu's forms, over real sealed QBFT blocks (memchain)."""

from __future__ import annotations

import pytest
from eth_hash.auto import keccak

from chain.qbft.hashing import block_hash
from chain.qbft.header import BlockHeader
from chain.qbft.verify import verify_commit_seals
from node.abc import Account as Acct
from node.abc import AccountProof
from node.rpc.methods import RpcConfig

from .helpers import Rpc
from .memchain import (
    REVERTER,
    USER,
    VALIDATORS,
    MemChain,
    node_api,
    signed_tx,
)


def h(b: bytes) -> str:
    return "0x" + b.hex()


@pytest.fixture
def chain():
    c = MemChain()
    c.add_block([signed_tx(0), signed_tx(1, kind=0)])
    c.add_block([signed_tx(2, to=None, kind=1)])
    c.add_block()
    return c


@pytest.fixture
def rpc(chain):
    return Rpc(node_api(chain))


def test_block_by_number_is_besus_block_result_of_the_real_sealed_block(rpc, chain):
    got = rpc("eth_getBlockByNumber", "0x1", False)
    block = chain.blocks[1]
    assert got["hash"] == h(block_hash(block.header)) == h(chain.hashes[1])
    header = BlockHeader.from_rpc(got)
    assert header == block.header  # every header field, the seals this node holds included
    assert len(verify_commit_seals(header, VALIDATORS)) == 3  # an observer can verify from JSON
    assert got["transactions"] == [h(keccak(t)) for t in block.transactions]
    assert got["size"] == hex(len(block.encode()))
    assert got["totalDifficulty"] == "0x2" and got["difficulty"] == "0x1"
    assert list(got)[:3] == ["number", "hash", "mixHash"]


def test_full_transactions_carry_sender_and_block_position(rpc, chain):
    got = rpc("eth_getBlockByNumber", "0x1", True)
    assert [t["from"] for t in got["transactions"]] == [h(USER)] * 2
    assert [t["type"] for t in got["transactions"]] == ["0x2", "0x0"]
    assert got["transactions"][1]["transactionIndex"] == "0x1"
    assert got["transactions"][1]["blockHash"] == got["hash"]


@pytest.mark.parametrize("tag", ["latest", "pending", "safe", "finalized", "LATEST"])
def test_every_head_tag_names_the_head_because_qbft_is_final(rpc, chain, tag):
    assert rpc("eth_getBlockByNumber", tag, False)["number"] == "0x3"


def test_earliest_is_the_genesis_with_its_raw_hash(rpc, chain):
    got = rpc("eth_getBlockByNumber", "earliest", False)
    assert got["number"] == "0x0" and got["hash"] == h(chain.genesis.hash)


def test_unknown_blocks_are_null_not_errors(rpc):
    assert rpc("eth_getBlockByNumber", "0x63", False) is None
    assert rpc("eth_getBlockByHash", "0x" + "ab" * 32, False) is None
    assert rpc("eth_getBalance", h(USER), "0x63") is None
    assert rpc("eth_getBlockReceipts", "0x63") is None
    assert rpc("qbft_getValidatorsByBlockNumber", "0x63") is None


def test_state_queries_take_eip1898_block_objects(rpc, chain):
    by_hash = rpc("eth_getBalance", h(USER), {"blockHash": h(chain.hashes[2])})
    by_number = rpc("eth_getBalance", h(USER), {"blockNumber": "0x2"})
    assert by_hash == by_number == hex(10**21)
    err = rpc.error("eth_getBalance", h(USER), {"blockHash": h(chain.hashes[2]), "blockNumber": "0x2"})
    assert err["code"] == -32602 and "not both" in err["message"]


def test_transaction_lookup_finds_pool_then_chain(rpc, chain):
    mined = rpc("eth_getTransactionByHash", h(keccak(chain.blocks[2].transactions[0])))
    assert mined["blockNumber"] == "0x2" and mined["to"] is None and mined["type"] == "0x1"
    raw = signed_tx(3)
    tx_hash = rpc("eth_sendRawTransaction", h(raw))
    pending = rpc("eth_getTransactionByHash", tx_hash)
    assert pending["blockHash"] is None and pending["transactionIndex"] is None
    assert pending["from"] == h(USER) and pending["raw"] == h(raw)
    assert h(keccak(bytes.fromhex(pending["publicKey"][2:]))[12:]) == h(USER)


def test_receipts_by_transaction_and_by_block(rpc, chain):
    tx_hash = h(keccak(chain.blocks[1].transactions[1]))
    receipt = rpc("eth_getTransactionReceipt", tx_hash)
    assert receipt["transactionIndex"] == "0x1" and receipt["status"] == "0x1"
    assert receipt["logs"][0]["logIndex"] == "0x1" and receipt["logs"][0]["blockTimestamp"]
    assert receipt["contractAddress"] is None and receipt["type"] == "0x0"
    creation = rpc("eth_getBlockReceipts", "0x2")[0]
    assert creation["to"] is None and creation["contractAddress"] is not None
    assert rpc("eth_getTransactionReceipt", "0x" + "00" * 32) is None


@pytest.mark.parametrize("raw, code, message", [
    (signed_tx(0), -32001, "Nonce too low"),
    (signed_tx(9), -32000, "Transaction nonce is too distant from current sender nonce"),
])
def test_pool_rejections_carry_besus_code_and_message(rpc, raw, code, message):
    err = rpc.error("eth_sendRawTransaction", h(raw))
    assert (err["code"], err["message"]) == (code, message)
    assert err["data"]  # the pool's detail: what it expected
    assert rpc.methods.counters.pool_rejected


def test_send_raw_transaction_needs_exactly_one_hex_param(rpc):
    assert rpc.error("eth_sendRawTransaction", "0xzz")["code"] == -32602
    assert rpc.error("eth_sendRawTransaction")["code"] == -32602


def test_reverted_call_is_code_3_with_geths_message_and_the_revert_data(rpc):
    err = rpc.error("eth_call", {"to": h(REVERTER), "data": "0x"}, "latest")
    assert err["code"] == 3
    assert err["message"] == "execution reverted: not allowed"
    assert err["data"].startswith("0x08c379a0")
    assert rpc.error("eth_estimateGas", {"to": h(REVERTER)}) == err


def test_call_returns_output_and_rejects_an_unknown_block_hash(rpc):
    assert rpc("eth_call", {"to": "0x" + "11" * 20, "input": "0x0102"}, "latest") == "0x0201"
    err = rpc.error("eth_call", {"to": "0x" + "11" * 20}, {"blockHash": "0x" + "ab" * 32})
    assert err == {"code": -32000, "message": "Block not found"}
    assert rpc("eth_estimateGas", {"to": "0x" + "11" * 20, "data": "0x01"}) == hex(21_016)


def test_get_logs_filters_by_address_topic_and_range(rpc, chain):
    all_logs = rpc("eth_getLogs", {"fromBlock": "earliest", "toBlock": "latest"})
    assert len(all_logs) == 3
    assert list(all_logs[0])[:3] == ["logIndex", "removed", "blockNumber"]
    topic1 = "0x" + (1).to_bytes(32, "big").hex()
    only = rpc("eth_getLogs", {"fromBlock": "0x0", "topics": [None, topic1]})
    assert [entry["transactionIndex"] for entry in only] == ["0x1"]
    by_hash = rpc("eth_getLogs", {"blockHash": h(chain.hashes[2])})
    assert [entry["blockNumber"] for entry in by_hash] == ["0x2"]
    none = rpc("eth_getLogs", {"fromBlock": "0x1", "address": "0x" + "99" * 20})
    assert none == []


def test_get_logs_refuses_inverted_and_oversized_ranges(chain):
    rpc = Rpc(node_api(chain), RpcConfig(max_logs_range=2))
    assert rpc.error("eth_getLogs", {"fromBlock": "0x3", "toBlock": "0x1"})["code"] == -32602
    err = rpc.error("eth_getLogs", {"fromBlock": "0x0", "toBlock": "0x3"})
    assert err["code"] == -32005 and "query smaller ranges" in err["message"]
    err = rpc.error("eth_getLogs", {"blockHash": "0x" + "ab" * 32, "fromBlock": "0x1"})
    assert err["code"] == -32602


def test_validators_by_block_number_and_hash(rpc, chain):
    want = [h(v) for v in VALIDATORS]
    assert rpc("qbft_getValidatorsByBlockNumber", "latest") == want
    assert rpc("qbft_getValidatorsByBlockNumber", "0x1") == want
    assert rpc("qbft_getValidatorsByBlockNumber", "pending") == want
    assert rpc("qbft_getValidatorsByBlockHash", h(chain.hashes[2])) == want
    assert rpc("qbft_getValidatorsByBlockHash", "0x" + "00" * 32) is None


def test_validators_reflect_a_set_change_at_the_right_height():
    chain = MemChain()
    chain.add_block()
    chain.add_block(validators=VALIDATORS[:3])
    rpc = Rpc(node_api(chain))
    assert len(rpc("qbft_getValidatorsByBlockNumber", "0x1")) == 4
    assert rpc("qbft_getValidatorsByBlockNumber", "0x2") == [h(v) for v in VALIDATORS[:3]]


def test_contract_mode_reports_the_set_after_the_block_and_refuses_votes():
    chain = MemChain(contract_mode=True)
    chain.add_block()
    chain.add_block(validators=VALIDATORS[:3])
    rpc = Rpc(node_api(chain))
    assert len(rpc("qbft_getValidatorsByBlockNumber", "0x1")) == 3  # post-state of block 1
    err = rpc.error("qbft_proposeValidatorVote", h(VALIDATORS[0]), False)
    assert err["code"] == -32604 and "validator contract" in err["message"]


def test_request_timeout_is_a_json_number(rpc):
    assert rpc("qbft_getRequestTimeoutSeconds") == 4


def test_signer_metrics_count_proposers_over_a_range_that_excludes_its_end():
    chain = MemChain()
    a, b = VALIDATORS[0], VALIDATORS[1]
    for proposer in (a, a, b, a, b):
        chain.add_block(proposer=proposer)
    rpc = Rpc(node_api(chain))
    got = {m["address"]: m for m in rpc("qbft_getSignerMetrics", "0x1", "0x4")}
    assert got[h(a)] == {"address": h(a), "proposedBlockCount": "0x2", "lastProposedBlockNumber": "0x2"}
    assert got[h(b)]["proposedBlockCount"] == "0x1"
    assert got[h(VALIDATORS[3])]["proposedBlockCount"] == "0x0"  # validators of the last block
    default = {m["address"]: m["proposedBlockCount"] for m in rpc("qbft_getSignerMetrics")}
    # default range [max(0, head-100), head): the genesis (coinbase 0x0) and blocks 1..4
    assert default[h(a)] == "0x3" and default[h(b)] == "0x1"
    assert rpc.error("qbft_getSignerMetrics", "0x4", "0x4")["code"] == -32602


def test_validator_votes_propose_list_and_discard(rpc):
    subject = "0x" + "42" * 20
    assert rpc("qbft_proposeValidatorVote", subject, True) is True
    assert rpc("qbft_proposeValidatorVote", h(VALIDATORS[1]), False) is True
    assert rpc("qbft_getPendingVotes") == {subject: True, h(VALIDATORS[1]): False}
    assert rpc("qbft_discardValidatorVote", subject) is True
    assert rpc("qbft_getPendingVotes") == {h(VALIDATORS[1]): False}
    assert rpc.error("qbft_proposeValidatorVote", subject, "yes")["message"].startswith(
        "Invalid vote type params")


def test_fee_history_on_a_zero_base_fee_network(rpc):
    got = rpc("eth_feeHistory", "0x2", "latest", [10, 90])
    assert got["oldestBlock"] == "0x2"
    assert got["baseFeePerGas"] == ["0x0", "0x0", "0x0"]
    assert len(got["gasUsedRatio"]) == 2 and len(got["reward"]) == 2
    assert got["reward"][1] == ["0x0", "0x0"]  # empty block
    assert rpc.error("eth_feeHistory", "0x0", "latest")["code"] == -32602
    assert rpc.error("eth_feeHistory", "0x1", "0x63")["message"].startswith("Invalid block number params")
    assert rpc.error("eth_feeHistory", "0x1", "latest", [50, 10])["code"] == -32602


def test_gas_price_is_a_percentile_of_recent_legacy_prices(rpc):
    assert rpc("eth_gasPrice") == "0x3"  # the type-0/1 transactions pay 3
    assert rpc("eth_maxPriorityFeePerGas") == "0x1"


def test_node_status_methods(chain):
    node = node_api(chain, peers=2)
    rpc = Rpc(node)
    assert rpc("net_peerCount") == "0x2"
    assert rpc("eth_syncing") is False
    node.status.syncing = (0, 5, 9)
    assert rpc("eth_syncing") == {"startingBlock": "0x0", "currentBlock": "0x5", "highestBlock": "0x9"}
    assert rpc("txpool_besuStatistics") == {"maxSize": 4096, "localCount": 0, "remoteCount": 0}
    peers = rpc("admin_peers")
    assert len(peers) == 2 and peers[0]["enode"].startswith("enode://") and peers[0]["port"] == hex(30304)
    assert rpc("web3_sha3", "0x") == h(keccak(b""))


def test_proof_and_storage_formats(rpc, chain):
    chain.proof = lambda address, slots, block: AccountProof(
        address, Acct(1, 2, b"\x33" * 32, b"\x44" * 32), (b"\xc1\x80",), ((0x347, 5, (b"\x80",)),))
    got = rpc("eth_getProof", h(USER), ["0x0347"], "latest")
    assert got["storageProof"] == [{"key": "0x0347", "value": "0x5", "proof": ["0x80"]}]
    assert list(got) == ["accountProof", "address", "balance", "codeHash", "nonce", "storageHash",
                         "storageProof"]
    assert rpc("eth_getStorageAt", h(USER), "0x2", "latest") == "0x" + (4).to_bytes(32, "big").hex()


class Dev:
    def __init__(self):
        self.calls = []
        self.offset = 0

    def snapshot(self):
        self.calls.append("snapshot")
        return 1

    def revert(self, snapshot_id):
        self.calls.append(("revert", snapshot_id))
        return snapshot_id == 1

    def mine(self, blocks=1, timestamp=None, interval=1):
        self.calls.append(("mine", blocks, timestamp, interval))

    def increase_time(self, seconds):
        self.offset += seconds
        return self.offset

    def set_next_block_timestamp(self, timestamp):
        if timestamp < 10:
            raise ValueError(f"timestamp {timestamp} is not after the head's; pick a later one")


def test_dev_methods_answer_as_hardhat_and_anvil():
    dev = Dev()
    rpc = Rpc(node_api(MemChain(), dev=dev))
    assert rpc("evm_snapshot") == "0x1"
    assert rpc("evm_revert", "0x1") is True and rpc("evm_revert", "0x2") is False
    assert rpc("evm_mine") == "0x0"
    assert rpc("evm_mine", 1_900_000_000) == "0x0"
    assert rpc("evm_mine", {"timestamp": 1_900_000_100, "blocks": 3}) == "0x0"
    assert rpc("hardhat_mine", "0x10", "0x5") is True
    assert dev.calls[-4:] == [("mine", 1, None, 1), ("mine", 1, 1_900_000_000, 1),
                              ("mine", 3, 1_900_000_100, 1), ("mine", 16, None, 5)]
    assert rpc("evm_increaseTime", 60) == "60" and rpc("evm_increaseTime", "0x3c") == "120"
    assert rpc("evm_setNextBlockTimestamp", 2_000_000_000) == "2000000000"
    err = rpc.error("evm_setNextBlockTimestamp", 5)
    assert err["code"] == -32000 and "pick a later one" in err["message"]
