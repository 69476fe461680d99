// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";

/// @title CeFi Event Ledger: the transfer agent's append-only system of record.
/// @notice Every record carries who (actor, attestationId), what (eventType, dataHash; the delta
/// itself travels in the log), when (block timestamp and height) and proof (previousHash), and
/// the records form one hash chain anchored to this contract on this chain. The hashes are
/// exactly those of chain/ledger/record.py and chain/attest/eip712.py; docs/contracts.md gives
/// the calldata and log layouts, chain/ledger/onchain.py encodes and decodes them. Nothing here
/// can change or delete a record; pausing stops appends, never reads.
contract CeFiEventLedger is EIP712, AccessControl, Pausable {
    /// May call append/appendBatch.
    bytes32 public constant WRITER_ROLE = keccak256("WRITER_ROLE");
    /// An actor whose attested events may be recorded (the observer checks signer authorisation
    /// from the RoleGranted/RoleRevoked logs of this role).
    bytes32 public constant ATTESTER_ROLE = keccak256("ATTESTER_ROLE");
    /// May pause and unpause appends.
    bytes32 public constant PAUSER_ROLE = keccak256("PAUSER_ROLE");
    /// A writer that may also append records whose attestation cannot be checked on chain
    /// (scheme 2, BLS12-381 aggregates, before the Prague precompiles): the proof stays in the
    /// calldata, named by the record's attestationId, and the observer verifies it off chain.
    bytes32 public constant OFFCHAIN_ATTESTATION_ROLE = keccak256("OFFCHAIN_ATTESTATION_ROLE");

    bytes32 public constant RECORD_TYPEHASH = keccak256(
        "LedgerRecord(uint64 seq,address actor,bytes32 eventType,bytes32 dataHash,uint64 nonce,"
        "bytes32 attestationId,bytes32 previousHash,uint64 timestamp,uint64 blockHeight)"
    );
    bytes32 public constant EVENT_TYPEHASH =
        keccak256("LedgerEvent(address actor,bytes32 eventType,bytes32 dataHash,uint64 nonce)");
    bytes32 public constant ANCHOR_TAG = keccak256("SMART-TA CeFi Event Ledger/v1");

    uint8 public constant SCHEME_EIP712 = 1;
    uint8 public constant SCHEME_BLS12381_AGGREGATE = 2;

    /// secp256k1n / 2: a higher s is the malleable twin of a valid signature.
    uint256 private constant HALF_ORDER = 0x7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0;
    uint256 private constant BLS_PUBKEY_LEN = 48;
    uint256 private constant BLS_SIGNATURE_LEN = 96;
    /// The log's ABI head: count, previousHash, headHash, offset and length of `records`.
    uint256 private constant LOG_HEAD = 160;
    /// The top bit of every byte: event types are 7-bit ASCII, so any client decodes them.
    bytes32 private constant NON_ASCII = 0x8080808080808080808080808080808080808080808080808080808080808080;

    /// previousHash of record 1: keccak256(abi.encode(ANCHOR_TAG, chainId, address(this))).
    bytes32 public immutable anchor;

    // Declared right after Pausable's flag so that the count shares its storage slot: an append
    // reads both with one cold SLOAD.
    uint64 private _count;
    bytes32 private _head;
    /// The last nonce recorded per actor; a new record's nonce must be greater.
    mapping(address actor => uint64) public lastNonce;

    /// The records one call appended, `firstSeq` to `firstSeq + count - 1`. `records` packs,
    /// per record: actor(20) typeLength(1) eventType(typeLength) nonce(8) scheme(1)
    /// attestationId(32) deltaLength(2) delta. previousHash links the first record; each next
    /// one links to the record hash before it; headHash is the last record's hash. Timestamp and
    /// height are the log's block. One log per call rather than per record: a log's fixed cost
    /// (375 gas, 375 per topic, ABI padding) would otherwise be a fifth of a record's gas.
    event RecordsAppended(
        uint64 indexed firstSeq, uint64 count, bytes32 previousHash, bytes32 headHash, bytes records
    );

    error ZeroAdmin();
    error EmptyBatch();
    /// The packed batch ends inside record `index`, which starts at byte `offset`.
    error MalformedBatch(uint256 index, uint256 offset);
    error InvalidEventType(uint256 index);
    error EmptyDelta(uint256 index);
    /// The log carries a delta's length in two bytes.
    error DeltaTooLong(uint256 index, uint256 length);
    error ActorNotAttester(uint256 index, address actor);
    error NonceNotIncreasing(uint256 index, address actor, uint64 nonce, uint64 lastNonce);
    error UnknownScheme(uint256 index, uint8 scheme);
    error SchemeNeedsRole(uint256 index, uint8 scheme, bytes32 role);
    error MalformedProof(uint256 index, uint8 scheme, uint256 length);
    error SignatureMismatch(uint256 index, address actor, address recovered);

    /// The state of one append call, kept in memory until the call ends.
    struct Cursor {
        uint256 index; // position of the record in the call, for errors
        uint64 firstSeq;
        uint64 seq; // last sequence number assigned
        bytes32 previousHash; // the head before the call
        bytes32 head; // the last record hash
        address actor; // the actor already checked, whose nonce is cached below
        uint64 lastNonce;
        uint256 buffer; // start of the log data being built
        uint256 out; // where the next record goes in it
        bytes32 domain; // the EIP-712 domain separator
    }

    constructor(address admin) EIP712("SMART-TA CeFi Event Ledger", "1") {
        if (admin == address(0)) revert ZeroAdmin();
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        bytes32 a = keccak256(abi.encode(ANCHOR_TAG, block.chainid, address(this)));
        anchor = a;
        _head = a;
    }

    /// Number of records and the record hash of the last one (the anchor while empty).
    function head() external view returns (uint64 count, bytes32 headHash) {
        return (_count, _head);
    }

    /// The EIP-712 domain separator actors sign under (name "SMART-TA CeFi Event Ledger", "1").
    function domainSeparator() external view returns (bytes32) {
        return _domainSeparatorV4();
    }

    /// The EIP-712 digest an actor signs for an event (scheme 1).
    function eventDigest(address actor, bytes32 eventType, bytes32 dataHash, uint64 nonce)
        external
        view
        returns (bytes32)
    {
        return _eventDigest(_domainSeparatorV4(), actor, eventType, dataHash, nonce);
    }

    /// A record's hash, exactly as appends compute it (chain.ledger.record.record_hash).
    function hashRecord(
        uint64 seq,
        address actor,
        bytes32 eventType,
        bytes32 dataHash,
        uint64 nonce,
        bytes32 attestationId,
        bytes32 previousHash,
        uint64 timestamp,
        uint64 blockHeight
    ) external pure returns (bytes32) {
        return _recordHash(seq, actor, eventType, dataHash, nonce, attestationId, previousHash, timestamp, blockHeight);
    }

    /// Appends one record; returns its sequence number and record hash.
    function append(
        address actor,
        bytes32 eventType,
        uint64 nonce,
        uint8 scheme,
        bytes calldata delta,
        bytes calldata proof
    ) external onlyRole(WRITER_ROLE) whenNotPaused returns (uint64 seq, bytes32 recordHash) {
        Cursor memory c = _open();
        _record(
            c, actor, eventType, _typeLength(eventType), nonce, scheme,
            _at(proof), proof.length, _at(delta), delta.length
        );
        return _close(c);
    }

    /// Appends records packed back to back, each
    /// actor(20) typeLength(1) eventType(typeLength) nonce(8) scheme(1) proofLength(2)
    /// deltaLength(2) proof delta, big-endian (chain/ledger/onchain.py packs them). All or none:
    /// a bad record reverts the whole batch with an error naming its index. Returns the last
    /// record's sequence number and hash.
    function appendBatch(bytes calldata batch)
        external
        onlyRole(WRITER_ROLE)
        whenNotPaused
        returns (uint64 lastSeq, bytes32 lastHash)
    {
        if (batch.length == 0) revert EmptyBatch();
        Cursor memory c = _open();
        uint256 at = _at(batch);
        uint256 stop = at + batch.length;
        while (at < stop) {
            // Fixed fields by whole-word loads; every length is checked against the batch end
            // before anything at that length is read.
            address actor;
            bytes32 eventType;
            uint256 typeLen;
            uint256 word;
            uint256 mid;
            unchecked {
                if (at + 21 > stop) revert MalformedBatch(c.index, at - _at(batch));
                assembly {
                    word := calldataload(at)
                    eventType := calldataload(add(at, 21))
                }
                actor = address(uint160(word >> 96));
                typeLen = (word >> 88) & 0xff;
                if (typeLen == 0 || typeLen > 32) revert InvalidEventType(c.index);
                mid = at + 21 + typeLen;
                if (mid + 13 > stop) revert MalformedBatch(c.index, at - _at(batch));
                assembly {
                    word := calldataload(mid)
                }
                // Keep the event type's own bytes; the rest of its word is the next fields.
                eventType &= ~bytes32(type(uint256).max >> (typeLen * 8));
                uint256 proofLen = (word >> 168) & 0xffff;
                uint256 deltaLen = (word >> 152) & 0xffff;
                uint256 next = mid + 13 + proofLen + deltaLen;
                if (next > stop) revert MalformedBatch(c.index, at - _at(batch));
                _record(
                    c, actor, eventType, typeLen, word >> 192, (word >> 184) & 0xff,
                    mid + 13, proofLen, mid + 13 + proofLen, deltaLen
                );
                at = next;
            }
        }
        return _close(c);
    }

    function pause() external onlyRole(PAUSER_ROLE) {
        _pause();
    }

    function unpause() external onlyRole(PAUSER_ROLE) {
        _unpause();
    }

    function _at(bytes calldata data) private pure returns (uint256 offset) {
        assembly {
            offset := data.offset
        }
    }

    function _open() private view returns (Cursor memory c) {
        c.firstSeq = _count + 1;
        c.seq = c.firstSeq - 1;
        c.previousHash = _head;
        c.head = c.previousHash;
        c.domain = _domainSeparatorV4();
        uint256 buffer;
        assembly ("memory-safe") {
            buffer := mload(0x40)
        }
        c.buffer = buffer;
        c.out = buffer + LOG_HEAD;
        _keepPast(c.out);
    }

    function _close(Cursor memory c) private returns (uint64, bytes32) {
        lastNonce[c.actor] = c.lastNonce;
        _count = c.seq;
        _head = c.head;
        uint256 buffer = c.buffer;
        uint256 length = c.out - buffer - LOG_HEAD;
        uint256 count = c.seq - c.firstSeq + 1;
        bytes32 topic = RecordsAppended.selector;
        uint256 firstSeq = c.firstSeq;
        bytes32 previousHash = c.previousHash;
        bytes32 headHash = c.head;
        // The log data is already in memory, built record by record: emitting it through
        // Solidity would copy it once more.
        assembly ("memory-safe") {
            mstore(buffer, count)
            mstore(add(buffer, 0x20), previousHash)
            mstore(add(buffer, 0x40), headHash)
            mstore(add(buffer, 0x60), 0x80)
            mstore(add(buffer, 0x80), length)
            let end := add(add(buffer, LOG_HEAD), length)
            mstore(end, 0) // ABI zero padding of `records`
            log2(buffer, add(LOG_HEAD, and(add(length, 31), not(31))), topic, firstSeq)
        }
        return (c.seq, c.head);
    }

    /// Checks one record, appends it to the log data and advances the hash chain. `proofAt` and
    /// `deltaAt` are calldata offsets.
    function _record(
        Cursor memory c,
        address actor,
        bytes32 eventType,
        uint256 typeLen,
        uint256 nonce,
        uint256 scheme,
        uint256 proofAt,
        uint256 proofLen,
        uint256 deltaAt,
        uint256 deltaLen
    ) private {
        uint256 index = c.index;
        if (typeLen == 0 || eventType & NON_ASCII != 0) revert InvalidEventType(index);
        if (deltaLen == 0) revert EmptyDelta(index);
        if (deltaLen > 0xffff) revert DeltaTooLong(index, deltaLen);
        if (actor != c.actor || actor == address(0)) _switchActor(c, actor);
        if (nonce <= c.lastNonce) revert NonceNotIncreasing(index, actor, uint64(nonce), c.lastNonce);
        c.lastNonce = uint64(nonce);

        // Append actor(20) typeLength(1) eventType nonce(8) scheme(1) attestationId(32)
        // deltaLength(2) delta to the log data, hashing the proof and the delta on the way.
        uint256 w = c.out;
        uint256 end;
        bytes32 attestationId;
        bytes32 dataHash;
        assembly ("memory-safe") {
            end := add(add(add(w, 64), typeLen), deltaLen)
            let scratch := and(add(end, 31), not(31))
            mstore8(scratch, scheme)
            calldatacopy(add(scratch, 1), proofAt, proofLen)
            attestationId := keccak256(scratch, add(proofLen, 1))
            // Each mstore writes a whole word; the next field overwrites its tail.
            mstore(w, shl(96, actor))
            mstore8(add(w, 20), typeLen)
            let q := add(add(w, 21), typeLen)
            mstore(add(w, 21), eventType)
            mstore(q, shl(192, nonce))
            mstore8(add(q, 8), scheme)
            mstore(add(q, 9), attestationId)
            mstore(add(q, 41), shl(240, deltaLen))
            calldatacopy(add(q, 43), deltaAt, deltaLen)
            dataHash := keccak256(add(q, 43), deltaLen)
        }
        _keepPast(end);

        if (scheme == SCHEME_EIP712) {
            _checkEip712(c.domain, index, actor, eventType, dataHash, nonce, proofAt, proofLen);
        } else if (scheme == SCHEME_BLS12381_AGGREGATE) {
            _checkDeferred(index, scheme, proofAt, proofLen);
        } else {
            revert UnknownScheme(index, uint8(scheme));
        }

        uint256 seq;
        unchecked {
            seq = c.seq + 1;
            c.index = index + 1;
        }
        bytes32 recordHash = _recordHash(
            seq, actor, eventType, dataHash, nonce, attestationId, c.head, block.timestamp, block.number
        );
        c.seq = uint64(seq);
        c.head = recordHash;
        c.out = end;
    }

    /// A new actor in this call: check its role, keep the previous actor's last nonce and
    /// load this one's. An actor's role cannot change within a call, so consecutive records of
    /// one actor skip both storage reads.
    function _switchActor(Cursor memory c, address actor) private {
        if (actor == address(0) || !hasRole(ATTESTER_ROLE, actor)) revert ActorNotAttester(c.index, actor);
        if (c.actor != address(0)) lastNonce[c.actor] = c.lastNonce;
        c.actor = actor;
        c.lastNonce = lastNonce[actor];
    }

    function _checkEip712(
        bytes32 domain,
        uint256 index,
        address actor,
        bytes32 eventType,
        bytes32 dataHash,
        uint256 nonce,
        uint256 proofAt,
        uint256 proofLen
    ) private view {
        if (proofLen != 65) revert MalformedProof(index, SCHEME_EIP712, proofLen);
        bytes32 digest = _eventDigest(domain, actor, eventType, dataHash, nonce);
        address signer;
        bool wellFormed;
        assembly ("memory-safe") {
            let v := byte(0, calldataload(add(proofAt, 64)))
            let s := calldataload(add(proofAt, 32))
            wellFormed := and(or(eq(v, 27), eq(v, 28)), iszero(gt(s, HALF_ORDER)))
            let m := mload(0x40)
            // ecrecover(digest, v, r, s); it returns no data when the signature is invalid.
            mstore(m, digest)
            mstore(add(m, 0x20), v)
            calldatacopy(add(m, 0x40), proofAt, 0x40)
            let ok := staticcall(gas(), 1, m, 0x80, m, 0x20)
            if and(ok, eq(returndatasize(), 0x20)) { signer := mload(m) }
        }
        if (!wellFormed) revert MalformedProof(index, SCHEME_EIP712, proofLen);
        if (signer != actor) revert SignatureMismatch(index, actor, signer);
    }

    /// Scheme 2 is admitted only from a writer trusted to have checked it, and only if it has
    /// the shape chain/attest/bls.py writes: k (1 byte) || k public keys || aggregate signature.
    function _checkDeferred(uint256 index, uint256 scheme, uint256 proofAt, uint256 proofLen) private view {
        if (!hasRole(OFFCHAIN_ATTESTATION_ROLE, msg.sender)) {
            revert SchemeNeedsRole(index, uint8(scheme), OFFCHAIN_ATTESTATION_ROLE);
        }
        uint256 k;
        assembly {
            k := byte(0, calldataload(proofAt))
        }
        if (proofLen == 0 || k == 0 || proofLen != 1 + k * BLS_PUBKEY_LEN + BLS_SIGNATURE_LEN) {
            revert MalformedProof(index, uint8(scheme), proofLen);
        }
    }

    /// keccak256(abi.encode(RECORD_TYPEHASH, seq, actor, eventType, dataHash, nonce,
    /// attestationId, previousHash, uint64(timestamp), uint64(blockHeight))), in scratch memory.
    function _recordHash(
        uint256 seq,
        address actor,
        bytes32 eventType,
        bytes32 dataHash,
        uint256 nonce,
        bytes32 attestationId,
        bytes32 previousHash,
        uint256 time,
        uint256 height
    ) private pure returns (bytes32 h) {
        bytes32 typehash = RECORD_TYPEHASH;
        assembly ("memory-safe") {
            let m := mload(0x40)
            mstore(m, typehash)
            mstore(add(m, 0x20), and(seq, 0xffffffffffffffff))
            mstore(add(m, 0x40), and(actor, 0xffffffffffffffffffffffffffffffffffffffff))
            mstore(add(m, 0x60), eventType)
            mstore(add(m, 0x80), dataHash)
            mstore(add(m, 0xa0), and(nonce, 0xffffffffffffffff))
            mstore(add(m, 0xc0), attestationId)
            mstore(add(m, 0xe0), previousHash)
            mstore(add(m, 0x100), and(time, 0xffffffffffffffff))
            mstore(add(m, 0x120), and(height, 0xffffffffffffffff))
            h := keccak256(m, 0x140)
        }
    }

    /// keccak256(0x1901 || domain || keccak256(abi.encode(EVENT_TYPEHASH, actor, eventType,
    /// dataHash, nonce))), in scratch memory.
    function _eventDigest(bytes32 domain, address actor, bytes32 eventType, bytes32 dataHash, uint256 nonce)
        private
        pure
        returns (bytes32 digest)
    {
        bytes32 typehash = EVENT_TYPEHASH;
        assembly ("memory-safe") {
            let m := mload(0x40)
            mstore(m, typehash)
            mstore(add(m, 0x20), and(actor, 0xffffffffffffffffffffffffffffffffffffffff))
            mstore(add(m, 0x40), eventType)
            mstore(add(m, 0x60), dataHash)
            mstore(add(m, 0x80), and(nonce, 0xffffffffffffffff))
            let structHash := keccak256(m, 0xa0)
            mstore(m, 0x1901)
            mstore(add(m, 0x20), domain)
            mstore(add(m, 0x40), structHash)
            digest := keccak256(add(m, 0x1e), 0x42)
        }
    }

    /// The length of an ABI bytes32 event type: up to its last non-zero byte.
    function _typeLength(bytes32 eventType) private pure returns (uint256 n) {
        n = 32;
        while (n > 0 && eventType[n - 1] == 0) {
            --n;
        }
    }

    /// Moves the free memory pointer to just past `end`, so that Solidity's own temporaries
    /// never land on the log data being built.
    function _keepPast(uint256 end) private pure {
        assembly ("memory-safe") {
            mstore(0x40, and(add(end, 31), not(31)))
        }
    }
}
