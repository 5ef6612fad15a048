import { EventEmitter } from 'node:events';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { noise } from '@chainsafe/libp2p-noise';
import { yamux } from '@chainsafe/libp2p-yamux';
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys';
import { gossipsub } from '@libp2p/gossipsub';
import { identify } from '@libp2p/identify';
import type { Connection, PeerId, PrivateKey, Stream } from '@libp2p/interface';
import { ping } from '@libp2p/ping';
import { preSharedKey } from '@libp2p/pnet';
import { peerIdFromString } from '@libp2p/peer-id';
import { tcp } from '@libp2p/tcp';
import { multiaddr } from '@multiformats/multiaddr';
import { createLibp2p } from 'libp2p';
import type { Logger } from 'pino';
import type { AddressMap } from './addrmap.ts';
import { startHyperswarm, type Discovery } from './discovery.ts';
import { DigestWatch } from './digests.ts';
import { BeatLinks, MAX_ROWS } from './links.ts';
import { refuses, tcpTarget } from './probe.ts';
import { BeatTable, FANOUT, introValid, parseBeat, pick, reportTimeouts, sameAddrs, signIntro, type Beat } from './liveness.ts';
import { Replica, type Effect, type Member } from './replica.ts';
import { isRefusal, PROTOCOLS, Rejects, TOPICS, WireRejected, type Codec, type RejectReason } from './protocols.ts';
import { reservePnetMemory } from './upstream/pnetMemory.ts';
import { parseTopicMessage, type TopicMessage } from './wire.ts';

// The daemon-to-daemon layer: a libp2p node (TCP, Noise, yamux, identify,
// ping) on a private network (a pre-shared cluster key: a daemon without it
// cannot even finish a handshake), and gossipsub with strictly signed
// messages carrying the address-map protocol. A message's origin must be its
// signer's peer ID, so no daemon can speak for another's entries. Liveness,
// load and addresses travel apart, as relayed beat counters (liveness.ts);
// a daemon behind on an origin asks the origin itself for its snapshot.

type Wire = TopicMessage;

const rows = (x: unknown): Beat[] | undefined => (Array.isArray(x) ? x.slice(0, MAX_ROWS).map(parseBeat).filter((b): b is Beat => b !== null) : undefined);

/**
 * The previous build's beat swap, one request per swap: still answered, so a cluster upgraded one daemon
 * at a time keeps seeing every member (older daemons push their table here and take this one back).
 */
export const BEAT_V1: Codec<Beat[], Beat[]> = { kind: 'beatV1', maxRequestBytes: 1024 * 1024, request: rows, reply: rows };

/** an origin's snapshot straight from the origin: the connection proves who answers */
const SNAPSHOT: Codec<Record<string, never>, { incarnation: number; seq: number; entries: unknown[] }> = {
  kind: 'snapshot',
  maxRequestBytes: 1024,
  request: () => ({}),
  // Checked whole, entry by entry, once the origin is known (parseTopicMessage, in pull).
  reply: (x) => (x !== null && typeof x === 'object' && Array.isArray((x as { entries?: unknown }).entries) ? x as { incarnation: number; seq: number; entries: unknown[] } : undefined),
};

class TooLarge extends Error {}

async function readAll(stream: AsyncIterable<Uint8Array | { subarray(): Uint8Array }>, maxBytes: number): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const c of stream) {
    const b = c instanceof Uint8Array ? c : c.subarray();
    size += b.length;
    if (size > maxBytes) throw new TooLarge(`a peer sent more than ${maxBytes} bytes`);
    chunks.push(b);
  }
  return Buffer.concat(chunks);
}

/** In pieces, waiting when the stream asks to: one multi-megabyte write overruns the encrypter's memory. */
async function sendInPieces(stream: Stream, bytes: Uint8Array): Promise<void> {
  for (let i = 0; i < bytes.length; i += CHUNK_BYTES) if (!stream.send(bytes.subarray(i, i + CHUNK_BYTES))) await stream.onDrain();
}

