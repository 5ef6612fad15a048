import { holder, type Change, type Entry } from './addrmap.ts';

// What one daemon knows of everyone else's address map, as a pure state
// machine: messages in, effects out, time passed in. No sockets, no timers, so
// a seeded simulation can drive it through loss, reordering, duplication,
// partitions and crashes (test/unit/membership.sim.test.ts, through the
// membership core that drives it).
//
// Rules (DESIGN.md, "The address map"):
// - only the origin speaks for its entries; a newer incarnation replaces all
//   that was known of the old one;
// - a delta applies when it continues the known sequence; an old or repeated
//   one is ignored; a gap (or a heartbeat ahead of what we have, after a
//   longer grace) asks for a snapshot of that origin;
// - no word from an origin for the failure timeout, its leave message, or a
//   peer's word that its process is gone (its host refused its port: a fact),
//   removes its entries;
// - a peer's word that it timed an origin out only makes the origin suspected:
//   its entries stay, and news of its beats refutes the suspicion; unrefuted
//   for a failure timeout, it is dropped (memberlist's and serf's suspicion,
//   with the beat counter in the role of their incarnation).

export type GossipMessage =
  | { type: 'delta'; origin: string; incarnation: number; seq: number; changes: Change[] }
  | { type: 'heartbeat'; origin: string; incarnation: number; seq: number; load: number }
  | { type: 'snapshot'; origin: string; incarnation: number; seq: number; entries: Entry[] }
  | { type: 'leave'; origin: string; incarnation: number }
  /**
   * not from the origin: a peer found the origin's port closed (`refused`: its process is gone), or timed it
   * out (`timeout`: maybe only that peer's links are slow). A report without `why` (an older daemon's) is
   * taken as `refused`.
   */
  | { type: 'down'; origin: string; incarnation: number; why?: 'refused' | 'timeout' };

export type Effect =
  | { kind: 'pull-snapshot'; origin: string }
  | { kind: 'origin-up'; origin: string; incarnation: number }
  | { kind: 'origin-down'; origin: string; incarnation: number; reason: 'timeout' | 'leave' | 'down' | 'restart'; entries: Entry[] }
  | { kind: 'changed'; origin: string; namespaces: string[] }
  /** a peer timed the origin out: it is kept, and dropped unless its beats refute that in a failure timeout */
  | { kind: 'suspected'; origin: string }
  /** news of a suspected origin's beats: it lives */
  | { kind: 'refuted'; origin: string };

interface OriginState {
  incarnation: number;
  /** deltas that arrived ahead of a missing one, by the seq they continue from */
  ahead: Map<number, { seq: number; changes: Change[] }>;
  /** when the oldest unfilled gap was seen; a snapshot is pulled if it stays open past the grace */
  gapSince: number | null;
  /** a heartbeat said the origin is further on than we are: its delta is likely still on its way */
  behind: { seq: number; since: number } | null;
  /** -1 until a snapshot (or the very first delta of an incarnation) tells us where we stand */
  seq: number;
  entries: Map<string, Entry>;
  lastSeen: number;
  load: number;
  /** a peer timed it out: when it is dropped unless refuted */
  suspectedUntil: number | null;
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
  suspected: boolean;
}

export class Replica {
  readonly self: string;
  readonly failureTimeoutMs: number;
  /** how long a gap may wait for the missing delta (gossip paths reorder) before a snapshot is pulled */
  readonly gapGraceMs: number;
  /**
   * how long a daemon may lag behind what a heartbeat says before it pulls: longer than a gap's grace, as
   * heartbeats take other paths than deltas and often outrun them; a lost delta is rare, a pull costs
   */
  readonly behindGraceMs: number;
  private readonly origins = new Map<string, OriginState>();
  /**
   * Incarnations that ended, by goodbye (for good) or by a peer's word (for a failure timeout: should the
   * word be wrong, the origin's own beats bring it back after that). Their last beats and deltas are still
   * on their way when the news lands; without this they would bring the origin back as a member for a
   * failure timeout, one that takes forwarded work and never answers.
   */
  private readonly ended = new Map<string, { incarnation: number; until: number }>();
  /**
   * No tick before this time can have anything to do: the earliest deadline (a failure timeout, a suspicion,
   * a gap's or a lag's grace) as of the last scan, lowered whenever a message sets a nearer one. A tick then
   * costs nothing until a deadline is near, instead of a pass over every member each time.
   */
  private due = Infinity;

  constructor(self: string, failureTimeoutMs: number, gapGraceMs = 50, behindGraceMs = 500) {
    this.self = self;
    this.failureTimeoutMs = failureTimeoutMs;
    this.gapGraceMs = gapGraceMs;
    this.behindGraceMs = behindGraceMs;
  }

