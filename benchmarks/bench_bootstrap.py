"""From nothing to a running 4-validator network: ``smartta network init`` (fresh keys from the
CSPRNG in encrypted keystores, as an operator runs it, or ``--seeded``), ``smartta network up``,
then the first block final on every validator, and ``smartta network doctor`` on the live network.

    python benchmarks/bench_bootstrap.py [--runs 3]

Each run uses a new temporary folder and free ports; the network is stopped afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from results import write_section

from node.network.init import free_base_port

SMARTTA = str(Path(sys.executable).with_name("smartta"))
PASSWORD = "bench bootstrap passphrase"


def smartta(*args: str, env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run([SMARTTA, *args], env=env, check=True, capture_output=True, text=True, timeout=300)
    return time.perf_counter() - start


def head(url: str) -> int:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber", "params": []}).encode()
    request = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=1) as response:
        return int(json.load(response)["result"], 16)


def one_run(seeded: bool) -> dict[str, float]:
    env = {**os.environ, "SMARTTA_KEYSTORE_PASSWORD": PASSWORD}
    with tempfile.TemporaryDirectory(prefix="bench-bootstrap-") as tmp:
        folder = str(Path(tmp) / "net")
        start = time.perf_counter()
        base = free_base_port(4, range(10_000, 20_000, 100))
        init = smartta("network", "init", "--dir", folder, "--validators", "4", "--block-period", "1",
                       "--base-port", str(base), *(["--seeded"] if seeded else []), env=env)
        try:
            up = smartta("network", "up", "--dir", folder, env=env)
            status = json.loads(subprocess.run([SMARTTA, "network", "status", "--dir", folder, "--json"],
                                               env=env, check=True, capture_output=True,
                                               text=True).stdout)
            urls = [n["rpc_http"] for n in status["nodes"]]
            while True:
                try:
                    if all(head(url) >= 1 for url in urls):
                        break
                except OSError:
                    pass
                if time.perf_counter() - start > 120:
                    raise RuntimeError("no block 1 on every validator within 120 s")
                time.sleep(0.05)
            first_block = time.perf_counter() - start
            doctor = smartta("network", "doctor", "--dir", folder, env=env)
        finally:
            subprocess.run([SMARTTA, "network", "down", "--dir", folder], env=env, capture_output=True)
    return {"init": init, "up": up, "first": first_block, "doctor": doctor}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-write", action="store_true", help="print, do not touch RESULTS.md")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    rows = []
    for seeded in (False, True):
        runs = [one_run(seeded) for _ in range(args.runs)]
        for r in runs:
            print(("seeded " if seeded else "fresh  ") + ", ".join(f"{k} {v:.1f}s" for k, v in r.items()),
                  flush=True)

        def med(key: str, runs: list[dict[str, float]] = runs) -> str:
            return f"{statistics.median(r[key] for r in runs):.1f}"

        worst = max(r["first"] for r in runs)
        rows.append(f"| {'`--seeded` (throwaway keys)' if seeded else 'fresh keys (CSPRNG, keystore v3)'} "
                    f"| {med('init')} | {med('up')} | {med('first')} | {worst:.1f} | {med('doctor')} |")
    body = "\n".join([
        f"`smartta network init --validators 4 --block-period 1`, `smartta network up`, until block 1 "
        f"is final on all four validators, then `smartta network doctor` (live checks included) on "
        f"the running network; median of {args.runs} runs each, every run in a new folder. Target "
        f"(issue 4): a running 4-validator network from nothing in under 30 s. Load average when it "
        f"started: {load:.1f}.",
        "",
        "| keys | init, s | up, s | nothing to block 1 on every validator, s (median) "
        "| same, worst | doctor, s |",
        "|---|---:|---:|---:|---:|---:|",
        *rows,
    ])
    print(body)
    if not args.no_write:
        write_section("bootstrap", "From nothing to a running network (`bench_bootstrap.py`)", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
