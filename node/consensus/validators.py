"""Validator sets and outstanding votes from the headers themselves (block-header mode).

Feed it every header from the genesis on (``apply``), as the chain grows; it answers for the
head, which is the parent consensus builds on.
"""

from __future__ import annotations

from chain.qbft import extra_data as xd
from chain.qbft.genesis import Genesis
from chain.qbft.header import BlockHeader
from chain.qbft.votes import ValidatorHistory, VoteTally
from node.abc import ValidatorView


class HistoryValidators(ValidatorView):
    def __init__(self, genesis: Genesis) -> None:
        if genesis.contract_mode:
            raise ValueError("this genesis selects validators by contract; HistoryValidators reads "
                             "block headers only, use the execution layer's contract view")
        self.history = ValidatorHistory(genesis.qbft.epoch, genesis.validator_overrides)
        self.apply(genesis.header())

    @property
    def head(self) -> int:
        return self.history.head

    def apply(self, header: BlockHeader) -> None:
        """Account for the next block; call in order, once per block."""
        self.history.apply(header.number, header.coinbase, xd.decode(header.extra_data))

    def validators_after(self, header: BlockHeader) -> tuple[bytes, ...]:
        return self.history.validators_after(header.number)

    def votes_after(self, header: BlockHeader) -> VoteTally | None:
        if header.number != self.history.head or self.history.tally is None:
            raise ValueError(f"votes after block {header.number} are not known: the view is at "
                             f"block {self.history.head}; apply every block up to it first")
        return self.history.tally.copy()
