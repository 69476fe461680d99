"""JSON-RPC errors with the codes and messages Besu answers (``RpcErrorType``).

Where Besu has only a fixed message, a detail saying which parameter and why, or what to do, is
added the way Besu itself appends a reason: ``"Invalid params (params[1]: ...)"``.
"""

from __future__ import annotations

from typing import Any

INVALID_PARAMS = -32602


class RpcError(Exception):
    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            out["data"] = self.data
        return out


def _with(message: str, detail: str | None) -> str:
    return f"{message} ({detail})" if detail else message


def parse_error(detail: str | None = None) -> RpcError:
    return RpcError(-32700, _with("Parse error", detail))


def invalid_request(detail: str | None = None) -> RpcError:
    return RpcError(-32600, _with("Invalid Request", detail))


def method_not_found() -> RpcError:
    return RpcError(-32601, "Method not found")


def invalid_params(kind: str, detail: str | None = None) -> RpcError:
    """``kind`` is Besu's message for the parameter type, e.g. "Invalid block param"."""
    return RpcError(INVALID_PARAMS, _with(kind, detail))


def method_not_enabled(detail: str | None = None) -> RpcError:
    return RpcError(-32604, _with("Method not enabled", detail))


def internal_error(detail: str | None = None) -> RpcError:
    return RpcError(-32603, _with("Internal error", detail))


def batch_too_large(size: int, limit: int) -> RpcError:
    return RpcError(-32005, _with("Number of requests exceeds max batch size",
                                  f"{size} requests, at most {limit}: split the batch"))


def range_too_large(blocks: int, limit: int) -> RpcError:
    return RpcError(-32005, _with("Requested range exceeds maximum RPC range limit",
                                  f"{blocks} blocks, at most {limit}: query smaller ranges"))


def block_not_found() -> RpcError:
    return RpcError(-32000, "Block not found")


def subscription_not_found() -> RpcError:
    return RpcError(-32000, "Subscription not found")


def revert(output: bytes) -> RpcError:
    """A reverted eth_call/eth_estimateGas: code 3 with the raw revert data in ``data``, as Besu
    and geth both answer. The message takes geth's form, ``execution reverted: <reason>``,
    rather than Besu's ``Execution reverted (<reason>)``: ape and other tools recognise a revert
    by that lower-case text, and existing test suites (``ape.reverts``) depend on it."""
    reason = decode_revert_reason(output)
    message = f"execution reverted: {reason}" if reason else "execution reverted"
    return RpcError(3, message, "0x" + output.hex())


ERROR_STRING_SELECTOR = bytes.fromhex("08c379a0")
PANIC_SELECTOR = bytes.fromhex("4e487b71")


def decode_revert_reason(output: bytes) -> str | None:
    if output[:4] == ERROR_STRING_SELECTOR and len(output) >= 68:
        body = output[4:]
        offset = int.from_bytes(body[:32], "big")
        if offset + 32 <= len(body):
            length = int.from_bytes(body[offset:offset + 32], "big")
            text = body[offset + 32:offset + 32 + length]
            if len(text) == length:
                return text.decode("utf-8", "replace")
        return "ABI decode error"
    if output[:4] == PANIC_SELECTOR and len(output) == 36:
        return f"Panic(0x{int.from_bytes(output[4:], 'big'):x})"
    return None


# Besu's eth_sendRawTransaction codes by rejection message (JsonRpcErrorConverter, RpcErrorType).
_POOL_CODES = {
    "Nonce too low": -32001,
    "Invalid signature": -32002,
    "Transaction pool not enabled. (Either txpool explicitly disabled, or node not yet in sync).": -32002,
    "Intrinsic gas exceeds gas limit": -32003,
    "Upfront cost exceeds account balance": -32004,
    "Transaction gas limit exceeds block gas limit": -32005,
    "Transaction gas limit cap exceeded": -32005,
    "Nonce too high": -32006,
    "Sender account not authorized to send transactions": -32007,
    "Initial sync is still in progress": -32008,
    "Gas price below configured minimum gas price": -32009,
    "Gas price below current base fee": -32009,
    "blob gas price below current blob base fee": -32009,
    "Invalid transaction type": INVALID_PARAMS,
    "Invalid params": INVALID_PARAMS,
}


def pool_rejection(reason: str, detail: str = "") -> RpcError:
    """A transaction the pool refused, with Besu's code for that reason (-32000 otherwise).

    The message is Besu's reason exactly, so clients that match on it keep working; the pool's
    detail (which nonce was expected, what the balance is) goes in ``data``.
    """
    return RpcError(_POOL_CODES.get(reason, -32000), reason, detail or None)