/** What an operator configures (the daemon's `cluster` settings). */
export interface ClusterSettings {
  /** 32 bytes as 64 hex characters, the same on every daemon of the cluster; empty: no cluster */
  key: string;
  listen: string[];
  /** multiaddrs of peers to keep connected to */
  peers: string[];
  /** find peers through a hyperswarm topic derived from the key */
  hyperswarm: boolean;
  /** DHT bootstrap nodes as host:port; empty means hyperswarm's public ones */
  bootstrap: string[];
  /** a beat round: this daemon's counter advances and its table goes to a few peers */
  heartbeatMs: number;
  failureTimeoutMs: number;
  batchMs: number;
}

export interface ClusterOptions extends ClusterSettings {
  /** where this daemon's libp2p identity is kept */
  identityFile: string;
  hostName: string;
  local: AddressMap;
  load: () => number;
  /** memory the pool can still promise, in MB, for placement */
  freeMb: () => number;
  onChange: (namespaces: string[]) => void;
  /** a hash of this daemon's registry, carried in its beats (see digests.ts); without it beats carry none */
  registryDigest?: () => number;
  log: Logger;
}

export interface PeerInfo extends Member {
  host: string;
  freeMb: number;
  connected: boolean;
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

const TICK_MS = 50;
/** a refusal comes back in a round trip; silence means nothing */
const PROBE_TIMEOUT_MS = 1000;
/** after a connection closed, long enough for gossipsub to have let go of the stream it carried */
const REATTACH_MS = 100;
const CHUNK_BYTES = 64 * 1024;
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
const fastMsgIdFn = (m: { from?: Uint8Array; seqno?: Uint8Array; signature?: Uint8Array }) =>
  Buffer.concat([m.from ?? NONE, m.seqno ?? NONE, m.signature ?? NONE]).toString('base64');

const enc = new TextEncoder();
const dec = new TextDecoder();

export class Cluster {
  readonly replica: Replica;
  readonly peerId: string;
  /** messages dropped unread, by kind and reason (gossip/protocols.ts) */
  readonly rejects = new Rejects();
  /** members dropped, by why: silent for the failure timeout, said goodbye, reported gone, restarted */
  readonly dropped: Record<'timeout' | 'leave' | 'down' | 'restart', number> = { timeout: 0, leave: 0, down: 0, restart: 0 };
  /** members another timed out (suspected), and of those, members whose beats went on (refuted) */
  readonly suspicions: Record<'suspected' | 'refuted', number> = { suspected: 0, refuted: 0 };
  /**
   * What the cluster tells the daemon: `registry`, a registry write from another daemon (unchecked: the
   * registry reads it); `peer-up`, a daemon joined or came back (the registry answers with its whole
   * self); `member-down`, a member was dropped (crashed, timed out, left, restarted) with its host name,
   * and work it ran for this daemon is lost.
   */
  readonly events = new EventEmitter<{ registry: [m: unknown, signer: string]; 'peer-up': [origin: string]; 'member-down': [origin: string, host: string] }>();
  /** a member's registry has differed from this daemon's for a while: the daemon pulls it from that member */
  onRegistryDiffers: ((origin: string) => Promise<void>) | null = null;
  /** members' host names and free memory, from their beats */
  private readonly hosts = new Map<string, { host: string; freeMb: number }>();
  private readonly timers: NodeJS.Timeout[] = [];
  private stopping = false;
  /** members this daemon is hanging up on itself (after a pull): their connections' close says nothing */
  private readonly hungUp = new Set<string>();
  /** members whose port is being probed */
  private readonly probing = new Set<string>();
  private readonly found = new Set<string>();
  private discovery: Discovery | null = null;
  private readonly lastPull = new Map<string, number>();
  private readonly lastTopicPull = new Map<string, number>();
  private lastSnapshot = 0;
  private lastTick = Date.now();
  private flushTimer: NodeJS.Timeout | null = null;
  /** members' addresses as last put in the peer store */
  private readonly addressed = new Map<string, string[]>();
  /** origins whose snapshot is being fetched */
  private readonly pulling = new Set<string>();
  private readonly beats: BeatTable;
  private readonly links: BeatLinks;
  private readonly digests = new DigestWatch();
  /** this daemon's signature of its incarnation, carried in its beats */
  private readonly intro: string;
  private readonly node: Awaited<ReturnType<typeof Cluster.createNode>>;
  private readonly o: ClusterOptions;

