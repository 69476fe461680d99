"""Besu QBFT ``genesis.json``: build one Besu accepts unchanged, read one as Besu reads it, and
compute its genesis block (state root from the alloc, header, hash).

Besu lower-cases every key of the genesis file before it reads it (``JsonUtil.normalizeKeys``),
so ``blockPeriodSeconds`` and ``blockperiodseconds`` are the same key; reading here does the
same. The network's settings (block period, epoch, request timeout, forks, free gas, contract
size limit) are read from this file and nowhere else.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import rlp
from eth_hash.auto import keccak
from trie import HexaryTrie

from chain.qbft import extra_data as xd
from chain.qbft.header import (
    BFT_MIX_HASH,
    EMPTY_OMMERS_HASH,
    EMPTY_TRIE_ROOT,
    ZERO_ADDRESS,
    ZERO_HASH,
    BlockHeader,
)
from chain.qbft.votes import EpochSchedule

BLOCK_FORKS = (
    "homesteadBlock", "eip150Block", "eip155Block", "eip158Block", "byzantiumBlock",
    "constantinopleBlock", "petersburgBlock", "istanbulBlock", "muirGlacierBlock", "berlinBlock",
    "londonBlock", "arrowGlacierBlock", "grayGlacierBlock",
)
TIME_FORKS = ("shanghaiTime", "cancunTime", "pragueTime")
FORK_ORDER = ("london", "shanghai", "cancun", "prague")
EMPTY_CODE_HASH = bytes(keccak(b""))
EMPTY_REQUESTS_HASH = hashlib.sha256(b"").digest()


class GenesisError(ValueError):
    """A genesis file Besu would refuse, or one our node cannot run."""


def _norm(obj: Any) -> Any:
    """Lower-case every key, recursively, except inside ``alloc`` (addresses, storage slots)."""
    if isinstance(obj, dict):
        return {k.lower(): (v if k.lower() == "alloc" else _norm(v)) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_norm(v) for v in obj]
    return obj


def _int(value: Any, what: str) -> int:
    """A JSON number, a decimal string or a 0x hex string, as Besu accepts them."""
    if isinstance(value, bool):
        raise GenesisError(f"{what} is a boolean, expected a number")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value, 16) if value.lower().startswith("0x") else int(value, 10)
        except ValueError:
            pass
    raise GenesisError(f"{what} = {value!r} is not a number")


def _bytes(value: Any, what: str, size: int | None = None) -> bytes:
    if not isinstance(value, str):
        raise GenesisError(f"{what} must be a hex string")
    try:
        out = bytes.fromhex(value.removeprefix("0x").removeprefix("0X"))
    except ValueError as exc:
        raise GenesisError(f"{what} = {value!r} is not hex") from exc
    if size is not None:
        if len(out) > size:
            raise GenesisError(f"{what} is longer than {size} bytes")
        out = out.rjust(size, b"\x00")
    return out


@dataclass(frozen=True, slots=True)
class AllocAccount:
    balance: int = 0
    nonce: int = 0
    code: bytes = b""
    storage: Mapping[int, int] = field(default_factory=dict)


def parse_alloc(alloc: Mapping[str, Any]) -> dict[bytes, AllocAccount]:
    out: dict[bytes, AllocAccount] = {}
    for key, acct in alloc.items():
        address = _bytes(key if key.startswith("0x") else "0x" + key, f"alloc address {key}", 20)
        a = {k.lower(): v for k, v in acct.items()}
        storage = {
            _int(k if str(k).startswith("0x") else "0x" + str(k), f"alloc {key} storage key"):
            _int(v if str(v).startswith("0x") else "0x" + str(v), f"alloc {key} storage value")
            for k, v in (a.get("storage") or {}).items()
        }
        out[address] = AllocAccount(
            balance=_int(a.get("balance", "0"), f"alloc {key} balance"),
            nonce=_int(a.get("nonce", "0"), f"alloc {key} nonce"),
            code=_bytes(a.get("code", "0x"), f"alloc {key} code"),
            storage=storage,
        )
    return out


def state_root(alloc: Mapping[bytes, AllocAccount]) -> bytes:
    """World-state root of the genesis alloc (secure Merkle-Patricia trie)."""
    accounts = HexaryTrie({})
    for address, acct in alloc.items():
        storage = HexaryTrie({})
        for slot, value in acct.storage.items():
            if value:
                storage[keccak(slot.to_bytes(32, "big"))] = rlp.encode(value)
        code_hash = bytes(keccak(acct.code)) if acct.code else EMPTY_CODE_HASH
        accounts[keccak(address)] = rlp.encode(
            [acct.nonce, acct.balance, storage.root_hash, code_hash]
        )
    return bytes(accounts.root_hash)


@dataclass(frozen=True, slots=True)
class QbftSettings:
    block_period_seconds: int = 1
    epoch_length: int = 30000
    request_timeout_seconds: int = 1
    empty_block_period_seconds: int = 0
    block_reward: int = 0
    mining_beneficiary: bytes | None = None
    validator_contract_address: bytes | None = None
    start_block: int = 0

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "blockperiodseconds": self.block_period_seconds,
            "epochlength": self.epoch_length,
            "requesttimeoutseconds": self.request_timeout_seconds,
        }
        if self.empty_block_period_seconds:
            out["xemptyblockperiodseconds"] = self.empty_block_period_seconds
        if self.block_reward:
            out["blockreward"] = hex(self.block_reward)
        if self.mining_beneficiary is not None:
            out["miningbeneficiary"] = "0x" + self.mining_beneficiary.hex()
        if self.validator_contract_address is not None:
            out["validatorcontractaddress"] = "0x" + self.validator_contract_address.hex()
        if self.start_block:
            out["startblock"] = self.start_block
        return out

    @property
    def epoch(self) -> EpochSchedule:
        return EpochSchedule(self.epoch_length, self.start_block)


def build_genesis(
    *,
    chain_id: int,
    validators: Sequence[bytes],
    qbft: QbftSettings,
    alloc: Mapping[bytes, AllocAccount] | None = None,
    fork: str = "cancun",
    gas_limit: int = 0x1FFFFFFFFFFFFF,
    zero_base_fee: bool = True,
    contract_size_limit: int | None = None,
    timestamp: int = 0,
    coinbase: bytes = ZERO_ADDRESS,
    validator_transitions: Mapping[int, Sequence[bytes]] | None = None,
) -> dict[str, Any]:
    """A Besu QBFT genesis with every fork up to ``fork`` active from block 0.

    Validators are listed in extraData in the order given (as Besu's tooling does); the base fee
    is written explicitly so Besu and our node derive the same genesis header.
    """
    if fork not in FORK_ORDER:
        raise GenesisError(f"fork {fork!r} is not supported; choose one of {', '.join(FORK_ORDER)}")
    if chain_id <= 0:
        raise GenesisError("chainId must be positive")
    if qbft.block_period_seconds < 1:
        raise GenesisError("blockperiodseconds must be at least 1 (Besu's header rule)")
    if qbft.validator_contract_address is None and not validators:
        raise GenesisError("a block-header-mode genesis needs at least one validator")
    config: dict[str, Any] = {"chainId": chain_id}
    for key in BLOCK_FORKS:
        config[key] = 0
    active = FORK_ORDER[: FORK_ORDER.index(fork) + 1]
    for name in ("shanghai", "cancun", "prague"):
        if name in active:
            config[f"{name}Time"] = 0
    if zero_base_fee:
        config["zeroBaseFee"] = True
    if contract_size_limit is not None:
        config["contractSizeLimit"] = contract_size_limit
    config["qbft"] = qbft.to_json()
    if validator_transitions:
        config["transitions"] = {"qbft": [
            {"block": b, "validators": ["0x" + v.hex() for v in vs]}
            for b, vs in sorted(validator_transitions.items())
        ]}
    extra = xd.encode_genesis([] if qbft.validator_contract_address else list(validators))
    genesis: dict[str, Any] = {
        "config": config,
        "nonce": "0x0",
        "timestamp": hex(timestamp),
        "gasLimit": hex(gas_limit),
        "difficulty": "0x1",
        "mixHash": "0x" + BFT_MIX_HASH.hex(),
        "coinbase": "0x" + coinbase.hex(),
        "baseFeePerGas": "0x0" if zero_base_fee else hex(1_000_000_000),
        "extraData": "0x" + extra.hex(),
        "alloc": {
            "0x" + a.hex(): _alloc_json(acct) for a, acct in sorted((alloc or {}).items())
        },
    }
    return genesis


def _alloc_json(acct: AllocAccount) -> dict[str, Any]:
    out: dict[str, Any] = {"balance": hex(acct.balance)}
    if acct.nonce:
        out["nonce"] = hex(acct.nonce)
    if acct.code:
        out["code"] = "0x" + acct.code.hex()
    if acct.storage:
        out["storage"] = {"0x" + k.to_bytes(32, "big").hex(): "0x" + v.to_bytes(32, "big").hex()
                          for k, v in sorted(acct.storage.items())}
    return out


class Genesis:
    """A genesis file as Besu reads it, with the settings every other part takes from it."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        self.raw = dict(data)
        g = _norm(dict(data))
        self._g = g
        config = g.get("config")
        if not isinstance(config, dict):
            raise GenesisError("genesis has no 'config' object")
        self.config: dict[str, Any] = config
        if "chainid" not in config:
            raise GenesisError("genesis config lacks chainId")
        self.chain_id = _int(config["chainid"], "config.chainId")
        q = config.get("qbft")
        if not isinstance(q, dict):
            raise GenesisError("genesis config has no 'qbft' section: this is not a QBFT network")
        if "emptyblockperiodseconds" in q and "xemptyblockperiodseconds" not in q:
            raise GenesisError(
                "config.qbft.emptyblockperiodseconds is ignored by Besu; "
                "the key is spelled xemptyblockperiodseconds"
            )
        contract = q.get("validatorcontractaddress")
        self.qbft = QbftSettings(
            block_period_seconds=_int(q.get("blockperiodseconds", 1), "qbft.blockperiodseconds"),
            epoch_length=_int(q.get("epochlength", 30000), "qbft.epochlength"),
            request_timeout_seconds=_int(q.get("requesttimeoutseconds", 1),
                                         "qbft.requesttimeoutseconds"),
            empty_block_period_seconds=_int(q.get("xemptyblockperiodseconds", 0),
                                            "qbft.xemptyblockperiodseconds"),
            block_reward=_int(q.get("blockreward", 0), "qbft.blockreward"),
            mining_beneficiary=(None if q.get("miningbeneficiary") is None else
                                _bytes(q["miningbeneficiary"], "qbft.miningbeneficiary", 20)),
            validator_contract_address=(None if contract is None else
                                        _bytes(contract, "qbft.validatorcontractaddress", 20)),
            start_block=_int(q.get("startblock", 0), "qbft.startblock"),
        )
        if self.qbft.block_period_seconds < 1:
            raise GenesisError("qbft.blockperiodseconds must be a positive integer")
        if self.qbft.epoch_length <= 0:
            raise GenesisError("qbft.epochlength must be greater than 0")
        if self.qbft.request_timeout_seconds < 1:
            raise GenesisError("qbft.requesttimeoutseconds must be a positive integer")
        self.validator_overrides: dict[int, tuple[bytes, ...]] = {}
        for t in (config.get("transitions") or {}).get("qbft", []) or []:
            if "validators" in t:
                block = _int(t["block"], "transitions.qbft.block")
                self.validator_overrides[block] = tuple(
                    _bytes(v, "transitions.qbft.validators", 20) for v in t["validators"])
        try:
            self.extra = xd.decode(_bytes(g.get("extradata", "0x"), "extraData"))
        except xd.ExtraDataError as exc:
            raise GenesisError(f"genesis extraData: {exc}") from exc
        self.alloc = parse_alloc(g.get("alloc") or {})
        self.zero_base_fee = bool(config.get("zerobasefee", False))
        self.contract_size_limit = (None if config.get("contractsizelimit") is None else
                                    _int(config["contractsizelimit"], "config.contractSizeLimit"))
        self.gas_limit = _int(g.get("gaslimit", g.get("gastarget")), "gasLimit")
        self.timestamp = _int(g.get("timestamp", "0x0"), "timestamp")
        self._header: BlockHeader | None = None

    @classmethod
    def load(cls, path: Path | str) -> Genesis:
        p = Path(path)
        try:
            data = json.loads(p.read_text())
        except FileNotFoundError:
            raise GenesisError(f"genesis file {p} does not exist") from None
        except json.JSONDecodeError as exc:
            raise GenesisError(f"genesis file {p} is not JSON: {exc.msg} at line {exc.lineno}") from exc
        if not isinstance(data, dict):
            raise GenesisError(f"genesis file {p} is not a JSON object")
        return cls(data)

    @property
    def validators(self) -> tuple[bytes, ...]:
        """Genesis validators in the order extraData lists them."""
        return self.extra.validators

    @property
    def contract_mode(self) -> bool:
        return self.qbft.validator_contract_address is not None

    def fork_block(self, key: str) -> int | None:
        value = self.config.get(key.lower())
        return None if value is None else _int(value, f"config.{key}")

    def active_at_genesis(self, fork: str) -> bool:
        if fork == "london":
            return self.fork_block("londonBlock") == 0
        t = self.fork_block(f"{fork}Time")
        if t is not None:
            return self.timestamp >= t
        later = FORK_ORDER[FORK_ORDER.index(fork) + 1:]
        return bool(later) and self.active_at_genesis(later[0])

    def header(self) -> BlockHeader:
        if self._header is None:
            g = self._g
            base_fee: int | None = None
            if g.get("basefeepergas") is not None:
                base_fee = _int(g["basefeepergas"], "baseFeePerGas")
            elif self.active_at_genesis("london"):
                base_fee = 1_000_000_000
            cancun = self.active_at_genesis("cancun")
            self._header = BlockHeader(
                parent_hash=_bytes(g.get("parenthash", "0x" + ZERO_HASH.hex()), "parentHash", 32),
                ommers_hash=EMPTY_OMMERS_HASH,
                coinbase=_bytes(g.get("coinbase", "0x" + ZERO_ADDRESS.hex()), "coinbase", 20),
                state_root=state_root(self.alloc),
                transactions_root=EMPTY_TRIE_ROOT,
                receipts_root=EMPTY_TRIE_ROOT,
                logs_bloom=bytes(256),
                difficulty=_int(g.get("difficulty", "0x1"), "difficulty"),
                number=0,
                gas_limit=self.gas_limit,
                gas_used=0,
                timestamp=self.timestamp,
                extra_data=_bytes(g.get("extradata", "0x"), "extraData"),
                mix_hash=_bytes(g.get("mixhash", "0x" + ZERO_HASH.hex()), "mixHash", 32),
                nonce=_int(g.get("nonce", "0x0"), "nonce").to_bytes(8, "big"),
                base_fee=base_fee,
                withdrawals_root=EMPTY_TRIE_ROOT if self.active_at_genesis("shanghai") else None,
                blob_gas_used=_int(g.get("blobgasused", "0x0"), "blobGasUsed") if cancun else None,
                excess_blob_gas=(_int(g.get("excessblobgas", "0x0"), "excessBlobGas")
                                 if cancun else None),
                parent_beacon_block_root=(_bytes(g.get("parentbeaconblockroot", "0x" + "00" * 32),
                                                 "parentBeaconBlockRoot", 32) if cancun else None),
                requests_hash=EMPTY_REQUESTS_HASH if self.active_at_genesis("prague") else None,
            )
        return self._header

    @property
    def hash(self) -> bytes:
        """The genesis block hash: keccak256 of the header with its raw extraData."""
        return self.header().raw_hash()
