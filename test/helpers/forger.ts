import { noise } from '@chainsafe/libp2p-noise';
import { yamux } from '@chainsafe/libp2p-yamux';
import { gossipsub } from '@libp2p/gossipsub';
import { identify } from '@libp2p/identify';
import { preSharedKey } from '@libp2p/pnet';
import { tcp } from '@libp2p/tcp';
import { multiaddr } from '@multiformats/multiaddr';
import { createLibp2p } from 'libp2p';
import { pskFromHex, TOPIC } from '../../gossip/cluster.ts';

/** Bytes the forger's entry claims: an instance no daemon of the cluster runs. */
export const forgedEntry = (namespace: string, instance: string) =>
  ({ namespace, instance, function: 'x', activation: 'x', host: 'evil', ip: '10.9.9.9', port: 7700, state: 'running', status: null, since: 0 });

/**
 * A key holder that is not a daemon: a bare libp2p node in this process that joins the gossip topic through
 * one daemon and publishes a delta in another member's name, signed with its own key.
 */
export function forgeDelta(key: string, via: string, victim: string, entry: object): Promise<{ stop: () => Promise<void> }> {
  return publishAs(key, via, () => [{ type: 'delta', origin: victim, incarnation: Date.now(), seq: 1, changes: [{ kind: 'upsert', entry }] }]);
}

/** The same key holder publishing whatever `messages` makes of its own peer ID, each signed with its own key, on a topic. */
export async function publishAs(key: string, via: string, messages: (self: string) => object[], topic = TOPIC): Promise<{ stop: () => Promise<void> }> {
  const node = await createLibp2p({
    addresses: { listen: ['/ip4/0.0.0.0/tcp/0'] },
    transports: [tcp()], connectionEncrypters: [noise()], streamMuxers: [yamux()],
    connectionProtector: preSharedKey({ psk: pskFromHex(key) }),
    services: { identify: identify(), pubsub: gossipsub({ allowPublishToZeroTopicPeers: true, globalSignaturePolicy: 'StrictSign' }) },
  });
  try {
    node.services.pubsub.subscribe(topic);
    await node.dial(multiaddr(via));
    await new Promise((r) => setTimeout(r, 1500)); // the daemon learns the subscription
    for (const m of messages(node.peerId.toString())) await node.services.pubsub.publish(topic, new TextEncoder().encode(JSON.stringify(m)));
  } catch (e) {
    await node.stop();
    throw e;
  }
  return { stop: async () => { await node.stop(); } };
}
