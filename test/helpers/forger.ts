import { noise } from '@chainsafe/libp2p-noise';
import { yamux } from '@chainsafe/libp2p-yamux';
import { gossipsub } from '@libp2p/gossipsub';
import { identify } from '@libp2p/identify';
import { preSharedKey } from '@libp2p/pnet';
import { tcp } from '@libp2p/tcp';
import { multiaddr } from '@multiformats/multiaddr';
import { peerIdFromString } from '@libp2p/peer-id';
import { createLibp2p } from 'libp2p';
import { pskFromHex } from '../../gossip/libp2p.ts';
import { TOPICS } from '../../gossip/protocols.ts';
import { reservePnetMemory } from '../../gossip/upstream/pnetMemory.ts';

/** Bytes the forger's entry claims: an instance no daemon of the cluster runs. */
export const forgedEntry = (namespace: string, instance: string) => ({
  namespace,
  instance,
  function: 'x',
  activation: 'x',
  host: 'evil',
  ip: '10.9.9.9',
  port: 7700,
  state: 'running',
  status: null,
  since: 0,
});

/**
 * A key holder that is not a daemon: a bare libp2p node in this process that joins the gossip topic through
 * one daemon and publishes a delta in another member's name, signed with its own key.
 */
export function forgeDelta(key: string, via: string, victim: string, entry: object): Promise<{ stop: () => Promise<void> }> {
  return publishAs(key, via, () => [{ type: 'delta', origin: victim, incarnation: Date.now(), seq: 1, changes: [{ kind: 'upsert', entry }] }]);
}

/** A key holder that is not a daemon: it can publish on the topics and open any protocol's stream to a daemon. */
export interface KeyHolder {
  peerId: string;
  publish(topic: string, data: Uint8Array): Promise<void>;
  /** Sends bytes on a fresh stream of the protocol and reads what comes back until the peer closes (or the time runs out). */
  ask(peer: string, protocol: string, data: Uint8Array, timeoutMs?: number): Promise<Uint8Array | Error>;
  stop(): Promise<void>;
}

export async function keyHolder(key: string, via: string, topics: string[] = Object.values(TOPICS)): Promise<KeyHolder> {
  reservePnetMemory();
  const node = await createLibp2p({
    addresses: { listen: ['/ip4/0.0.0.0/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionProtector: preSharedKey({ psk: pskFromHex(key) }),
    services: { identify: identify(), pubsub: gossipsub({ allowPublishToZeroTopicPeers: true, globalSignaturePolicy: 'StrictSign' }) },
  });
  try {
    for (const t of topics) node.services.pubsub.subscribe(t);
    await node.dial(multiaddr(via));
    await new Promise((r) => setTimeout(r, 1500)); // the daemon learns the subscription
  } catch (e) {
    await node.stop();
    throw e;
  }
  return {
    peerId: node.peerId.toString(),
    publish: async (topic, data) => void (await node.services.pubsub.publish(topic, data)),
    ask: async (peer, protocol, data, timeoutMs = 5000) => {
      const signal = AbortSignal.timeout(timeoutMs);
      try {
        const stream = await node.dialProtocol(peerIdFromString(peer), protocol, { signal });
        // Read while sending: a peer that refuses a request part-way answers and stops reading.
        const chunks: Uint8Array[] = [];
        let answered = false;
        const read = (async () => {
          for await (const c of stream) chunks.push(c instanceof Uint8Array ? c : c.subarray());
          answered = true;
        })();
        const late = new Promise<never>((_, no) => signal.addEventListener('abort', () => no(new Error('no answer in time')), { once: true }));
        const send = (async () => {
          for (let i = 0; i < data.length && !answered; i += 64 * 1024) if (!stream.send(data.subarray(i, i + 64 * 1024))) await Promise.race([stream.onDrain({ signal }), read]);
          if (!answered) await stream.close({ signal });
        })();
        await Promise.race([Promise.all([read, send]), late]).finally(() => stream.abort(new Error('done')));
        return Buffer.concat(chunks);
      } catch (e) {
        return e instanceof Error ? e : new Error(String(e));
      }
    },
    stop: async () => {
      await node.stop();
    },
  };
}

/** The same key holder publishing whatever `messages` makes of its own peer ID, each signed with its own key, on a topic. */
export async function publishAs(key: string, via: string, messages: (self: string) => object[], topic: string = TOPICS.addrmap): Promise<{ stop: () => Promise<void> }> {
  const h = await keyHolder(key, via, [topic]);
  try {
    for (const m of messages(h.peerId)) await h.publish(topic, new TextEncoder().encode(JSON.stringify(m)));
  } catch (e) {
    await h.stop();
    throw e;
  }
  return h;
}
