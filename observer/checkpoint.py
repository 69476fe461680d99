"""Local checkpoints: where a verification stopped, so the next one goes on from there.

A checkpoint names the last verified block by number and hash, holds that block's header (the
parent of the next one), the validator history after it, the ledger walk's head and the
signing activity so far. It is trusted only if

- it was written by this installation's verifier: it carries an HMAC-SHA256 under a key kept
  beside it (created on first use, readable by its owner only), so a checkpoint that was
  edited, copied from elsewhere or written by hand is refused;
- it is for this genesis, and its header hashes to the hash it names;
- the node serves that very block at that height (the verifier checks this on resume: a
  different block there is a node rewriting verified history).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import rfc8785

from chain.qbft.hashing import block_hash
from chain.qbft.header import BlockHeader, HeaderError

FORMAT = "smartta-observer-checkpoint/1"


class CheckpointError(Exception):
    """A checkpoint that cannot be trusted; the message says how to go on."""


def default_state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "smartta-observer"


@dataclass
class Checkpoint:
    genesis_hash: bytes
    chain_id: int
    block: int
    hash: bytes
    header: BlockHeader
    history: dict[str, Any]
    vote_blocks: list[int] = field(default_factory=list)
    ledger: dict[str, Any] | None = None
    """The record walk's state after ``block`` (see observer.records), when one was walked."""
    activity: dict[str, list[int]] = field(default_factory=dict)
    """Validator address -> [blocks proposed, commit seals] over the verified blocks."""
    verified_at: str = ""

    def body(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "genesis": "0x" + self.genesis_hash.hex(),
            "chainId": self.chain_id,
            "block": {"number": self.block, "hash": "0x" + self.hash.hex(),
                      "header": "0x" + self.header.encode().hex()},
            "history": self.history,
            "voteBlocks": self.vote_blocks,
            "ledger": self.ledger,
            "activity": self.activity,
            "verifiedAt": self.verified_at,
        }

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> Checkpoint:
        block = body["block"]
        header = BlockHeader.decode(bytes.fromhex(block["header"].removeprefix("0x")))
        return cls(
            genesis_hash=bytes.fromhex(body["genesis"].removeprefix("0x")),
            chain_id=int(body["chainId"]),
            block=int(block["number"]),
            hash=bytes.fromhex(block["hash"].removeprefix("0x")),
            header=header,
            history=body["history"],
            vote_blocks=[int(n) for n in body.get("voteBlocks", [])],
            ledger=body.get("ledger"),
            activity={k: [int(x) for x in v] for k, v in body.get("activity", {}).items()},
            verified_at=str(body.get("verifiedAt", "")),
        )


class CheckpointStore:
    """One checkpoint file per genesis, signed with this installation's key."""

    def __init__(self, path: Path, key_path: Path) -> None:
        self.path = path
        self.key_path = key_path

    @classmethod
    def for_genesis(cls, genesis_hash: bytes, state_dir: Path | None = None,
                    path: Path | None = None) -> CheckpointStore:
        directory = state_dir or default_state_dir()
        return cls(path or directory / f"{genesis_hash.hex()[:16]}.checkpoint.json",
                   directory / "checkpoint.key")

    def _key(self, create: bool) -> bytes | None:
        try:
            return self.key_path.read_bytes()
        except FileNotFoundError:
            if not create:
                return None
        self.key_path.parent.mkdir(parents=True, exist_ok=True)
        key = secrets.token_bytes(32)
        fd = os.open(self.key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(key)
        return key

    @staticmethod
    def _mac(key: bytes, body: dict[str, Any]) -> str:
        return hmac.new(key, bytes(rfc8785.dumps(body)), hashlib.sha256).hexdigest()

    def save(self, checkpoint: Checkpoint) -> None:
        key = self._key(create=True)
        assert key is not None
        body = checkpoint.body()
        data = {"body": body, "mac": self._mac(key, body)}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps(data, indent=1) + "\n")
        os.replace(tmp, self.path)

    def load(self, genesis_hash: bytes) -> Checkpoint | None:
        """The checkpoint for this genesis, None if there is none; CheckpointError if it is
        there but cannot be trusted."""
        if not self.path.exists():
            return None
        redo = (f"remove {self.path} (or pass --restart) to verify again from the genesis")
        try:
            data = json.loads(self.path.read_text())
            body, mac = data["body"], data["mac"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise CheckpointError(f"checkpoint {self.path} is unreadable ({exc}); {redo}") from None
        key = self._key(create=False)
        if key is None or not hmac.compare_digest(self._mac(key, body), str(mac)):
            raise CheckpointError(
                f"checkpoint {self.path} was not written by this installation's verifier, or was "
                f"edited since: it cannot be trusted; {redo}")
        if body.get("format") != FORMAT:
            raise CheckpointError(f"checkpoint {self.path} has format {body.get('format')!r}; {redo}")
        try:
            checkpoint = Checkpoint.from_body(body)
        except (ValueError, KeyError, TypeError, HeaderError) as exc:
            raise CheckpointError(f"checkpoint {self.path} is malformed ({exc}); {redo}") from None
        if checkpoint.genesis_hash != genesis_hash:
            raise CheckpointError(
                f"checkpoint {self.path} belongs to genesis 0x{checkpoint.genesis_hash.hex()}, "
                f"not 0x{genesis_hash.hex()}; pass --checkpoint with another file")
        if checkpoint.header.number != checkpoint.block or block_hash(checkpoint.header) != checkpoint.hash:
            raise CheckpointError(f"checkpoint {self.path}: its header is not block "
                                  f"{checkpoint.block} 0x{checkpoint.hash.hex()}; {redo}")
        return checkpoint

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)
