// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ComplianceModule} from "./ComplianceModule.sol";

/// @title A mint may not take the token's total supply above the cap (the fund's maximum size).
/// @notice Until a cap is set it is zero, and nothing can be minted: the cap is a decision,
/// never a default.
contract SupplyCap is ComplianceModule {
    mapping(address compliance => uint256) private _cap;

    event SupplyCapSet(address indexed compliance, uint256 cap);

    function name() external pure returns (string memory) {
        return "SupplyCap";
    }

    function setSupplyCap(uint256 cap) external onlyBoundCompliance {
        _cap[msg.sender] = cap;
        emit SupplyCapSet(msg.sender, cap);
    }

    function supplyCap(address compliance) external view returns (uint256) {
        return _cap[compliance];
    }

    function moduleCheck(address from, address, uint256 value, address compliance) external view returns (bool) {
        if (from != address(0)) return true;
        return _token(compliance).totalSupply() + value <= _cap[compliance];
    }
}
