"""A real chain for the indexer tests and benchmarks: anvil (or our dev node) with the
CeFiEventLedger compiled by the npm solc, deployed, and fed attested fund events.

``Anvil`` runs the npm anvil binary; ``compile_ledger`` compiles contracts/CeFiEventLedger.sol
once per source version (cached under .smartta/cache); ``LedgerKit`` deploys it, grants roles
and appends batches of EIP-712-attested records; ``FundScenario`` makes a deterministic stream
of a fund's events and keeps the register they imply, as an oracle independent of the indexer.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from eth_abi.abi import encode as abi_encode
from eth_hash.auto import keccak

from chain.abc import Attestation, LedgerDomain
from chain.attest.eip712 import EVENT_TYPEHASH, domain_separator, event_type_bytes32
from chain.attest.keys import LocalSigner
from chain.ledger import canonical_delta, data_hash
from chain.ledger.onchain import ATTESTER_ROLE, WRITER_ROLE, Entry, encode_batch
from chain.ledger.schema import isin_check_digit

ROOT = Path(__file__).resolve().parents[2]
ANVIL_BIN = ROOT / "node_modules" / "@foundry-rs" / "anvil-linux-amd64" / "bin" / "anvil"
CACHE = ROOT / ".smartta" / "cache"
LEDGER_SOL = ROOT / "contracts" / "CeFiEventLedger.sol"
SHIM = ROOT / "contracts" / "toolchain" / "solc-shim.js"
# anvil's first default account (mnemonic "test test ... junk"), unlocked by anvil.
DEPLOYER = "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RpcFailed(RuntimeError):
    pass


def rpc(url: str, method: str, params: list[Any] | None = None, timeout: float = 120) -> Any:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []})
    req = urllib.request.Request(url, body.encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        answer = json.loads(resp.read())
    if "error" in answer:
        raise RpcFailed(f"{method}: {answer['error']}")
    return answer["result"]


class Anvil:
    """anvil on a free port; ``stop`` ends it (only this process)."""

    def __init__(self, *, chain_id: int = 31337, gas_limit: int = 2_000_000_000,
                 extra: Sequence[str] = ()) -> None:
        if not ANVIL_BIN.exists():
            raise FileNotFoundError(f"{ANVIL_BIN} is missing; run `npm ci` (package.json has "
                                    "@foundry-rs/anvil-linux-amd64)")
        self.port = free_port()
        self.chain_id = chain_id
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [str(ANVIL_BIN), "--port", str(self.port), "--chain-id", str(chain_id),
             "--gas-limit", str(gas_limit), "--hardfork", "cancun", "--silent",
             "--disable-code-size-limit", *extra],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while True:
            try:
                rpc(self.url, "eth_chainId", timeout=2)
                break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"anvil did not start on port {self.port}") from None
                time.sleep(0.05)

    def call(self, method: str, params: list[Any] | None = None) -> Any:
        return rpc(self.url, method, params)

    def head(self) -> int:
        return int(self.call("eth_blockNumber"), 16)

    def mine(self, blocks: int = 1) -> None:
        self.call("anvil_mine", [hex(blocks)])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> Anvil:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()


def compile_ledger() -> dict[str, Any]:
    """ABI and creation bytecode of CeFiEventLedger, compiled as ape-config.yaml says."""
    source = LEDGER_SOL.read_bytes()
    key = hashlib.sha256(source + SHIM.read_bytes()).hexdigest()[:16]
    cached = CACHE / f"CeFiEventLedger-{key}.json"
    if cached.exists():
        return json.loads(cached.read_text())  # type: ignore[no-any-return]
    standard = {
        "language": "Solidity",
        "sources": {"CeFiEventLedger.sol": {"urls": [str(LEDGER_SOL.relative_to(ROOT))]}},
        "settings": {"evmVersion": "cancun", "viaIR": True,
                     "optimizer": {"enabled": True, "runs": 200},
                     "remappings": ["@openzeppelin/contracts/=node_modules/@openzeppelin/contracts/"],
                     "outputSelection": {"*": {"*": ["abi", "evm.bytecode.object"]}}},
    }
    out = subprocess.run(["node", str(SHIM), "--standard-json", "--base-path", str(ROOT)],
                         input=json.dumps(standard), capture_output=True, text=True, cwd=ROOT,
                         check=True, timeout=600)
    result = json.loads(out.stdout)
    errors = [e for e in result.get("errors", []) if e["severity"] == "error"]
    if errors:
        raise RuntimeError("\n".join(e["formattedMessage"] for e in errors))
    contract = result["contracts"]["CeFiEventLedger.sol"]["CeFiEventLedger"]
    artifact = {"abi": contract["abi"], "bytecode": "0x" + contract["evm"]["bytecode"]["object"]}
    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = cached.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(artifact))
    tmp.replace(cached)
    return artifact


def selector(signature: str) -> bytes:
    return bytes(keccak(signature.encode()))[:4]


def actor_key(n: int) -> LocalSigner:
    return LocalSigner(keccak(f"smartta indexer test actor {n}".encode()))


class LedgerKit:
    """Deploys a CeFiEventLedger and appends attested records to it."""

    def __init__(self, url: str, actors: Sequence[LocalSigner], *, sender: str = DEPLOYER,
                 sender_key: bytes | None = None) -> None:
        """``sender_key``: sign transactions here and send them raw (a node without unlocked
        accounts, like ours); otherwise the node signs for ``sender`` (anvil)."""
        self.url = url
        self.sender = sender
        self.sender_key = sender_key
        if sender_key is not None:
            from eth_account import Account

            self.sender = Account.from_key(sender_key).address.lower()
        self.actors = list(actors)
        self.chain_id = int(rpc(url, "eth_chainId"), 16)
        self.address = b""
        self.nonces: dict[bytes, int] = {a.address: 0 for a in self.actors}
        self.domain: LedgerDomain | None = None
        self._separator = b""
        self.deploy_block = -1

    def send(self, data: bytes, to: bytes | None = None, gas: int | None = None) -> dict[str, Any]:
        tx: dict[str, Any] = {"from": self.sender, "data": "0x" + data.hex()}
        if to is not None:
            tx["to"] = "0x" + to.hex()
        if gas is not None:
            tx["gas"] = hex(gas)
        tx_hash = self._submit(tx)
        for _ in range(600):
            receipt = rpc(self.url, "eth_getTransactionReceipt", [tx_hash])
            if receipt is not None:
                if int(receipt["status"], 16) != 1:
                    raise RpcFailed(f"transaction {tx_hash} reverted")
                return receipt  # type: ignore[no-any-return]
            time.sleep(0.05)
        raise RpcFailed(f"transaction {tx_hash} was not mined")

    def _submit(self, tx: dict[str, Any]) -> str:
        if self.sender_key is None:
            return str(rpc(self.url, "eth_sendTransaction", [tx]))
        from eth_account import Account

        fields: dict[str, Any] = {
            "data": tx["data"], "value": 0, "chainId": self.chain_id, "gasPrice": 0,
            "nonce": int(rpc(self.url, "eth_getTransactionCount", [self.sender, "pending"]), 16),
            "gas": int(tx.get("gas", hex(12_000_000)), 16)}
        if tx.get("to"):
            fields["to"] = bytes.fromhex(tx["to"][2:])
        signed = Account.sign_transaction(fields, self.sender_key)
        return str(rpc(self.url, "eth_sendRawTransaction", ["0x" + signed.raw_transaction.hex()]))

    def deploy(self) -> bytes:
        artifact = compile_ledger()
        code = bytes.fromhex(artifact["bytecode"][2:]) + abi_encode(["address"], [self.sender])
        receipt = self.send(code)
        self.address = bytes.fromhex(receipt["contractAddress"][2:])
        self.deploy_block = int(receipt["blockNumber"], 16)
        self.domain = LedgerDomain(self.chain_id, self.address)
        self._separator = domain_separator(self.domain)
        grant = selector("grantRole(bytes32,address)")
        self.send(grant + abi_encode(["bytes32", "address"], [WRITER_ROLE, self.sender]),
                  to=self.address)
        for a in self.actors:
            self.send(grant + abi_encode(["bytes32", "address"], [ATTESTER_ROLE, a.address]),
                      to=self.address)
        return self.address

    def attest(self, signer: LocalSigner, event_type: str, delta: bytes, nonce: int) -> Attestation:
        # Chain's Eip712Scheme, with the ABI encoding by hand: the benchmark signs a million.
        struct = keccak(EVENT_TYPEHASH + bytes(12) + signer.address +
                        event_type_bytes32(event_type) + data_hash(delta) +
                        nonce.to_bytes(32, "big"))
        sig = signer.sign_digest(keccak(b"\x19\x01" + self._separator + struct))
        return Attestation(1, sig[:64] + bytes([sig[64] + 27]))

    def entries(self, events: Iterable[tuple[int, str, dict[str, Any]]]) -> list[Entry]:
        out = []
        for actor_index, event_type, fields in events:
            signer = self.actors[actor_index]
            self.nonces[signer.address] += 1
            nonce = self.nonces[signer.address]
            delta = canonical_delta(event_type, fields)
            out.append(Entry(signer.address, event_type, nonce, delta,
                             self.attest(signer, event_type, delta, nonce)))
        return out

    def append(self, events: Iterable[tuple[int, str, dict[str, Any]]]) -> dict[str, Any]:
        entries = self.entries(events)
        return self.send(encode_batch(entries), to=self.address,
                         gas=200_000 + 40_000 * len(entries))

    def append_raw(self, entries: Sequence[Entry]) -> str:
        """Send without waiting for the receipt (for bulk loads); returns the tx hash."""
        tx = {"from": self.sender, "to": "0x" + self.address.hex(),
              "data": "0x" + encode_batch(entries).hex(), "gas": hex(200_000 + 40_000 * len(entries))}
        return self._submit(tx)


def isin(n: int) -> str:
    body = f"LU{n:09d}"
    return body + isin_check_digit(body)


def investor(n: int) -> str:
    return f"inv_{hashlib.sha256(str(n).encode()).hexdigest()[:16]}"


@dataclass
class FundScenario:
    """A deterministic stream of fund events (actor 0 is the TA, actor 1 the fund
    administrator), and the register and NAV history they imply."""

    funds: int = 2
    investors: int = 20
    seed: int = 1
    register: dict[tuple[str, str], Decimal] = field(default_factory=dict)
    navs: list[tuple[str, str, str]] = field(default_factory=list)
    distributions: dict[str, str] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    _step: int = 0
    _opened: bool = False

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def _emit(self, actor: int, event_type: str, fields: dict[str, Any]
              ) -> tuple[int, str, dict[str, Any]]:
        self.counts[event_type] = self.counts.get(event_type, 0) + 1
        return actor, event_type, fields

    def _add(self, fund: str, who: str, units: Decimal) -> None:
        self.register[(fund, who)] = self.register.get((fund, who), Decimal(0)) + units

    def opening(self) -> list[tuple[int, str, dict[str, Any]]]:
        out = [self._emit(0, "FUND_REGISTERED", {"fund": f"FUND-{f}", "isin": isin(f),
                                                  "currency": "EUR", "dealing": "daily",
                                                  "cut_off": "12:00"})
               for f in range(self.funds)]
        out += [self._emit(0, "INVESTOR_ONBOARDED", {"investor": investor(i), "country": "LU",
                                                      "category": "retail"})
                for i in range(self.investors)]
        self._opened = True
        return out

    def events(self, n: int) -> list[tuple[int, str, dict[str, Any]]]:
        out: list[tuple[int, str, dict[str, Any]]] = [] if self._opened else self.opening()
        rng = self.rng
        while len(out) < n:
            self._step += 1
            step = self._step
            f = rng.randrange(self.funds)
            fund = isin(f)
            who = investor(rng.randrange(self.investors))
            kind = rng.random()
            day = f"2026-{1 + step // 2800 % 12:02d}-{1 + step // 100 % 28:02d}"
            if kind < 0.45:
                units = Decimal(rng.randrange(1, 100_000)) / 100
                out.append(self._emit(0, "UNITS_ISSUED", {"order": f"ORD-{step}", "investor": who,
                                                          "isin": fund, "units": str(units)}))
                self._add(fund, who, units)
            elif kind < 0.60:
                held = self.register.get((fund, who), Decimal(0))
                if held <= 0:
                    continue
                units = (held / 2).quantize(Decimal("0.01"))
                if units <= 0:
                    continue
                out.append(self._emit(0, "UNITS_REDEEMED", {"order": f"ORD-{step}",
                                                            "investor": who, "isin": fund,
                                                            "units": _dec(units)}))
                self._add(fund, who, -units)
            elif kind < 0.70:
                held = self.register.get((fund, who), Decimal(0))
                other = investor(rng.randrange(self.investors))
                if held <= 0 or other == who:
                    continue
                units = (held / 3).quantize(Decimal("0.01"))
                if units <= 0:
                    continue
                out.append(self._emit(0, "UNITS_TRANSFERRED", {
                    "transfer": f"TRF-{step}", "from_investor": who, "to_investor": other,
                    "isin": fund, "units": _dec(units)}))
                self._add(fund, who, -units)
                self._add(fund, other, units)
            elif kind < 0.85:
                nav = str(Decimal(10_000 + rng.randrange(5_000)) / 100)
                out.append(self._emit(1, "NAV_PUBLISHED", {"isin": fund, "nav_date": day,
                                                           "nav": _dec(Decimal(nav)),
                                                           "currency": "EUR"}))
                self.navs.append((fund, day, _dec(Decimal(nav))))
            elif kind < 0.92:
                out.append(self._emit(0, "ORDER_PLACED", {
                    "order": f"ORD-{step}", "investor": who, "isin": fund, "side": "subscription",
                    "amount": f"{rng.randrange(100, 10_000)}.5", "currency": "EUR",
                    "dealing_date": day, "channel": "rest"}))
            elif kind < 0.96:
                ref = f"DIST-{step}"
                out.append(self._emit(0, "DISTRIBUTION_DECLARED", {
                    "distribution": ref, "isin": fund, "record_date": day, "payment_date": day,
                    "per_unit": "0.12", "currency": "EUR"}))
                self.distributions[ref] = fund
            else:
                if not self.distributions:
                    continue
                ref = rng.choice(sorted(self.distributions))
                units = Decimal(rng.randrange(1, 500)) / 100
                out.append(self._emit(0, "DISTRIBUTION_PAID", {
                    "distribution": ref, "investor": who, "amount": "1.2", "currency": "EUR",
                    "reinvested_units": _dec(units)}))
                self._add(self.distributions[ref], who, units)
        return out

    def holders(self, fund: str) -> dict[str, Decimal]:
        return {who: units for (f, who), units in self.register.items()
                if f == fund and units != 0}


def _dec(value: Decimal) -> str:
    """The schema's canonical decimal: no exponent, no trailing zeros."""
    text = format(value.normalize(), "f")
    return text


