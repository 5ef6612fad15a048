import type { AddressMap } from './addrmap.ts';
import { DigestWatch } from './digests.ts';
import { BeatTable, FANOUT, pick, reportTimeouts, sameAddrs, type Beat } from './liveness.ts';
import type { RejectReason } from './protocols.ts';
import { Replica, type Effect, type Member } from './replica.ts';
import { parseTopicMessage, type TopicMessage } from './wire.ts';

// One daemon's side of the membership and address-map protocol, whole and
// without I/O: what comes in (a topic message, a peer's beat table, a
// snapshot, the passing of time) goes in with the time, and what the daemon
// must do comes out as actions. The driver (cluster.ts) carries the actions
// out over a Transport (transport.ts); the simulation carries them out over
// the in-memory one. Read top to bottom, this file is the protocol:
//
// - liveness: each round a daemon's beat counter advances and its table of
//   members' freshest beats goes to FANOUT peers, which answer with theirs
//   (liveness.ts). News of a beat is a sign of life (replica.ts);
// - address map: each daemon publishes its own changes as numbered deltas on
//   the topic; a gap, or a beat ahead of what is known, fetches the origin's
//   snapshot from the origin, and when that fails asks for it on the topic;
// - failure: silence for a failure timeout drops a member here, and is
//   reported on the topic, where it only makes the member suspected until its
//   beats refute it; a host refusing a member's ports is a fact and drops it
//   everywhere at once; a goodbye drops it at once;
// - registry repair: a member whose registry digest differs for a while is
//   pulled from (digests.ts).

/** What the driver must do. */
export type Action =
  | { do: 'publish'; msg: TopicMessage }
  /** push this daemon's table to a peer, which answers with its own (beats) */
  | { do: 'swap'; peer: string; rows: Beat[] }
  /** fetch an origin's snapshot from the origin; then snapshot() or snapshotFailed(), and pullDone() */
  | { do: 'fetch-snapshot'; origin: string }
  /** pull a member's registry; then registryPulled() */
  | { do: 'pull-registry'; origin: string; host: string }
  /** where a member listens, as its beats say: changed since last told */
  | { do: 'addresses'; origin: string; addrs: string[] }
  | { do: 'changed'; namespaces: string[] }
  | { do: 'member-up'; origin: string }
  | { do: 'member-down'; origin: string; incarnation: number; host: string; reason: DropReason; entries: number }
  | { do: 'suspected' | 'refuted'; origin: string; host: string | undefined }
  /** a topic message dropped unread */
  | { do: 'reject'; reason: RejectReason; signer: string };

/** why a member was dropped: silent for the failure timeout, said goodbye, reported gone, restarted */
export type DropReason = 'timeout' | 'leave' | 'down' | 'restart';

/** What a daemon's own beat carries besides its counter. */
export type OwnBeat = Omit<Beat, 'origin' | 'beat' | 'incarnation' | 'seq'>;

export interface MembershipOptions {
  /** this daemon's member ID */
  self: string;
  failureTimeoutMs: number;
  /** the daemon's own map: its deltas and snapshots are what it publishes */
  local: AddressMap;
  /** a hash of this daemon's registry (digests.ts); without it no registry is compared */
  registryDigest?: () => number;
  random?: () => number;
}

/** a snapshot is fetched from one origin at most this often */
const PULL_EVERY_MS = 200;
/** and asked for on the topic at most this often: a pull there costs every daemon a signature check */
const TOPIC_PULL_EVERY_MS = 1000;
/** a daemon answers pulls on the topic with its snapshot at most this often */
const SNAPSHOT_EVERY_MS = 100;

export class Membership {
  readonly self: string;
  readonly replica: Replica;
  /** members dropped, by why: silent for the failure timeout, said goodbye, reported gone, restarted */
  readonly dropped: Record<DropReason, number> = { timeout: 0, leave: 0, down: 0, restart: 0 };
  /** members another timed out (suspected), and of those, members whose beats went on (refuted) */
  readonly suspicions: Record<'suspected' | 'refuted', number> = { suspected: 0, refuted: 0 };
  private readonly beats: BeatTable;
  private readonly digests = new DigestWatch();
  /** members' latest beats: their host names and free memory */
  private readonly hosts = new Map<string, Beat>();
  /** members' addresses as last told to the driver */
  private readonly addressed = new Map<string, string[]>();
  private readonly lastPull = new Map<string, number>();
  private readonly lastTopicPull = new Map<string, number>();
  /** origins whose snapshot is being fetched */
  private readonly pulling = new Set<string>();
  private lastSnapshot = -Infinity;
  private lastTick: number | null = null;
  private leaving = false;
  private readonly o: MembershipOptions;
  private readonly random: () => number;

