// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// A contract that exercises what the execution tests compare: storage writes and deletions,
/// events, reverts with reasons and custom errors, value transfers, contract creation, gas
/// burning and self-destruction.
contract Probe {
    uint256 public count;
    mapping(uint256 => uint256) public slots;

    event Bumped(address indexed who, uint256 indexed n, bytes32 note);
    event Paid(address indexed to, uint256 amount);

    error Custom(uint256 code);

    function bump(bytes32 note) external {
        count += 1;
        emit Bumped(msg.sender, count, note);
    }

    function set(uint256 k, uint256 v) external {
        slots[k] = v;
    }

    function clear(uint256 k) external {
        delete slots[k];
    }

    function fill(uint256 n) external {
        for (uint256 i = 0; i < n; i++) {
            slots[i] = i + 1;
        }
    }

    function fail(string calldata why) external pure {
        revert(why);
    }

    function failCustom(uint256 code) external pure {
        revert Custom(code);
    }

    function pay(address payable to) external payable {
        to.transfer(msg.value);
        emit Paid(to, msg.value);
    }

    function spawn(bytes memory code) external returns (address a) {
        assembly {
            a := create(0, add(code, 0x20), mload(code))
        }
    }

    function spawnAndDestroy() external returns (address a) {
        a = address(new Ephemeral());
        Ephemeral(payable(a)).destroy(payable(msg.sender));
    }

    function context() external view returns (uint256 number, uint256 timestamp, address coinbase,
            uint256 prevrandao, uint256 basefee, uint256 chainid, uint256 gaslimit) {
        return (block.number, block.timestamp, block.coinbase, block.prevrandao, block.basefee,
                block.chainid, block.gaslimit);
    }

    function ancestor(uint256 back) external view returns (bytes32) {
        return blockhash(block.number - back);
    }

    function destroy(address payable to) external {
        selfdestruct(to);
    }

    receive() external payable {}
}

contract Ephemeral {
    function destroy(address payable to) external {
        selfdestruct(to);
    }

    receive() external payable {}
}
