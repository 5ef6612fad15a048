import { describe, expect, it } from 'vitest';
import { digestOf } from '../../daemon/blobs.ts';
import type { NamespaceName } from '../../daemon/ids.ts';
import { clockKey, mergeStep, registryDigest, wantedBy, type Clock, type Held, type RegistryMsg } from '../../daemon/registryMerge.ts';
import { Hlc } from '../../gossip/hlc.ts';
import { rng } from '../helpers/wirefuzz.ts';

// The registry's merge rules (daemon/registryMerge.ts), the very function the
// daemons merge with, driven by a seeded simulation: four registries write and
// delete namespaces and functions at random while gossip loses, duplicates
// and reorders their messages; then each pulls from each what it holds
// newer (the digest repair's pull), and all must hold the same registry, the
// same digest, and for every entity the last write.

interface Row {
  hlc: string;
  deleted: boolean;
  value: string | null;
}

/** A registry in a map: it stores what the merge's steps say, nothing more. */
class MapRegistry implements Held {
  readonly rows = new Map<string, Row & { kind: string; ns: string; name: string }>();
  readonly clock: Hlc;
  private t = 0;
  readonly id: string;
  constructor(id: string) {
    this.id = id;
    this.clock = new Hlc(id, () => 1_700_000_000_000 + this.t);
  }
  tick(ms: number): void {
    this.t += ms;
  }
  clockOf(kind: string, ns: string, name = ''): { hlc: string } | undefined {
    return this.rows.get(clockKey(kind, ns, name));
  }
  hasNamespace(ns: NamespaceName): boolean {
    const r = this.rows.get(clockKey('ns', ns, ''));
    return !!r && !r.deleted;
  }
  set(kind: string, ns: string, name: string, r: Row): void {
    this.rows.set(clockKey(kind, ns, name), { kind, ns, name, ...r });
  }
  /** Carries out a message's step, as Registry.receive does on the store. */
  receive(m: RegistryMsg): string {
    const { hlc, step } = mergeStep(m, this);
    if (hlc) this.clock.receive(hlc);
    if (step.do === 'tombstone') this.set(step.kind, step.ns, step.name, { hlc: step.hlc, deleted: true, value: null });
    // As the store's cascade: a namespace's functions go with it, their clocks become tombstones.
    if (step.do === 'tombstone' && step.kind === 'ns') for (const r of this.rows.values()) if (r.kind === 'fn' && r.ns === step.ns) Object.assign(r, { deleted: true, value: null });
    if (step.do === 'namespace') this.set('ns', step.ns, '', { hlc: step.hlc, deleted: false, value: `created ${step.created}` });
    if (step.do === 'function') this.set('fn', step.record.namespace, step.record.name, { hlc: step.hlc, deleted: false, value: step.record.main });
    return step.do;
  }
  /** Everything held, namespaces first and tombstones last, as anti-entropy sends it. */
  messages(wanted: (kind: string, ns: string, name: string, hlc: string) => boolean = () => true): RegistryMsg[] {
    const rows = this.held().filter((r) => wanted(r.kind, r.ns, r.name, r.hlc));
    const order = (r: { kind: string; deleted: boolean }) => (r.deleted ? 2 : r.kind === 'ns' ? 0 : 1);
    return rows.sort((a, b) => order(a) - order(b)).map((r) => toMsg(r));
  }
  /** What the registry holds, as the store's registryClocks: entities and tombstones. */
  held() {
    return [...this.rows.values()];
  }
  digest(): number {
    return registryDigest(
      this.held()
        .sort((a, b) => (clockKey(a.kind, a.ns, a.name) < clockKey(b.kind, b.ns, b.name) ? -1 : 1))
        .map((r) => ({ kind: r.kind, namespace: r.ns, name: r.name, hlc: r.hlc, deleted: r.deleted ? 1 : 0 })),
    );
  }
  clocks(): Clock[] {
    return this.held().map((r) => [r.kind, r.ns, r.name, r.hlc]);
  }
}

const code = (main: string) => Buffer.from(`exports.${main} = () => ({})`);
function fnRecord(ns: string, name: string, main: string) {
  return {
    namespace: ns,
    name,
    runtime: { kind: 'nodejs' },
    digest: digestOf(code(main)),
    binary: false,
    main,
    limits: { memoryMb: 256, timeoutMs: 60_000, concurrency: 1 },
    parameters: {},
    version: 1,
    created: 1,
    updated: 1,
  };
}
function toMsg(r: Row & { kind: string; ns: string; name: string }): RegistryMsg {
  if (r.kind === 'ns') return r.deleted ? { type: 'ns', name: r.ns, hlc: r.hlc, deleted: true } : { type: 'ns', name: r.ns, hlc: r.hlc, deleted: false, created: 1 };
  if (r.deleted) return { type: 'fn', ns: r.ns, name: r.name, hlc: r.hlc, deleted: true };
  const main = r.value!;
  return { type: 'fn', ns: r.ns, name: r.name, hlc: r.hlc, deleted: false, record: fnRecord(r.ns, r.name, main) as never, code: code(main).toString('base64') };
}

