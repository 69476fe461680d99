"""Who a node talks to: static peers (Besu's static-nodes / bootnodes) and the node allowlist.

A peer is named by its node id, the 64-byte secp256k1 public key of its node key (the enode id);
its Ethereum address (the validator address, for a validator) follows from it. Enode URLs are
read and written as Besu's ``static-nodes.json`` and ``permissions_config.toml`` hold them:
``enode://<128 hex>@<host>:<port>``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from node.p2p.handshake import address_of_node

_ENODE = re.compile(r"^enode://([0-9a-fA-F]{128})@([^:/?]+|\[[0-9a-fA-F:]+\]):(\d{1,5})(\?.*)?\Z")


class PeerSpecError(ValueError):
    """A static-peer or allowlist entry that cannot be used, with what to fix."""


@dataclass(frozen=True, slots=True)
class PeerSpec:
    node_id: bytes
    host: str
    port: int
    name: str = ""

    def __post_init__(self) -> None:
        if len(self.node_id) != 64:
            raise PeerSpecError(f"peer {self.name or self.host}: a node id is a 64-byte public key, "
                                f"got {len(self.node_id)} bytes")
        if not 0 < self.port < 65536:
            raise PeerSpecError(f"peer {self.name or self.host}: port {self.port} is not 1..65535")

    @property
    def address(self) -> bytes:
        return address_of_node(self.node_id)

    @property
    def enode(self) -> str:
        return f"enode://{self.node_id.hex()}@{self.host}:{self.port}"

    @property
    def label(self) -> str:
        return self.name or "0x" + self.node_id.hex()[:16]

    @classmethod
    def from_enode(cls, url: str, name: str = "") -> PeerSpec:
        match = _ENODE.match(url.strip())
        if match is None:
            raise PeerSpecError(f"{url!r} is not an enode URL: expected "
                                "enode://<128 hex digits of the public key>@<host>:<port>")
        node_id, host, port, _ = match.groups()
        return cls(bytes.fromhex(node_id), host.strip("[]"), int(port), name)


def allowlist(entries: Iterable[PeerSpec | bytes | str]) -> frozenset[bytes]:
    """Node ids from peer specs, raw 64-byte ids, enode URLs or 128-hex-digit ids."""
    out: set[bytes] = set()
    for entry in entries:
        if isinstance(entry, PeerSpec):
            out.add(entry.node_id)
        elif isinstance(entry, bytes):
            if len(entry) != 64:
                raise PeerSpecError(f"allowlist entry of {len(entry)} bytes is not a 64-byte node id")
            out.add(entry)
        elif entry.startswith("enode://"):
            out.add(PeerSpec.from_enode(entry).node_id)
        else:
            raw = entry.removeprefix("0x")
            if len(raw) != 128:
                raise PeerSpecError(f"allowlist entry {entry!r} is neither an enode URL nor a "
                                    "128-hex-digit node id")
            out.add(bytes.fromhex(raw))
    return frozenset(out)