def ledger_logs(url: str, ledger: bytes, first: int = 0, last: int | None = None
                ) -> list[dict[str, Any]]:
    """Every RecordsAppended log of the ledger, straight from the node (the test oracle)."""
    from chain.ledger.onchain import RECORDS_APPENDED_TOPIC

    end = int(rpc(url, "eth_blockNumber"), 16) if last is None else last
    logs: list[dict[str, Any]] = []
    step = 2_000
    for lo in range(first, end + 1, step):
        logs += rpc(url, "eth_getLogs", [{"fromBlock": hex(lo), "toBlock": hex(min(end, lo + step - 1)),
                                          "address": "0x" + ledger.hex(),
                                          "topics": ["0x" + RECORDS_APPENDED_TOPIC.hex()]}])
    return logs


def chain_records(url: str, ledger: bytes, last: int | None = None) -> list[Any]:
    """The ledger's records decoded with chain/ledger alone (no indexer code)."""
    from chain.ledger.onchain import decode_rpc_log

    out = []
    stamps: dict[str, int] = {}
    for lg in ledger_logs(url, ledger, 0, last):
        ts = stamps.get(lg["blockHash"])
        if ts is None:
            block = rpc(url, "eth_getBlockByHash", [lg["blockHash"], False])
            ts = stamps[lg["blockHash"]] = int(block["timestamp"], 16)
        out.extend((r, lg) for r in decode_rpc_log(lg, timestamp=ts).records)
    return out


