import type { PrivateKey } from '@libp2p/interface';
import { peerIdFromString } from '@libp2p/peer-id';

// Liveness by relayed beat counters (gossip-style failure detection, van
// Renesse et al. 1998), as pure logic. Each daemon counts its own beats and,
// every round, exchanges its table of the freshest beat it knows for each
// member with FANOUT connected peers (push-pull: each answers with its own),
// over their authenticated private-network links. A member is alive while its
// counter keeps advancing somewhere.
//
// Why not a signed gossipsub heartbeat per member: every daemon then checks
// every member's signature twice a second, N² checks in all, which is what
// saturated a 50-daemon cluster on two cores. Relayed rows carry no signature
// of their own: they only say "alive, at this sequence, with this load",
// which a key holder may vouch for. Two things stay the origin's own word: its
// incarnation (each row carries the origin's signature of it, checked once per
// incarnation, so a forged row cannot pose as a restart and shut the origin
// out) and its address-map entries (signed deltas and snapshots). A relayed
// sequence ahead of what a daemon holds only makes it pull the snapshot.

/**
 * Peers per round. Modelled in test/unit/liveness.test.ts: with 50 daemons, push-pull to 2 peers every
 * 250 ms keeps every daemon's news of every member at most 750 ms old; push alone to 3 let it reach 1,750 ms.
 */
export const FANOUT = 2;

export interface Beat {
  origin: string;
  incarnation: number;
  /** counts this incarnation's beats; only a higher one is news */
  beat: number;
  /** the origin's address-map sequence, for gap detection */
  seq: number;
  load: number;
  freeMb: number;
  /** the member's host name, for people */
  host: string;
  /** where it listens: a wrong address only fails a dial, since the connection proves the peer's identity */
  addrs: string[];
  /** the origin's signature of its incarnation (base64), see introBytes */
  intro: string;
  /** a hash of the origin's registry (registry.ts), so a daemon that missed a registry message finds out; absent from older builds */
  reg?: number;
}

const introBytes = (origin: string, incarnation: number) => new TextEncoder().encode(`peerless-intro\n${origin}\n${incarnation}`);

/** Signs this daemon's incarnation, once per run. */
export async function signIntro(key: PrivateKey, origin: string, incarnation: number): Promise<string> {
  return Buffer.from(await key.sign(introBytes(origin, incarnation))).toString('base64');
}

/** Whether the row's incarnation is signed by the peer it names as origin. */
export async function introValid(b: Beat): Promise<boolean> {
  try {
    const key = peerIdFromString(b.origin).publicKey;
    return !!key && (await key.verify(introBytes(b.origin, b.incarnation), Buffer.from(b.intro, 'base64')));
  } catch {
    return false;
  }
}

/** A registry digest is a 48-bit integer (see registryDigest): anything else from the wire is ignored. */
export const isRegistryDigest = (x: unknown): x is number => Number.isSafeInteger(x) && (x as number) >= 0;

/** Whether two lists of addresses are the same: most often the very same array (see RowDecoder). */
export const sameAddrs = (a: string[], b: string[]): boolean => a === b || (a.length === b.length && a.every((x, k) => x === b[k]));

/** Whether a is newer than b: a later incarnation, or a later beat of the same one. */
const newer = (a: Beat, b: Beat | undefined) => !b || a.incarnation > b.incarnation || (a.incarnation === b.incarnation && a.beat > b.beat);

export class BeatTable {
  /** the freshest beat known per member, with when it advanced here; kept after a member dies, so a stale copy cannot revive it */
  private readonly rows = new Map<string, { beat: Beat; at: number }>();
  private readonly self: string;
  private readonly staleMs: number;

  /** staleMs: a row not advanced for this long is no longer passed on (its member is presumed dead). */
  constructor(self: string, staleMs: number) {
    this.self = self;
    this.staleMs = staleMs;
  }

  /** This daemon's own beat: a new incarnation starts counting from 1. */
  beat(own: Omit<Beat, 'origin' | 'beat'>, now: number): Beat {
    const prev = this.rows.get(this.self)?.beat;
    const b: Beat = { ...own, origin: this.self, beat: prev && prev.incarnation === own.incarnation ? prev.beat + 1 : 1 };
    this.rows.set(this.self, { beat: b, at: now });
    return b;
  }

  /** Whether this row's incarnation is one already taken in (so its signature need not be checked again). */
  knows(b: Beat): boolean {
    const r = this.rows.get(b.origin)?.beat;
    return !!r && r.incarnation >= b.incarnation;
  }

  /** Rows from a peer: returns those that are news (the member advanced), never this daemon's own. */
  merge(rows: Beat[], now: number): Beat[] {
    const fresh: Beat[] = [];
    for (const r of rows) {
      if (r.origin === this.self) continue;
      const had = this.rows.get(r.origin);
      if (!newer(r, had?.beat)) continue;
      if (had) {
        had.beat = r;
        had.at = now;
      } else this.rows.set(r.origin, { beat: r, at: now });
      fresh.push(r);
    }
    return fresh;
  }

  /** What to push to peers: every row that advanced recently, this daemon's own included. */
  live(now: number): Beat[] {
    const out: Beat[] = [];
    for (const { beat, at } of this.rows.values()) if (now - at <= this.staleMs) out.push(beat);
    return out;
  }
}

/** a tick this late means this daemon's own event loop stood still: the silence it sees may be its own */
export const STALL_MS = 250;

/**
 * Whether members this daemon just timed out should be reported to the others as down, so all drop them
 * at once instead of each at its own timeout (which comes up to a beat's spread later on some). Not when
 * this daemon's own loop stalled (it did not listen; the others did), nor when it lost more than half of
 * the members at once (it is more likely the one cut off). A wrong report costs a live member one
 * failure timeout, as a wrong crash report does.
 */
export function reportTimeouts(timedOut: number, remaining: number, sinceLastTickMs: number): boolean {
  return timedOut > 0 && sinceLastTickMs <= STALL_MS && timedOut * 2 <= timedOut + remaining;
}

/** k distinct items picked at random (all of them when there are no more than k). */
export function pick<T>(xs: T[], k: number, random: () => number = Math.random): T[] {
  const a = [...xs];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a.slice(0, k);
}

/** A row from the wire, or null when it is not one (a peer's bad input costs it the row, nothing more). */
export function parseBeat(x: unknown): Beat | null {
  const r = x as Partial<Beat> | null;
  if (!r || typeof r.origin !== 'string' || r.origin.length > 128 || typeof r.host !== 'string' || r.host.length > 256) return null;
  if (typeof r.intro !== 'string' || r.intro.length > 512) return null;
  if (!Array.isArray(r.addrs) || r.addrs.length > 16 || !r.addrs.every((a) => typeof a === 'string' && a.length <= 256)) return null;
  for (const k of ['incarnation', 'beat', 'seq', 'load', 'freeMb'] as const) if (typeof r[k] !== 'number' || !Number.isFinite(r[k])) return null;
  return {
    origin: r.origin,
    incarnation: r.incarnation!,
    beat: r.beat!,
    seq: r.seq!,
    load: r.load!,
    freeMb: r.freeMb!,
    host: r.host,
    addrs: r.addrs,
    intro: r.intro,
    ...(isRegistryDigest(r.reg) ? { reg: r.reg } : {}),
  };
}
