// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ComplianceModule} from "./ComplianceModule.sol";

/// @title Units may not go to investors whose registered country is on the blocklist.
/// @notice The country is the one the transfer agent registered in the identity registry
/// (ISO 3166-1 numeric). Checked on mints and transfers.
contract CountryBlocklist is ComplianceModule {
    mapping(address compliance => mapping(uint16 country => bool)) private _blocked;

    event CountryBlocked(address indexed compliance, uint16 country);
    event CountryUnblocked(address indexed compliance, uint16 country);

    error CountryAlreadyBlocked(uint16 country);
    error CountryNotBlocked(uint16 country);

    function name() external pure returns (string memory) {
        return "CountryBlocklist";
    }

    function blockCountries(uint16[] calldata countries) external onlyBoundCompliance {
        for (uint256 i = 0; i < countries.length; i++) {
            if (_blocked[msg.sender][countries[i]]) revert CountryAlreadyBlocked(countries[i]);
            _blocked[msg.sender][countries[i]] = true;
            emit CountryBlocked(msg.sender, countries[i]);
        }
    }

    function unblockCountries(uint16[] calldata countries) external onlyBoundCompliance {
        for (uint256 i = 0; i < countries.length; i++) {
            if (!_blocked[msg.sender][countries[i]]) revert CountryNotBlocked(countries[i]);
            _blocked[msg.sender][countries[i]] = false;
            emit CountryUnblocked(msg.sender, countries[i]);
        }
    }

    function isCountryBlocked(address compliance, uint16 country) external view returns (bool) {
        return _blocked[compliance][country];
    }

    function moduleCheck(address, address to, uint256, address compliance) external view returns (bool) {
        return !_blocked[compliance][_registry(compliance).investorCountry(to)];
    }
}
