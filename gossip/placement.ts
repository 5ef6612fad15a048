import { createHash } from 'node:crypto';

// Where a forwarded invocation goes, as a pure function: rendezvous (highest
// random weight) hashing of the function over the live hosts that have room,
// so the same function keeps landing on the same host, where its containers
// are warm, and moves as little as possible when hosts come and go.

export interface Candidate {
  origin: string;
  /** memory the host's pool can still promise, in MB */
  freeMb: number;
}

/** A member's rendezvous weight for a key: the highest weight wins the key. */
export const weight = (key: string, origin: string) => createHash('sha256').update(key).update('\u0000').update(origin).digest().readBigUInt64BE(0);

export function rendezvous(fnKey: string, candidates: Candidate[], memoryMb: number): string | null {
  let best: { origin: string; w: bigint } | null = null;
  for (const c of candidates) {
    if (c.freeMb < memoryMb) continue;
    const w = weight(fnKey, c.origin);
    if (!best || w > best.w) best = { origin: c.origin, w };
  }
  return best?.origin ?? null;
}

/**
 * A group's members, spread over hosts in proportion to their free memory (largest remainder). A container of
 * memoryMb holds `seats` members (the function's concurrency).
 */
export function spread(count: number, candidates: Candidate[], memoryMb: number, seats = 1): Map<string, number> {
  const out = new Map<string, number>();
  const slots = candidates.map((c) => ({ origin: c.origin, room: Math.floor(c.freeMb / memoryMb) * seats })).filter((c) => c.room > 0);
  const total = slots.reduce((a, c) => a + c.room, 0);
  if (total === 0) return out;
  let left = Math.min(count, total);
  const shares = slots.map((c) => ({ ...c, exact: (c.room / total) * Math.min(count, total) }));
  for (const s of shares) {
    const n = Math.min(s.room, Math.floor(s.exact));
    if (n > 0) out.set(s.origin, n);
    left -= n;
  }
  for (const s of shares.sort((a, b) => (b.exact % 1) - (a.exact % 1))) {
    if (left === 0) break;
    if ((out.get(s.origin) ?? 0) < s.room) {
      out.set(s.origin, (out.get(s.origin) ?? 0) + 1);
      left--;
    }
  }
  return out;
}
