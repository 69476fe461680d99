"""Commit-seal recovery and full QBFT header verification per second.

The limit is raw coincurve public-key recovery plus the keccak that turns the key into an
address: nothing verifies a seal faster in Python. We report chain/qbft's seal recovery and its
full header verification (block hash, commit-seal hash, header rules, quorum of seals) against
that limit, on one core and on all cores (one process per core, as the observer verifies).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from coincurve import PublicKey
from eth_hash.auto import keccak

from chain.qbft.hashing import commit_seal_hash
from chain.qbft.seals import recover
from chain.qbft.verify import verify_header

# Appended once `chain` is imported, so tests/chain can never shadow the chain package.
sys.path.append(str(Path(__file__).parents[1] / "tests"))
sys.path.append(str(Path(__file__).parent))

import itertools

from results import write_section
from sealing import child, genesis_header, keys

VALIDATORS = 4
BLOCKS = 400


def _chain() -> tuple[list, list[bytes]]:
    secrets = keys(VALIDATORS)
    validators = sorted(secrets)
    headers = [genesis_header(validators)]
    for _ in range(BLOCKS):
        headers.append(child(headers[-1], validators, secrets, signers=validators))
    return headers, validators


def _rate(fn: Callable[[], int], seconds: float = 3.0) -> float:
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        done += fn()
    return done / (time.perf_counter() - start)


def _work(kind: str) -> float:
    headers, validators = _chain()
    from chain.qbft import extra_data as xd

    seals = [(s, commit_seal_hash(h)) for h in headers[1:] for s in xd.decode(h.extra_data).seals]
    if kind == "raw":
        def run() -> int:
            for seal, digest in seals:
                keccak(PublicKey.from_signature_and_message(seal, digest, hasher=None)
                       .format(compressed=False)[1:])
            return len(seals)
    elif kind == "recover":
        def run() -> int:
            for seal, digest in seals:
                recover(seal, digest)
            return len(seals)
    else:
        from chain.qbft.hashing import block_hash

        def run() -> int:
            # As a verifier walks a chain: each verified hash is the next block's parent hash.
            parent_hash = block_hash(headers[0])
            for parent, header in itertools.pairwise(headers):
                parent_hash = verify_header(header, parent, validators, parent_hash=parent_hash).hash
            return len(headers) - 1
    return _rate(run)


def main() -> None:
    cores = os.cpu_count() or 1
    one = {k: _work(k) for k in ("raw", "recover", "headers")}
    with ProcessPoolExecutor(cores) as pool:
        many = {k: sum(pool.map(_work, [k] * cores)) for k in ("raw", "headers")}
    per_header = VALIDATORS  # every validator sealed each block
    lines = [
        f"{VALIDATORS} validators, every block carrying {per_header} commit seals; "
        f"{BLOCKS} sealed headers built with chain/qbft, rates over 3 s.",
        "",
        "| measure | 1 core | all cores |",
        "|---|---:|---:|",
        f"| raw coincurve recovery + keccak (the limit), seals/s | {one['raw']:,.0f} | {many['raw']:,.0f} |",
        f"| `chain.qbft.seals.recover`, seals/s | {one['recover']:,.0f} | |",
        f"| `verify_header` (hashes, rules, quorum of seals), headers/s | {one['headers']:,.0f} "
        f"| {many['headers']:,.0f} |",
        f"| … as seals/s | {one['headers'] * per_header:,.0f} | {many['headers'] * per_header:,.0f} |",
        f"| full verification vs the limit | {one['headers'] * per_header / one['raw']:.0%} "
        f"| {many['headers'] * per_header / many['raw']:.0%} |",
    ]
    print("\n".join(lines))
    write_section("seals", "Commit seals and header verification (`bench_seals.py`)", "\n".join(lines))


if __name__ == "__main__":
    main()
