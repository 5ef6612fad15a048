import { EventEmitter } from 'node:events';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { noise } from '@chainsafe/libp2p-noise';
import { yamux } from '@chainsafe/libp2p-yamux';
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys';
import { gossipsub } from '@libp2p/gossipsub';
import { identify } from '@libp2p/identify';
import { KEEP_ALIVE, type Connection, type PrivateKey, type Stream } from '@libp2p/interface';
import { ping } from '@libp2p/ping';
import { preSharedKey } from '@libp2p/pnet';
import { peerIdFromString } from '@libp2p/peer-id';
import { tcp } from '@libp2p/tcp';
import { multiaddr } from '@multiformats/multiaddr';
import { createLibp2p } from 'libp2p';
import type { Logger } from 'pino';
import type { Discovery } from './discovery.ts';
import { BeatLinks } from './links.ts';
import { introValid, signIntro, type Beat } from './liveness.ts';
import { refuses, tcpTarget } from './probe.ts';
import { PROTOCOLS, TOPICS, type ProtocolKind, type TopicKind } from './protocols.ts';
import { ReplyTooLarge, type Handler, type Transport, type TransportEvents } from './transport.ts';
import { reattachPubsub } from './upstream/gossipsubReattach.ts';
import { reservePnetMemory } from './upstream/pnetMemory.ts';

// The daemons' transport: a libp2p node (TCP, Noise, yamux, identify, ping)
// on a private network (a pre-shared cluster key: a daemon without it cannot
// even finish a handshake), gossipsub with strictly signed messages for the
// topics, a stream per request, kept links for beat swaps (links.ts), and
// hyperswarm as a way to find peers (discovery.ts). Configured peers are
// tagged keep-alive, so libp2p redials them when they drop.

export interface Libp2pOptions {
  /** 32 bytes as 64 hex characters, the same on every daemon of the cluster */
  key: string;
  listen: string[];
  /** multiaddrs of peers to keep connected to */
  peers: string[];
  /** find peers through a hyperswarm topic derived from the key */
  hyperswarm: boolean;
  /** DHT bootstrap nodes as host:port; empty means hyperswarm's public ones */
  bootstrap: string[];
  /** where this daemon's libp2p identity is kept */
  identityFile: string;
  log: Logger;
}

export function pskFromHex(hex: string): Uint8Array {
  if (!/^[0-9a-fA-F]{64}$/.test(hex)) throw new Error('the cluster key must be 64 hex characters (32 random bytes)');
  return new TextEncoder().encode(`/key/swarm/psk/1.0.0/\n/base16/\n${hex.toLowerCase()}`);
}

export async function loadIdentity(file: string): Promise<PrivateKey> {
  if (existsSync(file)) return privateKeyFromProtobuf(readFileSync(file));
  const key = await generateKeyPair('Ed25519');
  writeFileSync(file, privateKeyToProtobuf(key), { mode: 0o600 });
  return key;
}

/** a refusal comes back in a round trip; silence means nothing */
const PROBE_TIMEOUT_MS = 1000;
/** after a connection closed, long enough for gossipsub to have let go of the stream it carried */
const REATTACH_MS = 100;
const CHUNK_BYTES = 64 * 1024;
/** configured peers not connected are dialled this often; libp2p redials those it has met (keep-alive) sooner */
const DIAL_EVERY_MS = 5000;
// Every daemon usually holds a direct connection to every other and publishes to all of them (flood
// publish), so the mesh only needs to cover the few it does not reach: a small degree keeps the
// duplicates each message costs every daemon down, which is what bounds latency on a busy host.
const MESH = { D: 3, Dlo: 2, Dhi: 5, Dout: 1, Dlazy: 3 };

// No penalty for many peers behind one IP address: it guards open networks against one machine posing as
// many peers, but only key holders get into this one, and with it gossipsub refuses to mesh with more than
// ten daemons sharing an address (all of a loopback cluster, or daemons behind one NAT) and stops
// forwarding to them.
const SCORE = { IPColocationFactorWeight: 0 };

// Without it gossipsub checks the signature of every copy of a message before it sees it is a duplicate,
// and signature checks are most of a daemon's gossip work. Only a copy that passed is remembered, so a
// forged copy cannot shadow the real one.
const NONE = new Uint8Array(0);
const fastMsgIdFn = (m: { from?: Uint8Array; seqno?: Uint8Array; signature?: Uint8Array }) => Buffer.concat([m.from ?? NONE, m.seqno ?? NONE, m.signature ?? NONE]).toString('base64');

