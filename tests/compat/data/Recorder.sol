// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.20;

/// A small contract for the client compatibility tests: state, an indexed event, a revert.
contract Recorder {
    event Recorded(address indexed who, uint256 indexed count, string note);

    uint256 public count;
    mapping(address => string) public lastNote;

    function record(string calldata note) external returns (uint256) {
        count += 1;
        lastNote[msg.sender] = note;
        emit Recorded(msg.sender, count, note);
        return count;
    }

    function refuse() external pure {
        revert("not allowed");
    }

    function stamp() external view returns (uint256) {
        return block.timestamp;
    }
}
