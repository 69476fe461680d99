"""Apply the tamper vectors of tests/data/observer/tampers.json to a node's served view.

Each vector names what a lying node does (``kind`` and its parameters) and what the observer
must report (the block, the check, words of the reason). Vectors are data, as transparency
logs keep their tampered-proof vectors: adding a case is adding a JSON object.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from devchain import Chain, secrets_for
from hostile import HostileNode

from chain.qbft import extra_data as xd
from chain.qbft.hashing import block_hash, commit_seal_hash
from chain.qbft.header import BlockHeader
from chain.qbft.seals import sign

VECTORS = Path(__file__).parents[1] / "data" / "observer" / "tampers.json"

QUANTITIES = {"difficulty", "number", "gasLimit", "gasUsed", "timestamp", "baseFeePerGas",
              "blobGasUsed", "excessBlobGas"}


def vectors(group: str) -> list[dict[str, Any]]:
    data = json.loads(VECTORS.read_text())
    return [v for v in data["vectors"] if v["group"] == group]


def _rehash(block: dict[str, Any]) -> None:
    block["hash"] = "0x" + block_hash(BlockHeader.from_rpc(block)).hex()


def _reseal(block: dict[str, Any], seals: tuple[bytes, ...]) -> None:
    extra = xd.decode(bytes.fromhex(block["extraData"][2:]))
    block["extraData"] = "0x" + xd.encode(extra.with_seals(seals)).hex()


def _seals(block: dict[str, Any]) -> tuple[bytes, ...]:
    return xd.decode(bytes.fromhex(block["extraData"][2:])).seals


def apply(node: HostileNode, chain: Chain, vector: dict[str, Any]) -> None:
    kind = vector["kind"]
    n = vector.get("block", 0)
    block = node.blocks[n]
    if kind == "header-field":
        field = vector["field"]
        if field in QUANTITIES:
            block[field] = hex(int(block[field], 16) + vector.get("add", 1))
        else:
            raw = bytearray(bytes.fromhex(block[field][2:]))
            raw[vector.get("byte", 0)] ^= vector.get("xor", 1)
            block[field] = "0x" + raw.hex()
        if vector.get("rehash"):
            _rehash(block)
    elif kind == "served-hash":
        raw = bytearray(bytes.fromhex(block["hash"][2:]))
        raw[0] ^= 0xFF
        block["hash"] = "0x" + raw.hex()
    elif kind == "drop-seal":
        _reseal(block, _seals(block)[:-1])
    elif kind == "duplicate-seal":
        seals = _seals(block)
        _reseal(block, (*seals[:-1], seals[0]))
    elif kind == "foreign-seal":
        outsider = next(iter(secrets_for(["not a validator"]).values()))
        header = BlockHeader.from_rpc(block)
        seals = _seals(block)
        _reseal(block, (*seals[:-1], sign(outsider, commit_seal_hash(header))))
    elif kind == "garbage-seal":
        seals = _seals(block)
        _reseal(block, (*seals[:-1], bytes(64) + b"\x00"))
    elif kind == "recid-27":
        seals = _seals(block)
        _reseal(block, (*seals[:-1], seals[-1][:64] + bytes([seals[-1][64] + 27])))
    elif kind == "swap-blocks":
        node.blocks[n], node.blocks[n + 1] = node.blocks[n + 1], node.blocks[n]
    elif kind == "withhold-block":
        node.blocks[n] = None  # type: ignore[call-overload]
    elif kind == "log-byte":
        log = node.receipts[n][0]["logs"][0]
        data = bytearray(bytes.fromhex(log["data"][2:]))
        data[-40] ^= 0x01
        log["data"] = "0x" + data.hex()
    elif kind == "drop-receipt":
        node.receipts[n] = node.receipts[n][1:]
    elif kind == "calldata-proof":
        tx = node.transactions[node.receipts[n][0]["transactionHash"]]
        calldata = bytearray(bytes.fromhex(tx["input"][2:]))
        # The first packed entry's proof starts after selector, ABI head, actor, type, nonce...
        calldata[4 + 64 + 20 + 1 + len("ORDER_PLACED") + 8 + 1 + 4 + 10] ^= 0x01
        tx["input"] = "0x" + calldata.hex()
    elif kind == "drop-tx":
        node.transactions.pop(node.receipts[n][0]["transactionHash"])
    elif kind == "raw-field":
        if vector["value"] is None:
            del block[vector["field"]]
        else:
            block[vector["field"]] = vector["value"]
    elif kind == "truncate-extra":
        block["extraData"] = block["extraData"][:-10]
    elif kind == "chain-id":
        node.chain_id = vector["chainId"]
    else:
        raise ValueError(f"unknown tamper kind {kind!r}")
