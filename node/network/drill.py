"""``smartta network drill kill|pause|partition|proposer-down``: fault injection on a local network,
checked against what BFT promises.

With n validators QBFT tolerates f = floor((n - 1) / 3) faulty ones: with K <= f of them down the
others keep adding blocks (liveness); with K > f no block can gather a quorum of commit seals, so
the chain stops — safely: no block, no fork — until enough come back. After healing, the drill
measures how long the network takes to add a block again and to bring every node to one head.

Faults, all on this machine's node processes:
- ``kill``: SIGKILL, healed by starting the nodes again (their chains must survive the kill);
- ``pause``: SIGSTOP, healed by SIGCONT (a node that froze: GC pause, VM migration);
- ``partition``: the victims and the others stop exchanging messages, healed by joining them. A
  node reads its partition from ``run/<node>.isolate`` on SIGUSR1 (node.node.Node.apply_partition):
  a signal and a file rather than an RPC method, so only who may kill a node can cut it off;
- ``proposer-down``: SIGKILL of the validators due to propose the next blocks, just before their
  turn: a round change must happen and the next proposer must produce the block.

``verdict`` is the pure judgement over what was observed; ``Drill`` injects, watches and heals.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from chain.qbft import extra_data as xd
from chain.qbft.proposer import select_proposer
from chain.qbft.quorum import max_faulty
from node.network import live, local
from node.network.spec import NetworkSpec, NodeSpec
from node.network.validators import catches, parse_address

KINDS = ("kill", "pause", "partition", "proposer-down")
MIN_BLOCKS = 3
"""Blocks the survivors must add during the fault window to count as live."""


class DrillError(RuntimeError):
    """A drill that cannot run (not a local network, nodes already down...), and what to do."""


# ---- the judgement --------------------------------------------------------------------------------


@dataclass
class Observation:
    kind: str
    validators: int
    victims: list[str]
    window_s: float
    height_at_fault: int
    height_after_settle: int
    """The highest block among the watched nodes once blocks in flight at the fault had landed."""
    height_at_heal: int
    recovery_first_block_s: float | None
    """Seconds from the heal to the first block above height_at_heal (None: none came)."""
    recovery_synced_s: float | None
    """Seconds from the heal to every node holding the same head (None: never within the limit)."""
    forks: list[str] = field(default_factory=list)
    """Heights at which two nodes hold different blocks."""
    round_changes: int | None = None
    proposer_checks: list[str] = field(default_factory=list)
    """proposer-down: what the block at each targeted height shows (round, proposer)."""
    proposer_failures: list[str] = field(default_factory=list)

    @property
    def faulty(self) -> int:
        return len(self.victims)

    @property
    def tolerated(self) -> int:
        return max_faulty(self.validators)

    @property
    def expect_live(self) -> bool:
        return self.faulty <= self.tolerated


@dataclass
class Verdict:
    passed: bool
    checks: list[tuple[bool, str]]


def verdict(obs: Observation, min_blocks: int = MIN_BLOCKS) -> Verdict:
    """What BFT promises, held against what happened."""
    checks: list[tuple[bool, str]] = []
    grown = obs.height_at_heal - obs.height_at_fault
    if obs.expect_live:
        checks.append((grown >= min_blocks,
                       f"liveness with {obs.faulty} of {obs.validators} down (f = {obs.tolerated}): "
                       f"{grown} blocks in {obs.window_s:.0f}s (at least {min_blocks} expected)"))
    else:
        after = obs.height_at_heal - obs.height_after_settle
        checks.append((after == 0,
                       f"safe halt with {obs.faulty} of {obs.validators} down (f = {obs.tolerated}): "
                       + ("no block" if after == 0 else f"{after} blocks") + " while the fault lasted"
                       f" (block {obs.height_after_settle} was the last)"))
    checks.append((not obs.forks, "no fork: every node holds the same block at every height"
                   if not obs.forks else f"FORK at {', '.join(obs.forks)}"))
    for failure in obs.proposer_failures:
        checks.append((False, failure))
    for check in obs.proposer_checks:
        checks.append((True, check))
    checks.append((obs.recovery_first_block_s is not None,
                   f"recovered: first block {obs.recovery_first_block_s:.1f}s after healing"
                   if obs.recovery_first_block_s is not None else "no block after healing"))
    checks.append((obs.recovery_synced_s is not None,
                   f"every node at one head {obs.recovery_synced_s:.1f}s after healing"
                   if obs.recovery_synced_s is not None else "nodes still disagree on the head"))
    return Verdict(all(ok for ok, _ in checks), checks)


# ---- faults ---------------------------------------------------------------------------------------


def isolate_file(directory: Path, node: NodeSpec) -> Path:
    return directory / local.RUN_DIR / f"{node.name}.isolate"


def partition(directory: Path, groups: Sequence[Sequence[NodeSpec]]) -> None:
    """Cut the network into ``groups`` (each node keeps talking to its own group only); one
    group heals it. Nodes must be running, with the SIGUSR1 handler installed."""
    everyone = [n for g in groups for n in g]
    for group in groups:
        inside = {n.name for n in group}
        others = [n.name for n in everyone if n.name not in inside]
        for n in group:
            path = isolate_file(directory, n)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(others) + "\n")
    for n in everyone:
        pid = local.running_pid(directory, n)
        if pid is None:
            continue
        if not catches(pid, signal.SIGUSR1):
            raise DrillError(f"{n.name} (pid {pid}) has no partition handler (SIGUSR1): it runs an "
                             "older node or is still starting; restart the network and try again")
        os.kill(pid, signal.SIGUSR1)


# ---- the drill ------------------------------------------------------------------------------------


def _height(url: str) -> int | None:
    try:
        return int(live.call(url, "eth_blockNumber", [], timeout=1.0), 16)
    except (live.Unreachable, live.RpcError, ValueError, TypeError):
        return None


def _block(url: str, number: int) -> dict[str, str] | None:
    try:
        result = live.call(url, "eth_getBlockByNumber", [hex(number), False], timeout=2.0)
    except (live.Unreachable, live.RpcError):
        return None
    return result if isinstance(result, dict) else None


def _round_changes(nodes: Sequence[NodeSpec]) -> int | None:
    """The most round changes any node counted (``smartta_qbft_round_changes_total``)."""
    counts = []
    for n in nodes:
        try:
            status, text = live.get(f"http://{n.host}:{n.metrics_port}", "/metrics")
        except live.Unreachable:
            continue
        if status == 200:
            counts.append(sum(int(float(line.rsplit(" ", 1)[1])) for line in text.splitlines()
                              if line.startswith("smartta_qbft_round_changes_total")))
    return max(counts) if counts else None


@dataclass
class DrillConfig:
    kind: str
    count: int | None = None
    """Validators to fault (default f: the most BFT tolerates)."""
    nodes: list[str] = field(default_factory=list)
    """Which validators (default: the last ``count`` of network.yaml)."""
    window: float | None = None
    """Seconds the fault lasts (default from the block period and round timeout)."""
    recovery_timeout: float | None = None
    min_blocks: int = MIN_BLOCKS


class Drill:
    def __init__(self, directory: Path, password: str, config: DrillConfig, *,
                 say: Callable[[str], None] | None = None) -> None:
        if config.kind not in KINDS:
            raise DrillError(f"unknown drill {config.kind!r}: choose one of {', '.join(KINDS)}")
        self.directory = directory
        self.password = password
        self.config = config
        self.say = say or (lambda text: None)
        self.spec = NetworkSpec.load(directory)
        if self.spec.deployment != "local":
            raise DrillError(f"network {self.spec.name} is deployed to {self.spec.deployment}; drills "
                             "signal local node processes only")
        if self.spec.dev_mode:
            raise DrillError("a dev-mode network has one validator and no consensus to drill")
        self.validators = self.spec.validators
        c = self.spec.consensus
        self.window = config.window or max(12.0, 4.0 * (c.block_period_seconds + c.request_timeout_seconds))
        self.recovery_timeout = config.recovery_timeout or max(90.0, 4 * self.window + 30)

    def url(self, node: NodeSpec) -> str:
        return local.url_of(node)

    # -- choosing --

    def _check_healthy(self) -> int:
        heights = {n.name: _height(self.url(n)) for n in self.validators}
        down = [name for name, h in heights.items() if h is None]
        if down:
            raise DrillError(f"{', '.join(down)} do not answer: a drill needs a healthy network "
                             "(`smartta network up`, `smartta network status`)")
        chain = self._chain_validators()
        names = {parse_address(n.address) for n in self.validators}
        if set(chain) != names:
            raise DrillError("network.yaml's validators are not the chain's "
                             "(`smartta network doctor`); drills count faults against the spec")
        return max(h for h in heights.values() if h is not None)

    def _chain_validators(self) -> list[bytes]:
        result = live.call(self.url(self.validators[0]), "qbft_getValidatorsByBlockNumber", ["latest"])
        return sorted(parse_address(a) for a in live.addresses(result))

    def _victims(self) -> list[NodeSpec]:
        n = len(self.validators)
        count = self.config.count if self.config.count is not None else (
            len(self.config.nodes) or max_faulty(n))
        if self.config.nodes:
            victims = [self.spec.node(name) for name in self.config.nodes]
            if any(not v.is_validator for v in victims):
                raise DrillError("--node names validators only (faults are counted against them)")
            if len(victims) != count:
                raise DrillError(f"--count {count} but {len(victims)} --node given")
        else:
            victims = self.validators[-count:] if count else []
        if not 1 <= count < n:
            raise DrillError(f"--count must be between 1 and {n - 1} for {n} validators")
        return victims

    # -- running --

    def run(self) -> tuple[Observation, Verdict]:
        start_height = self._check_healthy()
        self._wait_height(self.validators, start_height + 2, 30, "the network to add blocks first")
        if self.config.kind == "proposer-down":
            return self._run_proposer_down()
        victims = self._victims()
        watched = (self.validators if self.config.kind == "partition"
                   else [n for n in self.validators if n not in victims])
        n = len(self.validators)
        self.say(f"drill {self.config.kind}: {len(victims)} of {n} validators "
                 f"({', '.join(v.name for v in victims)}), f = {max_faulty(n)}: expect "
                 + ("liveness" if len(victims) <= max_faulty(n) else "a safe halt"))
        at_fault = self._max_height(watched)
        self._inject(victims)
        try:
            settle_until = time.monotonic() + self.spec.consensus.block_period_seconds + 1.5
            at_settle = self._watch(watched, settle_until)
            at_heal = self._watch(watched, time.monotonic() + self.window - (
                self.spec.consensus.block_period_seconds + 1.5))
        finally:
            healed_at = time.monotonic()
            self._heal(victims)
        self.say(f"healed after {self.window:.0f}s; waiting for recovery")
        first, synced, forks = self._recovery(healed_at, at_heal, at_fault)
        obs = Observation(self.config.kind, n, [v.name for v in victims], self.window, at_fault,
                          at_settle, at_heal, first, synced, forks, _round_changes(self.validators))
        return obs, verdict(obs, self.config.min_blocks)

    def _max_height(self, nodes: Sequence[NodeSpec]) -> int:
        return max((h for n in nodes if (h := _height(self.url(n))) is not None), default=0)

    def _watch(self, nodes: Sequence[NodeSpec], until: float) -> int:
        best = 0
        while True:
            best = max(best, self._max_height(nodes))
            if time.monotonic() >= until:
                return best
            time.sleep(0.25)

    def _wait_height(self, nodes: Sequence[NodeSpec], height: int, timeout: float, what: str) -> int:
        deadline = time.monotonic() + timeout
        while (best := self._max_height(nodes)) < height:
            if time.monotonic() > deadline:
                raise DrillError(f"timed out after {timeout:.0f}s waiting for {what} (at block {best}, "
                                 f"expected {height}); see `smartta network status`")
            time.sleep(0.1)
        return best

    def _inject(self, victims: Sequence[NodeSpec]) -> None:
        kind = self.config.kind
        if kind == "partition":
            others = [n for n in self.spec.nodes if n not in victims]
            partition(self.directory, [victims, others])
            return
        for v in victims:
            pid = local.running_pid(self.directory, v)
            if pid is None:
                raise DrillError(f"{v.name} is not running")
            os.kill(pid, signal.SIGKILL if kind in ("kill", "proposer-down") else signal.SIGSTOP)

    def _heal(self, victims: Sequence[NodeSpec]) -> None:
        kind = self.config.kind
        if kind == "partition":
            partition(self.directory, [self.spec.nodes])
            for n in self.spec.nodes:
                isolate_file(self.directory, n).unlink(missing_ok=True)
            return
        for v in victims:
            if kind == "pause":
                pid = local.running_pid(self.directory, v)
                if pid is not None:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGCONT)
            else:
                local.stop_nodes(self.directory, [v], timeout=5)  # reaps it, clears its pid file
                local.start_node(self.directory, v, {"SMARTTA_KEYSTORE_PASSWORD": self.password})

    def _recovery(self, healed_at: float, at_heal: int,
                  at_fault: int) -> tuple[float | None, float | None, list[str]]:
        deadline = healed_at + self.recovery_timeout
        first = synced = None
        target = at_heal + 1
        while time.monotonic() < deadline:
            heights = {n.name: _height(self.url(n)) for n in self.validators}
            top = max((h for h in heights.values() if h is not None), default=0)
            if first is None and top >= target:
                first = time.monotonic() - healed_at
            if first is not None and all(h is not None and h >= target for h in heights.values()):
                common = min(h for h in heights.values() if h is not None)
                tips = {self._hash(n, common) for n in self.validators}
                if len(tips) == 1 and None not in tips:
                    synced = time.monotonic() - healed_at
                    break
            time.sleep(0.25)
        common = min((h for n in self.validators if (h := _height(self.url(n))) is not None),
                     default=at_fault)
        return first, synced, self._forks(max(1, at_fault - 2), common)

    def _hash(self, node: NodeSpec, number: int) -> str | None:
        block = _block(self.url(node), number)
        return None if block is None else block["hash"]

    def _forks(self, low: int, high: int) -> list[str]:
        forks = []
        for number in range(low, high + 1):
            hashes = {n.name: self._hash(n, number) for n in self.validators}
            if len({h for h in hashes.values() if h is not None}) > 1:
                forks.append(f"block {number}: " + ", ".join(f"{k} {v}" for k, v in hashes.items()))
        return forks

    # -- proposer-down --

    def _run_proposer_down(self) -> tuple[Observation, Verdict]:
        """Kill the validators due to propose two blocks ahead (their timers have a whole block
        period to go, so none has sent its proposal), then check who produced those blocks."""
        n = len(self.validators)
        count = self.config.count or 1
        if not 1 <= count < n:
            raise DrillError(f"--count must be between 1 and {n - 1} for {n} validators")
        by_address = {parse_address(v.address): v for v in self.validators}
        chain_set = sorted(by_address)
        url = self.url(self.validators[0])
        head = self._wait_new_head(url)
        block = _block(url, head)
        if block is None:
            raise DrillError(f"{self.validators[0].name} does not serve block {head}")
        # Round 0 all the way: each height's proposer follows the previous one in the sorted set.
        coinbase = parse_address(block["miner"])
        targets: list[tuple[int, bytes]] = []
        for height in range(head + 1, head + 1 + count + 1):
            coinbase = select_proposer(chain_set, coinbase, 0)
            targets.append((height, coinbase))
        doomed = targets[1:]  # skip head+1: its proposer may be proposing right now
        victims = [by_address[a] for _, a in doomed]
        self.say(f"drill proposer-down: killing {', '.join(v.name for v in victims)}, due to propose "
                 f"block{'s' if len(doomed) > 1 else ''} {', '.join(str(h) for h, _ in doomed)}")
        at_fault = head
        self._inject(victims)
        watched = [v for v in self.validators if v not in victims]
        try:
            settle_until = time.monotonic() + self.spec.consensus.block_period_seconds + 1.5
            at_settle = self._watch(watched, settle_until)
            at_heal = self._watch(watched, time.monotonic() + self.window)
        finally:
            healed_at = time.monotonic()
            self._heal(victims)
        checks, failures = [], []
        if count <= max_faulty(n):
            # Only the first target is certain: once a round changes, later proposers shift.
            height, proposer = doomed[0]
            b = _block(self.url(watched[0]), height)
            if b is None:
                failures.append(f"block {height} was never produced")
            else:
                extra = xd.decode(bytes.fromhex(b["extraData"][2:]))
                miner = parse_address(b["miner"])
                line = (f"block {height}: round {extra.round}, proposed by "
                        f"{by_address[miner].name if miner in by_address else b['miner']} "
                        f"(due: {by_address[proposer].name}, killed)")
                if extra.round >= 1 and miner != proposer:
                    checks.append("round change: " + line)
                else:
                    failures.append("no round change: " + line)
        first, synced, forks = self._recovery(healed_at, at_heal, at_fault)
        obs = Observation("proposer-down", n, [v.name for v in victims], self.window, at_fault,
                          at_settle, at_heal, first, synced, forks, _round_changes(self.validators),
                          checks, failures)
        return obs, verdict(obs, self.config.min_blocks)

    def _wait_new_head(self, url: str) -> int:
        """The height of a block that has just arrived (so the next timers have just started)."""
        first = _height(url)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            h = _height(url)
            if h is not None and first is not None and h > first:
                return h
            time.sleep(0.02)
        raise DrillError("no new block within 30s: the network is not live; nothing to drill")


def report_json(obs: Observation, result: Verdict) -> str:
    return json.dumps({"passed": result.passed, "observation": asdict(obs),
                       "checks": [{"ok": ok, "what": what} for ok, what in result.checks]}, indent=2)
