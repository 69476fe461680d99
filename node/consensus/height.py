"""One block height of QBFT: Besu's ``QbftBlockHeightManager``, ``QbftRound``, ``RoundState``
and ``RoundChangeManager``, in that order of responsibility.

The height manager owns the current round and the rounds buffered ahead of it, the latest
prepared certificate and the round changes. It reaches the outside world only through
``Services``: a signer, the block source, and an ``emit`` that queues outputs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from chain.abc import Signer
from chain.qbft import extra_data as xd
from chain.qbft.block import Block
from chain.qbft.messages import (
    Commit,
    Prepare,
    PreparedRound,
    PreparePayload,
    Proposal,
    RoundChange,
    RoundChangePayload,
    Signed,
    WireFormat,
)
from node.consensus.outputs import (
    CancelTimer,
    ImportBlock,
    Multicast,
    Output,
    ProposalMissed,
    Rejected,
    RoundChanged,
    SetTimer,
    Timer,
    TimerKind,
)
from node.consensus.validation import (
    BlockCheck,
    HeightContext,
    check_commit,
    check_prepare,
    check_proposal,
    check_round_change,
    digest_of,
    with_round,
)


@dataclass
class Services:
    """What a height manager uses; the engine builds one per input with the current time."""

    signer: Signer
    block_check: Callable[[Block, int], str | None]
    """Validate a proposed block at ``now_ms``: None, or the reason it is invalid."""
    create_block: Callable[[int, int], Block]
    """Build this node's block for (round, timestamp) on the current parent."""
    emit: Callable[[Output], None]
    now_ms: int
    block_period_s: int
    request_timeout_s: int
    empty_block_period_s: int
    wire_format: WireFormat


@dataclass
class PreparedCertificate:
    block: Block
    prepares: tuple[Signed[PreparePayload], ...]
    round: int
    bal: bytes | None = None


class RoundState:
    """The messages of one round: at most one accepted proposal, a PREPARE and a COMMIT per
    validator. Before the proposal arrives PREPAREs and COMMITs are kept unchecked; the proposal
    then weeds out those that do not match it."""

    def __init__(self, h: HeightContext, round: int, block_check: BlockCheck) -> None:
        self.h = h
        self.round = round
        self._block_check = block_check
        self.proposal: Proposal | None = None
        self.digest = b""
        self.commit_digest = b""
        self.prepares: dict[bytes, Prepare] = {}
        self.commits: dict[bytes, Commit] = {}
        self.prepared = False
        self.committed = False
        self.dropped: list[str] = []
        """Reasons for buffered messages the proposal showed to be invalid (for the engine)."""

    def set_proposal(self, msg: Proposal) -> str | None:
        if self.proposal is not None:
            return f"a PROPOSAL for {self.h.height}/{self.round} was already accepted"
        reason = check_proposal(self.h, msg, self.round, self._block_check)
        if reason is not None:
            return reason
        self.proposal = msg
        self.digest = digest_of(msg.block)
        self.commit_digest = digest_of(msg.block, self.round)
        for author, prepare in list(self.prepares.items()):
            why = check_prepare(self.h, prepare.signed, self.round, self.digest)
            if why is not None:
                del self.prepares[author]
                self.dropped.append(why)
        for author, commit in list(self.commits.items()):
            why = check_commit(self.h, commit, self.round, self.digest, self.commit_digest)
            if why is not None:
                del self.commits[author]
                self.dropped.append(why)
        self._update()
        return None

    def add_prepare(self, msg: Prepare) -> str | None:
        if self.proposal is not None:
            reason = check_prepare(self.h, msg.signed, self.round, self.digest)
            if reason is not None:
                return reason
        self.prepares.setdefault(msg.author, msg)
        self._update()
        return None

    def add_commit(self, msg: Commit) -> str | None:
        if self.proposal is not None:
            reason = check_commit(self.h, msg, self.round, self.digest, self.commit_digest)
            if reason is not None:
                return reason
        self.commits.setdefault(msg.author, msg)
        self._update()
        return None

    def _update(self) -> None:
        have = self.proposal is not None
        self.prepared = have and len(self.prepares) >= self.h.quorum
        self.committed = have and len(self.commits) >= self.h.quorum

    def seals(self) -> tuple[bytes, ...]:
        return tuple(c.seal for c in self.commits.values())

    def certificate(self) -> PreparedCertificate | None:
        if not self.prepared or self.proposal is None:
            return None
        return PreparedCertificate(self.proposal.block,
                                   tuple(p.signed for p in self.prepares.values()), self.round,
                                   self.proposal.signed.payload.bal)


