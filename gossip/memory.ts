import { EventEmitter } from 'node:events';
import { MAX_ROWS } from './links.ts';
import type { Beat } from './liveness.ts';
import type { ProtocolKind, TopicKind } from './protocols.ts';
import { ReplyTooLarge, type Clock, type Handler, type Transport, type TransportEvents } from './transport.ts';

// The in-memory twin of libp2p.ts: many daemons in one process, on a
// virtual clock, over a network that loses, duplicates, delays and reorders
// messages and splits into partitions at will, all from one seed. A run is
// deterministic for a seed. Used by the simulation (test/unit/membership.sim
// and test/bench/gossip-sim.ts) to run the real driver and core at sizes no
// machine could start as processes.
//
// What it models of the real transport: topic messages reach every other
// daemon directly (gossipsub's flood publish), each copy lost, duplicated or
// delayed on its own; a request to a crashed daemon whose host is up is
// refused at once, and to one cut off never answers; a crash closes its
// connections (peers hear `closed`), a partition does not (silence only).
// Beat tables are carried as rows; their bytes are what links.ts's encoding
// would send once a member's facts are known (ROW_BYTES), plus a full row
// the first time a member goes over a link.

/** One virtual-time event. */
interface Job {
  at: number;
  n: number;
  fn: () => void;
}

/** A binary min-heap of jobs by time, then by order of scheduling: runs are deterministic. */
class Jobs {
  private readonly a: Job[] = [];
  get size(): number {
    return this.a.length;
  }
  peek(): Job | undefined {
    return this.a[0];
  }
  private less(i: number, j: number): boolean {
    const x = this.a[i]!;
    const y = this.a[j]!;
    return x.at < y.at || (x.at === y.at && x.n < y.n);
  }
  push(j: Job): void {
    const a = this.a;
    a.push(j);
    for (let i = a.length - 1; i > 0; ) {
      const p = (i - 1) >> 1;
      if (!this.less(i, p)) break;
      [a[i], a[p]] = [a[p]!, a[i]!];
      i = p;
    }
  }
  pop(): Job | undefined {
    const a = this.a;
    const top = a[0];
    const last = a.pop();
    if (a.length > 0 && last) {
      a[0] = last;
      for (let i = 0; ; ) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && this.less(l, m)) m = l;
        if (r < a.length && this.less(r, m)) m = r;
        if (m === i) break;
        [a[i], a[m]] = [a[m]!, a[i]!];
        i = m;
      }
    }
    return top;
  }
}

export interface Faults {
  /** chance that one copy of a message is lost */
  loss: number;
  /** chance that a message arrives twice */
  dup: number;
  /** delays are uniform from 1 ms to this */
  maxDelayMs: number;
  /** daemons that hear badly (a saturated NIC, a stalled event loop): the chance each loses a message sent to it */
  deaf?: Record<string, number>;
}

/** bytes of one beat row once the member's facts crossed the link: [i, beat, seq, load, freeMb, reg] */
export const ROW_BYTES = 36;
/** bytes of a member's full row the first time (peer ID, host, addresses, signature) */
export const FULL_ROW_BYTES = 330;

export type Traffic = Record<'topic' | 'beats' | 'request', { messages: number; bytes: number }>;

export class MemoryNetwork {
  now = 0;
  faults: Faults = { loss: 0, dup: 0, maxDelayMs: 5 };
  readonly traffic: Traffic = { topic: { messages: 0, bytes: 0 }, beats: { messages: 0, bytes: 0 }, request: { messages: 0, bytes: 0 } };
  readonly random: () => number;
  private readonly jobs = new Jobs();
  private n = 0;
  private readonly nodes = new Map<string, MemoryTransport>();
  /** partition side of each daemon: daemons on different sides cannot reach each other */
  private readonly side = new Map<string, number>();
  /** each daemon's neighbours (those it holds connections to), when not all */
  private readonly neighbours = new Map<string, string[]>();
  /** which incarnation of each member each directed link has carried the facts of (for beat bytes) */
  private readonly told = new Map<string, Map<string, number>>();

  constructor(random: () => number) {
    this.random = random;
  }

