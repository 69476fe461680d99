"""ERC-3643 (T-REX 4.1.6) and ONCHAINID (2.2.1): our event signatures against the audited ABIs,
and the real contracts, deployed from their npm artifacts on anvil, indexed."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from chainkit import ROOT, rpc
from conftest import run
from eth_abi.abi import encode as abi_encode
from eth_hash.auto import keccak
from oracle import pg_analytics_digests, pg_rows

from indexer import digest, tokens
from indexer.runner import ChainConfig, Indexer, IndexerConfig

TREX = ROOT / "node_modules" / "@tokenysolutions" / "t-rex" / "artifacts" / "contracts"
ONCHAINID = ROOT / "node_modules" / "@onchain-id" / "solidity" / "artifacts" / "contracts"
ARTIFACTS = {
    "Token": TREX / "token/Token.sol/Token.json",
    "IdentityRegistry": TREX / "registry/implementation/IdentityRegistry.sol/IdentityRegistry.json",
    "IdentityRegistryStorage": TREX / "registry/implementation/IdentityRegistryStorage.sol/"
                                      "IdentityRegistryStorage.json",
    "ClaimTopicsRegistry": TREX / "registry/implementation/ClaimTopicsRegistry.sol/"
                                  "ClaimTopicsRegistry.json",
    "TrustedIssuersRegistry": TREX / "registry/implementation/TrustedIssuersRegistry.sol/"
                                     "TrustedIssuersRegistry.json",
    "ModularCompliance": TREX / "compliance/modular/ModularCompliance.sol/ModularCompliance.json",
    "TREXFactory": TREX / "factory/TREXFactory.sol/TREXFactory.json",
    "Identity": ONCHAINID / "Identity.sol/Identity.json",
}
# anvil's default accounts 0-2 (unlocked): the issuer/agent and two investors.
AGENT = "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266"
ALICE = "0x70997970c51812dc3a010c7d01b50e0d17dc79c8"
BOB = "0x3c44cdddb6a900fa2b585dd299e03d12fa4293bc"


def artifact(name: str) -> dict[str, Any]:
    path = ARTIFACTS[name]
    if not path.exists():
        pytest.skip(f"{path} missing: run `npm ci`")
    return json.loads(path.read_text())


def test_every_event_signature_matches_the_audited_abis():
    by_source: dict[str, tuple[tokens.EventSpec, ...]] = {}
    for spec in tokens.TOKEN_EVENTS + tokens.CLAIM_EVENTS:
        by_source[spec.source] = (*by_source.get(spec.source, ()), spec)
    for source, specs in by_source.items():
        assert tokens.check_against_abi(artifact(source)["abi"], specs) == [], source


class Chain:
    def __init__(self, url: str) -> None:
        self.url = url

    def send(self, sender: str, data: bytes, to: str | None = None) -> dict[str, Any]:
        tx: dict[str, Any] = {"from": sender, "data": "0x" + data.hex(), "gas": hex(15_000_000)}
        if to is not None:
            tx["to"] = to
        h = rpc(self.url, "eth_sendTransaction", [tx])
        for _ in range(200):
            receipt = rpc(self.url, "eth_getTransactionReceipt", [h])
            if receipt is not None:
                assert int(receipt["status"], 16) == 1, f"reverted: {receipt}"
                return receipt  # type: ignore[no-any-return]
            time.sleep(0.05)
        raise AssertionError("not mined")

    def deploy(self, name: str, types: list[str] | None = None, args: list[Any] | None = None,
               ) -> str:
        code = bytes.fromhex(artifact(name)["bytecode"][2:])
        if types:
            code += abi_encode(types, args or [])
        return str(self.send(AGENT, code)["contractAddress"])

    def call(self, sender: str, to: str, signature: str, types: list[str], args: list[Any],
             ) -> dict[str, Any]:
        data = bytes(keccak(signature.encode()))[:4] + abi_encode(types, args)
        return self.send(sender, data, to)


def deploy_trex(c: Chain) -> dict[str, Any]:
    """A T-REX suite from its npm artifacts: registries, compliance, the token, two investors
    with ONCHAINID identities; a claim, a mint, a transfer, a burn, a freeze."""
    ctr, tir = c.deploy("ClaimTopicsRegistry"), c.deploy("TrustedIssuersRegistry")
    irs, ir = c.deploy("IdentityRegistryStorage"), c.deploy("IdentityRegistry")
    mc, token = c.deploy("ModularCompliance"), c.deploy("Token")
    for address in (ctr, tir, irs, mc):
        c.call(AGENT, address, "init()", [], [])
    c.call(AGENT, ir, "init(address,address,address)", ["address"] * 3, [tir, ctr, irs])
    c.call(AGENT, irs, "bindIdentityRegistry(address)", ["address"], [ir])
    c.call(AGENT, token, "init(address,address,string,string,uint8,address)",
           ["address", "address", "string", "string", "uint8", "address"],
           [ir, mc, "Fund A units", "FAU", 0, "0x" + "00" * 20])
    c.call(AGENT, token, "addAgent(address)", ["address"], [AGENT])
    c.call(AGENT, ir, "addAgent(address)", ["address"], [AGENT])
    identities = {}
    for wallet in (ALICE, BOB):
        identities[wallet] = c.deploy("Identity", ["address", "bool"], [wallet, False])
        c.call(AGENT, ir, "registerIdentity(address,address,uint16)",
               ["address", "address", "uint16"], [wallet, identities[wallet], 442])
    # A self-issued claim on Alice's identity, added by her management key.
    c.call(ALICE, identities[ALICE], "addClaim(uint256,uint256,address,bytes,bytes,string)",
           ["uint256", "uint256", "address", "bytes", "bytes", "string"],
           [1, 1, identities[ALICE], b"\x01" * 65, b"kyc ok", ""])
    c.call(AGENT, token, "unpause()", [], [])
    mint = c.call(AGENT, token, "mint(address,uint256)", ["address", "uint256"], [ALICE, 1000])
    c.call(ALICE, token, "transfer(address,uint256)", ["address", "uint256"], [BOB, 300])
    c.call(AGENT, token, "burn(address,uint256)", ["address", "uint256"], [BOB, 100])
    c.call(AGENT, token, "freezePartialTokens(address,uint256)", ["address", "uint256"], [ALICE, 50])
    return {"token": token, "ir": ir, "mc": mc, "identities": identities,
            "mint_tx": mint["transactionHash"]}


def test_a_real_trex_token_and_identities_are_indexed(pg_dsn, schema, analytics, node):
    if not hasattr(node, "call"):
        pytest.skip("needs anvil's unlocked accounts")
    suite = deploy_trex(Chain(node.url))
    token, ir, mc, identities = suite["token"], suite["ir"], suite["mc"], suite["identities"]

    chain = ChainConfig(node.url, tokens=tuple(bytes.fromhex(a[2:]) for a in (token, ir, mc)),
                        claims=True)
    run(Indexer(IndexerConfig(pg_dsn, (chain,), schema=schema), analytics).run(follow=False))

    transfers = pg_rows(pg_dsn, f"SELECT from_addr, to_addr, amount FROM {schema}.token_transfers "
                                "ORDER BY block_number, log_index")
    zero = bytes(20)
    a, b = bytes.fromhex(ALICE[2:]), bytes.fromhex(BOB[2:])
    assert [(bytes(t["from_addr"]), bytes(t["to_addr"]), int(t["amount"])) for t in transfers] == \
        [(zero, a, 1000), (a, b, 300), (b, zero, 100)]
    balances = pg_rows(pg_dsn, f"SELECT holder, balance FROM {schema}.balances WHERE kind = 'token'")
    assert {r["holder"]: int(r["balance"]) for r in balances} == {ALICE: 700, BOB: 200}
    events = pg_rows(pg_dsn, f"SELECT event, args FROM {schema}.token_events ORDER BY block_number, "
                             "log_index")
    names = [e["event"] for e in events]
    for expected in ("UpdatedTokenInformation", "IdentityRegistryAdded", "ComplianceAdded",
                     "TokenBound", "AgentAdded", "IdentityRegistered", "ClaimAdded", "Unpaused",
                     "TokensFrozen"):
        assert expected in names, expected
    registered = [json.loads(e["args"]) for e in events if e["event"] == "IdentityRegistered"]
    assert registered == [{"investorAddress": w, "identity": identities[w]} for w in (ALICE, BOB)]
    claim = next(json.loads(e["args"]) for e in events if e["event"] == "ClaimAdded")
    assert claim["issuer"] == identities[ALICE] and claim["data"] == "0x" + b"kyc ok".hex()
    assert digest.as_json(digest.clickhouse_digests(analytics)) == \
        pg_analytics_digests(pg_dsn, schema)



def test_bridge_records_on_the_ledger_chain_are_matched_with_the_token_chain(
        pg_dsn, schema, analytics, node, ledger):
    from chainkit import Anvil

    from indexer import queries

    with Anvil(chain_id=4242) as token_chain:
        suite = deploy_trex(Chain(token_chain.url))
        minted = {"token_chain": 4242, "token": suite["token"], "to": ALICE, "amount": "1000",
                  "tx": suite["mint_tx"], "authorised_by": 1}
        phantom = {**minted, "tx": "0x" + "ab" * 32}
        ledger.append([(0, "TOKEN_MINTED", minted), (0, "TOKEN_MINTED", phantom)])
        chains = (ChainConfig(node.url, ledger=ledger.address),
                  ChainConfig(token_chain.url, tokens=(bytes.fromhex(suite["token"][2:]),)))
        run(Indexer(IndexerConfig(pg_dsn, chains, schema=schema), analytics).run(follow=False))

        async def links() -> list[dict[str, Any]]:
            import asyncpg

            conn = await asyncpg.connect(pg_dsn)
            try:
                async with conn.transaction(isolation="repeatable_read", readonly=True):
                    view = await queries.View.open(conn, schema)
                    assert set(view.chains) == {ledger.chain_id, 4242}
                    return (await queries.bridge_links(view))[0]
            finally:
                await conn.close()

        found = run(links())
    assert [(link["txHash"], link["matched"]) for link in found] == \
        [(suite["mint_tx"], True), (phantom["tx"], False)]
    assert digest.as_json(digest.clickhouse_digests(analytics)) == \
        pg_analytics_digests(pg_dsn, schema)
