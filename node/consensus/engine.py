"""The QBFT engine a node's shell drives: Besu's ``QbftController`` around one height manager.

Four inputs, each with the current unix time in milliseconds, each returning the outputs to
perform in order (``node.consensus.outputs``):

- ``start(head, now_ms)``: begin at the chain head;
- ``receive(code, data, now_ms)``: a consensus message from the network;
- ``timer_expired(timer, now_ms)``: a timer the engine asked for has fired;
- ``new_head(header, now_ms)``: a block was imported, by this engine's ``ImportBlock`` or by sync.

The engine drops repeats of a message it has seen (Besu's duplicate-message limit), discards
messages for heights already on chain, buffers messages up to ``future_messages_max_distance``
heights ahead (at most ``future_messages_limit`` of them) and replays them when that height
starts, accepts messages for the current height only from its validators, and relays (``Gossip``)
each accepted one. It never blocks, sleeps, reads the clock or touches the network.
"""

from __future__ import annotations

import hashlib
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from chain.abc import Signer
from chain.qbft.block import Block
from chain.qbft.genesis import Genesis
from chain.qbft.hashing import block_hash
from chain.qbft.header import BlockHeader, HeaderError
from chain.qbft.messages import (
    CODES,
    DEFAULT_FORMAT,
    Commit,
    Message,
    MessageError,
    Prepare,
    Proposal,
    RoundChange,
    WireFormat,
    decode,
)
from chain.qbft.verify import verify_header
from node.abc import BlockInvalid, BlockSource, ValidatorView
from node.consensus.height import HeightManager, Services
from node.consensus.outputs import (
    CancelTimer,
    Fault,
    Gossip,
    HeadConflict,
    Output,
    ProposalMissed,
    Rejected,
    RoundChanged,
    Timer,
    TimerKind,
)
from node.consensus.validation import HeightContext
from node.consensus.votes import VoteProposer


@dataclass(frozen=True, slots=True)
class EngineConfig:
    block_period_s: int = 1
    request_timeout_s: int = 1
    empty_block_period_s: int = 0
    contract_mode: bool = False
    wire_format: WireFormat = DEFAULT_FORMAT
    future_messages_max_distance: int = 10
    future_messages_limit: int = 1000
    duplicate_message_limit: int = 100
    """Besu's defaults for ``futuremessagesmaxdistance``, ``futuremessageslimit`` and
    ``duplicatemessagelimit``."""

    @classmethod
    def from_genesis(cls, genesis: Genesis, **overrides: Any) -> EngineConfig:
        q = genesis.qbft
        config = cls(block_period_s=q.block_period_seconds,
                     request_timeout_s=q.request_timeout_seconds,
                     empty_block_period_s=q.empty_block_period_seconds,
                     contract_mode=genesis.contract_mode)
        return replace(config, **overrides)