function createNode(o: Libp2pOptions, privateKey: PrivateKey) {
  reservePnetMemory();
  return createLibp2p({
    privateKey,
    addresses: { listen: o.listen },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionProtector: preSharedKey({ psk: pskFromHex(o.key) }),
    // Each ping opens a stream, and libp2p pings every connection each 10 s: with 50 daemons that is
    // 245 stream openings a second, a measured quarter of the machine. Members' liveness comes from
    // beats; the pings only find connections that died silently, which a minute still does.
    connectionMonitor: { pingInterval: 60_000 },
    services: {
      identify: identify(),
      ping: ping(),
      pubsub: gossipsub({ allowPublishToZeroTopicPeers: true, globalSignaturePolicy: 'StrictSign', emitSelf: false, floodPublish: true, ...MESH, fastMsgIdFn, scoreParams: SCORE }),
    },
  });
}

type Node = Awaited<ReturnType<typeof createNode>>;

/** Reads a stream to its end, refusing more than maxBytes. */
async function readAll(stream: AsyncIterable<Uint8Array | { subarray(): Uint8Array }>, maxBytes: number): Promise<Uint8Array | null> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const c of stream) {
    const b = c instanceof Uint8Array ? c : c.subarray();
    size += b.length;
    if (size > maxBytes) return null;
    chunks.push(b);
  }
  return Buffer.concat(chunks);
}

/** In pieces, waiting when the stream asks to: one multi-megabyte write overruns the encrypter's memory. */
async function sendInPieces(stream: Stream, bytes: Uint8Array): Promise<void> {
  for (let i = 0; i < bytes.length; i += CHUNK_BYTES) if (!stream.send(bytes.subarray(i, i + CHUNK_BYTES))) await stream.onDrain();
}

const TOPIC_OF = new Map<string, TopicKind>(Object.entries(TOPICS).map(([k, v]) => [v, k as TopicKind]));

export class Libp2pTransport implements Transport {
  readonly self: string;
  readonly events = new EventEmitter<TransportEvents>();
  private readonly node: Node;
  private readonly identity: PrivateKey;
  private readonly links: BeatLinks;
  private readonly o: Libp2pOptions;
  /** peers this daemon is hanging up on itself: their connections' close says nothing */
  private readonly hungUp = new Set<string>();
  /** peers found through discovery */
  private readonly found = new Set<string>();
  private discovery: Discovery | null = null;
  private dialTimer: NodeJS.Timeout | null = null;
  private stopping = false;

  private constructor(o: Libp2pOptions, node: Node, identity: PrivateKey) {
    this.o = o;
    this.node = node;
    this.identity = identity;
    this.self = node.peerId.toString();
    this.links = new BeatLinks(node, (rows, peer, answer) => this.events.emit('beats', rows, peer, answer), o.log);
  }

  static async start(o: Libp2pOptions): Promise<Libp2pTransport> {
    const identity = await loadIdentity(o.identityFile);
    const t = new Libp2pTransport(o, await createNode(o, identity), identity);
    const pubsub = t.node.services.pubsub;
    for (const topic of Object.values(TOPICS)) pubsub.subscribe(topic);
    pubsub.addEventListener('message', (ev) => {
      const m = ev.detail;
      const topic = TOPIC_OF.get(m.topic);
      if (m.type === 'signed' && topic) t.events.emit('message', topic, m.data, m.from.toString());
    });
    t.node.addEventListener('connection:close', (ev) => t.onConnectionClosed(ev.detail));
    await t.links.start();
    t.dialTimer = setInterval(() => void t.dialPeers(), DIAL_EVERY_MS);
    void t.dialPeers();
    if (o.hyperswarm) {
      // Loaded only when asked for: hyperswarm brings native addons (sodium, udx).
      const { startHyperswarm } = await import('./discovery.ts');
      t.discovery = startHyperswarm({
        key: o.key,
        bootstrap: o.bootstrap,
        addresses: () => t.addresses(),
        found: (addrs) => {
          for (const a of addrs) t.found.add(a);
          void t.dialPeers();
        },
        log: o.log,
      });
    }
    return t;
  }

  addresses(): string[] {
    return this.node.getMultiaddrs().map((a) => a.toString());
  }

  connected(): string[] {
    return this.node.getPeers().map((p) => p.toString());
  }

  publish(topic: TopicKind, data: Uint8Array): void {
    this.node.services.pubsub.publish(TOPICS[topic], data).catch((err: Error) => this.o.log.debug({ err: err.message }, 'publish failed'));
  }

