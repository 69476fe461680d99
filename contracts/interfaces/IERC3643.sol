// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

// The few ERC-3643 (T-REX 4.1.x) functions our contracts call, declared here from the
// standard's ABI so that nothing of T-REX's GPL sources is imported (docs/LICENSING.md).

/// The token: an agent mints, burns and forces transfers; compliance and registry are bound to it.
interface IERC3643Token {
    function identityRegistry() external view returns (address);
    function compliance() external view returns (address);
    function totalSupply() external view returns (uint256);
    function balanceOf(address wallet) external view returns (uint256);
    function mint(address to, uint256 amount) external;
    function burn(address from, uint256 amount) external;
    function forcedTransfer(address from, address to, uint256 amount) external returns (bool);
}

/// The identity registry: a wallet's ONCHAINID and its investor country (ISO 3166-1 numeric).
interface IERC3643IdentityRegistry {
    function identity(address wallet) external view returns (address);
    function investorCountry(address wallet) external view returns (uint16);
}

/// The modular compliance a module serves.
interface IERC3643ModularCompliance {
    function getTokenBound() external view returns (address);
}

/// What ModularCompliance calls on a compliance module (T-REX's IModule ABI).
interface IComplianceModule {
    event ComplianceBound(address indexed compliance);
    event ComplianceUnbound(address indexed compliance);

    function bindCompliance(address compliance) external;
    function unbindCompliance(address compliance) external;
    function moduleTransferAction(address from, address to, uint256 value) external;
    function moduleMintAction(address to, uint256 value) external;
    function moduleBurnAction(address from, uint256 value) external;
    function moduleCheck(address from, address to, uint256 value, address compliance) external view returns (bool);
    function isComplianceBound(address compliance) external view returns (bool);
    function canComplianceBind(address compliance) external view returns (bool);
    function isPlugAndPlay() external pure returns (bool);
    function name() external pure returns (string memory);
}