class Engine:
    def __init__(self, signer: Signer, blocks: BlockSource, validators: ValidatorView,
                 config: EngineConfig, votes: VoteProposer | None = None) -> None:
        self.signer = signer
        self.local = signer.address
        self.blocks = blocks
        self.view = validators
        self.config = config
        self.votes = votes if votes is not None else VoteProposer()
        self.head: BlockHeader | None = None
        self.h: HeightContext | None = None
        self.manager: HeightManager | None = None
        self._head_hash = b""
        self._seen: OrderedDict[bytes, None] = OrderedDict()
        self._future: dict[int, list[tuple[int, bytes, Message]]] = {}
        self._out: list[Output] = []
        self.svc = Services(signer=signer, block_check=self._check_block,
                            create_block=self._create_block, emit=self._emit, now_ms=0,
                            block_period_s=config.block_period_s,
                            request_timeout_s=config.request_timeout_s,
                            empty_block_period_s=config.empty_block_period_s,
                            wire_format=config.wire_format)
        self.rejected: Counter[str] = Counter()
        """Messages refused, by kind of reason (``duplicate``, ``old height``, ``malformed``…)."""
        self.round_changes: dict[tuple[int, int], int] = {}
        self.missed_proposals: dict[bytes, int] = {}

    # --- state the shell and RPC read -----------------------------------------------------------

    @property
    def height(self) -> int | None:
        return None if self.h is None else self.h.height

    @property
    def round(self) -> int | None:
        if self.manager is None or self.manager.round is None:
            return None
        return self.manager.round.round

    @property
    def is_validator(self) -> bool:
        return self.h is not None and self.local in self.h.members

    # --- inputs ---------------------------------------------------------------------------------

    def start(self, head: BlockHeader, now_ms: int) -> list[Output]:
        if self.head is not None:
            raise RuntimeError("the engine is already running; create a new one to start again")
        return self._run(now_ms, lambda: self._new_height(head), "start")

    def receive(self, code: int, data: bytes, now_ms: int) -> list[Output]:
        key = hashlib.blake2b(bytes([code & 0xFF]) + data, digest_size=16).digest()
        if key in self._seen:
            self.rejected["duplicate"] += 1
            return []
        self._seen[key] = None
        if len(self._seen) > self.config.duplicate_message_limit:
            self._seen.popitem(last=False)
        return self._run(now_ms, lambda: self._handle(code, data), f"a {CODES.get(code, code)} message")

    def timer_expired(self, timer: Timer, now_ms: int) -> list[Output]:
        return self._run(now_ms, lambda: self._timer(timer), f"the {timer.kind.value} timer")

    def new_head(self, header: BlockHeader, now_ms: int) -> list[Output]:
        return self._run(now_ms, lambda: self._head(header), f"new head {header.number}")

    # --- internals ------------------------------------------------------------------------------

    def _run(self, now_ms: int, step: Callable[[], None], what: str) -> list[Output]:
        self.svc.now_ms = now_ms
        self._out = []
        try:
            step()
        except Exception as exc:  # e.g. block creation failed: keep what was decided so far
            self._emit(Fault(what, f"{type(exc).__name__}: {exc}"))
        out, self._out = self._out, []
        return out

    def _emit(self, out: Output) -> None:
        if isinstance(out, Rejected):
            self.rejected[out.reason.split(":")[0][:80]] += 1
        elif isinstance(out, RoundChanged):
            key = (out.height, out.round)
            self.round_changes[key] = self.round_changes.get(key, 0) + 1
        elif isinstance(out, ProposalMissed):
            self.missed_proposals[out.proposer] = self.missed_proposals.get(out.proposer, 0) + 1
        self._out.append(out)

    def _handle(self, code: int, data: bytes) -> None:
        try:
            msg = decode(code, data)
        except MessageError as exc:
            self._emit(Rejected(code, f"malformed: {exc}"))
            return
        self._consume(code, data, msg)

    def _consume(self, code: int, data: bytes, msg: Message) -> None:
        if self.head is None or self.h is None:
            self.rejected["engine not started"] += 1
            return
        if msg.height <= self.head.number:
            # Late PREPAREs and COMMITs for a block already imported are normal; only count them.
            self.rejected["old height"] += 1
            return
        if msg.height > self.h.height:
            self._buffer(code, data, msg)
            return
        if msg.author == self.local:
            # Our own message relayed back by a peer: this node already acted on it.
            self.rejected["own message"] += 1
            return
        if msg.author not in self.h.members:
            self._emit(Rejected(code, f"not a validator: {CODES[code]} from 0x{msg.author.hex()} "
                                      f"at height {msg.height}", msg.author))
            return
        if self.manager is None:
            self.rejected["local node is not a validator"] += 1
            return
        self._emit(Gossip(code, data, msg.author))
        if isinstance(msg, Proposal):
            self.manager.on_proposal(msg)
        elif isinstance(msg, Prepare):
            self.manager.on_prepare(msg)
        elif isinstance(msg, Commit):
            self.manager.on_commit(msg)
        elif isinstance(msg, RoundChange):
            self.manager.on_round_change(msg)

    def _buffer(self, code: int, data: bytes, msg: Message) -> None:
        assert self.h is not None
        limit = self.config.future_messages_limit
        if limit == 0 or msg.height > self.h.height + self.config.future_messages_max_distance:
            self.rejected["too far in the future"] += 1
            return
        self._future.setdefault(msg.height, []).append((code, data, msg))
        if sum(len(v) for v in self._future.values()) > limit:
            # Besu's FutureMessageBuffer: drop the furthest height, or the oldest of the only one.
            self.rejected["future buffer full"] += 1
            highest = max(self._future)
            if len(self._future) > 1:
                del self._future[highest]
            else:
                self._future[highest].pop(0)

    def _timer(self, timer: Timer) -> None:
        if self.head is None or timer.height <= self.head.number:
            return
        if self.manager is None or timer.height != self.manager.height:
            return
        if timer.kind is TimerKind.BLOCK:
            self.manager.block_timer_expired(timer)
        else:
            self.manager.round_expired(timer)

    def _head(self, header: BlockHeader) -> None:
        if self.head is None:
            return  # not started: start() will begin from the chain head
        if header.number < self.head.number:
            return
        if header.number == self.head.number:
            reported = block_hash(header)
            if reported != self._head_hash:
                self._emit(HeadConflict(header.number, self._head_hash, reported))
            return
        self._new_height(header)

    def _new_height(self, head: BlockHeader) -> None:
        self.head = head
        self._head_hash = block_hash(head)
        self.h = HeightContext(head, tuple(sorted(self.view.validators_after(head))))
        self.manager = None
        self._emit(CancelTimer(TimerKind.ROUND))
        if self.local in self.h.members:
            self.manager = HeightManager(self.h, self.local, self.svc)
        else:
            self._emit(CancelTimer(TimerKind.BLOCK))
        replay = self._future.pop(self.h.height, [])
        for h in [h for h in self._future if h <= self.h.height]:
            del self._future[h]
        for code, data, msg in replay:
            self._consume(code, data, msg)

    def _check_block(self, block: Block, now_ms: int) -> str | None:
        h = self.h
        assert h is not None
        try:
            verify_header(block.header, h.parent, h.validators,
                          block_period_seconds=self.config.block_period_s,
                          contract_mode=self.config.contract_mode, now=now_ms // 1000,
                          parent_hash=self._head_hash, seals=False)
        except HeaderError as exc:
            return str(exc)
        try:
            self.blocks.validate_block(block)
        except (BlockInvalid, ValueError) as exc:
            return f"block {block.header.number} does not execute as it claims: {exc}"
        return None

    def _create_block(self, round: int, timestamp: int) -> Block:
        h = self.h
        assert h is not None
        vote = None if self.config.contract_mode else self.votes.vote_for(
            self.local, self.view.votes_after(h.parent))
        return self.blocks.create_block(h.parent, round, timestamp, self.local, vote)