  async request(peer: string, protocol: ProtocolKind, data: Uint8Array, o: { signal: AbortSignal; maxBytes: number }): Promise<Uint8Array> {
    const stream = await this.node.dialProtocol(peerIdFromString(peer), PROTOCOLS[protocol], { signal: o.signal });
    await sendInPieces(stream, data);
    await stream.close({ signal: o.signal });
    const reply = await readAll(stream, o.maxBytes);
    if (reply === null) throw new ReplyTooLarge(`a peer sent more than ${o.maxBytes} bytes`);
    return reply;
  }

  async handle(protocol: ProtocolKind, maxRequestBytes: number, fn: Handler): Promise<void> {
    await this.node.handle(
      PROTOCOLS[protocol],
      async (stream, connection) => {
        try {
          const req = await readAll(stream, maxRequestBytes);
          await sendInPieces(stream, await fn(req, connection.remotePeer.toString()));
          await stream.close();
          // What more a peer sends of a request refused as too large is not read: the stream goes.
          if (req === null) stream.abort(new Error('request too large'));
        } catch (err) {
          this.o.log.warn({ err, protocol }, 'request from a peer failed');
          stream.abort(err as Error);
        }
      },
      { maxInboundStreams: 1024 },
    );
  }

  swap(peer: string, rows: Beat[]): void {
    this.links.swap(peer, rows);
  }

  learn(peer: string, addrs: string[]): void {
    const parsed = addrs.flatMap((a) => {
      try {
        return [multiaddr(a)];
      } catch {
        return [];
      }
    });
    // Replaced, not merged: a member that restarted elsewhere is not dialled at its old addresses.
    void this.node.peerStore.patch(peerIdFromString(peer), { multiaddrs: parsed }).catch(() => undefined);
  }

  release(peer: string): void {
    this.hungUp.add(peer);
    void this.node
      .hangUp(peerIdFromString(peer))
      .catch(() => undefined)
      .finally(() => this.hungUp.delete(peer));
  }

  /**
   * The member's host refuses every port the member listened on there (those it announced on the address
   * of the host, and the one dialled if this daemon dialled it).
   */
  async processGone(peer: string, announced: string[]): Promise<boolean> {
    const last = this.lastClosed.get(peer);
    if (!last) return false;
    const addrs = new Set(announced.filter((a) => tcpTarget(a)?.host === last.ip));
    if (last.dialled) addrs.add(last.addr);
    if (addrs.size === 0) return false;
    const refused = await Promise.all([...addrs].map((a) => refuses(a, PROBE_TIMEOUT_MS)));
    return refused.every(Boolean);
  }

  signIntro(incarnation: number): Promise<string> {
    return signIntro(this.identity, this.self, incarnation);
  }

  introValid(b: Beat): Promise<boolean> {
    return introValid(b);
  }

  /** the last connection closed to each peer: where it went, and whether this daemon dialled it */
  private readonly lastClosed = new Map<string, { ip: string | undefined; addr: string; dialled: boolean }>();

  private onConnectionClosed(conn: Connection): void {
    const peer = conn.remotePeer.toString();
    if (this.stopping) return;
    // Another connection to that peer is still open: gossipsub is told to send over it (see reattachPubsub).
    if (this.node.getConnections(conn.remotePeer).length > 0) return void setTimeout(() => !this.stopping && reattachPubsub(this.node, conn.remotePeer), REATTACH_MS);
    if (this.hungUp.has(peer)) return;
    const addr = conn.remoteAddr.toString();
    this.lastClosed.set(peer, { ip: tcpTarget(addr)?.host, addr, dialled: conn.direction === 'outbound' });
    this.events.emit('closed', peer);
  }

  /** Dials configured and discovered peers not connected; a configured one reached is tagged keep-alive. */
  private async dialPeers(): Promise<void> {
    const connected = new Set(this.node.getConnections().map((c) => c.remoteAddr.toString().replace(/\/p2p\/.*/, '')));
    for (const p of [...this.o.peers, ...this.found]) {
      if (this.stopping || connected.has(p.replace(/\/p2p\/.*/, ''))) continue;
      try {
        const conn = await this.node.dial(multiaddr(p), { signal: AbortSignal.timeout(3000) });
        await this.node.peerStore.merge(conn.remotePeer, { tags: { [KEEP_ALIVE]: { value: 1 } } });
      } catch (err) {
        this.o.log.debug({ peer: p, err: (err as Error).message }, 'peer not reachable yet');
      }
    }
  }

  async stop(): Promise<void> {
    this.stopping = true;
    if (this.dialTimer) clearInterval(this.dialTimer);
    this.links.stop();
    await this.discovery?.stop();
    await this.node.stop();
  }
}