  private constructor(o: ClusterOptions, node: Cluster['node'], intro: string) {
    this.o = o;
    this.node = node;
    this.intro = intro;
    this.peerId = node.peerId.toString();
    this.replica = new Replica(this.peerId, o.failureTimeoutMs);
    this.beats = new BeatTable(this.peerId, o.failureTimeoutMs);
    this.links = new BeatLinks(node, { take: (rows) => this.takeBeats(rows), table: () => this.beats.live(Date.now()) }, o.log);
  }

  private static createNode(o: ClusterOptions, privateKey: PrivateKey) {
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

  static async start(o: ClusterOptions): Promise<Cluster> {
    const identity = await loadIdentity(o.identityFile);
    const node = await Cluster.createNode(o, identity);
    const c = new Cluster(o, node, await signIntro(identity, node.peerId.toString(), o.local.incarnation));
    o.local.replicating = true;
    o.local.takeDelta(); // what happened before the cluster started reaches peers in the first snapshot
    // Changes are shipped batchMs after the first of a batch: no timer runs while nothing changes.
    o.local.onPending = () => {
      c.flushTimer ??= setTimeout(() => {
        c.flushTimer = null;
        c.flushDelta();
      }, o.batchMs);
    };
    node.services.pubsub.subscribe(TOPICS.addrmap);
    node.services.pubsub.subscribe(TOPICS.registry);
    node.services.pubsub.addEventListener('message', (ev) => c.guarded(ev.detail.topic === TOPICS.registry ? 'registry-topic' : 'addrmap-topic', () => c.onMessage(ev.detail)));
    node.addEventListener('connection:close', (ev) => c.guarded('addrmap-topic', () => c.onConnectionClosed(ev.detail)));
    await c.links.start();
    await c.handle(BEAT_V1, async (rows) => {
      await c.takeBeats(rows);
      return c.beats.live(Date.now());
    });
    await c.handle(SNAPSHOT, async () => o.local.snapshot());
    // Each daemon beats at its own phase: daemons started together (a cluster booted at once, or several
    // in one process) would otherwise swap tables all in the same instant, and a change arriving then waits.
    c.timers.push(setTimeout(() => c.timers.push(setInterval(() => c.round(), o.heartbeatMs)), Math.random() * o.heartbeatMs));
    c.timers.push(setInterval(() => c.tick(), TICK_MS));
    c.timers.push(setInterval(() => void c.dialPeers(), 2000));
    void c.dialPeers();
    c.round();
    if (o.hyperswarm) {
      c.discovery = startHyperswarm({
        key: o.key,
        bootstrap: o.bootstrap,
        addresses: () => c.addresses(),
        found: (addrs) => {
          for (const a of addrs) c.found.add(a);
          void c.dialPeers();
        },
        log: o.log,
      });
    }
    o.log.info({ peerId: c.peerId, addrs: c.addresses() }, 'cluster node started');
    return c;
  }

  addresses(): string[] {
    return this.node.getMultiaddrs().map((a) => a.toString());
  }

  peers(): PeerInfo[] {
    const connected = new Set(this.connectedPeers());
    return this.replica.members().map((m) => ({ ...m, host: this.hosts.get(m.origin)?.host ?? '?', freeMb: this.hosts.get(m.origin)?.freeMb ?? 0, connected: connected.has(m.origin) }));
  }

  /** Live members this daemon can open a stream to, with the room they last reported, for placement. */
  candidates(): { origin: string; freeMb: number }[] {
    return this.peers().filter((p) => p.synced && (p.connected || this.addressed.has(p.origin))).map((p) => ({ origin: p.origin, freeMb: p.freeMb }));
  }

  /**
   * Request/response with one peer over its own stream: JSON in, JSON out, the reply read by the protocol's
   * codec. A refusal, or a reply that is not what the protocol says, is a WireRejected.
   */
  async request<Req, Rep>(peer: string, codec: Codec<Req, Rep>, body: Req, timeoutMs: number): Promise<Rep> {
    const raw = this.parseReply(codec, await this.requestBytes(peer, codec, body, timeoutMs));
    if (isRefusal(raw)) throw new WireRejected(codec.kind, raw.rejected, 'peer');
    const rep = codec.reply(raw);
    if (rep === undefined) throw this.rejectReply(codec, 'malformed');
    return rep;
  }

  /** As request, but the answer is raw bytes (code blobs), capped at maxBytes. */
  async requestBytes<Req>(peer: string, codec: Codec<Req, unknown>, body: Req, timeoutMs: number, maxBytes = 64 * 1024 * 1024): Promise<Uint8Array> {
    const signal = AbortSignal.timeout(timeoutMs);
    const stream = await this.node.dialProtocol(peerIdFromString(peer), PROTOCOLS[codec.kind], { signal });
    await sendInPieces(stream, enc.encode(JSON.stringify(body)));
    await stream.close({ signal });
    try {
      return await readAll(stream, maxBytes);
    } catch (err) {
      if (err instanceof TooLarge) throw this.rejectReply(codec, 'too-large');
      throw err;
    }
  }

  private rejectReply(codec: Codec<unknown, unknown>, reason: RejectReason): WireRejected {
    this.rejects.count(`${codec.kind}-reply`, reason);
    return new WireRejected(codec.kind, reason, 'us');
  }

  private parseReply(codec: Codec<unknown, unknown>, bytes: Uint8Array): unknown {
    try {
      return JSON.parse(dec.decode(bytes));
    } catch {
      throw this.rejectReply(codec, 'not-json');
    }
  }

  /** Serves a protocol: each request read by its codec first; one it rejects is answered with the reason, and counted. */
  async handle<Req, Rep>(codec: Codec<Req, Rep>, fn: (req: Req, signer: string) => Promise<Rep>): Promise<void> {
    await this.handleBytes(codec, async (req, signer) => enc.encode(JSON.stringify(await fn(req, signer))));
  }

  async handleBytes<Req>(codec: Codec<Req, unknown>, fn: (req: Req, signer: string) => Promise<Uint8Array>): Promise<void> {
    await this.node.handle(PROTOCOLS[codec.kind], async (stream, connection) => {
      const signer = connection.remotePeer.toString();
      try {
        const req = await this.readRequest(codec, stream, signer);
        const out = 'rejected' in req ? enc.encode(JSON.stringify(req)) : await fn(req.ok, signer);
        await sendInPieces(stream, out);
        await stream.close();
        // What more a peer sends of a request refused as too large is not read: the stream goes.
        if ('rejected' in req && req.rejected === 'too-large') stream.abort(new Error('request too large'));
      } catch (err) {
        this.o.log.warn({ err, protocol: codec.kind }, 'request from a peer failed');
        stream.abort(err as Error);
      }
    }, { maxInboundStreams: 1024 });
  }

  private async readRequest<Req>(codec: Codec<Req, unknown>, stream: Stream, signer: string): Promise<{ ok: Req } | { rejected: RejectReason }> {
    const reject = (reason: RejectReason) => {
      this.rejects.count(codec.kind, reason);
      this.o.log.warn({ signer, protocol: codec.kind, reason }, 'rejected a request from a peer');
      return { rejected: reason };
    };
    let bytes: Uint8Array;
    try {
      bytes = await readAll(stream, codec.maxRequestBytes);
    } catch (err) {
      if (err instanceof TooLarge) return reject('too-large');
      throw err;
    }
    let raw: unknown;
    try {
      raw = JSON.parse(dec.decode(bytes));
    } catch {
      return reject('not-json');
    }
    const req = codec.request(raw);
    return req === undefined ? reject('malformed') : { ok: req };
  }

  /** Runs a listener so that a defect in it is logged and counted instead of ending the process. */
  private guarded(kind: 'addrmap-topic' | 'registry-topic', fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.rejects.count(kind, 'listener-error');
      this.o.log.error({ err, kind }, 'a cluster listener failed on a message: dropped');
    }
  }

