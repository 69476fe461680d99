"""``verify --replay``: a chain our node executed replays to every sealed header, and what seals
cannot catch is named at its block: a node serving a transaction list the header does not
commit to, and a Byzantine quorum of validators sealing a state, receipt or gas figure that the
block's transactions do not produce, or a transaction the rules refuse."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from eth_account import Account
from eth_hash.auto import keccak
from execchain import build, reseal, serve
from ledgerchain import rpc_transaction

from chain import proofs
from observer.cli import main
from observer.records import LedgerWalk
from observer.replay import Replay
from observer.rpc import RpcSource
from observer.verify import Verifier


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    chain, domain, records = build(tmp_path_factory.mktemp("replay") / "chain")
    yield chain, domain, records
    chain.close()


def _replay(chain, url, *, ledger=None, jobs=1, chunk=200, replay=None):
    source = RpcSource(url)
    walk = LedgerWalk(source, ledger) if ledger is not None else None
    verifier = Verifier(chain.genesis, [source], jobs=jobs, chunk=chunk, records=walk,
                        replay=replay or Replay(chain.genesis, source))
    try:
        return verifier.advance()
    finally:
        verifier.close()


def test_chain_our_node_executed_replays_to_every_sealed_header(executed):
    chain, domain, records = executed
    with serve(chain) as node:
        # pruned to the latest state as soon as the store holds 50 entries, then when it doubles
        replay = Replay(chain.genesis, RpcSource(node.url), prune_floor=50)
        report = _replay(chain, node.url, ledger=domain, chunk=3, replay=replay)
    assert report.ok, report.failure
    assert replay.prunes >= 2
    head = chain.head
    txs = sum(len(chain.block(n).transactions) for n in range(1, head.number + 1))
    assert txs >= 12
    assert report.replay["blocks"] == head.number
    assert report.replay["transactions"] == txs
    assert report.replay["gas"] == sum(chain.header(n).gas_used for n in range(1, head.number + 1))
    assert report.replay["stateRoot"] == "0x" + head.state_root.hex()
    assert report.records == records
    assert report.to_json()["replay"]["blocks"] == head.number


def _first_block_with_txs(node, at_least=1, after=0):
    return next(n for n, b in enumerate(node.blocks) if n > after and len(b["transactions"]) >= at_least)


def _drop_first_tx(node, n):
    node.blocks[n]["transactions"] = node.blocks[n]["transactions"][1:]


def _swap_txs(node, n):
    txs = node.blocks[n]["transactions"]
    txs[0], txs[1] = txs[1], txs[0]


def _alter_value(node, n):
    tx = node.transactions[node.blocks[n]["transactions"][0]]
    tx["value"] = hex(int(tx["value"], 16) + 1)


@pytest.mark.parametrize("tamper", [_drop_first_tx, _swap_txs, _alter_value])
def test_transaction_list_the_header_does_not_commit_to_is_named_at_its_block(executed, tamper):
    chain, _, _ = executed
    node = serve(chain)
    n = _first_block_with_txs(node, at_least=2)
    tamper(node, n)
    with node:
        report = _replay(chain, node.url)
    assert report.failure is not None
    assert (report.failure.block, report.failure.check) == (n, "transactions")
    assert "the node added, altered, reordered or withheld" in report.failure.message
    assert report.failure.source == node.url
    assert report.replay["blocks"] == n - 1


def test_state_root_resealed_by_a_byzantine_quorum_is_named_at_its_block(executed):
    chain, _, _ = executed
    node = serve(chain)
    n = _first_block_with_txs(node, after=2)
    forged = bytes(keccak(b"a state the transactions do not produce"))
    node.blocks[n]["stateRoot"] = "0x" + forged.hex()
    reseal(node, n)
    with node:
        plain = _verify_without_replay(chain, node.url)
        report = _replay(chain, node.url)
    assert plain.ok and plain.blocks == chain.head.number  # every seal of the forged chain holds
    assert (report.failure.block, report.failure.check) == (n, "state-root")
    assert f"stateRoot is 0x{forged.hex()}" in report.failure.message
    assert "0x" + chain.header(n).state_root.hex() in report.failure.message
    assert report.blocks == chain.head.number  # the seals were verified; replay found the lie


def _verify_without_replay(chain, url):
    verifier = Verifier(chain.genesis, [RpcSource(url)], jobs=1)
    try:
        return verifier.advance()
    finally:
        verifier.close()


def test_altered_log_resealed_by_a_byzantine_quorum_is_named_at_its_transaction(executed):
    """The quorum rewrites a receipt's log and commits to it consistently (receiptsRoot and
    logsBloom recomputed): only execution shows that the transaction emits something else."""
    chain, _, _ = executed
    node = serve(chain)
    n, index = next((n, i) for n, rs in enumerate(node.receipts) for i, r in enumerate(rs)
                    if r["logs"] and r["logs"][0]["data"] != "0x")
    log = node.receipts[n][index]["logs"][0]
    data = bytearray(bytes.fromhex(log["data"][2:]))
    data[-1] ^= 0x01
    log["data"] = "0x" + data.hex()
    receipts = [proofs.Receipt.from_rpc(r) for r in node.receipts[n]]
    block = node.blocks[n]
    block["receiptsRoot"] = "0x" + proofs.trie_root([r.encode() for r in receipts]).hex()
    reseal(node, n)
    with node:
        report = _replay(chain, node.url)
    assert (report.failure.block, report.failure.check) == (n, "receipts-root")
    tx_hash = node.blocks[n]["transactions"][index]
    assert f"transaction {index} ({tx_hash})" in report.failure.message
    assert "a log of the sealed receipt differs" in report.failure.message


def test_gas_used_resealed_by_a_byzantine_quorum_is_named_at_its_block(executed):
    chain, _, _ = executed
    node = serve(chain)
    n = _first_block_with_txs(node)
    block = node.blocks[n]
    block["gasUsed"] = hex(int(block["gasUsed"], 16) - 1)
    reseal(node, n)
    with node:
        report = _replay(chain, node.url)
    assert (report.failure.block, report.failure.check) == (n, "gas-used")
    assert f"gasUsed is {chain.header(n).gas_used - 1}, executing the block uses " \
           f"{chain.header(n).gas_used}" in report.failure.message


def test_transaction_the_rules_refuse_sealed_by_a_byzantine_quorum_is_named(executed):
    """A quorum seals a block with a transaction whose nonce is from the future, committing to
    its list (transactionsRoot) so the node serves exactly what was sealed."""
    chain, _, _ = executed
    node = serve(chain)
    n = _first_block_with_txs(node, after=3)
    user = Account.from_key(keccak(b"replay user 7"))  # funded in the genesis, at nonce 0
    tx = rpc_transaction({"type": 2, "nonce": 5, "gas": 21_000, "maxFeePerGas": 10**11,
                          "maxPriorityFeePerGas": 1, "to": "0x" + "44" * 20, "value": 1,
                          "chainId": chain.genesis.chain_id}, bytes(user.key))
    node.transactions[tx["hash"]] = tx
    block = node.blocks[n]
    block["transactions"] = [*block["transactions"], tx["hash"]]
    block["transactionsRoot"] = "0x" + proofs.transactions_root(
        [node.transactions[h] for h in block["transactions"]]).hex()
    reseal(node, n)
    with node:
        report = _replay(chain, node.url)
    assert (report.failure.block, report.failure.check) == (n, "execution")
    last = len(block["transactions"]) - 1
    assert f"transaction {last} ({tx['hash']})" in report.failure.message
    assert "Nonce too high" in report.failure.message


def test_base_fee_resealed_by_a_byzantine_quorum_breaks_the_fork_rules(executed):
    chain, _, _ = executed
    node = serve(chain)
    n = _first_block_with_txs(node, after=1) + 1
    node.blocks[n]["baseFeePerGas"] = hex(int(node.blocks[n]["baseFeePerGas"], 16) + 1)
    reseal(node, n)
    with node:
        report = _replay(chain, node.url)
    assert (report.failure.block, report.failure.check) == (n, "fork-rules")
    assert "baseFeePerGas" in report.failure.message


def test_forged_state_is_the_failure_named_when_seals_are_checked_in_parallel_chunks(executed):
    """Replay runs in block order beside the seal workers: the forged block is named, not a
    later one, however the chain is cut into jobs."""
    chain, _, _ = executed
    node = serve(chain)
    n = _first_block_with_txs(node)
    node.blocks[n]["stateRoot"] = node.blocks[n - 1]["stateRoot"]  # as if nothing happened
    reseal(node, n)
    with node:
        report = _replay(chain, node.url, jobs=2, chunk=2)
    assert (report.failure.block, report.failure.check) == (n, "state-root")


def test_cli_replay_reports_what_it_executed(executed, tmp_path):
    chain, domain, records = executed
    genesis = _genesis_file(chain, tmp_path)
    with serve(chain) as node:
        result = CliRunner().invoke(main, [
            "verify", "--rpc", node.url, "--genesis", str(genesis), "--replay", "--ledger",
            "0x" + domain.ledger_address.hex(), "--no-checkpoint", "--quiet", "--jobs", "1",
            "--report", str(tmp_path / "r.json")])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["replay"]["blocks"] == chain.head.number
    assert report["recordsVerified"] == records
    assert "executes to its sealed header" in result.output


def test_cli_replay_with_from_is_refused_as_bad_usage(executed, tmp_path):
    chain, _, _ = executed
    genesis = _genesis_file(chain, tmp_path)
    result = CliRunner().invoke(main, ["verify", "--rpc", "http://127.0.0.1:9", "--genesis",
                                       str(genesis), "--replay", "--from", "3"])
    assert result.exit_code == 2
    assert "--from" in result.output


def _genesis_file(chain, directory):
    path = directory / "genesis.json"
    path.write_text(json.dumps(chain.genesis.raw))
    return path


def test_replay_imports_nothing_outside_the_base_install():
    """A regulator installs chain/ and observer/ alone: replay must not reach into node/ or an
    extra's packages."""
    code = ("import sys, observer.cli, observer.replay; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'node', 'indexer', "
            "'ta_services', 'lmdb', 'aiohttp', 'yaml', 'websockets', 'asyncpg', 'fastapi'}))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, cwd=Path(__file__).parents[2])
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