  constructor(o: MembershipOptions) {
    this.o = o;
    this.self = o.self;
    this.random = o.random ?? Math.random;
    this.replica = new Replica(this.self, o.failureTimeoutMs);
    this.beats = new BeatTable(this.self, o.failureTimeoutMs);
  }

  members(): (Member & { host: string | undefined; freeMb: number; addressed: boolean })[] {
    return this.replica.members().map((m) => ({ ...m, host: this.hosts.get(m.origin)?.host, freeMb: this.hosts.get(m.origin)?.freeMb ?? 0, addressed: this.addressed.has(m.origin) }));
  }

  hostOf(origin: string): string | undefined {
    return this.hosts.get(origin)?.host;
  }

  addressesOf(origin: string): string[] {
    return this.addressed.get(origin) ?? [];
  }

  /** This daemon's table of live members' beats: what a swap pushes, and answers with. */
  table(now: number): Beat[] {
    return this.beats.live(now);
  }

  // ---- liveness ----

  /** One round: this daemon's counter advances, and its table goes to a few of the peers it is connected to. */
  round(own: OwnBeat, connected: string[], now: number): Action[] {
    const reg = this.o.registryDigest?.();
    this.beats.beat({ ...own, incarnation: this.o.local.incarnation, seq: this.o.local.sequence, ...(reg === undefined ? {} : { reg }) }, now);
    const rows = this.beats.live(now);
    return pick(connected, FANOUT, this.random).map((peer) => ({ do: 'swap', peer, rows }));
  }

  /** Rows whose incarnation is not taken in yet: the driver checks their signatures before beats() takes them. */
  unverified(rows: Beat[]): Beat[] {
    return rows.filter((b) => !this.beats.knows(b));
  }

  /** A peer's table (rows of unknown incarnations already checked): what is news counts as a sign of life. */
  beatsIn(rows: Beat[], now: number): Action[] {
    const out: Action[] = [];
    for (const b of this.beats.merge(rows, now)) {
      // First: a new incarnation drops what was known of the old one.
      this.apply(this.replica.receive({ type: 'heartbeat', origin: b.origin, incarnation: b.incarnation, seq: b.seq, load: b.load }, now), out, now);
      this.hosts.set(b.origin, b);
      const had = this.addressed.get(b.origin);
      if (b.addrs.length > 0 && !(had && sameAddrs(had, b.addrs))) {
        this.addressed.set(b.origin, b.addrs);
        out.push({ do: 'addresses', origin: b.origin, addrs: b.addrs });
      }
      this.compareRegistry(b, now, out);
    }
    return out;
  }

  private compareRegistry(b: Beat, now: number, out: Action[]): void {
    const ours = this.o.registryDigest?.();
    if (b.reg === undefined || ours === undefined || this.replica.incarnationOf(b.origin) === undefined) return;
    if (this.digests.observe(b.origin, b.reg, ours, now)) out.push({ do: 'pull-registry', origin: b.origin, host: b.host });
  }

  registryPulled(): void {
    this.digests.done();
  }

  /** Failure detection and gap timeouts; members that timed out here are reported to all (see reportTimeouts). */
  tick(now: number): Action[] {
    const since = this.lastTick === null ? 0 : now - this.lastTick;
    this.lastTick = now;
    const out: Action[] = [];
    const fx = this.replica.tick(now);
    this.apply(fx, out, now);
    const timedOut = fx.flatMap((f) => (f.kind === 'origin-down' && f.reason === 'timeout' ? [f] : []));
    if (this.leaving || !reportTimeouts(timedOut.length, this.replica.memberCount, since)) return out;
    // Others only suspect it: a member that still hears its beats refutes this daemon's word (replica.ts).
    for (const f of timedOut) out.push({ do: 'publish', msg: { type: 'down', origin: f.origin, incarnation: f.incarnation, why: 'timeout' } });
    return out;
  }

  /**
   * A member's host refuses the ports it listened on, checked after its last connection closed while it was
   * in its incarnation `life`: its process is gone, and every daemon hears so at once.
   */
  processGone(origin: string, life: number, now: number): Action[] {
    // Still that life: a restart in the meantime is a new incarnation, which speaks for itself.
    if (this.leaving || this.replica.incarnationOf(origin) !== life) return [];
    const down = { type: 'down' as const, origin, incarnation: life, why: 'refused' as const };
    const out: Action[] = [];
    this.apply(this.replica.receive(down, now), out, now);
    out.push({ do: 'publish', msg: down });
    return out;
  }

