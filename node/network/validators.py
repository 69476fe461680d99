"""``smartta validator add|remove|rotate``: change a running network's validator set by vote.

A change is a campaign, as Besu's operators run it by hand (besu_ops §3.1): propose the vote on
the current validators that answer (at least a strict majority of them), watch the votes reach
blocks (each proposer puts one pending vote in each block it builds), wait until the validator
list in the headers changes, then discard the proposal on every voter so a stale vote is never
cast again. ``rotate`` is Besu's only key rotation (besu_ops §3.3): bring up a node with the new
key, vote it in, see it seal, vote the old key out, retire it.

The rules are pure functions (``plan_change``, ``plan_rotation``); ``Campaign`` and ``rotate``
are the shell that talks JSON-RPC, starts and signals local processes and edits network.yaml.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chain.attest.keys import KeystoreError, open_secret
from chain.qbft import extra_data as xd
from chain.qbft.genesis import Genesis
from chain.qbft.hashing import commit_seal_hash
from chain.qbft.header import BlockHeader, HeaderError
from chain.qbft.quorum import max_faulty, vote_threshold
from chain.qbft.seals import SealError, address_of, public_key_of, recover
from node.network import live, local
from node.network.init import (
    GENESIS_FILE,
    KEYS_DIR,
    KEYSTORE_FILE,
    init_network,
    key_dir,
    port_free,
)
from node.network.spec import NetworkSpec, NodeSpec, SpecError

MIN_VALIDATORS = 4
"""Fewer cannot tolerate a single faulty validator (f = floor((n - 1) / 3))."""
SYNC_SLACK = 2
"""Blocks behind the head a node may be and still count as synced (Besu's readiness default)."""
RETIRED_DIR = "retired"

Progress = Callable[[str, int, int], None]
"""``(what, done, total)``: a step's progress, for the command's progress bars."""


class GuardError(ValueError):
    """A change refused because it would risk the network's quorum, saying what to do first."""


class CampaignError(RuntimeError):
    """A vote campaign that did not finish: what happened and what to check."""


def _a(address: bytes) -> str:
    return "0x" + address.hex()


def parse_address(text: str) -> bytes:
    raw = text.lower().removeprefix("0x")
    if len(raw) != 40:
        raise ValueError(f"{text!r} is not a 20-byte 0x address")
    try:
        return bytes.fromhex(raw)
    except ValueError:
        raise ValueError(f"{text!r} is not a hex address") from None


# ---- the rules ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Voter:
    name: str
    address: bytes
    url: str


@dataclass(frozen=True)
class Plan:
    subject: bytes
    add: bool
    current: tuple[bytes, ...]
    voters: tuple[Voter, ...]

    @property
    def threshold(self) -> int:
        return vote_threshold(len(self.current))

    @property
    def after(self) -> tuple[bytes, ...]:
        changed = set(self.current) | {self.subject} if self.add else set(self.current) - {self.subject}
        return tuple(sorted(changed))

    @property
    def verb(self) -> str:
        return "add" if self.add else "remove"


def plan_change(current: Collection[bytes], subject: bytes, add: bool, voters: Sequence[Voter],
                down: Collection[bytes], *, names: dict[bytes, str] | None = None,
                minimum: int = MIN_VALIDATORS, unsynced_candidate: bool = False) -> Plan:
    """The vote campaign for one change, or GuardError if it would put the network at risk.

    ``voters`` are the current validators that answer JSON-RPC and are synced; ``down`` the
    validators (and, for an add, the candidate) that do not or are behind. Refused: adding a
    candidate that is down (unless ``unsynced_candidate``: it then counts as one of the f faults),
    a change that leaves fewer than ``minimum`` validators, one after which more than f of the
    validators are down (the chain would halt), and one without a strict majority of voters.
    """
    names = names or {}

    def who(a: bytes) -> str:
        return f"{names[a]} ({_a(a)})" if a in names else _a(a)

    current = tuple(sorted(set(current)))
    if add and subject in current:
        raise GuardError(f"{who(subject)} is already a validator; nothing to vote")
    if not add and subject not in current:
        raise GuardError(f"{who(subject)} is not a validator (the set is {', '.join(map(_a, current))})")
    plan = Plan(subject, add, current, tuple(v for v in voters if v.address in current))
    after = plan.after
    if add and subject in down and not unsynced_candidate:
        raise GuardError(
            f"the candidate {who(subject)} is not running and synced: start it and let it sync "
            "first, or it joins as a faulty validator. For another organisation's node you cannot "
            "reach, pass --unsynced-candidate (it then uses one of the f faults the network "
            "tolerates until it seals)")
    if not add and len(after) < minimum:
        raise GuardError(
            f"removing {who(subject)} would leave {len(after)} validators; BFT needs at least "
            f"{minimum} to survive one faulty validator. Add a validator first "
            "(`smartta validator rotate` adds the new key before it removes the old one)")
    down_after = sorted(set(down) & set(after))
    if len(down_after) > max_faulty(len(after)):
        raise GuardError(
            f"after the change {len(after)} validators tolerate {max_faulty(len(after))} faulty "
            f"but {len(down_after)} would be down or behind ({', '.join(map(who, down_after))}): "
            "the chain would halt. Bring them back and let them sync (`smartta network status`), "
            "and start and sync a candidate before voting it in")
    if len(plan.voters) < plan.threshold:
        missing = sorted(set(current) - {v.address for v in plan.voters})
        raise GuardError(
            f"only {len(plan.voters)} of the {len(current)} validators answer and are synced; a "
            f"change needs votes from {plan.threshold}. Not answering or behind: "
            f"{', '.join(map(who, missing))}")
    return plan


def plan_rotation(current: Collection[bytes], old: bytes, minimum: int = MIN_VALIDATORS) -> None:
    """GuardError unless rotating ``old`` out keeps ``minimum`` validators at every step."""
    if old not in current:
        raise GuardError(f"{_a(old)} is not a validator; nothing to rotate")
    if len(current) < minimum:
        raise GuardError(f"the network has {len(current)} validators: a rotation adds then removes "
                         f"one and would end below the {minimum} BFT needs; add a validator first")


# ---- talking to the nodes -----------------------------------------------------------------------


@dataclass
class Probe:
    """A node's answer: its height, or why it gave none."""

    node: NodeSpec
    url: str
    height: int | None = None
    error: str | None = None


class Live:
    """The spec's nodes as JSON-RPC endpoints (``overrides``: node name -> URL)."""

    def __init__(self, spec: NetworkSpec, overrides: dict[str, str] | None = None,
                 timeout: float = 3.0) -> None:
        self.spec = spec
        self.overrides = overrides or {}
        self.timeout = timeout

    def url(self, node: NodeSpec) -> str:
        return self.overrides.get(node.name, live.default_url(node))

    def by_address(self, address: bytes) -> NodeSpec | None:
        for n in self.spec.nodes:
            if n.address and parse_address(n.address) == address:
                return n
        return None

    def names(self) -> dict[bytes, str]:
        return {parse_address(n.address): n.name for n in self.spec.nodes if n.address}

    def call(self, url: str, method: str, *params: Any) -> Any:
        return live.call(url, method, list(params), timeout=self.timeout)

    def probe(self, node: NodeSpec) -> Probe:
        p = Probe(node, self.url(node))
        try:
            p.height = int(self.call(p.url, "eth_blockNumber"), 16)
        except (live.Unreachable, live.RpcError, ValueError, TypeError) as exc:
            p.error = str(exc)
        return p

    def first_answer(self, method: str, *params: Any, nodes: Sequence[NodeSpec] | None = None) -> Any:
        """The answer of the first node (validators first) that gives one."""
        errors = []
        candidates = nodes if nodes is not None else sorted(
            self.spec.nodes, key=lambda n: not n.is_validator)
        for n in candidates:
            try:
                return self.call(self.url(n), method, *params)
            except (live.Unreachable, live.RpcError) as exc:
                errors.append(f"{n.name}: {exc}")
        raise CampaignError(f"no node answers {method}: {'; '.join(errors) or 'no nodes'}; start the "
                            "network (`smartta network up`) or pass --rpc NODE=URL")

    def validators(self, block: str = "latest") -> tuple[bytes, ...]:
        result = self.first_answer("qbft_getValidatorsByBlockNumber", block)
        return tuple(sorted(parse_address(a) for a in live.addresses(result)))

    def block(self, number: int | str) -> dict[str, Any] | None:
        ref = number if isinstance(number, str) else hex(number)
        result = self.first_answer("eth_getBlockByNumber", ref, False)
        return result if isinstance(result, dict) else None


@dataclass
class Census:
    """Who of the current validators answers and is synced, at one moment."""

    current: tuple[bytes, ...]
    head: int
    voters: list[Voter]
    down: dict[bytes, str]
    """Validator (or candidate) -> why it is not counted: unreachable, behind, not in the spec."""


def census(net: Live, current: Sequence[bytes], candidate: bytes | None = None) -> Census:
    probes: dict[bytes, Probe | None] = {}
    for a in [*current, *([candidate] if candidate is not None else [])]:
        n = net.by_address(a)
        probes[a] = net.probe(n) if n is not None else None
    heights = [p.height for p in probes.values() if p is not None and p.height is not None]
    head = max(heights) if heights else 0
    voters, down = [], {}
    for a, p in probes.items():
        if p is None:
            down[a] = "not a node of network.yaml, so it cannot be asked"
        elif p.height is None:
            down[a] = f"does not answer ({p.error})"
        elif p.height < head - SYNC_SLACK:
            down[a] = f"behind: at block {p.height}, the head is {head}"
        elif a in current:
            voters.append(Voter(p.node.name, a, p.url))
    return Census(tuple(current), head, voters, down)


# ---- a vote campaign ----------------------------------------------------------------------------


@dataclass
class Outcome:
    plan: Plan
    block: int
    """The first block whose header lists the new set."""
    seconds: float
    longest_gap: int
    """The longest interval between consecutive block timestamps seen meanwhile, seconds."""
    votes: dict[bytes, int] = field(default_factory=dict)
    """Voter -> the block that carried its vote."""
    not_discarded: list[str] = field(default_factory=list)


@dataclass
class ChainWatch:
    """Follows new blocks: their votes, proposers, seals and the gaps between them."""

    net: Live
    next: int
    last_timestamp: int | None = None
    longest_gap: int = 0

    def poll(self) -> list[dict[str, Any]]:
        """The blocks added since the last poll (from whichever node answers)."""
        head = int(self.net.first_answer("eth_blockNumber"), 16)
        blocks = []
        while self.next <= head:
            block = self.net.block(self.next)
            if block is None:
                break
            ts = int(block["timestamp"], 16)
            if self.last_timestamp is not None:
                self.longest_gap = max(self.longest_gap, ts - self.last_timestamp)
            self.last_timestamp = ts
            blocks.append(block)
            self.next += 1
        return blocks


def extra_of(block: dict[str, Any]) -> xd.ExtraData:
    return xd.decode(bytes.fromhex(block["extraData"][2:]))


def committers(block: dict[str, Any]) -> set[bytes]:
    """Who sealed a block, recovered from its commit seals."""
    try:
        header = BlockHeader.from_rpc(block)
        extra = xd.decode(header.extra_data)
        digest = commit_seal_hash(header, extra=extra)
        return {recover(s, digest) for s in extra.seals}
    except (HeaderError, xd.ExtraDataError, SealError):
        return set()


class Campaign:
    """Propose one change on the voters, wait for it to land, then discard the proposals."""

    def __init__(self, net: Live, plan: Plan, *, timeout: float, poll: float = 0.5,
                 progress: Progress | None = None, say: Callable[[str], None] | None = None) -> None:
        self.net = net
        self.plan = plan
        self.timeout = timeout
        self.poll_interval = poll
        self.progress = progress or (lambda what, done, total: None)
        self.say = say or (lambda text: None)

    def run(self) -> Outcome:
        plan = self.plan
        started = time.monotonic()
        watch = ChainWatch(self.net, int(self.net.first_answer("eth_blockNumber"), 16) + 1)
        proposed = self._propose()
        votes: dict[bytes, int] = {}
        try:
            landed = self._wait(watch, votes, started)
        except BaseException:
            # A campaign that did not finish leaves nothing pending behind the operator's back.
            self._discard(proposed)
            raise
        failed = self._discard(proposed)
        return Outcome(plan, landed, time.monotonic() - started, watch.longest_gap, votes, failed)

    def _propose(self) -> list[Voter]:
        proposed = []
        for i, v in enumerate(self.plan.voters):
            try:
                self.net.call(v.url, "qbft_proposeValidatorVote", _a(self.plan.subject), self.plan.add)
                proposed.append(v)
            except (live.Unreachable, live.RpcError) as exc:
                self.say(f"voter {v.name} did not take the vote: {exc}")
            self.progress("proposing votes", i + 1, len(self.plan.voters))
        if len(proposed) < self.plan.threshold:
            self._discard(proposed)
            raise CampaignError(
                f"only {len(proposed)} of {len(self.plan.voters)} voters took the vote; "
                f"{self.plan.threshold} are needed. Check the others' JSON-RPC (QBFT API enabled, "
                "node running) and run the command again")
        return proposed

    def _wait(self, watch: ChainWatch, votes: dict[bytes, int], started: float) -> int:
        plan = self.plan
        want = set(plan.after)
        last_block_at = time.monotonic()
        while True:
            for block in watch.poll():
                last_block_at = time.monotonic()
                number = int(block["number"], 16)
                try:
                    extra = extra_of(block)
                except xd.ExtraDataError as exc:
                    raise CampaignError(f"block {number} has unreadable extraData: {exc}") from exc
                if set(extra.validators) == want:
                    return self._confirm(number)
                if extra.vote is not None and extra.vote.recipient == plan.subject \
                        and extra.vote.add == plan.add:
                    votes.setdefault(parse_address(block["miner"]), number)
                self.progress(f"votes in blocks ({plan.verb} {_a(plan.subject)[:10]}…)",
                              min(len(votes), plan.threshold), plan.threshold)
            now = time.monotonic()
            if now - started > self.timeout:
                raise CampaignError(self._timeout_message(votes, now - last_block_at))
            time.sleep(self.poll_interval)

    def _confirm(self, number: int) -> int:
        """The node's own word that the set changed at ``number``: qbft_getValidatorsByBlockNumber."""
        plan = self.plan
        at = set(self.net.validators(hex(number)))
        before = set(self.net.validators(hex(number - 1)))
        if at != set(plan.after) or before != set(plan.current):
            raise CampaignError(
                f"the headers show the change at block {number} but qbft_getValidatorsByBlockNumber "
                f"answers {sorted(map(_a, before))} at {number - 1} and {sorted(map(_a, at))} at "
                f"{number}: the node disagrees with its own headers; run `smartta network doctor`")
        return number

    def _discard(self, voters: Sequence[Voter]) -> list[str]:
        failed = []
        for i, v in enumerate(voters):
            try:
                self.net.call(v.url, "qbft_discardValidatorVote", _a(self.plan.subject))
            except (live.Unreachable, live.RpcError) as exc:
                failed.append(f"{v.name}: {exc}")
            self.progress("discarding votes", i + 1, len(voters))
        return failed

    def _timeout_message(self, votes: dict[bytes, int], idle: float) -> str:
        plan = self.plan
        names = self.net.names()
        cast = ", ".join(names.get(a, _a(a)) for a in votes) or "none"
        missing = [v.name for v in plan.voters if v.address not in votes]
        hint = (f"the chain has not grown for {idle:.0f}s: check `smartta network status` (a halted "
                "chain cannot carry votes)" if idle > 5 else
                f"voters whose vote has not reached a block: {', '.join(missing)} — each casts its "
                "vote only in blocks it proposes; check they propose (`smartta network status`, "
                "blocks proposed) and that their pending votes are there (qbft_getPendingVotes)")
        return (f"{plan.verb} {_a(plan.subject)}: {len(votes)} of the {plan.threshold} votes needed "
                f"reached blocks within {self.timeout:.0f}s (cast by: {cast}); {hint}. The pending "
                "votes were discarded, so nothing changes behind your back; votes already in blocks "
                "count until the next epoch block")


# ---- network.yaml ---------------------------------------------------------------------------------


def pin_genesis(spec: NetworkSpec, genesis: Genesis) -> None:
    """Write the genesis validators into the spec: once validators change by votes, the spec's
    validator nodes no longer say what the genesis lists."""
    if not spec.genesis_validators:
        spec.genesis_validators = [_a(v) for v in genesis.validators]


def record_change(directory: Path, address: bytes, add: bool, password: str) -> str | None:
    """Make network.yaml say what the chain now says: the node with ``address`` gains or loses
    the validator role (a former validator with no other role becomes an observer). Regenerates
    the derived files. A note for the operator, or None."""
    spec = NetworkSpec.load(directory)
    pin_genesis(spec, Genesis.load(directory / GENESIS_FILE))
    node = next((n for n in spec.nodes if n.address and parse_address(n.address) == address), None)
    if node is None:
        return (f"{_a(address)} is not a node of network.yaml; add it (`smartta network join-bundle "
                "accept`) so doctor and the generated configs know it")
    note = None
    if add:
        node.roles = ["validator", *(r for r in node.roles if r not in ("validator", "observer"))]
    else:
        node.roles = [r for r in node.roles if r != "validator"] or ["observer"]
        note = (f"{node.name} is now {'an observer' if node.roles == ['observer'] else ','.join(node.roles)} "
                "in network.yaml; its running process keeps its old role until restarted")
    _regenerate(directory, spec, password)
    return note


def _regenerate(directory: Path, spec: NetworkSpec, password: str) -> None:
    try:
        init_network(directory, spec, password, scrypt_n=2**14 if spec.seeded_keys else None)
    except (SpecError, KeystoreError) as exc:
        raise CampaignError(f"network.yaml could not be updated: {exc}") from exc


def catches(pid: int, sig: int) -> bool:
    """Whether a process has a handler for ``sig`` (Linux: /proc's SigCgt mask). Elsewhere,
    assume it does. A node without one (still starting, or older) would die of the signal."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("SigCgt:"):
                return bool(int(line.split()[1], 16) >> (sig - 1) & 1)
    except (OSError, ValueError):
        return not Path("/proc/self/status").exists()
    return False


def reload_peers(directory: Path, spec: NetworkSpec) -> list[str]:
    """SIGHUP every running local node so it re-reads network.yaml's nodes; the names signalled."""
    signalled = []
    for n in spec.nodes:
        pid = local.running_pid(directory, n)
        if pid is not None and catches(pid, signal.SIGHUP):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGHUP)
                signalled.append(n.name)
    return signalled


