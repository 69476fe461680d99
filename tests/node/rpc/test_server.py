"""The aiohttp server on a real socket: HTTP and WebSocket JSON-RPC, subscriptions fed by new
heads from another thread, /liveness, /readiness and /metrics."""

from __future__ import annotations

import asyncio
import json
import threading

import aiohttp
import pytest

from node.rpc.methods import RpcConfig
from node.rpc.server import RpcServer

from .memchain import MemChain, node_api, signed_tx

pytestmark = pytest.mark.timeout(60)


def run(coro_fn, *, config=None, peers=3, chain=None, **ports):
    async def main():
        chain_ = chain or MemChain()
        node = node_api(chain_, peers=peers)
        server = RpcServer(node, config, port=0, **ports)
        await server.start()
        try:
            async with aiohttp.ClientSession() as http:
                return await coro_fn(server, http, chain_, node)
        finally:
            await server.stop()

    return asyncio.run(main())


async def post(http, server, payload):
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    async with http.post(server.url, data=body, headers={"Content-Type": "application/json"}) as r:
        text = await r.read()
        return r.status, json.loads(text) if text else None


def test_http_json_rpc_round_trip():
    async def body(server, http, chain, node):
        status, out = await post(http, server, {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"})
        assert (status, out["result"]) == (200, "0x7ea")
        status, out = await post(http, server, b"{nope")
        assert status == 400 and out["error"]["code"] == -32700

    run(body)


def test_oversized_body_gets_a_json_rpc_error_and_the_server_keeps_serving():
    async def body(server, http, chain, node):
        status, out = await post(http, server, b"[" + b"1," * 600 + b"1]")
        assert status == 413 and out["error"]["code"] == -32600
        status, out = await post(http, server, {"jsonrpc": "2.0", "id": 2, "method": "eth_blockNumber"})
        assert (status, out["result"]) == (200, "0x0")

    run(body, config=RpcConfig(max_body_bytes=1000))


def test_liveness_and_readiness_as_besu_answers_them():
    async def body(server, http, chain, node):
        async def get(path):
            async with http.get(server.url + path) as r:
                return r.status, await r.text()

        assert await get("/liveness") == (200, '{\n  "status" : "UP"\n}')
        assert (await get("/readiness"))[0] == 200
        assert await get("/readiness?minPeers=4") == (503, '{\n  "status" : "DOWN"\n}')
        assert (await get("/readiness?minPeers=x"))[0] == 503
        node.status.syncing = (0, 10, 15)
        assert (await get("/readiness"))[0] == 503
        assert (await get("/readiness?maxBlocksBehind=5"))[0] == 200

    run(body)


def test_a_node_without_peers_is_ready_only_when_it_does_not_use_p2p():
    async def body(server, http, chain, node):
        async with http.get(server.url + "/readiness") as r:
            return r.status

    assert run(body, peers=0) == 503
    assert run(body, peers=0, config=RpcConfig(p2p_enabled=False)) == 200


def test_metrics_use_besu_names_and_add_round_changes_and_missed_proposals():
    async def body(server, http, chain, node):
        chain.add_block([signed_tx(0), signed_tx(1)])
        node.status.round_changes[(1, 1)] = 2
        node.status.missed_proposals[b"\xaa" * 20] = 3
        await post(http, server, {"jsonrpc": "2.0", "id": 1, "method": "eth_sendRawTransaction",
                                  "params": ["0x" + signed_tx(2).hex()]})
        await post(http, server, {"jsonrpc": "2.0", "id": 1, "method": "eth_sendRawTransaction",
                                  "params": ["0x" + signed_tx(0).hex()]})
        async with http.get(server.url + "/metrics") as r:
            assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
            return await r.text()

    text = run(body)
    lines = set(text.splitlines())
    assert "ethereum_blockchain_height 1" in lines
    assert "ethereum_peer_count 3" in lines
    assert "besu_blockchain_chain_head_transaction_count 2" in lines
    assert "# TYPE besu_blockchain_chain_head_timestamp gauge" in lines
    assert 'besu_transaction_pool_added_total{source="local"} 1' in lines
    assert 'besu_transaction_pool_rejected_total{source="local",reason="NONCE_TOO_LOW"} 1' in lines
    assert 'besu_transaction_pool_number_of_transactions{layer="pending"} 1' in lines
    assert 'besu_rpc_request_time_count{methodName="eth_sendRawTransaction"} 2' in lines
    assert 'smartta_qbft_round_changes_total{height="1",round="1"} 2' in lines
    assert f'smartta_qbft_proposals_missed_total{{validator="0x{"aa" * 20}"}} 3' in lines


def test_websocket_subscriptions_deliver_new_heads_and_matching_logs():
    async def body(server, http, chain, node):
        async with http.ws_connect(server.ws_url) as ws:
            async def call(method, *params, id_=1):
                await ws.send_str(json.dumps({"jsonrpc": "2.0", "id": id_, "method": method,
                                              "params": list(params)}))
                return json.loads((await ws.receive()).data)

            heads = (await call("eth_subscribe", "newHeads"))["result"]
            logs = (await call("eth_subscribe", "logs", {"address": "0x" + "11" * 20,
                                                         "topics": [None, "0x" + "00" * 32]}))["result"]
            assert (heads, logs) == ("0x1", "0x2")
            # New heads arrive on the importer's thread, not the server's loop.
            t = threading.Thread(target=chain.add_block,
                                 args=([signed_tx(0), signed_tx(1, to=b"\x22" * 20)],))
            t.start()
            t.join()
            got = [json.loads((await ws.receive(timeout=5)).data) for _ in range(2)]
            by_sub = {m["params"]["subscription"]: m["params"]["result"] for m in got}
            assert got[0]["method"] == "eth_subscription"
            assert by_sub[heads]["hash"] == "0x" + chain.hashes[1].hex()
            assert len(by_sub[heads]["transactions"]) == 2
            assert by_sub[logs]["address"] == "0x" + "11" * 20 and by_sub[logs]["logIndex"] == "0x0"

            assert (await call("eth_unsubscribe", heads))["result"] is True
            assert (await call("eth_unsubscribe", heads))["error"]["code"] == -32000
            bad = await call("eth_subscribe", "newPendingTransactions")
            assert bad["error"]["code"] == -32602
            await ws.send_str("{not json")
            assert json.loads((await ws.receive()).data)["error"]["code"] == -32700
            chain.add_block()
            await asyncio.sleep(0.1)
            assert (await call("eth_blockNumber"))["result"] == "0x2"  # no stale newHeads queued

    run(body)


def test_besu_port_layout_serves_websocket_and_metrics_on_their_own_ports():
    async def body(server, http, chain, node):
        assert server.ws_port not in (None, server.port) and server.metrics_port not in (None, server.port)
        async with http.ws_connect(server.ws_url) as ws:
            await ws.send_str('{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}')
            assert json.loads((await ws.receive()).data)["result"] == "0x7ea"
        async with http.get(f"http://127.0.0.1:{server.metrics_port}/metrics") as r:
            assert "ethereum_blockchain_height 0" in await r.text()
        async with http.post(f"http://127.0.0.1:{server.metrics_port}/", data=b"{}") as r:
            assert r.status in (404, 405)  # the metrics port serves nothing else

    run(body, ws_port=0, metrics_port=0)
