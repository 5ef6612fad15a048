import { weight } from './placement.ts';

// Who may grant an instance ID. The gossiped map tells a daemon which IDs are
// taken only a few milliseconds late, so two daemons asked for the same ID at
// the same moment would both grant it. Instead each ID has one arbiter among
// the live members (rendezvous hashing of namespace and ID), and a daemon
// claims an ID from its arbiter before starting it. The arbiter holds a short
// reservation that covers the time the claimant's entry takes to reach it by
// gossip; after that the map itself says the ID is taken. Pure logic: the
// daemon wires in the map lookup and the request to a peer.

export type ClaimVerdict = { ok: true } | { ok: false; taken: string };

const keyOf = (ns: string, id: string) => `${ns}\u0000${id}`;

/** The members in the order they arbitrate this ID: the first that answers decides. */
export function arbiters(ns: string, id: string, members: string[]): string[] {
  const k = keyOf(ns, id);
  return members
    .map((m) => ({ m, w: weight(k, m) }))
    .sort((a, b) => (a.w === b.w ? 0 : a.w > b.w ? -1 : 1))
    .map((x) => x.m);
}

/** The arbiter's side: reservations it has granted, until the map speaks for them. */
export class ClaimTable {
  private readonly held = new Map<string, { holder: string; until: number }>();
  private readonly holdMs: number;
  private readonly inMap: (ns: string, id: string) => boolean;

  constructor(holdMs: number, inMap: (ns: string, id: string) => boolean) {
    this.holdMs = holdMs;
    this.inMap = inMap;
  }

  /** All of the IDs for this holder, or none: a group never half-claims. */
  grant(holder: string, ns: string, ids: string[], now: number): ClaimVerdict {
    if (this.held.size > 10_000) this.sweep(now);
    for (const id of ids) {
      const h = this.held.get(keyOf(ns, id));
      if (h && h.until > now && h.holder !== holder) return { ok: false, taken: id };
      if (this.inMap(ns, id)) return { ok: false, taken: id };
    }
    for (const id of ids) this.held.set(keyOf(ns, id), { holder, until: now + this.holdMs });
    return { ok: true };
  }

  /** The holder's instance ended (or its group was refused elsewhere): the ID is free again at once. */
  release(holder: string, ns: string, ids: string[]): void {
    for (const id of ids) if (this.held.get(keyOf(ns, id))?.holder === holder) this.held.delete(keyOf(ns, id));
  }

  get size(): number {
    return this.held.size;
  }

  private sweep(now: number): void {
    for (const [k, h] of this.held) if (h.until <= now) this.held.delete(k);
  }
}

export interface ClaimRequest {
  op: 'claim' | 'release';
  namespace: string;
  ids: string[];
  /** release only: whose holds (a group's IDs are claimed by the daemon that spread it, and end on others) */
  holder?: string;
}

export interface ClaimantDeps {
  self: string;
  /** live members this daemon can reach, itself excluded */
  members: () => string[];
  table: ClaimTable;
  /** asks a peer's table; rejects when the peer does not answer */
  ask: (peer: string, r: ClaimRequest) => Promise<ClaimVerdict>;
  now?: () => number;
}

/** The claimant's side: asks each ID's arbiter, falling back to the next one when an arbiter does not answer. */
export class Claimant {
  private readonly d: ClaimantDeps;
  constructor(d: ClaimantDeps) {
    this.d = d;
  }

  /** Resolves when every ID is granted; otherwise releases what was granted and resolves with the taken ID. */
  async claim(ns: string, ids: string[]): Promise<ClaimVerdict> {
    const members = [this.d.self, ...this.d.members()];
    const granted: { arbiter: string; ids: string[] }[] = [];
    let refused: string | null = null;
    const attempt = async (part: string[], skip: Set<string>): Promise<void> => {
      await Promise.all(
        [...this.byArbiter(ns, part, members, skip)].map(async ([arbiter, some]) => {
          const v = await this.ask(arbiter, { op: 'claim', namespace: ns, ids: some }).catch(() => null);
          if (v === null) await attempt(some, new Set([...skip, arbiter]));
          else if (v.ok) granted.push({ arbiter, ids: some });
          else refused ??= v.taken;
        }),
      );
    };
    await attempt(ids, new Set());
    if (refused === null) return { ok: true };
    for (const g of granted) void this.ask(g.arbiter, { op: 'release', namespace: ns, ids: g.ids }).catch(() => undefined);
    return { ok: false, taken: refused };
  }

  /** Frees IDs whose instances ended, at the arbiters that would have granted them now (else their holds expire). */
  release(ns: string, ids: string[], holder = this.d.self): void {
    const members = [this.d.self, ...this.d.members()];
    for (const [arbiter, some] of this.byArbiter(ns, ids, members, new Set())) void this.ask(arbiter, { op: 'release', namespace: ns, ids: some, holder }).catch(() => undefined);
  }

  /** What this daemon answers as an arbiter to a claim from `asker`. */
  answer(asker: string, r: ClaimRequest): ClaimVerdict {
    if (r.op === 'release') {
      this.d.table.release(r.holder ?? asker, r.namespace, r.ids);
      return { ok: true };
    }
    return this.d.table.grant(asker, r.namespace, r.ids, (this.d.now ?? Date.now)());
  }

  get self(): string {
    return this.d.self;
  }

  private ask(arbiter: string, r: ClaimRequest): Promise<ClaimVerdict> {
    return arbiter === this.d.self ? Promise.resolve(this.answer(this.d.self, r)) : this.d.ask(arbiter, r);
  }

  private byArbiter(ns: string, ids: string[], members: string[], skip: Set<string>): Map<string, string[]> {
    // This daemon is never skipped: when no peer answers, it decides alone, as it would without a cluster.
    const live = members.filter((m) => !skip.has(m));
    const out = new Map<string, string[]>();
    for (const id of ids) {
      const a = arbiters(ns, id, live)[0]!;
      const some = out.get(a);
      if (some) some.push(id);
      else out.set(a, [id]);
    }
    return out;
  }
}
