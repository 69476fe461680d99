// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {InvestorBalances} from "./ComplianceModule.sol";

/// @title At most a given number of investors may hold units at once (a private placement's
/// or a fund's maximum number of holders); T-REX 4.1.6 has no such module.
/// @notice An investor is an ONCHAINID, however many wallets it has. A movement that would
/// bring one more investor in is refused when the count is at the maximum, unless the sender
/// leaves at the same time (it sends everything it holds). Until a maximum is set it is zero.
/// Binds only while the token's supply is zero.
contract MaxHolders is InvestorBalances {
    mapping(address compliance => uint256) private _max;
    mapping(address compliance => uint256) private _holders;

    event MaxHoldersSet(address indexed compliance, uint256 max);

    function name() external pure returns (string memory) {
        return "MaxHolders";
    }

    function setMaxHolders(uint256 max) external onlyBoundCompliance {
        _max[msg.sender] = max;
        emit MaxHoldersSet(msg.sender, max);
    }

    function maxHolders(address compliance) external view returns (uint256) {
        return _max[compliance];
    }

    /// Investors holding a non-zero balance under `compliance`.
    function holders(address compliance) external view returns (uint256) {
        return _holders[compliance];
    }

    function moduleCheck(address from, address to, uint256 value, address compliance) external view returns (bool) {
        if (value == 0) return true;
        address receiver = _investor(compliance, to);
        if (investorBalance(compliance, receiver) > 0) return true;
        uint256 count = _holders[compliance] + 1;
        if (from != address(0)) {
            address sender = _investor(compliance, from);
            if (sender == receiver) return true;
            if (investorBalance(compliance, sender) == value) count -= 1;
        }
        return count <= _max[compliance];
    }

    function _holderJoined(address compliance) internal override {
        _holders[compliance] += 1;
    }

    function _holderLeft(address compliance) internal override {
        _holders[compliance] -= 1;
    }
}
