// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";

import {IERC3643Token} from "./interfaces/IERC3643.sol";

/// @title DeFi-CeFi bridge: every token movement it makes points at the CeFi ledger record
/// that authorised it, and every such record at the one movement it authorised.
/// @notice The bridge is an agent of the ERC-3643 tokens it serves (make it their only supply
/// agent, so that no unit moves without a record). An operator names the authorising record by
/// its sequence number and record hash on the CeFi Event Ledger fixed at deployment, which may
/// live on another chain: the bridge cannot read that ledger, so it trusts the operator for the
/// record's existence and refuses to use any record twice; the observer checks every link
/// against the ledger (docs/contracts.md). The reverse link is the ledger's TOKEN_MINTED,
/// TOKEN_BURNED or TOKEN_FORCED_TRANSFER record, which carries the token transaction's hash
/// and the authorising sequence number.
contract DeFiCeFiBridge is AccessControl, Pausable {
    bytes32 public constant OPERATOR_ROLE = keccak256("OPERATOR_ROLE");
    bytes32 public constant PAUSER_ROLE = keccak256("PAUSER_ROLE");

    enum Kind {
        Mint,
        Burn,
        ForcedTransfer
    }

    /// Chain id and address of the CeFi Event Ledger whose records authorise the operations.
    uint256 public immutable ledgerChainId;
    address public immutable ledger;

    /// Operations so far; operation ids start at 1.
    uint64 public operations;
    mapping(address token => bool) public isToken;
    /// The operation a ledger record authorised (0: none yet).
    mapping(bytes32 recordHash => uint64 operationId) public operationOf;
    /// The ledger record that authorised an operation.
    mapping(uint64 operationId => bytes32 recordHash) public recordOf;

    event TokenAdded(address indexed token);
    event TokenRemoved(address indexed token);
    /// One token movement and the ledger record (sequence number and hash) that authorised it.
    event TokenOperation(
        uint64 indexed operationId,
        bytes32 indexed recordHash,
        address indexed token,
        uint64 seq,
        Kind kind,
        address from,
        address to,
        uint256 amount
    );

    error ZeroAddress();
    error UnknownToken(address token);
    error TokenAlreadyAdded(address token);
    error ZeroAmount();
    error NoRecord();
    /// The record already authorised operation `operationId`: one record, one movement.
    error RecordAlreadyUsed(bytes32 recordHash, uint64 operationId);
    error ForcedTransferFailed(address token, address from, address to, uint256 amount);

    constructor(address admin, uint256 ledgerChainId_, address ledger_) {
        if (admin == address(0) || ledger_ == address(0)) revert ZeroAddress();
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        ledgerChainId = ledgerChainId_;
        ledger = ledger_;
    }

    function addToken(address token) external onlyRole(DEFAULT_ADMIN_ROLE) {
        if (token == address(0)) revert ZeroAddress();
        if (isToken[token]) revert TokenAlreadyAdded(token);
        isToken[token] = true;
        emit TokenAdded(token);
    }

    function removeToken(address token) external onlyRole(DEFAULT_ADMIN_ROLE) {
        if (!isToken[token]) revert UnknownToken(token);
        isToken[token] = false;
        emit TokenRemoved(token);
    }

    /// Issues units to `to`, authorised by ledger record `seq` (e.g. UNITS_ISSUED).
    function mint(address token, address to, uint256 amount, uint64 seq, bytes32 recordHash)
        external
        onlyRole(OPERATOR_ROLE)
        whenNotPaused
        returns (uint64 operationId)
    {
        operationId = _link(token, Kind.Mint, address(0), to, amount, seq, recordHash);
        IERC3643Token(token).mint(to, amount);
    }

    /// Redeems units from `from`, authorised by ledger record `seq` (e.g. UNITS_REDEEMED).
    function burn(address token, address from, uint256 amount, uint64 seq, bytes32 recordHash)
        external
        onlyRole(OPERATOR_ROLE)
        whenNotPaused
        returns (uint64 operationId)
    {
        operationId = _link(token, Kind.Burn, from, address(0), amount, seq, recordHash);
        IERC3643Token(token).burn(from, amount);
    }

    /// Moves units between investors, authorised by ledger record `seq` (e.g. UNITS_TRANSFERRED).
    function forcedTransfer(
        address token,
        address from,
        address to,
        uint256 amount,
        uint64 seq,
        bytes32 recordHash
    ) external onlyRole(OPERATOR_ROLE) whenNotPaused returns (uint64 operationId) {
        operationId = _link(token, Kind.ForcedTransfer, from, to, amount, seq, recordHash);
        if (!IERC3643Token(token).forcedTransfer(from, to, amount)) {
            revert ForcedTransferFailed(token, from, to, amount);
        }
    }

    function pause() external onlyRole(PAUSER_ROLE) {
        _pause();
    }

    function unpause() external onlyRole(PAUSER_ROLE) {
        _unpause();
    }

    function _link(
        address token,
        Kind kind,
        address from,
        address to,
        uint256 amount,
        uint64 seq,
        bytes32 recordHash
    ) private returns (uint64 operationId) {
        if (!isToken[token]) revert UnknownToken(token);
        if (amount == 0) revert ZeroAmount();
        if (seq == 0 || recordHash == bytes32(0)) revert NoRecord();
        uint64 used = operationOf[recordHash];
        if (used != 0) revert RecordAlreadyUsed(recordHash, used);
        operationId = ++operations;
        operationOf[recordHash] = operationId;
        recordOf[operationId] = recordHash;
        emit TokenOperation(operationId, recordHash, token, seq, kind, from, to, amount);
    }
}
