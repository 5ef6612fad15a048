import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import type { AddressMap } from './addrmap.ts';
import { Libp2pTransport, type Libp2pOptions } from './libp2p.ts';
import { MAX_ROWS } from './links.ts';
import { parseBeat, type Beat } from './liveness.ts';
import { Membership, type Action, type DropReason } from './membership.ts';
import { isObj, isRefusal, Rejects, WireRejected, type Codec, type RejectReason } from './protocols.ts';
import type { Member } from './replica.ts';
import { ReplyTooLarge, wallClock, type Clock, type Transport } from './transport.ts';

// The driver: it feeds what the transport brings to the membership core
// (membership.ts) with the clock's time, and carries out the actions the core
// returns; it also offers the daemon request/response with one peer, every
// message read by its protocol's codec (protocols.ts) before use. The same
// driver runs over libp2p in a daemon and over memory.ts in the simulation.

const rows = (x: unknown): Beat[] | undefined =>
  Array.isArray(x)
    ? x
        .slice(0, MAX_ROWS)
        .map(parseBeat)
        .filter((b): b is Beat => b !== null)
    : undefined;

/**
 * The previous build's beat swap, one request per swap: still answered, so a cluster upgraded one daemon
 * at a time keeps seeing every member (older daemons push their table here and take this one back).
 */
export const BEAT_V1: Codec<Beat[], Beat[]> = { kind: 'beatV1', maxRequestBytes: 1024 * 1024, request: rows, reply: rows };

/** an origin's snapshot straight from the origin: the connection proves who answers */
const SNAPSHOT: Codec<Record<string, never>, unknown> = {
  kind: 'snapshot',
  maxRequestBytes: 1024,
  request: () => ({}),
  // Checked whole, entry by entry, once the origin is known (Membership.snapshot).
  reply: (x) => (isObj(x) && Array.isArray(x.entries) ? x : undefined),
};

/** What an operator configures (the daemon's `cluster` settings). */
export interface ClusterSettings extends Omit<Libp2pOptions, 'identityFile' | 'log'> {
  /** a beat round: this daemon's counter advances and its table goes to a few peers */
  heartbeatMs: number;
  failureTimeoutMs: number;
  /** changes are shipped this long after the first of a batch */
  batchMs: number;
}

/** What the driver needs besides a transport. */
export interface DriverOptions {
  heartbeatMs: number;
  failureTimeoutMs: number;
  batchMs: number;
  hostName: string;
  local: AddressMap;
  load: () => number;
  /** memory the pool can still promise, in MB, for placement */
  freeMb: () => number;
  onChange: (namespaces: string[]) => void;
  /** a hash of this daemon's registry, carried in its beats (see digests.ts); without it beats carry none */
  registryDigest?: () => number;
  log: Logger;
  /** how often failure and gap timeouts are checked */
  tickMs?: number;
  random?: () => number;
}

export type ClusterOptions = ClusterSettings & DriverOptions & { identityFile: string };

export interface PeerInfo extends Member {
  host: string;
  freeMb: number;
  connected: boolean;
}

/**
 * What the cluster tells the daemon: `registry`, a registry write from another daemon (unchecked: the
 * registry reads it); `peer-up`, a daemon joined or came back (the registry answers with its whole self);
 * `member-down`, a member was dropped (crashed, timed out, left, restarted) with its host name, and work it
 * ran for this daemon is lost; `registry-differs`, a member's registry has differed from this daemon's for a
 * while: the daemon pulls it from that member and calls `done` after.
 */
export interface ClusterEvents {
  registry: [m: unknown, signer: string];
  'peer-up': [origin: string];
  'member-down': [origin: string, host: string, why: { reason: DropReason; incarnation: number }];
  'registry-differs': [origin: string, done: () => void];
}

const TICK_MS = 50;
const enc = new TextEncoder();
const dec = new TextDecoder();

