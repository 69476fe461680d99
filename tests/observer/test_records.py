"""The ledger record walk: records read only from receipts the sealed headers commit to; every
record tamper (by the ledger inside sealed blocks, or by the node serving them) is named."""

from __future__ import annotations

import re

import pytest
from conftest import run_verifier
from devchain import ChainBuilder
from ledgerchain import DOMAIN, Ledger, ledger_chain, order_fact
from tampers import apply, vectors


@pytest.fixture(scope="module")
def honest():
    return ledger_chain()


def test_honest_ledger_verifies_every_record(honest, node_factory):
    chain, ledger = honest
    report = run_verifier(chain.genesis, [node_factory(chain).url], ledger=DOMAIN)
    assert report.failure is None, report.failure
    assert report.records == len(ledger.records) == 36


def test_blocks_without_ledger_logs_are_not_fetched(honest, node_factory):
    chain, _ = honest
    node = node_factory(chain)
    run_verifier(chain.genesis, [node.url], ledger=DOMAIN)
    # One receipts request per block whose sealed bloom names the ledger: 1 grant + 6 batches.
    assert node.calls.count("eth_getBlockReceipts") == 7


@pytest.mark.parametrize("vector", vectors("records"), ids=lambda v: v["name"])
def test_record_tamper_is_detected_and_named(vector, honest, node_factory):
    if "ledger" in vector:
        chain, _ = ledger_chain(tamper_block=vector["ledger"]["block"], tamper=vector["ledger"])
        node = node_factory(chain)
    else:
        chain, _ = honest
        node = node_factory(chain)
        apply(node, chain, vector)
    report = run_verifier(chain.genesis, [node.url], ledger=DOMAIN)
    failure, expect = report.failure, vector["expect"]
    assert failure is not None, f"{vector['name']} went unnoticed"
    if "record" in expect:
        assert (failure.record, failure.check) == (expect["record"], expect["check"]), str(failure)
    else:
        assert (failure.block, failure.check) == (expect["block"], expect["check"]), str(failure)
    assert re.search(re.escape(expect["message"]), failure.message), str(failure)


def test_actor_without_attester_role_is_named(node_factory):
    b = ChainBuilder()
    ledger = Ledger(b)
    b.add(body=ledger.grant(["ta"]))
    b.add(body=ledger.append([[order_fact("ta", 1), order_fact("mallory", 2)]]))
    chain = b.chain()
    report = run_verifier(chain.genesis, [node_factory(chain).url], ledger=DOMAIN)
    assert report.failure is not None
    assert (report.failure.record, report.failure.check) == (2, "authorisation")


def test_revoked_attester_is_refused_after_its_revocation_only(node_factory):
    b = ChainBuilder()
    ledger = Ledger(b)
    b.add(body=ledger.grant(["ta"]))
    b.add(body=ledger.append([[order_fact("ta", 1)]]))
    b.add(body=ledger.grant(["ta"], revoke=True))
    b.add(body=ledger.append([[order_fact("ta", 2)]]))
    chain = b.chain()
    report = run_verifier(chain.genesis, [node_factory(chain).url], ledger=DOMAIN)
    assert report.failure is not None
    assert (report.failure.record, report.failure.check) == (2, "authorisation")


def test_record_walk_resumes_from_the_checkpoint_with_its_roles(honest, node_factory, tmp_path):
    from observer.checkpoint import CheckpointStore

    chain, _ = honest
    node = node_factory(chain)
    store = CheckpointStore.for_genesis(chain.genesis.hash, tmp_path / "state")
    first = run_verifier(chain.genesis, [node.url], ledger=DOMAIN, store=store, to=8)
    assert (first.failure, first.records) == (None, 18)
    second = run_verifier(chain.genesis, [node.url], ledger=DOMAIN, store=store)
    assert second.failure is None
    assert second.resumed_from is not None and second.resumed_from[0] == 8
    # Records 19..36 checked now, linked to record 18 and with the attesters granted in block 3.
    assert second.records == 36


def test_checkpoint_without_this_ledger_is_not_used_for_a_record_walk(honest, node_factory,
                                                                        tmp_path):
    from observer.checkpoint import CheckpointStore

    chain, _ = honest
    node = node_factory(chain)
    store = CheckpointStore.for_genesis(chain.genesis.hash, tmp_path / "state")
    run_verifier(chain.genesis, [node.url], store=store, to=10)  # blocks only
    report = run_verifier(chain.genesis, [node.url], ledger=DOMAIN, store=store)
    assert (report.failure, report.resumed_from, report.records) == (None, None, 36)


def test_node_without_block_receipts_says_which_method_to_enable(honest, node_factory):
    from observer.abc import SourceError

    chain, _ = honest
    node = node_factory(chain)
    real = node.answer

    def no_receipts(method, params):
        if method == "eth_getBlockReceipts":
            from hostile import _RpcError

            raise _RpcError(-32601, "Method not found")
        return real(method, params)

    node.answer = no_receipts
    with pytest.raises(SourceError, match="does not offer this method"):
        run_verifier(chain.genesis, [node.url], ledger=DOMAIN)


def test_malformed_receipt_is_named_not_crashed_on(honest, node_factory):
    chain, _ = honest
    node = node_factory(chain)
    del node.receipts[6][0]["cumulativeGasUsed"]
    report = run_verifier(chain.genesis, [node.url], ledger=DOMAIN)
    assert report.failure is not None
    assert (report.failure.block, report.failure.check) == (6, "receipts")
    assert "cumulativeGasUsed" in report.failure.message


def test_record_jobs_start_while_later_receipts_are_still_unread(honest, node_factory,
                                                                 monkeypatch):
    """Workers get the first records after the first 2 blocks' receipts, not after the whole
    chunk's: the reads grow 2, 4, 8 ... blocks, and jobs left part-full carry on into the next
    read, so every record is checked once, in order; finished jobs are taken back as new ones
    go out."""
    import observer.records as records_module
    import observer.verify as verify_module
    from observer.records import LedgerWalk
    from observer.rpc import RpcSource
    from observer.verify import Verifier

    chain, ledger = honest
    events: list[tuple[str, list[int]]] = []

    class Recording(RpcSource):
        def receipts(self, numbers):  # type: ignore[no-untyped-def]
            events.append(("receipts", list(numbers)))
            return super().receipts(numbers)

    queued: list[int] = []

    def check(job):  # type: ignore[no-untyped-def]
        queued.append(len(verifier._records_pending))
        result = records_module.check_records(job)
        events.append(("job", list(range(result.first_seq, result.head_seq + 1))))
        return result

    monkeypatch.setattr(verify_module, "check_records", check)
    source = Recording(node_factory(chain).url)
    walk = LedgerWalk(source, DOMAIN, job_records=1)
    verifier = Verifier(chain.genesis, [source], jobs=1, records=walk)
    try:
        report = verifier.advance()
    finally:
        verifier.close()
    assert report.failure is None, report.failure
    reads = [len(n) for kind, n in events if kind == "receipts"]
    assert reads == [2, 4, 1]  # the grant's block and 6 blocks of records
    assert events[0][0] == "receipts" and events[1][0] == "job"
    checked = [seq for kind, seqs in events if kind == "job" for seq in seqs]
    assert checked == list(range(1, len(ledger.records) + 1))
    # Results are taken as jobs go out: the queue never holds a chunk's worth of jobs.
    assert len(queued) > 4 and max(queued) <= 1, queued
