"""Transaction decoding parses the bytes once (chain.fastrlp) and builds py-evm's transaction
through py-evm's own sedes: it must accept exactly the bytes py-evm's decoder accepts, and build
the same transaction, for every type and for corrupted bytes."""

from __future__ import annotations

from eth_account import Account
from hypothesis import given, settings
from hypothesis import strategies as st

from chain import fastrlp
from chain.abc import TxRejected
from chain.execution.forks import ForkSchedule
from chain.execution.txs import _pyevm, decode
from chain.qbft.genesis import Genesis, QbftSettings, build_genesis

GENESIS = Genesis(build_genesis(chain_id=2026, validators=[b"\x70" * 20], qbft=QbftSettings(),
                                fork="prague"))
FORK = ForkSchedule(GENESIS).at(10**10)
KEY = Account.from_key(b"\x11" * 32)


def _signed(kind: int, nonce: int, data: bytes, to: bool) -> bytes:
    tx: dict = {"nonce": nonce, "gas": 100_000, "to": "0x" + "22" * 20 if to else None,
                "value": 5, "data": data, "chainId": 2026}
    if kind == 0:
        tx["gasPrice"] = 7
    else:
        tx.update(type=kind, accessList=[{"address": "0x" + "33" * 20,
                                          "storageKeys": ["0x" + "00" * 31 + "01"]}])
        if kind == 1:
            tx["gasPrice"] = 7
        else:
            tx.update(maxFeePerGas=9, maxPriorityFeePerGas=2)
    if tx["to"] is None:
        del tx["to"]
    return bytes(KEY.sign_transaction(tx).raw_transaction)


def _same(raw: bytes) -> None:
    """Our construction and py-evm's decoder agree on ``raw``: both refuse it, or both build
    the same transaction."""
    try:
        want = FORK.transaction_builder.decode(raw)
    except Exception:
        want = None
    kind = 0 if raw and raw[0] >= 0xC0 else (raw[0] if raw else -1)
    try:
        got = _pyevm(FORK, kind, fastrlp.decode(raw[1:] if kind else raw))  # type: ignore[arg-type]
    except Exception:
        got = None
    assert (got is None) == (want is None)
    if got is not None:
        assert got.encode() == want.encode() == raw
        assert (got.nonce, got.to, got.data, got.intrinsic_gas, got.r, got.s, got.y_parity) == (
            want.nonce, want.to, want.data, want.intrinsic_gas, want.r, want.s, want.y_parity)


valid = st.builds(_signed, st.sampled_from([0, 1, 2]), st.integers(0, 2**20),
                  st.binary(max_size=80), st.booleans())


@settings(max_examples=150, deadline=None)
@given(valid, st.integers(0, 400), st.integers(0, 255), st.sampled_from(["flip", "cut", "grow"]))
def test_corrupted_transactions_are_refused_exactly_as_py_evm_refuses_them(raw, at, byte, how):
    _same(raw)
    at %= len(raw)
    if how == "flip":
        raw = raw[:at] + bytes([byte]) + raw[at + 1:]
    elif how == "cut":
        raw = raw[:at]
    else:
        raw = raw + bytes([byte])
    _same(raw)


@settings(max_examples=60, deadline=None)
@given(valid)
def test_decoded_transaction_recovers_the_signer(raw):
    tx = decode(raw, FORK, 2026)
    assert tx.sender == bytes.fromhex(KEY.address[2:])
    assert tx.tx.sender == tx.sender


def test_bytes_that_are_not_a_transaction_are_refused_with_a_reason():
    try:
        decode(b"\x02\xc1\x80", FORK, 2026)
    except TxRejected as exc:
        assert "do not decode as a EIP-1559 transaction" in str(exc)
    else:
        raise AssertionError("a two-field payload was accepted")
