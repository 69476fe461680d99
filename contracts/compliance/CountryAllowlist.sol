// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ComplianceModule} from "./ComplianceModule.sol";

/// @title Units may only go to investors whose registered country is on the allowlist.
/// @notice The country is the one the transfer agent registered in the identity registry
/// (ISO 3166-1 numeric). Checked on mints and transfers; an empty list allows nobody.
contract CountryAllowlist is ComplianceModule {
    mapping(address compliance => mapping(uint16 country => bool)) private _allowed;

    event CountryAllowed(address indexed compliance, uint16 country);
    event CountryDisallowed(address indexed compliance, uint16 country);

    error CountryAlreadyAllowed(uint16 country);
    error CountryNotAllowed(uint16 country);

    function name() external pure returns (string memory) {
        return "CountryAllowlist";
    }

    function allowCountries(uint16[] calldata countries) external onlyBoundCompliance {
        for (uint256 i = 0; i < countries.length; i++) {
            if (_allowed[msg.sender][countries[i]]) revert CountryAlreadyAllowed(countries[i]);
            _allowed[msg.sender][countries[i]] = true;
            emit CountryAllowed(msg.sender, countries[i]);
        }
    }

    function disallowCountries(uint16[] calldata countries) external onlyBoundCompliance {
        for (uint256 i = 0; i < countries.length; i++) {
            if (!_allowed[msg.sender][countries[i]]) revert CountryNotAllowed(countries[i]);
            _allowed[msg.sender][countries[i]] = false;
            emit CountryDisallowed(msg.sender, countries[i]);
        }
    }

    function isCountryAllowed(address compliance, uint16 country) external view returns (bool) {
        return _allowed[compliance][country];
    }

    function moduleCheck(address, address to, uint256, address compliance) external view returns (bool) {
        return _allowed[compliance][_registry(compliance).investorCountry(to)];
    }
}
