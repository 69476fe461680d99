"""Every worked example in docs/formats.md is recomputed from its input block."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from chain.abc import AttestedEvent, LedgerDomain
from chain.attest import Eip712Scheme
from chain.attest.eip712 import digest, domain_separator, struct_hash
from chain.attest.keys import LocalSigner
from chain.ledger import build_record, canonical_delta, data_hash, ledger_anchor
from chain.qbft import extra_data as xd
from chain.qbft.hashing import block_hash, commit_seal_hash
from chain.qbft.header import BlockHeader
from chain.qbft.quorum import quorum
from chain.qbft.seals import recover

ROOT = Path(__file__).parents[2]
DOC = (ROOT / "docs" / "formats.md").read_text()
BLOCKS = json.loads((ROOT / "tests" / "data" / "besu" / "blocks.json").read_text())["blocks"]
EXAMPLE = re.compile(r"<!-- check: ([\w-]+) -->\s*```json\n(.*?)```\s*```text\n(.*?)```", re.S)


def h(text: str) -> bytes:
    return bytes.fromhex(text.removeprefix("0x"))


def _normalise(text: str) -> str:
    return "\n".join(re.sub(r"\s+", " ", line.strip()) for line in text.strip().splitlines())


def _table(**values: str) -> str:
    return "\n".join(f"{k} {v}" for k, v in values.items())


def extra_data_genesis(inp: dict[str, Any]) -> str:
    return "0x" + xd.encode_genesis([h(v) for v in inp["validators"]]).hex()


def extra_data_full(inp: dict[str, Any]) -> str:
    vote = inp["vote"]
    return "0x" + xd.encode(xd.ExtraData(h(inp["vanity"]), tuple(h(v) for v in inp["validators"]),
                                         xd.Vote(h(vote["recipient"]), vote["type"] == "ADD"),
                                         inp["round"], tuple(h(s) for s in inp["seals"]))).hex()


def block_hashes(inp: dict[str, Any]) -> str:
    ref = BLOCKS[1]["header"]
    fields = {k: (ref[k] if v == "@blocks.json#1" else v) for k, v in inp.items()}
    header = BlockHeader.from_rpc(fields)
    digest_ = commit_seal_hash(header)
    committers = [recover(s, digest_) for s in xd.decode(header.extra_data).seals]
    return _table(hash="0x" + block_hash(header).hex(), commitSealHash="0x" + digest_.hex(),
                  committers=" ".join("0x" + c.hex() for c in committers))


def quorum_table(inp: list[int]) -> str:
    return " ".join(str(quorum(n)) for n in inp)


def delta(inp: dict[str, Any]) -> str:
    raw = canonical_delta(inp["eventType"], inp["delta"])
    return _table(delta=raw.decode(), dataHash="0x" + data_hash(raw).hex())


def record(inp: dict[str, Any]) -> str:
    actor = LocalSigner(int(inp["secret"], 16).to_bytes(32, "big"))
    domain = LedgerDomain(inp["chainId"], h(inp["ledger"]))
    raw = canonical_delta(inp["eventType"], inp["delta"])
    event = AttestedEvent(actor.address, inp["eventType"], data_hash(raw), inp["nonce"])
    att = Eip712Scheme().attest(event, domain, [actor])
    r = build_record(seq=inp["seq"], actor=actor.address, event_type=inp["eventType"], delta=raw,
                     nonce=inp["nonce"], attestation=att, previous_hash=ledger_anchor(domain),
                     timestamp=inp["timestamp"], block_height=inp["blockHeight"])
    return _table(domainSeparator="0x" + domain_separator(domain).hex(),
                  structHash="0x" + struct_hash(event).hex(),
                  digest="0x" + digest(event, domain).hex(), proof="0x" + att.proof.hex(),
                  attestationId="0x" + att.id.hex(), anchor="0x" + ledger_anchor(domain).hex(),
                  recordHash="0x" + (r.record_hash or b"").hex())


CHECKS: dict[str, Callable[[Any], str]] = {
    "extra-data-genesis": extra_data_genesis,
    "extra-data-full": extra_data_full,
    "block-hashes": block_hashes,
    "quorum": quorum_table,
    "delta": delta,
    "record": record,
}
FOUND = EXAMPLE.findall(DOC)


def test_every_check_in_the_doc_has_a_recomputation_and_vice_versa():
    assert sorted(name for name, _, _ in FOUND) == sorted(CHECKS)


@pytest.mark.parametrize(("name", "inp", "expected"), FOUND, ids=[f[0] for f in FOUND])
def test_worked_example_bytes_are_what_the_code_computes(name, inp, expected):
    assert CHECKS[name](json.loads(inp)) == _normalise(expected)

