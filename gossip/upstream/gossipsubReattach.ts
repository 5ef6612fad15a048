import type { Connection, PeerId } from '@libp2p/interface';
import type { Libp2p } from 'libp2p';

// Works around gossipsub keeping one outbound stream per peer on whichever
// connection it opened it, and opening one only when the peer first connects.
// Upstream: libp2p/js-libp2p#2771 (a closed outbound stream is never
// replaced), partly fixed by libp2p/js-libp2p#3531 for a peer that reconnects
// ("a stream that closes while its connection stays open ... is left as a
// follow-up"), and ChainSafe/js-libp2p-gossipsub#456. Remove this when
// gossipsub re-opens its outbound stream on a connection that is still open.

/**
 * When two daemons hold two connections (they dialled each other at once) and the one carrying the stream
 * closes, nothing more is sent to that peer, not even gossip about missed messages, until every connection
 * has gone (test/integration/beats.test.ts shows it). Telling gossipsub the peer is connected again, on a
 * connection that is still open, opens a new stream; it does nothing while the old stream is there.
 */
export function reattachPubsub(node: Libp2p<{ pubsub: unknown }>, peer: PeerId): void {
  const open = node.getConnections(peer).find((c) => c.status === 'open');
  const pubsub = node.services.pubsub as { onPeerConnected?: (p: PeerId, c: Connection) => void };
  if (open) pubsub.onPeerConnected?.(peer, open);
}