  /** how many members are known: members() without building them */
  get memberCount(): number {
    return this.origins.size;
  }

  /** a member's incarnation, or undefined when it is not a member */
  incarnationOf(origin: string): number | undefined {
    return this.origins.get(origin)?.incarnation;
  }

  members(): Member[] {
    return [...this.origins].map(([origin, s]) => ({
      origin,
      incarnation: s.incarnation,
      seq: s.seq,
      load: s.load,
      lastSeen: s.lastSeen,
      entries: s.entries.size,
      synced: s.seq >= 0,
      suspected: s.suspectedUntil !== null,
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

  /** The entry that holds this ID: after a partition two origins may both have one (see holder). */
  get(ns: string, id: string): Entry | undefined {
    let found: Entry | undefined;
    for (const s of this.origins.values()) {
      const e = s.entries.get(key(ns, id));
      if (e) found = found ? holder(found, e) : e;
    }
    return found;
  }

  /** Known origin at this incarnation or newer; creates or resets state as needed. */
  private track(origin: string, incarnation: number, now: number, fx: Effect[]): OriginState | null {
    const s = this.origins.get(origin);
    if (s && incarnation < s.incarnation) return null; // a message from a previous life
    const ended = this.ended.get(origin);
    if (ended && incarnation <= ended.incarnation && now < ended.until) return null; // or from the life that ended
    if (!s || incarnation > s.incarnation) {
      if (s) fx.push({ kind: 'origin-down', origin, incarnation: s.incarnation, reason: 'restart', entries: [...s.entries.values()] });
      if (s && s.entries.size > 0) fx.push({ kind: 'changed', origin, namespaces: namespaces(s.entries.values()) });
      const fresh: OriginState = { incarnation, seq: -1, entries: new Map(), lastSeen: now, load: 0, ahead: new Map(), gapSince: null, behind: null, suspectedUntil: null };
      this.origins.set(origin, fresh);
      this.wake(now + this.failureTimeoutMs);
      fx.push({ kind: 'origin-up', origin, incarnation });
      return fresh;
    }
    s.lastSeen = now;
    return s;
  }

  receive(m: GossipMessage, now: number): Effect[] {
    if (m.origin === this.self) return [];
    const fx: Effect[] = [];
    if (m.type === 'down' && m.why === 'timeout') {
      const s = this.origins.get(m.origin);
      // Only the life the reporter timed out; one already suspected keeps its first deadline.
      if (s && s.incarnation === m.incarnation && s.suspectedUntil === null) {
        s.suspectedUntil = now + this.failureTimeoutMs;
        this.wake(s.suspectedUntil);
        fx.push({ kind: 'suspected', origin: m.origin });
      }
      return fx;
    }
    if (m.type === 'leave' || m.type === 'down') {
      const s = this.origins.get(m.origin);
      if (s && m.incarnation < s.incarnation) return fx;
      const was = this.ended.get(m.origin);
      if (m.type === 'down' && was && was.incarnation >= m.incarnation && was.until === Infinity) return fx; // it said goodbye already
      this.ended.set(m.origin, { incarnation: m.incarnation, until: m.type === 'leave' ? Infinity : now + this.failureTimeoutMs });
      this.drop(m.origin, m.type, fx);
      return fx;
    }
    const s = this.track(m.origin, m.incarnation, now, fx);
    if (!s) return fx;
    switch (m.type) {
      case 'delta': {
        const first = m.seq - m.changes.length; // the seq this delta continues from
        if (m.seq <= s.seq) break; // duplicate or old
        if (s.seq === first || (s.seq === -1 && first === 0)) {
          this.applyInOrder(m.origin, s, m.seq, m.changes, fx);
        } else {
          // Ahead of a missing delta: keep it a moment, the missing one is likely on another path.
          s.ahead.set(first, { seq: m.seq, changes: m.changes });
          s.gapSince ??= now;
          this.wake(s.gapSince + this.gapGraceMs);
          if (s.seq === -1) fx.push({ kind: 'pull-snapshot', origin: m.origin });
        }
        break;
      }
      case 'heartbeat':
        s.load = m.load;
        // Beats are taken only as news (a counter that advanced): the origin beat after it was suspected.
        if (s.suspectedUntil !== null) {
          s.suspectedUntil = null;
          fx.push({ kind: 'refuted', origin: m.origin });
        }
        if (s.seq === -1 && m.seq === 0)
          s.seq = 0; // an incarnation that has shipped no delta has no entries yet
        else if (s.seq === -1) fx.push({ kind: 'pull-snapshot', origin: m.origin });
        else if (m.seq > s.seq) {
          s.behind = { seq: Math.max(m.seq, s.behind?.seq ?? 0), since: s.behind?.since ?? now };
          this.wake(s.behind.since + this.behindGraceMs);
        }
        break;
      case 'snapshot': {
        if (m.seq < s.seq) break;
        const before = namespaces(s.entries.values());
        s.entries = new Map(m.entries.map((e) => [key(e.namespace, e.instance), e]));
        s.seq = m.seq;
        // Deltas held for a gap the snapshot has now covered: apply those that continue from it.
        for (const k of [...s.ahead.keys()]) if (s.ahead.get(k)!.seq <= s.seq) s.ahead.delete(k);
        s.gapSince = null;
        if (s.behind && s.seq >= s.behind.seq) s.behind = null;
        const next = s.ahead.get(s.seq);
        if (next) {
          s.ahead.delete(s.seq);
          this.applyInOrder(m.origin, s, next.seq, next.changes, fx);
        } else if (s.ahead.size > 0) {
          s.gapSince = now;
          this.wake(now + this.gapGraceMs);
        }
        fx.push({ kind: 'changed', origin: m.origin, namespaces: [...new Set([...before, ...namespaces(m.entries)])] });
        break;
      }
    }
    return fx;
  }

  /** Applies a delta that continues the sequence, then any held ones that now continue it. */
  private applyInOrder(origin: string, s: OriginState, seq: number, changes: Change[], fx: Effect[]): void {
    const touched = new Set<string>();
    for (;;) {
      applyChanges(s, changes);
      for (const c of changes) touched.add(c.kind === 'upsert' ? c.entry.namespace : c.namespace);
      s.seq = seq;
      const next = s.ahead.get(seq);
      if (!next) break;
      s.ahead.delete(seq);
      ({ seq, changes } = next);
    }
    for (const k of [...s.ahead.keys()]) if (s.ahead.get(k)!.seq <= s.seq) s.ahead.delete(k);
    s.gapSince = s.ahead.size > 0 ? s.gapSince : null;
    if (s.behind && s.seq >= s.behind.seq) s.behind = null;
    fx.push({ kind: 'changed', origin, namespaces: [...touched] });
  }

  /**
   * Failure detection: origins silent for longer than the timeout are dropped with their entries.
   * Also asks for a snapshot of an origin whose gap outlived the grace.
   */
  tick(now: number): Effect[] {
    const fx: Effect[] = [];
    if (now < this.due) return fx;
    this.due = Infinity;
    for (const [origin, s] of this.origins) {
      if (now - s.lastSeen > this.failureTimeoutMs) this.drop(origin, 'timeout', fx);
      else if (s.suspectedUntil !== null && now >= s.suspectedUntil) {
        // Unrefuted: as a report that its process is gone, its late beats are kept out for a failure timeout.
        this.ended.set(origin, { incarnation: s.incarnation, until: now + this.failureTimeoutMs });
        this.drop(origin, 'down', fx);
      } else if (s.gapSince !== null && now - s.gapSince > this.gapGraceMs) {
        s.gapSince = now; // ask again only after another grace
        fx.push({ kind: 'pull-snapshot', origin });
      } else if (s.behind !== null && now - s.behind.since > this.behindGraceMs) {
        s.behind.since = now;
        fx.push({ kind: 'pull-snapshot', origin });
      }
      if (this.origins.has(origin)) this.wake(nextDeadline(s, this));
    }
    return fx;
  }

  private wake(at: number): void {
    if (at < this.due) this.due = at;
  }

  private drop(origin: string, reason: 'timeout' | 'leave' | 'down', fx: Effect[]): void {
    const s = this.origins.get(origin);
    if (!s) return;
    this.origins.delete(origin);
    fx.push({ kind: 'origin-down', origin, incarnation: s.incarnation, reason, entries: [...s.entries.values()] });
    if (s.entries.size > 0) fx.push({ kind: 'changed', origin, namespaces: namespaces(s.entries.values()) });
  }
}

/** The earliest time a tick may have something to do for this origin. */
function nextDeadline(s: OriginState, r: { failureTimeoutMs: number; gapGraceMs: number; behindGraceMs: number }): number {
  let at = s.lastSeen + r.failureTimeoutMs;
  if (s.suspectedUntil !== null) at = Math.min(at, s.suspectedUntil);
  if (s.gapSince !== null) at = Math.min(at, s.gapSince + r.gapGraceMs);
  if (s.behind !== null) at = Math.min(at, s.behind.since + r.behindGraceMs);
  return at;
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