def packed_records(records: Sequence[Any], schemes: Sequence[int]) -> bytes:
    """The ``records`` field of a RecordsAppended log, packed as the contract packs it."""
    out = b""
    for r, scheme in zip(records, schemes, strict=True):
        et = r.event_type.encode("ascii")
        out += (r.actor + bytes([len(et)]) + et + r.nonce.to_bytes(8, "big") + bytes([scheme])
                + r.attestation_id + len(r.delta).to_bytes(2, "big") + r.delta)
    return out


def records_log(ledger: bytes, records: Sequence[Any], *, block_hash: bytes, log_index: int = 0,
                tx_hash: bytes = b"\x07" * 32, schemes: Sequence[int] | None = None) -> Any:
    """A RecordsAppended log (indexer.abc.RawLog) carrying ``records``, as the contract emits."""
    from chain.ledger.onchain import RECORDS_APPENDED_TOPIC
    from indexer.abc import RawLog

    schemes = schemes or [1] * len(records)
    data = abi_encode(["uint64", "bytes32", "bytes32", "bytes"],
                      [len(records), records[0].previous_hash, records[-1].record_hash,
                       packed_records(records, schemes)])
    return RawLog(ledger, (RECORDS_APPENDED_TOPIC, records[0].seq.to_bytes(32, "big")), data,
                  records[0].block_height, block_hash, tx_hash, 0, log_index)