  // ---- the address map ----

  /** This daemon's changes since the last flush, as one delta. */
  flush(): Action[] {
    const d = this.o.local.takeDelta();
    return d ? [{ do: 'publish', msg: { type: 'delta', origin: this.self, incarnation: d.incarnation, seq: d.seq, changes: d.changes } }] : [];
  }

  /** A message on the address-map topic, as JSON, and the member whose signature it carries. */
  topic(raw: unknown, signer: string, now: number): Action[] {
    const m = parseTopicMessage(raw);
    if (m === null) return [{ do: 'reject', reason: 'malformed', signer }];
    if (m.type === 'pull') {
      if (m.from !== signer) return [{ do: 'reject', reason: 'forged', signer }];
      if (m.origin !== this.self || now - this.lastSnapshot <= SNAPSHOT_EVERY_MS) return [];
      // Answered on the topic: any other daemon that lags catches up from the same snapshot.
      this.lastSnapshot = now;
      const { incarnation, seq, entries } = this.o.local.snapshot();
      return [{ do: 'publish', msg: { type: 'snapshot', origin: this.self, incarnation, seq, entries } }];
    }
    const out: Action[] = [];
    if (m.type === 'down') {
      // Any member may say another is gone (its port refused, or its beats silent here); a non-member may not.
      if (this.replica.incarnationOf(signer) !== undefined) this.apply(this.replica.receive(m, now), out, now);
      return out;
    }
    if (m.origin !== signer) return [{ do: 'reject', reason: 'forged', signer }];
    if (m.type === 'heartbeat') return []; // liveness comes only from beat counters (an old daemon's heartbeat)
    this.apply(this.replica.receive(m, now), out, now);
    return out;
  }

  /** An origin's snapshot, fetched from the origin (the connection proves who answers). */
  snapshot(origin: string, reply: unknown, now: number): Action[] | null {
    const snap = parseTopicMessage({ ...(reply as object), type: 'snapshot', origin });
    if (snap?.type !== 'snapshot') return null;
    const out: Action[] = [];
    this.apply(this.replica.receive(snap, now), out, now);
    return out;
  }

  /** The origin could not be asked: ask on the topic, where it (or its snapshot, from any) still arrives. */
  snapshotFailed(origin: string, now: number): Action[] {
    if (now - (this.lastTopicPull.get(origin) ?? -Infinity) < TOPIC_PULL_EVERY_MS) return [];
    this.lastTopicPull.set(origin, now);
    return [{ do: 'publish', msg: { type: 'pull', origin, from: this.self } }];
  }

  pullDone(origin: string): void {
    this.pulling.delete(origin);
  }

  /** This daemon is leaving: its last changes, and a goodbye so peers drop it at once. */
  leave(): Action[] {
    this.leaving = true;
    return [...this.flush(), { do: 'publish', msg: { type: 'leave', origin: this.self, incarnation: this.o.local.incarnation } }];
  }

  private apply(fx: Effect[], out: Action[], now: number): void {
    for (const f of fx) {
      if (f.kind === 'changed') out.push({ do: 'changed', namespaces: f.namespaces });
      else if (f.kind === 'pull-snapshot') this.fetch(f.origin, out, now);
      else if (f.kind === 'origin-up') out.push({ do: 'member-up', origin: f.origin });
      else if (f.kind === 'suspected' || f.kind === 'refuted') {
        this.suspicions[f.kind]++;
        out.push({ do: f.kind, origin: f.origin, host: this.hosts.get(f.origin)?.host });
      } else {
        this.dropped[f.reason]++;
        // Told while its host name is still known, so what failed with it can name it.
        out.push({ do: 'member-down', origin: f.origin, incarnation: f.incarnation, host: this.hosts.get(f.origin)?.host ?? f.origin, reason: f.reason, entries: f.entries.length });
        this.addressed.delete(f.origin);
        this.hosts.delete(f.origin);
        this.digests.forget(f.origin);
      }
    }
  }

  private fetch(origin: string, out: Action[], now: number): void {
    if (this.pulling.has(origin) || now - (this.lastPull.get(origin) ?? -Infinity) < PULL_EVERY_MS) return;
    this.lastPull.set(origin, now);
    this.pulling.add(origin);
    out.push({ do: 'fetch-snapshot', origin });
  }
}
