import { EventEmitter } from 'node:events';
// The address map's state machine, with no I/O: instance ID → where it runs.
// Each daemon is the only writer of the entries for its own instances (its
// "origin"), so the cluster-wide map is the union of per-origin maps. Every
// local change bumps the origin's sequence number and is recorded in the
// pending delta, which the gossip layer ships to peers; the per-namespace
// version tells readers (the map file, long-polls) that something changed.

export type InstanceState = 'starting' | 'running';

export interface Entry {
  namespace: string;
  instance: string;
  function: string;
  activation: string;
  host: string;
  /** address on the namespace's network; null until the container is up */
  ip: string | null;
  port: number;
  state: InstanceState;
  /** what the instance published about itself, e.g. "waiting" or "42%" */
  status: string | null;
  since: number;
  /** how many times a job restarted this ID (absent: never); a peer that sees it change knows it lost state */
  epoch?: number;
  /** the job restarts this ID if it fails: a peer that sees it vanish waits for it to come back */
  restart?: boolean;
}

export type Change = { kind: 'upsert'; entry: Entry } | { kind: 'remove'; namespace: string; instance: string };

export interface Delta {
  origin: string;
  incarnation: number;
  seq: number;
  changes: Change[];
}

export class InstanceClash extends Error {
  readonly instance: string;
  constructor(instance: string) {
    super(`instance ${instance} is already alive in this namespace`);
    this.instance = instance;
  }
}

const key = (ns: string, id: string) => `${ns}\u0000${id}`;

/**
 * Of two entries for one instance ID, the one that holds it. Arbiters keep IDs unique while the cluster is
 * whole; two sides of a partition each have arbiters, and may grant the same ID. Once the maps meet
 * again, every daemon must name the same instance by it: the older one (then the smaller activation ID),
 * a choice made from the entries alone, so every daemon makes it alike.
 */
export function holder(a: Entry, b: Entry): Entry {
  if (a.since !== b.since) return a.since < b.since ? a : b;
  return a.activation <= b.activation ? a : b;
}

export class AddressMap {
  private readonly entries = new Map<string, Entry>();
  private readonly versions = new Map<string, number>();
  private pending: Change[] = [];
  private seq = 0;
  /** Deltas are kept for takeDelta only once a gossip layer consumes them (startReplicating); a lone daemon keeps none. */
  private replicating = false;
  /** `pending`: a change started a new pending delta, so the gossip layer ships it after its batching delay */
  readonly events = new EventEmitter<{ pending: [] }>();
  readonly origin: string;
  readonly incarnation: number;

  constructor(origin: string, incarnation: number) {
    this.origin = origin;
    this.incarnation = incarnation;
  }

  /** From now on changes are kept as deltas for a gossip layer; what happened before goes out in the first snapshot. */
  startReplicating(): void {
    this.replicating = true;
    this.takeDelta();
  }

  version(ns: string): number {
    return this.versions.get(ns) ?? 0;
  }

  get(ns: string, id: string): Entry | undefined {
    return this.entries.get(key(ns, id));
  }

  list(ns: string): Entry[] {
    const out: Entry[] = [];
    for (const e of this.entries.values()) if (e.namespace === ns) out.push(e);
    return out.sort((a, b) => (a.instance < b.instance ? -1 : a.instance > b.instance ? 1 : 0));
  }

  size(): number {
    return this.entries.size;
  }

  private record(ns: string, c: Change): void {
    this.versions.set(ns, this.version(ns) + 1);
    if (this.replicating && this.pending.push(c) === 1) this.events.emit('pending');
    this.seq++;
  }

  /**
   * Claims IDs for new instances, all or none: one that is alive already
   * makes the whole claim fail, so a group never starts half its members.
   */
  reserve(entries: Omit<Entry, 'state' | 'ip' | 'status'>[]): Entry[] {
    const seen = new Set<string>();
    for (const e of entries) {
      const k = key(e.namespace, e.instance);
      if (this.entries.has(k) || seen.has(k)) throw new InstanceClash(e.instance);
      seen.add(k);
    }
    return entries.map((e) => {
      const full: Entry = { ...e, ip: null, state: 'starting', status: null };
      this.entries.set(key(e.namespace, e.instance), full);
      this.record(e.namespace, { kind: 'upsert', entry: { ...full } });
      return full;
    });
  }

  /** Changes fields of a live entry. This map holds only this origin's own entries: others live in a Replica. */
  update(ns: string, id: string, patch: Partial<Pick<Entry, 'ip' | 'port' | 'state' | 'status'>>): Entry | undefined {
    const e = this.entries.get(key(ns, id));
    if (!e) return undefined;
    Object.assign(e, patch);
    this.record(ns, { kind: 'upsert', entry: { ...e } });
    return e;
  }

  remove(ns: string, id: string): boolean {
    const k = key(ns, id);
    if (!this.entries.has(k)) return false;
    this.entries.delete(k);
    this.record(ns, { kind: 'remove', namespace: ns, instance: id });
    return true;
  }

  /** Everything this origin has, for a peer that missed deltas; a later delta at or below `seq` is then ignored. */
  snapshot(): { origin: string; incarnation: number; seq: number; entries: Entry[] } {
    return { origin: this.origin, incarnation: this.incarnation, seq: this.seq, entries: [...this.entries.values()].map((e) => ({ ...e })) };
  }

  get sequence(): number {
    return this.seq;
  }

  /** The changes since the last call, as one delta for the gossip layer; null when there are none. */
  takeDelta(): Delta | null {
    if (this.pending.length === 0) return null;
    const d: Delta = { origin: this.origin, incarnation: this.incarnation, seq: this.seq, changes: this.pending };
    this.pending = [];
    return d;
  }
}

/** Expands `worker-{0..34}` (and `a,b,c`) into instance IDs; at most `max`. */
export function expandInstances(pattern: string, max: number): string[] {
  const out: string[] = [];
  for (const part of pattern
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)) {
    const m = /^(.*)\{(\d+)\.\.(\d+)\}(.*)$/.exec(part);
    if (!m) {
      out.push(part);
    } else {
      const [, pre, a, b, post] = m;
      const from = Number(a);
      const to = Number(b);
      if (to < from) throw new RangeError(`empty range in ${part}`);
      if (to - from + 1 + out.length > max) throw new RangeError(`more than ${max} instances`);
      for (let i = from; i <= to; i++) out.push(`${pre}${i}${post}`);
    }
    if (out.length > max) throw new RangeError(`more than ${max} instances`);
  }
  return out;
}
