// Messages for the wire fuzz: from a well-formed sample of a protocol's
// message, every field replaced in turn by values of the wrong type or out of
// range, or removed, plus bytes that are not JSON and JSON cut short. Seeded,
// so a failure can be replayed.

/** A small seeded generator (mulberry32): the same seed gives the same run (the fuzz, the simulation, the soak). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const DEEP = JSON.parse('['.repeat(2000) + ']'.repeat(2000)) as unknown;
/** what a field is replaced with: each wrong for most fields, and the edges of the right types */
export const CONFUSERS: unknown[] = [null, true, 0, -1, 1.5, 2 ** 63, Number.MAX_SAFE_INTEGER + 2, '', 'x', 'é'.repeat(5000), [], {}, [null], { a: 1 }, DEEP];

type Path = (string | number)[];

function paths(x: unknown, at: Path = []): Path[] {
  if (x === null || typeof x !== 'object') return [at];
  const keys = Array.isArray(x) ? x.map((_, i) => i) : Object.keys(x);
  return [at, ...keys.flatMap((k) => paths((x as Record<string | number, unknown>)[k], [...at, k]))];
}

const REMOVE = Symbol('remove');

function replaced(x: unknown, path: Path, value: unknown): unknown {
  if (path.length === 0) return value === REMOVE ? undefined : value;
  const [k, ...rest] = path as [string | number, ...Path];
  const copy = (Array.isArray(x) ? [...x] : { ...(x as object) }) as Record<string | number, unknown>;
  const v = replaced(copy[k], rest, value);
  if (v === undefined && value === REMOVE && rest.length === 0) delete copy[k];
  else copy[k] = v;
  return copy;
}

/** Every field of the sample (the whole included) replaced by each confuser, and each field removed. */
export function typeConfused(sample: unknown): unknown[] {
  const out: unknown[] = [];
  for (const p of paths(sample)) {
    for (const c of CONFUSERS) out.push(replaced(sample, p, c));
    if (p.length > 0) out.push(replaced(sample, p, REMOVE));
  }
  return out;
}

const enc = new TextEncoder();

/** Bytes that are not JSON: random, UTF-8 that is not valid, and the sample cut short. */
export function notJson(sample: unknown, rand: () => number, n: number): Uint8Array[] {
  const whole = enc.encode(JSON.stringify(sample));
  const out: Uint8Array[] = [new Uint8Array([0xff, 0xfe, 0x00]), enc.encode('{'), enc.encode('nul')];
  while (out.length < n) {
    if (rand() < 0.5) out.push(Uint8Array.from({ length: 1 + Math.floor(rand() * 512) }, () => Math.floor(rand() * 256)));
    else out.push(whole.subarray(0, Math.max(1, Math.floor(rand() * (whole.length - 1)))));
  }
  // A cut sample that still parses (a bare number or string) is not "not JSON": keep only those that fail,
  // decoded as a daemon decodes them (bytes that are not UTF-8 become U+FFFD).
  return out.filter((b) => {
    try {
      JSON.parse(new TextDecoder().decode(b));
      return false;
    } catch {
      return true;
    }
  });
}

export const encodeJson = (x: unknown) => enc.encode(JSON.stringify(x));