  /** Runs fn at virtual time `at` (never before now). */
  at(at: number, fn: () => void): void {
    this.jobs.push({ at: Math.max(at, this.now), n: this.n++, fn });
  }

  /** A clock on this network's time whose timers end with the daemon (kill). */
  clock(owner: () => boolean): Clock {
    const net = this;
    return {
      now: () => net.now,
      after(ms, fn) {
        let live = true;
        net.at(net.now + ms, () => live && owner() && fn());
        return { cancel: () => void (live = false) };
      },
      every(ms, fn) {
        let live = true;
        const go = () => {
          if (!live || !owner()) return;
          fn();
          net.at(net.now + ms, go);
        };
        net.at(net.now + ms, go);
        return { cancel: () => void (live = false) };
      },
      timeout(ms) {
        const ac = new AbortController();
        net.at(net.now + ms, () => ac.abort(new Error(`timed out after ${ms} ms`)));
        return ac.signal;
      },
    };
  }

  /** Runs events until virtual time `until`, letting each instant's promises settle before the next. */
  async run(until: number): Promise<void> {
    for (;;) {
      const next = this.jobs.peek();
      if (!next || next.at > until) break;
      this.now = next.at;
      while (this.jobs.peek()?.at === this.now) this.jobs.pop()!.fn();
      await new Promise((r) => setImmediate(r));
    }
    this.now = until;
  }

  /** A daemon's transport; a daemon that restarts gets a new one under the same ID. */
  join(id: string): MemoryTransport {
    const t = new MemoryTransport(this, id);
    this.nodes.set(id, t);
    return t;
  }

  /** Each daemon holds connections to k random others (and those that chose it), instead of to all. */
  connectSparsely(k: number): void {
    const ids = [...this.nodes.keys()];
    const sets = new Map(ids.map((id) => [id, new Set<string>()]));
    for (const id of ids) {
      for (let i = 0; i < k && ids.length > 1; i++) {
        const other = ids[Math.floor(this.random() * ids.length)]!;
        if (other === id) continue;
        sets.get(id)!.add(other);
        sets.get(other)!.add(id);
      }
    }
    for (const [id, s] of sets) this.neighbours.set(id, [...s]);
  }

  partition(sides: string[][]): void {
    this.side.clear();
    sides.forEach((ids, i) => ids.forEach((id) => this.side.set(id, i + 1)));
  }

  heal(): void {
    this.side.clear();
  }

  reachable(a: string, b: string): boolean {
    return (this.side.get(a) ?? 0) === (this.side.get(b) ?? 0);
  }

  allIds(): string[] {
    return [...this.nodes.keys()];
  }

  node(id: string): MemoryTransport | undefined {
    return this.nodes.get(id);
  }

  neighboursOf(id: string): string[] {
    const ns = this.neighbours.get(id);
    return ns ?? [...this.nodes.keys()].filter((x) => x !== id);
  }

  /** Delivers fn after a random delay, maybe twice, maybe never. */
  send(from: string, to: string, fn: (t: MemoryTransport) => void): void {
    if (!this.reachable(from, to) || this.random() < this.faults.loss) return;
    if (this.faults.deaf?.[to] !== undefined && this.random() < this.faults.deaf[to]) return;
    const copies = this.random() < this.faults.dup ? 2 : 1;
    for (let i = 0; i < copies; i++) {
      this.at(this.now + 1 + Math.floor(this.random() * this.faults.maxDelayMs), () => {
        const t = this.nodes.get(to);
        if (t?.alive && this.reachable(from, to)) fn(t);
      });
    }
  }

  count(kind: keyof Traffic, bytes: number): void {
    this.traffic[kind].messages++;
    this.traffic[kind].bytes += bytes;
  }

  /** What a beat table costs on the link from→to, as links.ts's row encoding would send it. */
  tableBytes(from: string, to: string, rows: Beat[]): number {
    const key = `${from}>${to}`;
    let told = this.told.get(key);
    if (!told) this.told.set(key, (told = new Map()));
    let bytes = 16 + rows.length * ROW_BYTES;
    for (const r of rows) {
      if (told.get(r.origin) === r.incarnation) continue;
      told.set(r.origin, r.incarnation);
      bytes += FULL_ROW_BYTES - ROW_BYTES;
    }
    return bytes;
  }
}

