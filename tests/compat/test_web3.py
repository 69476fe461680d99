"""web3.py, unchanged, against the node: deploy, call, revert reasons, receipts, logs, blocks,
fee data, and WebSocket subscriptions."""

from __future__ import annotations

import asyncio

import pytest
from eth_account import Account
from web3 import AsyncWeb3, Web3
from web3.exceptions import ContractLogicError
from web3.middleware import ExtraDataToPOAMiddleware
from web3.providers.persistent import WebSocketProvider

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def w3(devnet):
    w3 = Web3(Web3.HTTPProvider(devnet.url, request_kwargs={"timeout": 60}))
    # QBFT extraData is longer than 32 bytes; web3.py needs this middleware for Besu QBFT too.
    w3.middleware_onion.inject(ExtraDataToPOAMiddleware, layer=0)
    return w3


@pytest.fixture(scope="module")
def deployed(w3, devnet, recorder):
    account = Account.from_key(devnet.accounts[0][1])
    contract = w3.eth.contract(abi=recorder["abi"], bytecode=recorder["bytecode"])
    tx = contract.constructor().build_transaction({
        "from": account.address, "nonce": w3.eth.get_transaction_count(account.address, "pending"),
        "chainId": devnet.chain_id})
    signed = account.sign_transaction(tx)
    receipt = w3.eth.wait_for_transaction_receipt(w3.eth.send_raw_transaction(signed.raw_transaction))
    assert receipt.status == 1 and receipt.contractAddress
    return w3.eth.contract(address=receipt.contractAddress, abi=recorder["abi"]), account, receipt


def send(w3, devnet, account, fn):
    tx = fn.build_transaction({"from": account.address, "chainId": devnet.chain_id,
                               "nonce": w3.eth.get_transaction_count(account.address, "pending")})
    tx_hash = w3.eth.send_raw_transaction(account.sign_transaction(tx).raw_transaction)
    return w3.eth.wait_for_transaction_receipt(tx_hash)


def test_chain_identity_and_blocks(w3, devnet):
    assert w3.eth.chain_id == devnet.chain_id
    assert w3.is_connected()
    genesis = w3.eth.get_block(0)
    assert genesis.number == 0 and genesis.difficulty == 1
    latest = w3.eth.get_block("latest", full_transactions=True)
    assert w3.eth.get_block(latest.hash).number == latest.number
    assert w3.eth.get_block("finalized").number == latest.number


def test_deploy_call_and_transact(w3, devnet, deployed):
    contract, account, deployment = deployed
    assert w3.eth.get_code(contract.address) != b""
    assert w3.eth.get_transaction_receipt(deployment.transactionHash).contractAddress == contract.address
    before = contract.functions.count().call()
    out = send(w3, devnet, account, contract.functions.record("first note"))
    assert out.status == 1
    assert contract.functions.count().call() == before + 1
    assert contract.functions.lastNote(account.address).call() == "first note"
    tx = w3.eth.get_transaction(out.transactionHash)
    assert tx["from"] == account.address and tx.blockNumber == out.blockNumber


def test_revert_reason_reaches_web3(w3, deployed):
    contract, account, _ = deployed
    with pytest.raises(ContractLogicError, match="not allowed"):
        contract.functions.refuse().call({"from": account.address})
    with pytest.raises(ContractLogicError, match="not allowed"):
        contract.functions.refuse().estimate_gas({"from": account.address})


def test_logs_from_receipts_and_get_logs(w3, devnet, deployed):
    contract, account, _ = deployed
    out = send(w3, devnet, account, contract.functions.record("logged"))
    events = contract.events.Recorded().process_receipt(out)
    assert [e.args.note for e in events] == ["logged"]
    found = contract.events.Recorded().get_logs(from_block=out.blockNumber, to_block=out.blockNumber)
    assert [e.args.who for e in found] == [account.address]
    block_receipts = w3.eth.get_block_receipts(out.blockNumber)
    assert [r.transactionHash for r in block_receipts] == [out.transactionHash]


def test_fee_data_and_gas_estimates(w3, deployed):
    contract, account, _ = deployed
    assert w3.eth.gas_price == 0  # a free-gas network
    history = w3.eth.fee_history(2, "latest", [50])
    assert len(history.baseFeePerGas) == 3
    assert contract.functions.record("x").estimate_gas({"from": account.address}) > 21_000
    assert w3.eth.max_priority_fee == 0


def test_websocket_subscriptions_new_heads_and_logs(devnet, deployed, w3):
    contract, account, _ = deployed

    async def main():
        async with AsyncWeb3(WebSocketProvider(devnet.ws)) as aw3:
            aw3.middleware_onion.inject(ExtraDataToPOAMiddleware, layer=0)
            heads = await aw3.eth.subscribe("newHeads")
            logs = await aw3.eth.subscribe("logs", {"address": contract.address})
            receipt = await asyncio.get_running_loop().run_in_executor(
                None, lambda: send(w3, devnet, account, contract.functions.record("over ws")))
            seen_head = seen_log = None
            async for message in aw3.socket.process_subscriptions():
                if message["subscription"] == heads:
                    seen_head = message["result"]
                elif message["subscription"] == logs:
                    seen_log = message["result"]
                if seen_head is not None and seen_log is not None:
                    break
            assert seen_head["number"] == receipt.blockNumber
            assert seen_log["transactionHash"] == receipt.transactionHash
            assert await aw3.eth.unsubscribe(heads) is True

    asyncio.run(asyncio.wait_for(main(), 60))

