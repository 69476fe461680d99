// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {InvestorBalances} from "./ComplianceModule.sol";

/// @title No investor may hold more than the maximum, summed over all their wallets.
/// @notice An investor is an ONCHAINID. Checked on mints and transfers; moving units between
/// two wallets of one investor is always allowed. Until a maximum is set it is zero, and no
/// investor may receive anything. Binds only while the token's supply is zero.
contract MaxBalancePerInvestor is InvestorBalances {
    mapping(address compliance => uint256) private _max;

    event MaxBalanceSet(address indexed compliance, uint256 max);

    function name() external pure returns (string memory) {
        return "MaxBalancePerInvestor";
    }

    function setMaxBalance(uint256 max) external onlyBoundCompliance {
        _max[msg.sender] = max;
        emit MaxBalanceSet(msg.sender, max);
    }

    function maxBalance(address compliance) external view returns (uint256) {
        return _max[compliance];
    }

    function moduleCheck(address from, address to, uint256 value, address compliance) external view returns (bool) {
        address receiver = _investor(compliance, to);
        if (from != address(0) && _investor(compliance, from) == receiver) return true;
        return investorBalance(compliance, receiver) + value <= _max[compliance];
    }
}