export class Cluster {
  readonly core: Membership;
  readonly peerId: string;
  /** messages dropped unread, by kind and reason (gossip/protocols.ts) */
  readonly rejects = new Rejects();
  readonly events = new EventEmitter<ClusterEvents>();
  readonly transport: Transport;
  private readonly timers: { cancel(): void }[] = [];
  private flushTimer: { cancel(): void } | null = null;
  private stopping = false;
  /** members whose ports are being probed */
  private readonly probing = new Set<string>();
  private readonly o: DriverOptions;
  private readonly clock: Clock;
  private intro = '';

  private constructor(transport: Transport, o: DriverOptions, clock: Clock) {
    this.transport = transport;
    this.o = o;
    this.clock = clock;
    this.peerId = transport.self;
    this.core = new Membership({ self: transport.self, failureTimeoutMs: o.failureTimeoutMs, local: o.local, registryDigest: o.registryDigest, random: o.random });
  }

  /** A daemon's cluster: over libp2p, on the wall clock. */
  static async start(o: ClusterOptions): Promise<Cluster> {
    const transport = await Libp2pTransport.start({ ...o, log: o.log });
    const c = await Cluster.over(transport, o, wallClock);
    o.log.info({ peerId: c.peerId, addrs: transport.addresses() }, 'cluster node started');
    return c;
  }

  /** A cluster over any transport and clock (memory.ts for the simulation). */
  static async over(transport: Transport, o: DriverOptions, clock: Clock): Promise<Cluster> {
    const c = new Cluster(transport, o, clock);
    c.intro = await transport.signIntro(o.local.incarnation);
    o.local.startReplicating(); // what happened before the cluster started reaches peers in the first snapshot
    // Changes are shipped batchMs after the first of a batch: no timer runs while nothing changes.
    o.local.events.on('pending', () => {
      c.flushTimer ??= clock.after(o.batchMs, () => {
        c.flushTimer = null;
        c.run(c.core.flush());
      });
    });
    transport.events.on('message', (topic, data, signer) => c.guarded(topic === 'registry' ? 'registry-topic' : 'addrmap-topic', () => c.onMessage(topic, data, signer)));
    transport.events.on(
      'beats',
      (rows, peer, answer) =>
        void c.takeBeats(rows).then(
          () => answer?.(c.core.table(clock.now())),
          (err: Error) => o.log.debug({ peer, err: err.message }, 'beat table not taken'),
        ),
    );
    transport.events.on('closed', (peer) => c.guarded('addrmap-topic', () => c.onClosed(peer)));
    await c.handle(BEAT_V1, async (rows) => {
      await c.takeBeats(rows);
      return c.core.table(clock.now());
    });
    await c.handle(SNAPSHOT, async () => o.local.snapshot());
    // Each daemon beats at its own phase: daemons started together (a cluster booted at once, or several
    // in one process) would otherwise swap tables all in the same instant, and a change arriving then waits.
    const random = o.random ?? Math.random;
    c.timers.push(clock.after(random() * o.heartbeatMs, () => void (c.stopping || c.timers.push(clock.every(o.heartbeatMs, () => c.round())))));
    c.timers.push(clock.every(o.tickMs ?? TICK_MS, () => c.run(c.core.tick(clock.now()))));
    c.round();
    return c;
  }

  addresses(): string[] {
    return this.transport.addresses();
  }

  /** Peers this daemon holds a connection to now. */
  connectedPeers(): string[] {
    return this.transport.connected();
  }

  peers(): PeerInfo[] {
    const connected = new Set(this.connectedPeers());
    return this.core.members().map((m) => ({ ...m, host: m.host ?? '?', connected: connected.has(m.origin) }));
  }

  /** Live members this daemon can open a stream to, with the room they last reported, for placement. */
  candidates(): { origin: string; freeMb: number }[] {
    return this.peers()
      .filter((p) => p.synced && (p.connected || this.core.addressesOf(p.origin).length > 0))
      .map((p) => ({ origin: p.origin, freeMb: p.freeMb }));
  }

  /** members dropped, by why */
  get dropped(): Membership['dropped'] {
    return this.core.dropped;
  }

  /** members another timed out, and of those, members whose beats went on */
  get suspicions(): Membership['suspicions'] {
    return this.core.suspicions;
  }

  /** What one daemon knows of everyone else's address map. */
  get replica(): Membership['replica'] {
    return this.core.replica;
  }