  /** Peers this daemon holds a connection to now. */
  connectedPeers(): string[] {
    return this.node.getPeers().map((p) => p.toString());
  }

  private async dialPeers(): Promise<void> {
    const connected = new Set(this.node.getConnections().map((c) => c.remoteAddr.toString().replace(/\/p2p\/.*/, '')));
    for (const p of [...this.o.peers, ...this.found]) {
      const bare = p.replace(/\/p2p\/.*/, '');
      if (connected.has(bare)) continue;
      await this.node.dial(multiaddr(p), { signal: AbortSignal.timeout(3000) }).catch((err: Error) => this.o.log.debug({ peer: p, err: err.message }, 'peer not reachable yet'));
    }
  }

  publishRegistry(m: object): void {
    this.node.services.pubsub.publish(TOPICS.registry, enc.encode(JSON.stringify(m))).catch((err: Error) => this.o.log.debug({ err: err.message }, 'publish failed'));
  }

  private publish(m: Wire): void {
    this.node.services.pubsub.publish(TOPICS.addrmap, enc.encode(JSON.stringify(m))).catch((err: Error) => this.o.log.debug({ err: err.message }, 'publish failed'));
  }

  private flushDelta(): void {
    const d = this.o.local.takeDelta();
    if (d) this.publish({ type: 'delta', origin: this.peerId, incarnation: d.incarnation, seq: d.seq, changes: d.changes });
  }