# ---- rotation ------------------------------------------------------------------------------------


@dataclass
class Rotation:
    old: bytes
    new: NodeSpec
    added: Outcome | None
    removed: Outcome | None
    first_sealed: int
    """The first block the new key sealed or proposed."""
    seconds: float
    longest_gap: int
    retired_key: Path | None
    notes: list[str]


def new_node(spec: NetworkSpec, like: NodeSpec | None, name: str | None, host: str | None,
             directory: Path) -> NodeSpec:
    """A validator node next to ``like`` (same roles and host), on ports after the spec's."""
    taken = {n.name for n in spec.nodes}
    if name is None:
        k = 1
        while f"validator-{k}" in taken or key_dir(directory, f"validator-{k}").exists():
            k += 1
        name = f"validator-{k}"
    host = host or (like.host if like is not None else "127.0.0.1")
    roles = list(like.roles) if like is not None and like.is_validator else ["validator"]
    nodes = spec.nodes
    node = NodeSpec(name=name, roles=roles, host=host,
                    p2p_port=max(n.p2p_port for n in nodes) + 1,
                    rpc_http_port=max(n.rpc_http_port for n in nodes) + 10,
                    rpc_ws_port=max(n.rpc_http_port for n in nodes) + 11,
                    metrics_port=max(n.metrics_port for n in nodes) + 1)
    if spec.deployment == "local":
        for _ in range(100):
            ports = (node.p2p_port, node.rpc_http_port, node.rpc_ws_port, node.metrics_port)
            if all(port_free(host, p) for p in ports):
                break
            node.p2p_port += 1
            node.metrics_port += 1
            node.rpc_http_port += 10
            node.rpc_ws_port += 10
    return node


