import type { Change, Entry } from './addrmap.ts';

// What one daemon knows of everyone else's address map, as a pure state
// machine: messages in, effects out, time passed in. No sockets, no timers, so
// a seeded simulation can drive it through loss, reordering, duplication,
// partitions and crashes (test/unit/replica.sim.test.ts).
//
// Rules (DESIGN.md, "The address map"):
// - only the origin speaks for its entries; a newer incarnation replaces all
//   that was known of the old one;
// - a delta applies when it continues the known sequence; an old or repeated
//   one is ignored; a gap (or a heartbeat ahead of what we have) asks for a
//   snapshot of that origin;
// - no word from an origin for the failure timeout, or its leave message,
//   removes its entries.

export type GossipMessage =
  | { type: 'delta'; origin: string; incarnation: number; seq: number; changes: Change[] }
  | { type: 'heartbeat'; origin: string; incarnation: number; seq: number; load: number }
  | { type: 'snapshot'; origin: string; incarnation: number; seq: number; entries: Entry[] }
  | { type: 'leave'; origin: string; incarnation: number };

export type Effect =
  | { kind: 'pull-snapshot'; origin: string }
  | { kind: 'origin-up'; origin: string; incarnation: number }
  | { kind: 'origin-down'; origin: string; reason: 'timeout' | 'leave' | 'restart'; entries: Entry[] }
  | { kind: 'changed'; origin: string; namespaces: string[] };

interface OriginState {
  incarnation: number;
  /** -1 until a snapshot (or the very first delta of an incarnation) tells us where we stand */
  seq: number;
  entries: Map<string, Entry>;
  lastSeen: number;
  load: number;
}

const key = (ns: string, id: string) => `${ns}\u0000${id}`;

export interface Member {
  origin: string;
  incarnation: number;
  seq: number;
  load: number;
  lastSeen: number;
  entries: number;
  synced: boolean;
}

export class Replica {
  readonly self: string;
  readonly failureTimeoutMs: number;
  private readonly origins = new Map<string, OriginState>();

  constructor(self: string, failureTimeoutMs: number) {
    this.self = self;
    this.failureTimeoutMs = failureTimeoutMs;
  }

  members(): Member[] {
    return [...this.origins].map(([origin, s]) => ({
      origin, incarnation: s.incarnation, seq: s.seq, load: s.load, lastSeen: s.lastSeen, entries: s.entries.size, synced: s.seq >= 0,
    }));
  }

  /** Every remote entry known, across origins. */
  entries(): Entry[] {
    const out: Entry[] = [];
    for (const s of this.origins.values()) out.push(...s.entries.values());
    return out;
  }

  list(ns: string): Entry[] {
    const out: Entry[] = [];
    for (const s of this.origins.values()) for (const e of s.entries.values()) if (e.namespace === ns) out.push(e);
    return out;
  }

  get(ns: string, id: string): Entry | undefined {
    for (const s of this.origins.values()) {
      const e = s.entries.get(key(ns, id));
      if (e) return e;
    }
    return undefined;
  }

  /** Known origin at this incarnation or newer; creates or resets state as needed. */
  private track(origin: string, incarnation: number, now: number, fx: Effect[]): OriginState | null {
    const s = this.origins.get(origin);
    if (s && incarnation < s.incarnation) return null; // a message from a previous life
    if (!s || incarnation > s.incarnation) {
      if (s) fx.push({ kind: 'origin-down', origin, reason: 'restart', entries: [...s.entries.values()] });
      if (s && s.entries.size > 0) fx.push({ kind: 'changed', origin, namespaces: namespaces(s.entries.values()) });
      const fresh: OriginState = { incarnation, seq: -1, entries: new Map(), lastSeen: now, load: 0 };
      this.origins.set(origin, fresh);
      fx.push({ kind: 'origin-up', origin, incarnation });
      return fresh;
    }
    s.lastSeen = now;
    return s;
  }

  receive(m: GossipMessage, now: number): Effect[] {
    if (m.origin === this.self) return [];
    const fx: Effect[] = [];
    if (m.type === 'leave') {
      const s = this.origins.get(m.origin);
      if (s && m.incarnation >= s.incarnation) this.drop(m.origin, 'leave', fx);
      return fx;
    }
    const s = this.track(m.origin, m.incarnation, now, fx);
    if (!s) return fx;
    switch (m.type) {
      case 'delta': {
        const first = m.seq - m.changes.length; // the seq this delta continues from
        if (m.seq <= s.seq) break; // duplicate or old
        if (s.seq === first || (s.seq === -1 && first === 0)) {
          applyChanges(s, m.changes);
          s.seq = m.seq;
          fx.push({ kind: 'changed', origin: m.origin, namespaces: namespaces(m.changes.map((c) => (c.kind === 'upsert' ? c.entry : c))) });
        } else fx.push({ kind: 'pull-snapshot', origin: m.origin });
        break;
      }
      case 'heartbeat':
        s.load = m.load;
        if (m.seq > s.seq) fx.push({ kind: 'pull-snapshot', origin: m.origin });
        break;
      case 'snapshot': {
        if (m.seq < s.seq) break;
        const before = namespaces(s.entries.values());
        s.entries = new Map(m.entries.map((e) => [key(e.namespace, e.instance), e]));
        s.seq = m.seq;
        fx.push({ kind: 'changed', origin: m.origin, namespaces: [...new Set([...before, ...namespaces(m.entries)])] });
        break;
      }
    }
    return fx;
  }

  /** Failure detection: origins silent for longer than the timeout are dropped with their entries. */
  tick(now: number): Effect[] {
    const fx: Effect[] = [];
    for (const [origin, s] of this.origins) if (now - s.lastSeen > this.failureTimeoutMs) this.drop(origin, 'timeout', fx);
    return fx;
  }

  private drop(origin: string, reason: 'timeout' | 'leave', fx: Effect[]): void {
    const s = this.origins.get(origin);
    if (!s) return;
    this.origins.delete(origin);
    fx.push({ kind: 'origin-down', origin, reason, entries: [...s.entries.values()] });
    if (s.entries.size > 0) fx.push({ kind: 'changed', origin, namespaces: namespaces(s.entries.values()) });
  }
}

function applyChanges(s: OriginState, changes: Change[]): void {
  for (const c of changes) {
    if (c.kind === 'upsert') s.entries.set(key(c.entry.namespace, c.entry.instance), c.entry);
    else s.entries.delete(key(c.namespace, c.instance));
  }
}

function namespaces(xs: Iterable<{ namespace: string }>): string[] {
  const out = new Set<string>();
  for (const x of xs) out.add(x.namespace);
  return [...out];
}