  /** Failure detection and gap timeouts; members that timed out here are reported to all (see reportTimeouts). */
  private tick(): void {
    const now = Date.now();
    const since = now - this.lastTick;
    this.lastTick = now;
    const fx = this.replica.tick(now);
    this.apply(fx);
    const timedOut = fx.flatMap((f) => (f.kind === 'origin-down' && f.reason === 'timeout' ? [f] : []));
    if (this.stopping || !reportTimeouts(timedOut.length, this.replica.memberCount, since)) return;
    // Others only suspect it: a member that still hears its beats refutes this daemon's word (replica.ts).
    for (const f of timedOut) this.publish({ type: 'down', origin: f.origin, incarnation: f.incarnation, why: 'timeout' });
  }

  /** One beat: this daemon's counter advances and it swaps tables of live members' beats with a few peers. */
  private round(): void {
    const now = Date.now();
    const reg = this.o.registryDigest?.();
    this.beats.beat({ incarnation: this.o.local.incarnation, seq: this.o.local.sequence, load: this.o.load(), freeMb: this.o.freeMb(), host: this.o.hostName, addrs: this.addresses(), intro: this.intro,
      ...(reg === undefined ? {} : { reg }) }, now);
    const table = this.beats.live(now);
    for (const peer of pick(this.connectedPeers(), FANOUT)) this.links.swap(peer, table);
  }

  /**
   * A peer's table: what is news counts as a sign of life. A row from an incarnation not taken in yet
   * counts only if the origin signed that incarnation.
   */
  private async takeBeats(parsed: Beat[]): Promise<void> {
    const unknown = parsed.filter((b) => !this.beats.knows(b));
    if (unknown.length > 0) {
      const signed = await Promise.all(unknown.map(introValid));
      const forged = new Set(unknown.filter((_, i) => !signed[i]));
      parsed = parsed.filter((b) => !forged.has(b));
    }
    const now = Date.now();
    for (const b of this.beats.merge(parsed, now)) {
      // First: a new incarnation drops what was known of the old one.
      this.apply(this.replica.receive({ type: 'heartbeat', origin: b.origin, incarnation: b.incarnation, seq: b.seq, load: b.load }, now));
      this.hosts.set(b.origin, { host: b.host, freeMb: b.freeMb });
      this.learnAddresses(b.origin, b.addrs);
      this.compareRegistry(b, now);
    }
  }

  private compareRegistry(b: Beat, now: number): void {
    const ours = this.o.registryDigest?.();
    const pull = this.onRegistryDiffers;
    if (b.reg === undefined || ours === undefined || !pull || this.replica.incarnationOf(b.origin) === undefined) return;
    if (!this.digests.observe(b.origin, b.reg, ours, now)) return;
    this.o.log.info({ origin: b.origin, host: b.host }, 'registry differs from a member\'s: pulling it');
    void pull(b.origin)
      .catch((err: Error) => this.o.log.warn({ origin: b.origin, err: err.message }, 'registry pull failed'))
      .finally(() => this.digests.done());
  }

