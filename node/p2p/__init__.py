"""The transport between node processes: authenticated TCP, QBFT message multicast and relay,
block sync.

Starting it (the node's shell)::

    transport = Transport(signer, P2PConfig(
        network_id=genesis.hash,                       # only nodes of this genesis talk
        allowed=allowlist(network.node_enodes),        # the node allowlist (enode URLs or ids)
        static_peers=[PeerSpec.from_enode(url, name) for name, url in network.peers],
        host="127.0.0.1", port=p2p_port, name=node_name),
        blocks=lambda n: (b := chain.block(n)) and b.encode(),   # serve sync requests
        is_validator=lambda address: address in current_validators())
    transport.on_consensus = consensus_service.deliver
    sync = BlockSync(transport, chain, consensus_service.import_block)
    transport.on_status = sync.poke
    await transport.start(); sync.start()

``transport.peers()`` gives ``node.abc.PeerInfo`` for ``admin_peers`` and ``transport.peer_count``
``net_peerCount``; ``sync.syncing`` is ``eth_syncing``'s (starting, current, highest).
``transport.isolate(["validator-2"])`` / ``transport.heal()`` cut and restore a peer for drills.
See ``node.p2p.handshake`` for the authentication and ``node.p2p.transport`` for the frames.
"""

from node.p2p.handshake import HandshakeError, node_id_of
from node.p2p.peers import PeerSpec, PeerSpecError, allowlist
from node.p2p.sync import BlockSync
from node.p2p.transport import P2PConfig, Peer, ProtocolError, Transport

__all__ = [
    "BlockSync",
    "HandshakeError",
    "P2PConfig",
    "Peer",
    "PeerSpec",
    "PeerSpecError",
    "ProtocolError",
    "Transport",
    "allowlist",
    "node_id_of",
]