MAX_FUTURE_ROUNDS = 64
"""Distinct future rounds whose messages are kept. Besu keeps any number; a cap stops one
Byzantine validator from filling memory with messages for rounds no timer will ever reach
(round r starts after requesttimeoutseconds * (2^r - 1) seconds)."""


class _RoundChangeStatus:
    def __init__(self, quorum: int) -> None:
        self.quorum = quorum
        self.received: dict[bytes, RoundChange] = {}
        self.actioned = False

    def add(self, msg: RoundChange) -> None:
        if not self.actioned:
            self.received.setdefault(msg.author, msg)

    def certificate(self) -> list[RoundChange] | None:
        if self.actioned or len(self.received) < self.quorum:
            return None
        self.actioned = True
        return list(self.received.values())


class RoundChangeManager:
    """ROUND_CHANGEs per target round, one per validator; a quorum is handed out once."""

    def __init__(self, quorum: int) -> None:
        self.quorum = quorum
        self.rounds: dict[int, _RoundChangeStatus] = {}

    def has_room_for(self, round: int) -> bool:
        """Keep the lowest rounds: a lower one evicts the highest when the cap is reached."""
        if round in self.rounds or len(self.rounds) < MAX_FUTURE_ROUNDS:
            return True
        highest = max(self.rounds)
        if round > highest:
            return False
        del self.rounds[highest]
        return True

    def append(self, msg: RoundChange) -> list[RoundChange] | None:
        status = self.rounds.setdefault(msg.round, _RoundChangeStatus(self.quorum))
        status.add(msg)
        return status.certificate()

    def discard_rounds_prior_to(self, round: int) -> None:
        for r in [r for r in self.rounds if r < round]:
            del self.rounds[r]


def _best_prepared(rcs: list[RoundChange]) -> PreparedCertificate | None:
    """``RoundChangeArtifacts``: the certificate of the latest prepared round among ``rcs``."""
    with_meta = [rc for rc in rcs if rc.prepared is not None]
    if not with_meta:
        return None
    best = max(with_meta, key=lambda rc: rc.prepared.round if rc.prepared else -1)
    if best.prepared_block is None or best.prepared is None:
        return None
    return PreparedCertificate(best.prepared_block, best.prepares, best.prepared.round, best.bal)