  private onMessage(msg: { type: string; topic: string; from?: { toString(): string }; data: Uint8Array }): void {
    if (msg.type !== 'signed' || !msg.from) return;
    const kind = msg.topic === TOPICS.registry ? 'registry-topic' : 'addrmap-topic';
    const signer = msg.from.toString();
    let raw: unknown;
    try {
      raw = JSON.parse(dec.decode(msg.data));
    } catch {
      this.rejects.count(kind, 'not-json');
      return;
    }
    if (kind === 'registry-topic') {
      this.events.emit('registry', raw, signer);
      return;
    }
    const m = parseTopicMessage(raw);
    if (m === null) {
      this.rejects.count('addrmap-topic', 'malformed');
      this.o.log.warn({ signer }, 'dropped a malformed address-map message');
      return;
    }
    if (m.type === 'pull') {
      if (m.from !== signer) return void this.rejects.count('addrmap-topic', 'forged');
      if (m.origin === this.peerId && Date.now() - this.lastSnapshot > 100) {
        // Answered on the topic: any other daemon that lags catches up from the same snapshot.
        this.lastSnapshot = Date.now();
        const s = this.o.local.snapshot();
        this.publish({ type: 'snapshot', origin: this.peerId, incarnation: s.incarnation, seq: s.seq, entries: s.entries });
      }
      return;
    }
    if (m.type === 'down') {
      // Another member's word that an origin is gone: its process (see onConnectionClosed), or its beats
      // for a failure timeout (see tick). Any member may say it; should it be wrong, the origin's own beats
      // bring it back after a failure timeout.
      if (this.replica.incarnationOf(signer) === undefined) return;
      this.apply(this.replica.receive(m, Date.now()));
      return;
    }
    if (m.origin !== signer) {
      this.rejects.count('addrmap-topic', 'forged');
      this.o.log.warn({ claimed: m.origin, signer }, 'dropped a message whose origin is not its signer');
      return;
    }
    if (m.type === 'heartbeat') return; // liveness comes only from beat counters (an old daemon's heartbeat)
    this.apply(this.replica.receive(m, Date.now()));
  }

  /** Addresses from beats, so a daemon can open a stream to any member, not only those it dialled. */
  private learnAddresses(origin: string, given: string[]): void {
    const had = this.addressed.get(origin);
    if (given.length === 0 || (had && sameAddrs(had, given))) return;
    this.addressed.set(origin, given);
    const addrs = given.flatMap((a) => {
      try {
        return [multiaddr(a)];
      } catch {
        return [];
      }
    });
    // Replaced, not merged: a member that restarted elsewhere is not dialled at its old addresses.
    void this.node.peerStore.patch(peerIdFromString(origin), { multiaddrs: addrs }).catch(() => undefined);
  }

  /**
   * Behind on an origin: its snapshot, asked of the origin itself over a stream (no broadcast; the
   * connection proves who answers). A connection opened only for this is closed after, or pulls would
   * grow a full mesh. Through the topic, at most once a second, when the origin cannot be reached: a pull
   * there costs every daemon a signature check, and many at once is how a busy cluster melts down.
   */
  private pull(origin: string): void {
    if (this.pulling.has(origin) || Date.now() - (this.lastPull.get(origin) ?? 0) < 200) return;
    this.lastPull.set(origin, Date.now());
    this.pulling.add(origin);
    const wasConnected = this.connectedPeers().includes(origin);
    this.request(origin, SNAPSHOT, {}, this.o.failureTimeoutMs)
      .then((r) => {
        const snap = parseTopicMessage({ ...r, type: 'snapshot', origin });
        if (snap?.type !== 'snapshot') throw this.rejectReply(SNAPSHOT, 'malformed');
        this.apply(this.replica.receive(snap, Date.now()));
      })
      .catch(() => {
        if (Date.now() - (this.lastTopicPull.get(origin) ?? 0) < 1000) return;
        this.lastTopicPull.set(origin, Date.now());
        this.publish({ type: 'pull', origin, from: this.peerId });
      })
      .finally(() => {
        this.pulling.delete(origin);
        if (wasConnected) return;
        this.hungUp.add(origin);
        void this.node.hangUp(peerIdFromString(origin)).catch(() => undefined).finally(() => this.hungUp.delete(origin));
      });
  }