  publishRegistry(m: object): void {
    this.transport.publish('registry', enc.encode(JSON.stringify(m)));
  }

  /**
   * Request/response with one peer over its own stream: JSON in, JSON out, the reply read by the protocol's
   * codec. A refusal, or a reply that is not what the protocol says, is a WireRejected.
   */
  async request<Req, Rep>(peer: string, codec: Codec<Req, Rep>, body: Req, timeoutMs: number): Promise<Rep> {
    const bytes = await this.requestBytes(peer, codec, body, timeoutMs);
    let raw: unknown;
    try {
      raw = JSON.parse(dec.decode(bytes));
    } catch {
      throw this.rejectReply(codec, 'not-json');
    }
    if (isRefusal(raw)) throw new WireRejected(codec.kind, raw.rejected, 'peer');
    const rep = codec.reply(raw);
    if (rep === undefined) throw this.rejectReply(codec, 'malformed');
    return rep;
  }

  /** As request, but the answer is raw bytes (code blobs), capped at maxBytes. */
  async requestBytes<Req>(peer: string, codec: Codec<Req, unknown>, body: Req, timeoutMs: number, maxBytes = 64 * 1024 * 1024): Promise<Uint8Array> {
    try {
      return await this.transport.request(peer, codec.kind, enc.encode(JSON.stringify(body)), { signal: this.clock.timeout(timeoutMs), maxBytes });
    } catch (err) {
      if (err instanceof ReplyTooLarge) throw this.rejectReply(codec, 'too-large');
      throw err;
    }
  }

  private rejectReply(codec: Codec<unknown, unknown>, reason: RejectReason): WireRejected {
    this.rejects.count(`${codec.kind}-reply`, reason);
    return new WireRejected(codec.kind, reason, 'us');
  }

  /** Serves a protocol: each request read by its codec first; one it rejects is answered with the reason, and counted. */
  async handle<Req, Rep>(codec: Codec<Req, Rep>, fn: (req: Req, signer: string) => Promise<Rep>): Promise<void> {
    await this.handleBytes(codec, async (req, signer) => enc.encode(JSON.stringify(await fn(req, signer))));
  }

  async handleBytes<Req>(codec: Codec<Req, unknown>, fn: (req: Req, signer: string) => Promise<Uint8Array>): Promise<void> {
    await this.transport.handle(codec.kind, codec.maxRequestBytes, async (bytes, signer) => {
      const req = this.readRequest(codec, bytes, signer);
      return 'rejected' in req ? enc.encode(JSON.stringify(req)) : fn(req.ok, signer);
    });
  }