export class MemoryTransport implements Transport {
  readonly self: string;
  readonly events = new EventEmitter<TransportEvents>();
  alive = true;
  readonly clock: Clock;
  private readonly net: MemoryNetwork;
  private readonly handlers = new Map<ProtocolKind, { max: number; fn: Handler }>();

  constructor(net: MemoryNetwork, self: string) {
    this.net = net;
    this.self = self;
    this.clock = net.clock(() => this.alive);
  }

  addresses(): string[] {
    return [`/memory/${this.self}`];
  }

  connected(): string[] {
    return this.net.neighboursOf(this.self).filter((id) => this.net.node(id)?.alive && this.net.reachable(this.self, id));
  }

  publish(topic: TopicKind, data: Uint8Array): void {
    if (!this.alive) return;
    for (const id of this.net.allIds()) {
      if (id === this.self) continue;
      this.net.count('topic', data.length);
      this.net.send(this.self, id, (t) => t.events.emit('message', topic, data, this.self));
    }
  }

  request(peer: string, protocol: ProtocolKind, data: Uint8Array, o: { signal: AbortSignal; maxBytes: number }): Promise<Uint8Array> {
    return new Promise((resolve, reject) => {
      o.signal.addEventListener('abort', () => reject(o.signal.reason as Error), { once: true });
      this.net.count('request', data.length);
      const target = this.net.node(peer);
      // A host that is up refuses a dead process's port at once; a cut-off one says nothing.
      if (!target?.alive && this.net.reachable(this.self, peer) && target) return void this.net.at(this.net.now + 1, () => reject(new Error('connection refused')));
      this.net.send(this.self, peer, (t) => {
        const h = t.handlers.get(protocol);
        if (!h) return void this.net.send(peer, this.self, () => reject(new Error(`protocol ${protocol} not supported`)));
        void h.fn(data.length > h.max ? null : data, this.self).then(
          (reply) => {
            this.net.count('request', reply.length);
            this.net.send(peer, this.self, () => (reply.length > o.maxBytes ? reject(new ReplyTooLarge('reply too large')) : resolve(reply)));
          },
          () => undefined,
        );
      });
    });
  }

  async handle(protocol: ProtocolKind, maxRequestBytes: number, fn: Handler): Promise<void> {
    this.handlers.set(protocol, { max: maxRequestBytes, fn });
  }

  swap(peer: string, rows: Beat[]): void {
    if (!this.alive) return;
    this.net.count('beats', this.net.tableBytes(this.self, peer, rows));
    // As RowDecoder: no more rows than a frame may carry.
    this.net.send(this.self, peer, (t) =>
      t.events.emit('beats', rows.slice(0, MAX_ROWS), this.self, (back) => {
        if (!t.alive) return;
        t.net.count('beats', t.net.tableBytes(peer, this.self, back));
        t.net.send(peer, this.self, (me) => me.events.emit('beats', back.slice(0, MAX_ROWS), peer, null));
      }),
    );
  }

  learn(): void {}

  release(): void {}

  async processGone(peer: string): Promise<boolean> {
    const t = this.net.node(peer);
    return !!t && !t.alive && this.net.reachable(this.self, peer);
  }

  async signIntro(incarnation: number): Promise<string> {
    return `sim:${this.self}:${incarnation}`;
  }

  async introValid(b: Beat): Promise<boolean> {
    return b.intro === `sim:${b.origin}:${b.incarnation}`;
  }

  /** A crash: nothing more is sent or heard, its timers end, and its connections close (its peers hear `closed`). */
  kill(): void {
    if (!this.alive) return;
    this.alive = false;
    for (const id of this.net.neighboursOf(this.self)) {
      if (!this.net.reachable(this.self, id)) continue;
      this.net.at(this.net.now + 1, () => {
        const t = this.net.node(id);
        if (t?.alive) t.events.emit('closed', this.self);
      });
    }
  }

  async stop(): Promise<void> {
    this.kill();
  }
}
