// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {
    IComplianceModule,
    IERC3643IdentityRegistry,
    IERC3643ModularCompliance,
    IERC3643Token
} from "../interfaces/IERC3643.sol";

/// @title The part every SMART-TA compliance module shares: binding to ModularCompliance
/// contracts and state kept per compliance, so one deployed module serves many share classes.
/// @notice A module is configured through `ModularCompliance.callModuleFunction` (so only the
/// compliance owner configures it, and the module sees the compliance as the caller), and
/// ModularCompliance calls the actions after every mint, transfer and burn. Modules are not
/// upgradeable: to change one, deploy the new version and swap it with removeModule/addModule.
abstract contract ComplianceModule is IComplianceModule {
    mapping(address compliance => bool) private _bound;

    error ZeroAddress();
    /// Only the compliance itself may bind or unbind itself (through addModule/removeModule).
    error OnlyTheCompliance(address caller, address compliance);
    error AlreadyBound(address compliance);
    /// The caller is not a compliance this module is bound to.
    error NotBound(address caller);
    /// This module keeps balances from the first unit on: bind it before anything is minted.
    error CannotBind(address compliance);

    modifier onlyBoundCompliance() {
        if (!_bound[msg.sender]) revert NotBound(msg.sender);
        _;
    }

    function bindCompliance(address compliance) external {
        if (compliance == address(0)) revert ZeroAddress();
        if (msg.sender != compliance) revert OnlyTheCompliance(msg.sender, compliance);
        if (_bound[compliance]) revert AlreadyBound(compliance);
        if (!isPlugAndPlay() && !canComplianceBind(compliance)) revert CannotBind(compliance);
        _bound[compliance] = true;
        emit ComplianceBound(compliance);
    }

    function unbindCompliance(address compliance) external onlyBoundCompliance {
        if (msg.sender != compliance) revert OnlyTheCompliance(msg.sender, compliance);
        _bound[compliance] = false;
        emit ComplianceUnbound(compliance);
    }

    function isComplianceBound(address compliance) external view returns (bool) {
        return _bound[compliance];
    }

    function canComplianceBind(address) public view virtual returns (bool) {
        return true;
    }

    function isPlugAndPlay() public pure virtual returns (bool) {
        return true;
    }

    function moduleTransferAction(address from, address to, uint256 value) external virtual onlyBoundCompliance {}

    function moduleMintAction(address to, uint256 value) external virtual onlyBoundCompliance {}

    function moduleBurnAction(address from, uint256 value) external virtual onlyBoundCompliance {}

    function _token(address compliance) internal view returns (IERC3643Token) {
        return IERC3643Token(IERC3643ModularCompliance(compliance).getTokenBound());
    }

    function _registry(address compliance) internal view returns (IERC3643IdentityRegistry) {
        return IERC3643IdentityRegistry(_token(compliance).identityRegistry());
    }
}

/// @title A module that keeps each investor's balance across all their wallets, from the
/// token's first unit on, so it binds only while the token's supply is zero.
/// @notice An investor is an ONCHAINID; a wallet without one counts as its own investor. If
/// the identity registry later moves a wallet to another identity, balances are taken off the
/// new identity without going below zero, so a redemption is never blocked by the drift.
abstract contract InvestorBalances is ComplianceModule {
    mapping(address compliance => mapping(address investor => uint256)) private _balances;

    function isPlugAndPlay() public pure override returns (bool) {
        return false;
    }

    function canComplianceBind(address compliance) public view override returns (bool) {
        address token = IERC3643ModularCompliance(compliance).getTokenBound();
        return token != address(0) && IERC3643Token(token).totalSupply() == 0;
    }

    /// The units an investor (an ONCHAINID, or a wallet without one) holds under `compliance`.
    function investorBalance(address compliance, address investor) public view returns (uint256) {
        return _balances[compliance][investor];
    }

    function moduleMintAction(address to, uint256 value) external override onlyBoundCompliance {
        _add(msg.sender, _investor(msg.sender, to), value);
    }

    function moduleBurnAction(address from, uint256 value) external override onlyBoundCompliance {
        _sub(msg.sender, _investor(msg.sender, from), value);
    }

    function moduleTransferAction(address from, address to, uint256 value) external override onlyBoundCompliance {
        address a = _investor(msg.sender, from);
        address b = _investor(msg.sender, to);
        if (a != b) {
            _sub(msg.sender, a, value);
            _add(msg.sender, b, value);
        }
    }

    function _investor(address compliance, address wallet) internal view returns (address) {
        address id = _registry(compliance).identity(wallet);
        return id == address(0) ? wallet : id;
    }

    function _add(address compliance, address investor, uint256 value) private {
        uint256 before = _balances[compliance][investor];
        _balances[compliance][investor] = before + value;
        if (before == 0 && value > 0) _holderJoined(compliance);
    }

    function _sub(address compliance, address investor, uint256 value) private {
        uint256 before = _balances[compliance][investor];
        uint256 left = before > value ? before - value : 0;
        _balances[compliance][investor] = left;
        if (before > 0 && left == 0) _holderLeft(compliance);
    }

    function _holderJoined(address compliance) internal virtual {}

    function _holderLeft(address compliance) internal virtual {}
}