  private readRequest<Req>(codec: Codec<Req, unknown>, bytes: Uint8Array | null, signer: string): { ok: Req } | { rejected: RejectReason } {
    const reject = (reason: RejectReason) => {
      this.rejects.count(codec.kind, reason);
      this.o.log.warn({ signer, protocol: codec.kind, reason }, 'rejected a request from a peer');
      return { rejected: reason };
    };
    if (bytes === null) return reject('too-large');
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

  private onMessage(topic: 'addrmap' | 'registry', data: Uint8Array, signer: string): void {
    const kind = topic === 'registry' ? 'registry-topic' : 'addrmap-topic';
    let raw: unknown;
    try {
      raw = JSON.parse(dec.decode(data));
    } catch {
      this.rejects.count(kind, 'not-json');
      return;
    }
    if (topic === 'registry') this.events.emit('registry', raw, signer);
    else this.run(this.core.topic(raw, signer, this.clock.now()));
  }

  /** One beat: this daemon's counter advances and it swaps tables of live members' beats with a few peers. */
  private round(): void {
    this.run(this.core.round({ load: this.o.load(), freeMb: this.o.freeMb(), host: this.o.hostName, addrs: this.addresses(), intro: this.intro }, this.connectedPeers(), this.clock.now()));
  }

  /** A peer's table: a row from an incarnation not taken in yet counts only if the origin signed that incarnation. */
  private async takeBeats(parsed: Beat[]): Promise<void> {
    const unknown = this.core.unverified(parsed);
    if (unknown.length > 0) {
      const signed = await Promise.all(unknown.map((b) => this.transport.introValid(b)));
      const forged = new Set(unknown.filter((_, i) => !signed[i]));
      parsed = parsed.filter((b) => !forged.has(b));
    }
    this.run(this.core.beatsIn(parsed, this.clock.now()));
  }

  /**
   * The last connection to a member closed: if its host now refuses the ports it listened on, its process is
   * gone, and every daemon hears so at once instead of after a failure timeout. A host that vanished
   * answers nothing, and is left to the timeout.
   */
  private onClosed(peer: string): void {
    const life = this.core.replica.incarnationOf(peer);
    if (this.stopping || life === undefined || this.probing.has(peer)) return;
    this.probing.add(peer);
    void this.transport.processGone(peer, this.core.addressesOf(peer)).then((gone) => {
      this.probing.delete(peer);
      if (!gone || this.stopping) return;
      this.o.log.info({ origin: peer, host: this.core.hostOf(peer) }, 'peer process gone: its host refuses its port');
      this.run(this.core.processGone(peer, life, this.clock.now()));
    });
  }

  /**
   * Behind on an origin: its snapshot, asked of the origin itself over a stream (no broadcast; the
   * connection proves who answers). A connection opened only for this is closed after, or pulls would
   * grow a full mesh. Through the topic when the origin cannot be reached.
   */
  private fetchSnapshot(origin: string): void {
    const wasConnected = this.connectedPeers().includes(origin);
    this.request(origin, SNAPSHOT, {}, this.o.failureTimeoutMs)
      .then((r) => {
        const fx = this.core.snapshot(origin, r, this.clock.now());
        if (fx === null) throw this.rejectReply(SNAPSHOT, 'malformed');
        this.run(fx);
      })
      .catch(() => this.run(this.core.snapshotFailed(origin, this.clock.now())))
      .finally(() => {
        this.core.pullDone(origin);
        if (!wasConnected && !this.stopping) this.transport.release(origin);
      });
  }

  /** Carries out what the core asked for. */
  private run(actions: Action[]): void {
    for (const a of actions) {
      switch (a.do) {
        case 'publish':
          this.transport.publish('addrmap', enc.encode(JSON.stringify(a.msg)));
          break;
        case 'swap':
          this.transport.swap(a.peer, a.rows);
          break;
        case 'fetch-snapshot':
          this.fetchSnapshot(a.origin);
          break;
        case 'pull-registry': {
          if (this.events.listenerCount('registry-differs') === 0) {
            this.core.registryPulled();
            break;
          }
          this.o.log.info({ origin: a.origin, host: a.host }, "registry differs from a member's: pulling it");
          this.events.emit('registry-differs', a.origin, () => this.core.registryPulled());
          break;
        }
        case 'addresses':
          this.transport.learn(a.origin, a.addrs);
          break;
        case 'changed':
          this.o.onChange(a.namespaces);
          break;
        case 'member-up':
          this.o.log.info({ origin: a.origin }, 'peer up');
          this.events.emit('peer-up', a.origin);
          break;
        case 'member-down':
          this.o.log.info({ origin: a.origin, host: a.host, reason: a.reason, entries: a.entries }, 'peer down');
          this.events.emit('member-down', a.origin, a.host, { reason: a.reason, incarnation: a.incarnation });
          break;
        case 'suspected':
        case 'refuted':
          this.o.log.info({ origin: a.origin, host: a.host }, a.do === 'suspected' ? 'peer suspected: a member timed it out' : 'peer suspicion refuted: its beats go on');
          break;
        case 'reject':
          this.rejects.count('addrmap-topic', a.reason);
          this.o.log.warn({ signer: a.signer, reason: a.reason }, 'dropped an address-map message');
          break;
      }
    }
  }

  /** A clean exit: peers drop this daemon's entries at once instead of waiting for the failure timeout. */
  async stop(): Promise<void> {
    this.stopping = true;
    for (const t of this.timers) t.cancel();
    this.flushTimer?.cancel();
    this.o.local.events.removeAllListeners('pending');
    this.run(this.core.leave());
    await new Promise((r) => this.clock.after(50, () => r(undefined)));
    await this.transport.stop();
  }
}