  private apply(fx: Effect[]): void {
    for (const f of fx) {
      if (f.kind === 'changed') this.o.onChange(f.namespaces);
      else if (f.kind === 'pull-snapshot') this.pull(f.origin);
      else if (f.kind === 'origin-down') {
        this.dropped[f.reason]++;
        this.o.log.info({ origin: f.origin, host: this.hosts.get(f.origin)?.host, reason: f.reason, entries: f.entries.length }, 'peer down');
        // Told while its host name is still known, so what failed with it can name it.
        this.events.emit('member-down', f.origin, this.hosts.get(f.origin)?.host ?? f.origin);
        this.addressed.delete(f.origin);
        this.hosts.delete(f.origin);
        this.digests.forget(f.origin);
      }
      else if (f.kind === 'suspected' || f.kind === 'refuted') {
        this.suspicions[f.kind]++;
        this.o.log.info({ origin: f.origin, host: this.hosts.get(f.origin)?.host }, f.kind === 'suspected' ? 'peer suspected: a member timed it out' : 'peer suspicion refuted: its beats go on');
      }
      else if (f.kind === 'origin-up') {
        this.o.log.info({ origin: f.origin }, 'peer up');
        this.events.emit('peer-up', f.origin);
      }
    }
  }

  /**
   * A connection closed. While another to that peer is open, gossipsub is told to send over it (see
   * reattachPubsub). The last connection to a member closed: if the member's host now refuses the ports the member
   * listened on (those it announced on that host's address, and the one dialled if this daemon dialled
   * it), its process is gone: every daemon hears so at once instead of after a failure timeout. A host
   * that vanished answers nothing, and is left to the timeout.
   */
  private onConnectionClosed(conn: Connection): void {
    const peer = conn.remotePeer.toString();
    if (this.stopping) return;
    if (this.node.getConnections(conn.remotePeer).length > 0) return void setTimeout(() => this.reattachPubsub(conn.remotePeer), REATTACH_MS);
    if (this.hungUp.has(peer) || this.probing.has(peer)) return;
    const life = this.replica.incarnationOf(peer);
    if (life === undefined) return;
    const ip = tcpTarget(conn.remoteAddr.toString())?.host;
    const addrs = new Set((this.addressed.get(peer) ?? []).filter((a) => ip !== undefined && tcpTarget(a)?.host === ip));
    if (conn.direction === 'outbound') addrs.add(conn.remoteAddr.toString());
    if (addrs.size === 0) return;
    const addr = [...addrs].join(' ');
    this.probing.add(peer);
    void Promise.all([...addrs].map((a) => refuses(a, PROBE_TIMEOUT_MS))).then((refused) => {
      this.probing.delete(peer);
      const gone = refused.every(Boolean);
      // Still that life: a restart in the meantime is a new incarnation, which speaks for itself.
      if (!gone || this.stopping || this.replica.incarnationOf(peer) !== life) return;
      this.o.log.info({ origin: peer, host: this.hosts.get(peer)?.host, addr }, 'peer process gone: its host refuses its port');
      const down = { type: 'down' as const, origin: peer, incarnation: life, why: 'refused' as const };
      this.apply(this.replica.receive(down, Date.now()));
      this.publish(down);
    });
  }

  /**
   * gossipsub keeps one outbound stream per peer, on whichever connection it opened it, and opens one only
   * when a peer first connects: when two daemons hold two connections (they dialled each other at once)
   * and the one carrying the stream closes, nothing more is sent to that peer, not even gossip about
   * missed messages, until every connection has gone (test/integration/beats.test.ts shows it). Telling
   * gossipsub the peer is connected again, on a connection that is still open, opens a new stream; it
   * does nothing while the old stream is there.
   */
  private reattachPubsub(peer: PeerId): void {
    const open = this.node.getConnections(peer).find((c) => c.status === 'open');
    const pubsub = this.node.services.pubsub as unknown as { onPeerConnected?: (p: PeerId, c: Connection) => void };
    if (this.stopping || !open) return;
    pubsub.onPeerConnected?.(peer, open);
  }

  /** A clean exit: peers drop this daemon's entries at once instead of waiting for the failure timeout. */
  async stop(): Promise<void> {
    this.stopping = true;
    for (const t of this.timers) clearInterval(t);
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.o.local.onPending = null;
    this.flushDelta();
    this.publish({ type: 'leave', origin: this.peerId, incarnation: this.o.local.incarnation });
    await new Promise((r) => setTimeout(r, 50));
    this.links.stop();
    await this.discovery?.stop();
    await this.node.stop();
  }
}
