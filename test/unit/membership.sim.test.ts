import { describe, expect, it } from 'vitest';
import { Sim } from '../helpers/sim.ts';

// A deterministic, seeded simulation of the cluster protocol: seven daemons,
// each the real driver and core (gossip/cluster.ts, gossip/membership.ts)
// over the in-memory transport, change their maps at random while the network
// loses, duplicates and reorders messages, partitions split the cluster and
// daemons crash and restart. After the faults stop, every live daemon must
// see every live one and no other, and hold the union of the live daemons'
// own maps.

const TIMING = { heartbeatMs: 100, failureTimeoutMs: 600, batchMs: 5, tickMs: 20 };
const FAULTS_MS = 6000;

interface Scenario {
  loss: number;
  dup: number;
  maxDelay: number;
  partitions: boolean;
  crashes: boolean;
  deaf?: boolean;
}

async function simulate(seed: number, s: Scenario, o: { oldReports?: boolean } = {}) {
  // oldReports: a cluster of older daemons, whose timeout report drops the member at once.
  const sim = new Sim(seed, TIMING, { olderReports: o.oldReports });
  const ids = Array.from({ length: 7 }, (_, i) => `h${i}`);
  for (const id of ids) await sim.start(id);
  sim.faults = { loss: s.loss, dup: s.dup, maxDelayMs: s.maxDelay, ...(s.deaf ? { deaf: { h0: 0.9 } } : {}) };
  const pick = <T>(xs: T[]) => xs[Math.floor(sim.rand() * xs.length)]!;
  let crashes = 0;
  for (let t = 10; t <= FAULTS_MS; t += 10) {
    await sim.run(t);
    const live = sim.live();
    if (live.length > 0 && sim.rand() < 0.7) sim.mutate(pick(live));
    if (s.partitions && sim.rand() < 0.01) sim.net.partition([ids.filter(() => sim.rand() < 0.5)]);
    if (s.partitions && sim.rand() < 0.015) sim.net.heal();
    if (s.crashes && sim.rand() < 0.01) {
      const d = sim.daemons.get(pick(ids))!;
      if (d.transport.alive && live.length > 1) {
        sim.crash(d);
        crashes++;
      } else if (!d.transport.alive) await sim.start(d.id);
    }
  }
  // Heal: no more loss, partitions or crashes; half the crashed daemons come back.
  sim.faults = { loss: 0, dup: 0, maxDelayMs: 3 };
  sim.net.heal();
  for (const d of [...sim.daemons.values()]) if (!d.transport.alive && sim.rand() < 0.5) await sim.start(d.id);
  const settle = TIMING.failureTimeoutMs * 2 + 4 * TIMING.heartbeatMs + 2000;
  const tookMs = await sim.until(() => sim.membersAgree() && sim.mapsAgree().agree, settle);
  const maps = sim.mapsAgree();
  return { sim, tookMs, union: maps.union, crashes, falseDrops: sim.falseDrops, downs: sim.drops.down ?? 0, timeouts: sim.drops.timeout ?? 0 };
}

describe('the cluster protocol (seeded simulation of the real driver and core)', () => {
  const scenarios: (Scenario & { name: string })[] = [
    { name: 'clean network', loss: 0, dup: 0, maxDelay: 3, partitions: false, crashes: false },
    { name: 'loss, duplication and reordering', loss: 0.2, dup: 0.1, maxDelay: 40, partitions: false, crashes: false },
    { name: 'partitions that heal', loss: 0.05, dup: 0.05, maxDelay: 20, partitions: true, crashes: false },
    { name: 'crashes and restarts', loss: 0.05, dup: 0.05, maxDelay: 20, partitions: false, crashes: true },
    { name: 'everything at once', loss: 0.3, dup: 0.2, maxDelay: 60, partitions: true, crashes: true },
  ];
  for (const s of scenarios) {
    it(`converges to the union of the live daemons' maps: ${s.name}`, async () => {
      let silent = 0;
      for (const seed of [1, 2, 3, 42, 1234, 99991]) {
        const r = await simulate(seed, s);
        expect(r.union.length, `seed ${seed}: the run must have entries to replicate`).toBeGreaterThan(0);
        expect(r.tookMs, `seed ${seed}: every live daemon sees the same members and maps after the heal`).not.toBeNull();
        silent += r.timeouts + r.downs;
        if (s.crashes) expect(r.crashes, `seed ${seed}`).toBeGreaterThan(0);
      }
      // Where daemons go silent, the runs did exercise timeouts and reports.
      if (s.partitions || s.crashes) expect(silent).toBeGreaterThan(0);
    }, 120_000);
  }

  it('drops fewer live members when a timeout report only makes them suspected', async () => {
    // One daemon that hears little times out members the others still hear; its report used to drop them everywhere.
    const lossy: Scenario = { loss: 0.05, dup: 0.05, maxDelay: 20, partitions: false, crashes: false, deaf: true };
    let before = 0;
    let after = 0;
    for (const seed of [1, 2, 3, 42, 1234, 99991, 7, 8]) {
      before += (await simulate(seed, lossy, { oldReports: true })).falseDrops;
      const r = await simulate(seed, lossy);
      after += r.falseDrops;
      expect(r.tookMs, `seed ${seed}`).not.toBeNull();
    }
    console.log(`live members dropped, 8 seeded runs of 7 daemons, one of which hears 1 message in 10: ${before} when a timeout report drops, ${after} when it makes suspected`);
    expect(before).toBeGreaterThan(0);
    expect(after).toBeLessThan(before);
  }, 120_000);

  it('is deterministic for a seed', async () => {
    const s: Scenario = { loss: 0.2, dup: 0.1, maxDelay: 40, partitions: true, crashes: true };
    const a = await simulate(5, s);
    const b = await simulate(5, s);
    expect([a.union, a.tookMs, a.falseDrops, a.sim.net.traffic]).toEqual([b.union, b.tookMs, b.falseDrops, b.sim.net.traffic]);
  }, 60_000);
});
