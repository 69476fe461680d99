"""Why the pool refuses a transaction: Besu's messages (``RpcErrorType``) and JSON-RPC codes.

``TxRejected.reason`` is always one of these strings, so clients that match on Besu's wording
keep working; ``RPC_CODES`` gives the code Besu's ``JsonRpcErrorConverter`` answers with.
"""

from __future__ import annotations

NONCE_TOO_LOW = "Nonce too low"
NONCE_TOO_HIGH = "Nonce too high"
INVALID_SIGNATURE = "Invalid signature"
INVALID_TYPE = "Invalid transaction type"
INVALID_PARAMS = "Invalid params"
INTRINSIC_GAS = "Intrinsic gas exceeds gas limit"
UPFRONT_COST = "Upfront cost exceeds account balance"
BLOCK_GAS_LIMIT = "Transaction gas limit exceeds block gas limit"
SENDER_NOT_AUTHORIZED = "Sender account not authorized to send transactions"
GAS_PRICE_TOO_LOW = "Gas price below configured minimum gas price"
BELOW_BASE_FEE = "Gas price below current base fee"
WRONG_CHAIN_ID = "Wrong chainId"
CHAIN_ID_REQUIRED = "ChainId is required"
KNOWN = "Known transaction"
UNDERPRICED = "Replacement transaction underpriced"
PRIORITY_ABOVE_MAX = "Max priority fee per gas exceeds max fee per gas"
TOO_DISTANT = "Transaction nonce is too distant from current sender nonce"
POOL_FULL = "Transaction pool is full"

RPC_CODES: dict[str, int] = {
    NONCE_TOO_LOW: -32001,
    INVALID_SIGNATURE: -32002,
    INVALID_TYPE: -32602,
    INVALID_PARAMS: -32602,
    INTRINSIC_GAS: -32003,
    UPFRONT_COST: -32004,
    BLOCK_GAS_LIMIT: -32005,
    NONCE_TOO_HIGH: -32006,
    SENDER_NOT_AUTHORIZED: -32007,
    GAS_PRICE_TOO_LOW: -32009,
    BELOW_BASE_FEE: -32009,
}
"""Codes that are not -32000; every other reason is answered with -32000."""
