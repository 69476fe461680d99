"""QBFT consensus as Besu runs it, as a pure state machine (no sockets, no sleeps, no clock).

In a node process, ``node.consensus.service.ConsensusService`` is the shell: it owns the timers,
runs the engine on one worker thread, sends through ``node.p2p.Transport`` and imports through
``BlockSource`` (see its docstring for the wiring). Driving the engine directly (a test)::

    engine = Engine(signer, blocks, validators, EngineConfig.from_genesis(genesis))
    outputs = engine.start(chain.head, now_ms)
    # then, for every event, feed the engine and perform what it returns, in order:
    outputs = engine.receive(code, data, now_ms)        # a consensus message from a peer
    outputs = engine.timer_expired(timer, now_ms)       # a timer it asked for fired
    outputs = engine.new_head(header, now_ms)           # a block was imported (by it or by sync)

Outputs (``node.consensus.outputs``): ``Multicast``/``Gossip`` (send to validators),
``SetTimer``/``CancelTimer`` (one pending timer per kind), ``ImportBlock`` (import the sealed
block through ``BlockSource.import_block``, then call ``new_head``), and events for metrics and
logs: ``RoundChanged``, ``ProposalMissed``, ``Rejected``, ``HeadConflict``, ``Fault``.

``blocks`` is a ``node.abc.BlockSource`` (create and validate proposals) and ``validators`` a
``node.abc.ValidatorView`` (``node.consensus.validators.HistoryValidators`` computes it from the
headers). ``engine.votes`` is the ``VoteProposerAPI`` behind ``qbft_proposeValidatorVote``.
Counters for metrics: ``engine.round_changes`` ((height, round) -> count),
``engine.missed_proposals`` (proposer -> count), ``engine.rejected`` (reason -> count).
"""

from node.consensus.engine import Engine, EngineConfig
from node.consensus.outputs import (
    CancelTimer,
    Fault,
    Gossip,
    HeadConflict,
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
from node.consensus.votes import VoteProposer

__all__ = [
    "CancelTimer",
    "Engine",
    "EngineConfig",
    "Fault",
    "Gossip",
    "HeadConflict",
    "ImportBlock",
    "Multicast",
    "Output",
    "ProposalMissed",
    "Rejected",
    "RoundChanged",
    "SetTimer",
    "Timer",
    "TimerKind",
    "VoteProposer",
]
