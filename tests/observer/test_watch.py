"""``watch``: new blocks are verified as the node's head moves; the first failure stops it with a
non-zero exit and a webhook POST carrying the report."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from click.testing import CliRunner
from conftest import write_genesis
from tampers import apply

from chain.qbft.genesis import Genesis
from observer.cli import main
from observer.rpc import RpcSource
from observer.verify import Verifier
from observer.watch import Watcher


@pytest.fixture
def webhook():
    received: list[dict] = []

    class Hook(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/alert", received
    server.shutdown()
    server.server_close()


def test_watch_follows_the_head_then_alarms_on_the_first_bad_block(chain16, node_factory, webhook):
    url, received = webhook
    node = node_factory(chain16)
    node.head = 6
    heads = iter([9, 12, 16])

    def sleep(_seconds: float) -> None:
        node.head = next(heads)  # the chain grows while the watcher waits

    apply(node, chain16, {"kind": "drop-seal", "block": 14})
    verifier = Verifier(Genesis(chain16.genesis_json), [RpcSource(node.url)], jobs=1)
    seen: list[int] = []
    outcome = Watcher(verifier, interval=0, webhook=url, sleep=sleep,
                      on_round=lambda r: seen.append(r.last)).run(rounds=10)
    verifier.close()
    assert seen == [6, 9, 12, 13]
    assert outcome is not None and outcome.kind == "failure"
    assert [r["event"] for r in received] == ["smartta-observer.failure"]
    assert received[0]["report"]["failure"]["block"] == 14


def test_watch_command_exits_1_and_posts_on_failure(chain16, node_factory, webhook, tmp_path):
    url, received = webhook
    node = node_factory(chain16)
    apply(node, chain16, {"kind": "foreign-seal", "block": 5})
    result = CliRunner().invoke(main, [
        "watch", "--rpc", node.url, "--genesis", str(write_genesis(chain16, tmp_path)),
        "--webhook", url, "--interval", "0.1", "--state-dir", str(tmp_path / "s"),
        "--rounds", "3"])
    assert result.exit_code == 1, result.output
    assert received and received[0]["report"]["failure"]["check"] == "seals"


def test_watch_tolerates_a_node_down_for_less_than_max_down(chain16, node_factory):
    node = node_factory(chain16)
    verifier = Verifier(Genesis(chain16.genesis_json), [RpcSource(node.url, retries=0)], jobs=1)
    warnings: list[str] = []
    real = node.answer

    def flaky(method, params, calls=[0]):  # noqa: B006 - a counter shared across calls
        calls[0] += 1
        if calls[0] == 1:
            raise ConnectionError("down")
        return real(method, params)

    node.answer = flaky
    outcome = Watcher(verifier, interval=0, max_down=60, sleep=lambda s: None,
                      warn=warnings.append).run(rounds=3)
    verifier.close()
    assert outcome is None
    assert verifier.report.last == 16
    assert warnings and "retrying" in warnings[0]