class HeightManager:
    """Drives one height from the block timer to an imported block."""

    def __init__(self, h: HeightContext, local: bytes, svc: Services) -> None:
        self.h = h
        self.local = local
        self.round: RoundState | None = None
        self.future_rounds: dict[int, RoundState] = {}
        self.latest_certificate: PreparedCertificate | None = None
        self.round_changes = RoundChangeManager(h.quorum)
        self.svc = svc
        svc.emit(SetTimer(Timer(TimerKind.BLOCK, h.height, 0),
                          (h.parent.timestamp + svc.block_period_s) * 1000))

    @property
    def height(self) -> int:
        return self.h.height

    def _check(self, block: Block) -> str | None:
        return self.svc.block_check(block, self.svc.now_ms)

    def _reject(self, code: int, reason: str, author: bytes | None) -> None:
        self.svc.emit(Rejected(code, reason, author))

    # --- timers -------------------------------------------------------------------------------

    def block_timer_expired(self, timer: Timer) -> None:
        if self.round is not None:
            return  # a proposal started round 0 before the timer fired
        self._start_round(0)
        assert self.round is not None
        if timer.round != self.round.round or self.h.proposer(0) != self.local:
            return
        svc = self.svc
        block = svc.create_block(0, (svc.now_ms + 500) // 1000)
        # Besu proposes an empty block once now > parent + xemptyblockperiodseconds; ">=" here,
        # so that a timer set for exactly that instant does not re-arm itself at the same time.
        if block.transactions or svc.now_ms >= (self.h.parent.timestamp
                                                + svc.empty_block_period_s) * 1000:
            self._propose(block, (), ())
            return
        # Empty block and xemptyblockperiodseconds not over: wait, and start round 0 afresh.
        expiry = min((self.h.parent.timestamp + svc.empty_block_period_s) * 1000,
                     svc.now_ms + svc.block_period_s * 1000)
        svc.emit(SetTimer(Timer(TimerKind.BLOCK, self.height, 0), expiry))
        svc.emit(CancelTimer(TimerKind.ROUND))
        self.round = None

    def round_expired(self, timer: Timer) -> None:
        if self.round is None or timer.round != self.round.round:
            return
        if self.round.proposal is None:
            self.svc.emit(ProposalMissed(self.height, self.round.round,
                                         self.h.proposer(self.round.round)))
        self._round_change(self.round.round + 1)

    # --- messages -----------------------------------------------------------------------------

    def on_proposal(self, msg: Proposal) -> None:
        current = -1 if self.round is None else self.round.round
        if msg.round < current:
            self._reject(msg.code, f"PROPOSAL for past round {msg.round} (now {current})", msg.author)
            return
        if msg.round > current:
            # A future-round proposal moves this node there only if it is fully justified.
            reason = RoundState(self.h, msg.round, self._check).set_proposal(msg)
            if reason is not None:
                self._reject(msg.code, reason, msg.author)
                return
            self._start_round(msg.round)
        assert self.round is not None
        if self._accept_proposal(msg):
            self._send_prepare()

    def on_prepare(self, msg: Prepare) -> None:
        target = self._target(msg.round)
        if target is None:
            self._reject(msg.code, f"PREPARE for round {msg.round}: past, or too many future rounds "
                                   "buffered", msg.author)
            return
        if target is not self.round:
            target.add_prepare(msg)
            return
        was_prepared = target.prepared
        reason = target.add_prepare(msg)
        if reason is not None:
            self._reject(msg.code, reason, msg.author)
        elif target.prepared and not was_prepared:
            self._multicast_commit()

    def on_commit(self, msg: Commit) -> None:
        target = self._target(msg.round)
        if target is None:
            self._reject(msg.code, f"COMMIT for round {msg.round}: past, or too many future rounds "
                                   "buffered", msg.author)
            return
        if target is not self.round:
            target.add_commit(msg)
            return
        was_committed = target.committed
        reason = target.add_commit(msg)
        if reason is not None:
            self._reject(msg.code, reason, msg.author)
        elif target.committed and not was_committed:
            self._import()

    def on_round_change(self, msg: RoundChange) -> None:
        current = -1 if self.round is None else self.round.round
        if msg.round < current:
            self._reject(msg.code, f"ROUND_CHANGE for past round {msg.round} (now {current})",
                         msg.author)
            return
        if not self.round_changes.has_room_for(msg.round):
            self._reject(msg.code, f"ROUND_CHANGE for round {msg.round}: too many future rounds "
                                   "buffered", msg.author)
            return
        reason = check_round_change(self.h, msg, self._check)
        if reason is not None:
            self._reject(msg.code, reason, msg.author)
            return
        certificate = self.round_changes.append(msg)
        if certificate is None:
            return
        if msg.round > current:
            self._start_round(msg.round)
        if self.h.proposer(msg.round) == self.local:
            if self.round is None:
                self._start_round(0)
            self._propose_after_round_change(certificate)

    def _target(self, round: int) -> RoundState | None:
        current = -1 if self.round is None else self.round.round
        if round == current:
            return self.round
        if round < current:
            return None
        state = self.future_rounds.get(round)
        if state is None:
            if len(self.future_rounds) >= MAX_FUTURE_ROUNDS:
                highest = max(self.future_rounds)
                if round > highest:
                    return None
                del self.future_rounds[highest]  # keep the lowest rounds, the ones timers reach
            state = self.future_rounds[round] = RoundState(self.h, round, self._check)
        return state

    # --- the round ----------------------------------------------------------------------------

    def _start_round(self, round: int) -> None:
        state = self.future_rounds.get(round)
        if state is not None:
            for r in [r for r in self.future_rounds if r <= round]:
                del self.future_rounds[r]
        else:
            state = RoundState(self.h, round, self._check)
        self.round = state
        self.round_changes.discard_rounds_prior_to(round)
        svc = self.svc
        svc.emit(SetTimer(Timer(TimerKind.ROUND, self.height, round),
                          svc.now_ms + svc.request_timeout_s * 1000 * 2**round))
        if round > 0:
            svc.emit(RoundChanged(self.height, round))

    def _round_change(self, new_round: int) -> None:
        if self.round is not None and self.round.round >= new_round:
            return
        if self.round is not None:
            certificate = self.round.certificate()
            if certificate is not None:
                self.latest_certificate = certificate
        self._start_round(new_round)
        cert = self.latest_certificate
        local = RoundChange.create(
            self.svc.signer, self.height, new_round,
            prepared=None if cert is None else PreparedRound(cert.round, digest_of(cert.block)),
            prepared_block=None if cert is None else cert.block,
            prepares=() if cert is None else cert.prepares,
            bal=None if cert is None or self.svc.wire_format is WireFormat.LEGACY else cert.bal,
            fmt=self.svc.wire_format)
        # The local ROUND_CHANGE may complete a quorum and trigger this node's proposal.
        self.on_round_change(local)
        self.svc.emit(Multicast(local.code, local.encode()))

    def _propose_after_round_change(self, rcs: list[RoundChange]) -> None:
        assert self.round is not None
        best = _best_prepared(rcs)
        round_ = self.round.round
        if best is None:
            block = self.svc.create_block(round_, self.svc.now_ms // 1000)
            prepares: tuple[Signed[PreparePayload], ...] = ()
            bal = None
        else:
            block = with_round(best.block, round_)
            prepares, bal = best.prepares, best.bal
        self._propose(block, tuple(rc.signed for rc in rcs), prepares, bal)

    def _propose(self, block: Block, rcs: tuple[Signed[RoundChangePayload], ...],
                 prepares: tuple[Signed[PreparePayload], ...], bal: bytes | None = None) -> None:
        assert self.round is not None
        if self.svc.wire_format is WireFormat.LEGACY:
            bal = None
        proposal = Proposal.create(self.svc.signer, self.height, self.round.round, block,
                                   round_changes=rcs, prepares=prepares, bal=bal,
                                   fmt=self.svc.wire_format)
        self.svc.emit(Multicast(proposal.code, proposal.encode()))
        if self._accept_proposal(proposal):
            self._send_prepare()

    def _accept_proposal(self, msg: Proposal) -> bool:
        state = self.round
        assert state is not None
        was_prepared, was_committed = state.prepared, state.committed
        reason = state.set_proposal(msg)
        for why in state.dropped:
            self._reject(0, f"buffered message dropped by the proposal: {why}", None)
        state.dropped.clear()
        if reason is not None:
            self._reject(msg.code, reason, msg.author)
            return False
        if state.prepared and not was_prepared:
            self._multicast_commit()
        # This node's own COMMIT counts at once; it is sent only when the round is prepared.
        state.add_commit(self._commit())
        if state.committed and not was_committed:
            self._import()
        return True

    def _commit(self) -> Commit:
        state = self.round
        assert state is not None
        seal = self.svc.signer.sign_digest(state.commit_digest)
        return Commit.create(self.svc.signer, self.height, state.round, state.digest, seal)

    def _multicast_commit(self) -> None:
        commit = self._commit()
        self.svc.emit(Multicast(commit.code, commit.encode()))

    def _send_prepare(self) -> None:
        state = self.round
        assert state is not None
        prepare = Prepare.create(self.svc.signer, self.height, state.round, state.digest)
        was_prepared = state.prepared
        state.add_prepare(prepare)
        if state.prepared and not was_prepared:
            self._multicast_commit()
        self.svc.emit(Multicast(prepare.code, prepare.encode()))

    def _import(self) -> None:
        state = self.round
        assert state is not None and state.proposal is not None
        block = state.proposal.block
        extra = xd.decode(block.header.extra_data).with_seals(state.seals(), state.round)
        sealed = Block(block.header.with_extra_data(xd.encode(extra)), block.transactions,
                       block.withdrawals)
        # The round timer keeps running: if the import fails, the round still changes.
        self.svc.emit(ImportBlock(sealed, state.round))
