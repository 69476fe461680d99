"""The JSON-RPC envelope as Besu answers it: parse errors, invalid requests, batches and their
limits, notifications, unknown and disabled methods, read-only refusals; nothing crashes."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from node.rpc.methods import RpcConfig

from .helpers import Rpc
from .memchain import USER, MemChain, node_api, signed_tx


@pytest.fixture
def rpc():
    return Rpc()


def test_body_that_is_not_json_is_a_parse_error_with_status_400(rpc):
    status, out = rpc.raw('{"jsonrpc":"2.0","id":1,"method":')
    assert status == 400
    assert out["id"] is None and out["error"]["code"] == -32700
    assert out["error"]["message"].startswith("Parse error")


def test_empty_body_and_empty_batch_are_rejected(rpc):
    assert rpc.raw(b"  ")[1]["error"]["code"] == -32700
    status, out = rpc.raw("[]")
    assert status == 400 and out["error"]["code"] == -32600


@pytest.mark.parametrize("request_obj, why", [
    ({"jsonrpc": "2.0", "id": 1}, "method must be a string"),
    ({"jsonrpc": "2.0", "id": 1, "method": 5}, "method must be a string"),
    ({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": {"a": 1}}, "params must be an array"),
    ({"jsonrpc": "2.0", "id": [1], "method": "eth_chainId"}, "id must be"),
    ({"jsonrpc": "2.0", "id": True, "method": "eth_chainId"}, "id must be"),
])
def test_malformed_request_objects_are_invalid_requests_that_say_why(rpc, request_obj, why):
    _, out = rpc.raw(json.dumps(request_obj))
    assert out["error"]["code"] == -32600
    assert why in out["error"]["message"]


def test_unknown_method_is_method_not_found_and_keeps_the_id(rpc):
    _, out = rpc.raw('{"jsonrpc":"2.0","id":"abc","method":"eth_nope","params":[]}')
    assert out == {"jsonrpc": "2.0", "id": "abc", "error": {"code": -32601, "message": "Method not found"}}


def test_batch_is_answered_in_order_and_skips_notifications(rpc):
    batch = [{"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"},
             {"jsonrpc": "2.0", "method": "eth_blockNumber"},
             5,
             {"jsonrpc": "2.0", "id": 2, "method": "net_version"}]
    status, out = rpc.raw(json.dumps(batch))
    assert status == 200
    assert [r.get("id") for r in out] == [1, None, 2]
    assert out[0]["result"] == hex(2026)
    assert out[1]["error"]["code"] == -32600
    assert out[2]["result"] == "2026"


def test_a_lone_notification_gets_no_body(rpc):
    assert rpc.raw('{"jsonrpc":"2.0","method":"eth_chainId"}') == (200, None)


def test_batch_over_the_limit_is_refused_whole_with_besus_code():
    rpc = Rpc(config=RpcConfig(max_batch_size=3))
    batch = [{"jsonrpc": "2.0", "id": i, "method": "eth_chainId"} for i in range(4)]
    status, out = rpc.raw(json.dumps(batch))
    assert status == 200 and out["error"]["code"] == -32005
    assert out["error"]["message"].startswith("Number of requests exceeds max batch size")


def test_body_over_the_limit_is_refused_with_413():
    rpc = Rpc(config=RpcConfig(max_body_bytes=100))
    status, out = rpc.raw(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId",
                                      "params": ["x" * 200]}))
    assert status == 413 and out["error"]["code"] == -32600
    assert "limit" in out["error"]["message"]


def test_raw_transactions_in_one_batch_keep_their_order(rpc):
    # The pool refuses nonce gaps, so any reordering inside the batch would reject one.
    raws = [signed_tx(n) for n in range(5)]
    batch = [{"jsonrpc": "2.0", "id": n, "method": "eth_sendRawTransaction", "params": ["0x" + r.hex()]}
             for n, r in enumerate(raws)]
    _, out = rpc.raw(json.dumps(batch))
    assert [r["id"] for r in out] == list(range(5))
    assert all("result" in r for r in out), out
    assert rpc("eth_getTransactionCount", "0x" + USER.hex(), "pending") == "0x5"


def test_invalid_params_name_the_parameter_and_the_reason(rpc):
    err = rpc.error("eth_getBalance", "0x1234", "latest")
    assert err["code"] == -32602
    assert err["message"] == "Invalid address params (params[0]: '0x1234' is 2 bytes, expected 20)"
    err = rpc.error("eth_getBlockByNumber", "lates", False)
    assert err["message"].startswith("Invalid block param (params[0]: 'lates' is not a block number")
    err = rpc.error("eth_getBlockByNumber")
    assert err["message"] == "Invalid block param (params[0] is missing)"


def test_an_exception_inside_a_method_is_an_internal_error_and_the_node_keeps_serving(rpc):
    def broken(block):
        raise RuntimeError("disk on fire")

    rpc.node.chain.code = broken
    err = rpc.error("eth_getCode", "0x" + "11" * 20, "latest")
    assert err["code"] == -32603 and "eth_getCode" in err["message"]
    assert rpc("eth_chainId") == hex(2026)


WRITE_METHODS = [
    ("eth_sendRawTransaction", ["0x" + signed_tx(0).hex()]),
    ("eth_sendTransaction", [{"to": "0x" + "11" * 20}]),
    ("qbft_proposeValidatorVote", ["0x" + "22" * 20, True]),
    ("qbft_discardValidatorVote", ["0x" + "22" * 20]),
    ("evm_snapshot", []),
    ("evm_revert", ["0x1"]),
    ("evm_mine", []),
    ("evm_increaseTime", [10]),
    ("evm_setNextBlockTimestamp", [2_000_000_000]),
    ("hardhat_mine", ["0x2"]),
]


class Dev:
    def __init__(self):
        self.calls = []

    def __getattr__(self, name):
        return lambda *a: self.calls.append((name, a)) or 1


@pytest.mark.parametrize("method, params", WRITE_METHODS, ids=[m for m, _ in WRITE_METHODS])
def test_read_only_node_refuses_every_write_method_and_changes_nothing(method, params):
    chain = MemChain()
    dev = Dev()
    node = node_api(chain, role="observer", dev=dev)
    rpc = Rpc(node)
    err = rpc.error(method, *params)
    assert err["code"] == -32604
    assert "read-only observer" in err["message"]
    assert node.pool.txs == {} and dev.calls == [] and chain.head.number == 0


def test_dev_methods_do_not_exist_unless_the_network_enables_dev_mode(rpc):
    for method in ("evm_snapshot", "evm_revert", "evm_mine", "evm_increaseTime",
                   "evm_setNextBlockTimestamp", "hardhat_mine"):
        assert rpc.error(method)["code"] == -32601


def test_subscriptions_over_http_are_not_enabled(rpc):
    err = rpc.error("eth_subscribe", "newHeads")
    assert err["code"] == -32604 and "WebSocket" in err["message"]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20) | st.floats(allow_nan=False),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12)


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(["eth_getBlockByNumber", "eth_getBalance", "eth_call", "eth_getLogs",
                        "eth_sendRawTransaction", "eth_feeHistory", "qbft_getSignerMetrics",
                        "eth_getProof", "eth_getStorageAt", "qbft_proposeValidatorVote",
                        "eth_getTransactionReceipt", "eth_estimateGas"]),
       st.lists(json_values, max_size=4))
def test_any_params_get_a_result_or_a_json_rpc_error_never_an_internal_error(method, params):
    rpc = Rpc()
    out = rpc.response(method, *params)
    assert "result" in out or out["error"]["code"] in (-32602, -32600, -32000, -32005, 3,
                                                       -32001, -32003, -32004, -32604)


block_like = st.sampled_from(["latest", "earliest", "pending", "0x0", "0x1", "0x" + "ab" * 32, "0x",
                              "lates", "-1", "12"]) | json_values
filters = st.dictionaries(st.sampled_from(["fromBlock", "toBlock", "address", "topics", "blockHash"]),
                          block_like | st.lists(block_like | st.lists(block_like, max_size=2), max_size=5),
                          max_size=4)


@settings(max_examples=150, deadline=None)
@given(filters)
def test_any_log_filter_gets_logs_or_a_json_rpc_error(flt):
    out = Rpc().response("eth_getLogs", flt)
    assert "result" in out or out["error"]["code"] in (-32602, -32000, -32005)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_crash_the_dispatcher(body):
    rpc = Rpc()
    status, out = rpc.raw(body)
    assert status in (200, 400)
    assert out is None or isinstance(out, dict | list)