function simulate(seed: number) {
  const rand = rng(seed);
  const any = <T>(xs: T[]) => xs[Math.floor(rand() * xs.length)]!;
  const regs = ['a', 'b', 'c', 'd'].map((id) => new MapRegistry(id));
  let queue: { at: number; to: MapRegistry; m: RegistryMsg }[] = [];
  let now = 0;
  const writes: Record<string, string> = {}; // the winning write of each entity: the newest stamp
  const broadcast = (from: MapRegistry, m: RegistryMsg) => {
    for (const to of regs) {
      if (to === from || rand() < 0.3) continue; // 30% lost
      const copies = rand() < 0.1 ? 2 : 1;
      for (let i = 0; i < copies; i++) queue.push({ at: now + 1 + Math.floor(rand() * 50), to, m });
    }
  };
  const local = (r: MapRegistry, m: RegistryMsg) => {
    expect(['namespace', 'function', 'tombstone']).toContain(r.receive(m));
    const key = clockKey(m.type === 'ns' ? 'ns' : 'fn', m.type === 'ns' ? m.name : m.ns, m.type === 'ns' ? '' : m.name);
    if (!writes[key] || m.hlc > writes[key]) writes[key] = m.hlc; // last writer by clock, not by the order of the run
    broadcast(r, m);
  };
  for (let step = 0; step < 2000; step++) {
    now++;
    for (const r of regs) r.tick(1 + Math.floor(rand() * 3));
    if (rand() < 0.2) {
      const r = any(regs);
      const ns = any(['n1', 'n2', 'n3']);
      const fn = any(['f1', 'f2', 'f3', 'f4']);
      const x = rand();
      const hlc = r.clock.now();
      if (x < 0.15) local(r, { type: 'ns', name: ns, hlc, deleted: false, created: 1 });
      else if (x < 0.2) local(r, { type: 'ns', name: ns, hlc, deleted: true });
      else if (r.hasNamespace(ns as NamespaceName)) {
        if (x < 0.85) local(r, { type: 'fn', ns, name: fn, hlc, deleted: false, record: fnRecord(ns, fn, `m${step}`) as never, code: code(`m${step}`).toString('base64') });
        else local(r, { type: 'fn', ns, name: fn, hlc, deleted: true });
      }
    }
    const due = queue.filter((p) => p.at <= now).sort(() => rand() - 0.5);
    queue = queue.filter((p) => p.at > now);
    for (const p of due) p.to.receive(p.m);
  }
  for (const p of queue) p.to.receive(p.m);
  // The digest repair: each pulls from each what it holds newer, twice (a function can wait for its namespace).
  for (let round = 0; round < 2; round++) for (const a of regs) for (const b of regs) if (a !== b) for (const m of b.messages(wantedBy(a.clocks()))) a.receive(m);
  return { regs, writes };
}

describe('registry merging (seeded simulation of the merge rules)', () => {
  it('brings every registry to the same state, the last write of each entity, through loss, duplication and reordering', () => {
    for (const seed of [1, 2, 3, 42, 99991]) {
      const { regs, writes } = simulate(seed);
      const digests = new Set(regs.map((r) => r.digest()));
      expect(digests.size, `seed ${seed}`).toBe(1);
      expect(Object.keys(writes).length, `seed ${seed}: the run wrote entities`).toBeGreaterThan(5);
      // Every entity is held at its last write's stamp, on every registry.
      for (const r of regs) for (const [key, hlc] of Object.entries(writes)) expect(r.rows.get(key)?.hlc, `seed ${seed} ${r.id} ${key}`).toBe(hlc);
      // and the same entities exist everywhere (a function its namespace's deletion took is gone everywhere)
      const alive = (r: MapRegistry) =>
        r
          .held()
          .map((x) => `${x.kind}/${x.ns}/${x.name}/${x.deleted}`)
          .sort();
      for (const r of regs) expect(alive(r), `seed ${seed} ${r.id}`).toEqual(alive(regs[0]!));
    }
  });

  it('refuses what it cannot read, keeps what is newer, and makes a function wait for its namespace', () => {
    const r = new MapRegistry('x');
    const hlc = r.clock.now();
    expect(mergeStep({ type: 'ns', name: 'n', hlc: 'not a stamp', deleted: false }, r).step).toEqual({ do: 'reject', what: 'envelope' });
    expect(mergeStep({ type: 'fn', ns: 'n', name: 'f', hlc, deleted: false, record: fnRecord('n', 'f', 'main') }, r).step).toEqual({ do: 'wait-namespace' });
    expect(mergeStep({ type: 'fn', ns: 'n', name: 'f', hlc, deleted: false, record: { ...fnRecord('n', 'f', 'main'), main: 'no way' } }, r).step.do).toBe('reject');
    expect(r.receive({ type: 'ns', name: 'n', hlc, deleted: false, created: 1 })).toBe('namespace');
    expect(mergeStep({ type: 'fn', ns: 'n', name: 'f', hlc, deleted: false, record: fnRecord('n', 'f', 'main'), code: code('other').toString('base64') }, r).step.do).toBe('reject');
    expect(r.receive({ type: 'ns', name: 'n', hlc, deleted: true })).toBe('stale');
  });
});