def import_key(directory: Path, name: str, keystore: Path, password: str) -> bytes:
    """Put an existing (offline-generated) keystore in place as node ``name``'s key."""
    target = key_dir(directory, name)
    if (target / KEYSTORE_FILE).exists():
        raise GuardError(f"node {name} already has a key in {target}; never replace a key")
    try:
        secret = open_secret(keystore, password)
    except KeystoreError as exc:
        raise GuardError(f"--new-key: {exc}") from exc
    target.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(keystore, target / KEYSTORE_FILE)
    os.chmod(target / KEYSTORE_FILE, 0o600)
    (target / "key.pub").write_text(_a(public_key_of(secret)) + "\n")
    (target / "address").write_text(_a(address_of(secret)) + "\n")
    return address_of(secret)


class Rotator:
    """``rotate OLD``: new node with a new key, synced, voted in, seen sealing; OLD voted out,
    stopped and its key moved to keys/retired/. Each step is skipped when already done, so a
    rotation that stopped half-way resumes where it was."""

    def __init__(self, directory: Path, password: str, *, overrides: dict[str, str] | None = None,
                 timeout: float = 180.0, progress: Progress | None = None,
                 say: Callable[[str], None] | None = None) -> None:
        self.directory = directory
        self.password = password
        self.overrides = overrides or {}
        self.timeout = timeout
        self.progress = progress or (lambda what, done, total: None)
        self.say = say or (lambda text: None)

    def net(self) -> Live:
        return Live(NetworkSpec.load(self.directory), self.overrides)

    def resolve(self, spec: NetworkSpec, who: str) -> tuple[bytes, NodeSpec | None]:
        """A node name or an address -> (address, its node in the spec or None)."""
        with contextlib.suppress(SpecError):
            node = spec.node(who)
            return parse_address(node.address), node
        try:
            address = parse_address(who)
        except ValueError:
            raise GuardError(f"{who!r} is neither a node of network.yaml nor a 0x address") from None
        return address, Live(spec).by_address(address)

    def run(self, old_ref: str, *, new_name: str | None = None, new_key: Path | None = None,
            host: str | None = None) -> Rotation:
        started = time.monotonic()
        notes: list[str] = []
        spec = NetworkSpec.load(self.directory)
        old, old_node = self.resolve(spec, old_ref)
        current = Live(spec, self.overrides).validators()
        new = spec.node(new_name) if new_name and any(n.name == new_name for n in spec.nodes) else None
        if new is not None and new.address and parse_address(new.address) in current \
                and old not in current:
            old_node = None  # resumed after the removal: only the bookkeeping is left
        else:
            plan_rotation(current, old)
        if new is None:
            new = self._create(spec, old_node, new_name, new_key, host)
        new_address = parse_address(new.address)
        self._bring_up(new)
        added = None
        if new_address not in Live(NetworkSpec.load(self.directory), self.overrides).validators():
            added = self._campaign(new_address, True)
            self.say(f"{new.name} ({new.address}) is a validator from block {added.block}")
        head = int(self.net().first_answer("eth_blockNumber"), 16)
        first = self._wait_sealing(new_address, added.block if added else max(1, head - 100))
        self.say(f"{new.name} sealed block {first}")
        removed = None
        if old in self.net().validators():
            removed = self._campaign(old, False)
            self.say(f"{_a(old)} is no longer a validator from block {removed.block}")
        retired = self._retire(old, new)
        for outcome in (added, removed):
            if outcome is not None and outcome.not_discarded:
                notes.append("votes not discarded (run qbft_discardValidatorVote there): "
                              + "; ".join(outcome.not_discarded))
        gap = max([o.longest_gap for o in (added, removed) if o is not None], default=0)
        return Rotation(old, new, added, removed, first, time.monotonic() - started, gap, retired, notes)

    def _create(self, spec: NetworkSpec, old_node: NodeSpec | None, name: str | None,
                new_key: Path | None, host: str | None) -> NodeSpec:
        pin_genesis(spec, Genesis.load(self.directory / GENESIS_FILE))
        node = new_node(spec, old_node, name, host, self.directory)
        if new_key is not None:
            import_key(self.directory, node.name, new_key, self.password)
        org = next((o for o in spec.organisations if old_node is not None
                    and any(n.name == old_node.name for n in o.nodes)), spec.organisations[0])
        org.nodes.append(node)
        _regenerate(self.directory, spec, self.password)
        node = NetworkSpec.load(self.directory).node(node.name)
        self.say(f"added {node.name} ({node.address}) to network.yaml: p2p {node.p2p_port}, "
                 f"rpc {node.rpc_http_port}")
        return node

    def _bring_up(self, node: NodeSpec) -> None:
        spec = NetworkSpec.load(self.directory)
        net = Live(spec, self.overrides)
        if spec.deployment == "local":
            signalled = reload_peers(self.directory, spec)
            if signalled:
                self.say(f"asked {', '.join(signalled)} to admit {node.name} (SIGHUP)")
            if local.running_pid(self.directory, node) is None:
                local.start_node(self.directory, node, {"SMARTTA_KEYSTORE_PASSWORD": self.password})
                self.say(f"started {node.name} (log: {local.log_file(self.directory, node)})")
        deadline = time.monotonic() + self.timeout
        while True:
            head = int(net.first_answer("eth_blockNumber", nodes=spec.validators), 16)
            probe = net.probe(node)
            if probe.height is not None:
                self.progress(f"{node.name} syncing", min(probe.height, head), max(head, 1))
                if probe.height >= head - SYNC_SLACK:
                    return
            if spec.deployment == "local" and local.running_pid(self.directory, node) is None:
                raise CampaignError(f"{node.name} exited; see {local.log_file(self.directory, node)}")
            if time.monotonic() > deadline:
                where = (f"see {local.log_file(self.directory, node)}" if spec.deployment == "local"
                         else "deploy it from the regenerated configs (besu/, kubernetes/)")
                state = (f"it is at block {probe.height} of {head}" if probe.height is not None
                         else f"it does not answer at {probe.url}")
                raise CampaignError(f"{node.name} is not synced after {self.timeout:.0f}s ({state}); "
                                    f"{where}, then resume with the same command and --new-node "
                                    f"{node.name}")
            time.sleep(0.5)

    def _campaign(self, subject: bytes, add: bool) -> Outcome:
        net = self.net()
        current = net.validators()
        seen = census(net, current, subject if add else None)
        plan = plan_change(current, subject, add, seen.voters, seen.down, names=net.names())
        outcome = Campaign(net, plan, timeout=self.timeout, progress=self.progress,
                           say=self.say).run()
        note = record_change(self.directory, subject, add, self.password)
        if note and add:
            self.say(note)
        return outcome

    def _wait_sealing(self, address: bytes, since: int) -> int:
        """The first block at or after ``since`` that ``address`` proposed or committed."""
        net = self.net()
        watch = ChainWatch(net, max(since, 1))
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            for block in watch.poll():
                if parse_address(block["miner"]) == address or address in committers(block):
                    return int(block["number"], 16)
            self.progress("waiting for the new key to seal", 0, 1)
            time.sleep(0.5)
        raise CampaignError(f"{_a(address)} is a validator but sealed no block in {self.timeout:.0f}s; "
                            "the old key is still in the set, nothing is lost: check the new node's "
                            "peers and log, then resume with the same command and --new-node")

    def _retire(self, old: bytes, new: NodeSpec) -> Path | None:
        """Take the old node out of network.yaml, stop it and move its key aside (kept, not
        deleted: escrow or destroy it by your key policy)."""
        spec = NetworkSpec.load(self.directory)
        node = next((n for n in spec.nodes if n.address and parse_address(n.address) == old), None)
        if node is None:
            return None
        if spec.deployment == "local":
            local.stop_nodes(self.directory, [node])
        for org in spec.organisations:
            org.nodes = [n for n in org.nodes if n.name != node.name]
        if "validator" not in new.roles:
            spec.node(new.name).roles.insert(0, "validator")
        pin_genesis(spec, Genesis.load(self.directory / GENESIS_FILE))
        retired = None
        source = key_dir(self.directory, node.name)
        if source.exists():
            retired = self.directory / KEYS_DIR / RETIRED_DIR / f"{node.name}-{old.hex()[:8]}"
            retired.parent.mkdir(parents=True, exist_ok=True)
            source.rename(retired)
        _regenerate(self.directory, spec, self.password)
        if spec.deployment == "local":
            reload_peers(self.directory, spec)
        self.say(f"retired {node.name}: out of network.yaml"
                 + (f", process stopped, key moved to {retired}" if retired else ""))
        return retired
