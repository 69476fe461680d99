"""JSON-RPC results in Besu's shapes: field names, field order, hex forms and which fields are
left out (Besu's ``BlockResult``, ``TransactionCompleteResult``, ``TransactionPendingResult``,
``TransactionReceiptResult``, ``LogResult``, ``GetProofResult``, ``SyncingResult``...).

Quantities are minimal hex (``0x0``, ``0x1a``); data is full hex; the nonce is 8 bytes; absent
optional fields are omitted, while ``to`` and ``contractAddress`` are ``null`` when empty.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import rlp

from chain.qbft.block import Block
from chain.qbft.header import BlockHeader
from node.abc import AccountProof, Log, PeerInfo, Receipt
from node.rpc.tx import Tx

Json = dict[str, Any]


def q(value: int) -> str:
    return hex(value)


def d(value: bytes) -> str:
    return "0x" + value.hex()


def _access_list(tx: Tx) -> list[Json] | None:
    if tx.access_list is None:
        return None
    return [{"address": d(a), "storageKeys": [d(k) for k in keys]} for a, keys in tx.access_list]


def _authorizations(tx: Tx) -> list[Json] | None:
    if tx.authorization_list is None:
        return None
    return [{"chainId": q(a.chain_id), "address": d(a.address), "nonce": q(a.nonce),
             "yParity": q(a.y_parity), "r": q(a.r), "s": q(a.s)} for a in tx.authorization_list]


def _signature(out: Json, tx: Tx) -> None:
    if tx.type == 0:
        out["v"] = q(tx.v)
    else:
        out["yParity"] = q(tx.y_parity)
        out["v"] = q(tx.y_parity)
    out["r"] = q(tx.r)
    out["s"] = q(tx.s)


def transaction(tx: Tx, sender: bytes, header: BlockHeader, block_hash: bytes, index: int) -> Json:
    """A mined transaction (Besu's ``TransactionCompleteResult``)."""
    out: Json = {}
    access_list = _access_list(tx)
    if access_list is not None:
        out["accessList"] = access_list
    auths = _authorizations(tx)
    if auths is not None:
        out["authorizationList"] = auths
    out["blockHash"] = d(block_hash)
    out["blockNumber"] = q(header.number)
    out["blockTimestamp"] = q(header.timestamp)
    if tx.chain_id is not None:
        out["chainId"] = q(tx.chain_id)
    out["from"] = d(sender)
    out["gas"] = q(tx.gas)
    out["gasPrice"] = q(tx.effective_gas_price(header.base_fee))
    if tx.max_priority_fee_per_gas is not None:
        out["maxPriorityFeePerGas"] = q(tx.max_priority_fee_per_gas)
    if tx.max_fee_per_gas is not None:
        out["maxFeePerGas"] = q(tx.max_fee_per_gas)
    if tx.max_fee_per_blob_gas is not None:
        out["maxFeePerBlobGas"] = q(tx.max_fee_per_blob_gas)
    out["hash"] = d(tx.hash)
    out["input"] = d(tx.data)
    out["nonce"] = q(tx.nonce)
    out["to"] = None if tx.to is None else d(tx.to)
    out["transactionIndex"] = q(index)
    out["type"] = q(tx.type)
    out["value"] = q(tx.value)
    _signature(out, tx)
    if tx.blob_versioned_hashes is not None:
        out["blobVersionedHashes"] = [d(h) for h in tx.blob_versioned_hashes]
    return out


def pending_transaction(tx: Tx, sender: bytes, public_key: bytes) -> Json:
    """A transaction still in the pool (Besu's ``TransactionPendingResult``)."""
    out: Json = {"blockHash": None, "blockNumber": None, "from": d(sender), "gas": q(tx.gas)}
    out["gasPrice"] = q(tx.gas_price if tx.gas_price is not None else tx.max_fee_per_gas or 0)
    if tx.max_priority_fee_per_gas is not None:
        out["maxPriorityFeePerGas"] = q(tx.max_priority_fee_per_gas)
    if tx.max_fee_per_gas is not None:
        out["maxFeePerGas"] = q(tx.max_fee_per_gas)
    if tx.max_fee_per_blob_gas is not None:
        out["maxFeePerBlobGas"] = q(tx.max_fee_per_blob_gas)
    out["hash"] = d(tx.hash)
    out["input"] = d(tx.data)
    out["nonce"] = q(tx.nonce)
    out["to"] = None if tx.to is None else d(tx.to)
    out["transactionIndex"] = None
    out["value"] = q(tx.value)
    _signature(out, tx)
    if tx.blob_versioned_hashes is not None:
        out["blobVersionedHashes"] = [d(h) for h in tx.blob_versioned_hashes]
    access_list = _access_list(tx)
    if access_list is not None:
        out["accessList"] = access_list
    out["chainId"] = None if tx.chain_id is None else q(tx.chain_id)
    out["publicKey"] = d(public_key)
    out["raw"] = d(tx.raw)
    out["type"] = q(tx.type)
    return out


def block(blk: Block, block_hash: bytes, size: int, total_difficulty: int,
          transactions: Sequence[Json | str]) -> Json:
    """Besu's ``BlockResult``: ``transactions`` are hashes or full transaction objects."""
    h = blk.header
    out: Json = {
        "number": q(h.number),
        "hash": d(block_hash),
        "mixHash": d(h.mix_hash),
        "parentHash": d(h.parent_hash),
        "nonce": d(h.nonce),
        "sha3Uncles": d(h.ommers_hash),
        "logsBloom": d(h.logs_bloom),
        "transactionsRoot": d(h.transactions_root),
        "stateRoot": d(h.state_root),
        "receiptsRoot": d(h.receipts_root),
        "miner": d(h.coinbase),
        "difficulty": q(h.difficulty),
    }
    if h.difficulty:
        out["totalDifficulty"] = q(total_difficulty)
    out["extraData"] = d(h.extra_data)
    if h.base_fee is not None:
        out["baseFeePerGas"] = q(h.base_fee)
    out["size"] = q(size)
    out["gasLimit"] = q(h.gas_limit)
    out["gasUsed"] = q(h.gas_used)
    out["timestamp"] = q(h.timestamp)
    out["uncles"] = []
    out["transactions"] = list(transactions)
    if h.withdrawals_root is not None:
        out["withdrawalsRoot"] = d(h.withdrawals_root)
    if blk.withdrawals is not None:
        out["withdrawals"] = [_withdrawal(w) for w in blk.withdrawals]
    if h.requests_hash is not None:
        out["requestsHash"] = d(h.requests_hash)
    if h.blob_gas_used is not None:
        out["blobGasUsed"] = q(h.blob_gas_used)
    if h.excess_blob_gas is not None:
        out["excessBlobGas"] = q(h.excess_blob_gas)
    if h.parent_beacon_block_root is not None:
        out["parentBeaconBlockRoot"] = d(h.parent_beacon_block_root)
    return out


def _withdrawal(raw: bytes) -> Json:
    """Besu's ``WithdrawalParameter`` from the RLP ``[index, validatorIndex, address, amount]``
    (QBFT blocks have none, but a block body may carry them)."""
    index, validator, address, amount = rlp.decode(raw)
    return {"index": q(_uint(index)), "validatorIndex": q(_uint(validator)), "address": d(address),
            "amount": q(_uint(amount))}


def _uint(b: bytes) -> int:
    return int.from_bytes(b, "big")


def receipt_log(log: Log, timestamp: int) -> Json:
    """A log inside a receipt (Besu's ``TransactionReceiptLogResult`` order)."""
    return {
        "address": d(log.address),
        "topics": [d(t) for t in log.topics],
        "data": d(log.data),
        "blockNumber": q(log.block_number),
        "transactionHash": d(log.tx_hash),
        "transactionIndex": q(log.tx_index),
        "blockHash": d(log.block_hash),
        "blockTimestamp": q(timestamp),
        "logIndex": q(log.log_index),
        "removed": False,
    }


def log(entry: Log, timestamp: int) -> Json:
    """A log from eth_getLogs or a logs subscription (Besu's ``LogResult`` order)."""
    return {
        "logIndex": q(entry.log_index),
        "removed": False,
        "blockNumber": q(entry.block_number),
        "blockHash": d(entry.block_hash),
        "blockTimestamp": q(timestamp),
        "transactionHash": d(entry.tx_hash),
        "transactionIndex": q(entry.tx_index),
        "address": d(entry.address),
        "data": d(entry.data),
        "topics": [d(t) for t in entry.topics],
    }


def receipt(r: Receipt, timestamp: int, blob_gas_used: int | None = None,
            blob_gas_price: int | None = None) -> Json:
    """Besu's ``TransactionReceiptStatusResult``."""
    out: Json = {
        "blockHash": d(r.block_hash),
        "blockNumber": q(r.block_number),
        "contractAddress": None if r.contract_address is None else d(r.contract_address),
        "cumulativeGasUsed": q(r.cumulative_gas_used),
        "from": d(r.sender),
        "gasUsed": q(r.gas_used),
        "effectiveGasPrice": q(r.effective_gas_price),
        "logs": [receipt_log(entry, timestamp) for entry in r.logs],
        "logsBloom": d(r.logs_bloom),
        "status": q(r.status),
        "to": None if r.to is None else d(r.to),
        "transactionHash": d(r.tx_hash),
        "transactionIndex": q(r.tx_index),
    }
    if r.revert_reason is not None:
        out["revertReason"] = d(r.revert_reason)
    out["type"] = q(r.tx_type)
    if blob_gas_used is not None:
        out["blobGasUsed"] = q(blob_gas_used)
    if blob_gas_price is not None:
        out["blobGasPrice"] = q(blob_gas_price)
    return out


def _storage_key(slot: int) -> str:
    if slot == 0:
        return "0x0"
    return d(slot.to_bytes((slot.bit_length() + 7) // 8, "big"))


def proof(p: AccountProof) -> Json:
    """Besu's ``GetProofResult``."""
    return {
        "accountProof": [d(n) for n in p.account_proof],
        "address": d(p.address),
        "balance": q(p.account.balance),
        "codeHash": d(p.account.code_hash),
        "nonce": q(p.account.nonce),
        "storageHash": d(p.account.storage_root),
        "storageProof": [{"key": _storage_key(slot), "value": q(value), "proof": [d(n) for n in nodes]}
                         for slot, value, nodes in p.storage],
    }


def syncing(status: tuple[int, int, int] | None) -> Json | bool:
    if status is None:
        return False
    start, current, highest = status
    return {"startingBlock": q(start), "currentBlock": q(current), "highestBlock": q(highest)}


def peer(p: PeerInfo, local_address: str) -> Json:
    """Besu's ``PeerResult``; our peers speak QBFT over our own transport, so the caps and
    protocol entries name that instead of devp2p's."""
    node_id = p.node_id.hex()
    host_port = p.address
    port = host_port.rsplit(":", 1)[-1] if ":" in host_port else "0"
    return {
        "version": "0x5",
        "name": p.name,
        "caps": ["istanbul/100"],
        "network": {"localAddress": local_address, "remoteAddress": host_port, "inbound": False},
        "port": q(int(port)) if port.isdigit() else "0x0",
        "id": "0x" + node_id,
        "protocols": {"istanbul": {"validator": None if p.validator is None else d(p.validator)}},
        "enode": f"enode://{node_id}@{host_port}",
    }
