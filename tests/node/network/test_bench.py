"""`smartta network bench`: Caliper's figures computed as Caliper defines them, round specs
parsed strictly, and a real run on a 4-validator network whose reported successes are exactly the
records the ledger contract logged."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
from devnet import devnet, rpc, smartta

from chain.ledger import onchain
from node.network import local
from node.network.loadgen import BenchError, Round, parse_round, percentile, summarise

ROOT = Path(__file__).parents[3]
ARTIFACT = ROOT / ".build" / "__local__.json"


def test_round_specs_parse_and_bad_ones_say_what_is_wrong():
    r = parse_round("label=peak,fixed-load=800,txs=10000")
    assert (r.label, r.control, r.value, r.txs, r.batch_size) == ("peak", "fixed-load", 800, 10000, 1)
    assert parse_round("fixed-rate=150,txs=30,batch=50").batch_size == 50
    with pytest.raises(BenchError, match="exactly one of fixed-rate"):
        parse_round("txs=10")
    with pytest.raises(BenchError, match="unknown tps"):
        parse_round("fixed-load=5,tps=3")
    with pytest.raises(BenchError, match="must be positive"):
        parse_round("fixed-rate=0,txs=10")


def test_percentiles_are_nearest_rank():
    values = [float(v) for v in range(1, 101)]
    assert (percentile(values, 50), percentile(values, 95), percentile(values, 99)) == (50, 95, 99)
    assert percentile([3.0], 99) == 3.0 and math.isnan(percentile([], 50))


def test_caliper_figures_count_reverted_refused_and_unfinished_as_failures():
    r = Round("r", 5, "fixed-rate", 10)
    submitted = {b"a": 0.0, b"b": 1.0, b"c": 2.0, b"d": 4.0}
    final = {b"a": (2.0, True), b"b": (2.5, True), b"c": (5.0, False)}  # c reverted, d never final
    blocks = [(1, 2.0, 1), (2, 2.5, 1), (3, 5.0, 1)]
    report = summarise(r, submitted, final, refused=1, blocks=blocks, errors=[])
    assert (report.succ, report.fail) == (2, 3)
    assert report.throughput == pytest.approx(2 / 2.5)  # successes / (last final - first submit)
    assert report.send_rate == pytest.approx(5 / 4.0)  # submissions, refused ones too, over 4 s
    assert (report.latency_min, report.latency_max) == (1.5, 2.0)
    assert report.latency_avg == pytest.approx(1.75)
    assert report.blocks == 3


def test_a_bench_run_reports_exactly_the_records_the_ledger_logged(tmp_path):
    if not ARTIFACT.exists():
        done = subprocess.run([str(Path(sys.executable).parent / "ape"), "compile"], cwd=ROOT,
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr
    directory = tmp_path / "net"
    out = tmp_path / "bench.json"
    with devnet(directory, validators=4) as spec:
        smartta("network", "bench", "--dir", str(directory), "--artifact", str(ARTIFACT),
                "--warmup", "20", "--senders", "10", "--connections", "4",
                "--round", "label=closed,fixed-load=40,txs=120",
                "--round", "label=open,fixed-rate=20,txs=40",
                "--round", "label=batched,fixed-load=2,txs=4,batch=10", "--json", str(out),
                timeout=400)
        result = json.loads(out.read_text())
        rounds = {r["label"]: r for r in result["rounds"]}
        assert [(rounds[k]["succ"], rounds[k]["fail"]) for k in ("closed", "open", "batched")] == \
            [(120, 0), (40, 0), (4, 0)]
        assert rounds["batched"]["events_per_second"] == pytest.approx(10 * rounds["batched"]["throughput"])
        for r in rounds.values():
            assert 0 < r["latency_min"] <= r["latency_p50"] <= r["latency_p95"] <= r["latency_p99"] \
                <= r["latency_max"]
            assert r["throughput"] > 0 and r["blocks"] >= 1
        assert rounds["open"]["send_rate"] == pytest.approx(20, rel=0.25)
        # What the chain says: every record of every round (and the warm-up) is in the logs.
        url = local.url_of(spec.node("validator-1"))
        logs = rpc(url, "eth_getLogs", {"fromBlock": "0x0", "toBlock": "latest",
                                        "address": result["ledger"],
                                        "topics": ["0x" + onchain.RECORDS_APPENDED_TOPIC.hex()]})
        records = sum(int(log["data"][2:66], 16) for log in logs)  # count: first data word
        assert records == 20 + 120 + 40 + 4 * 10
