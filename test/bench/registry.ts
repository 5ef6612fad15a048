// Registry repair, on two daemons' registries over real libp2p nodes on loopback (test/helpers/registries.ts):
// how long a registry write gossip lost takes to reach the other daemon through the digest in the beats,
// beside the same write when gossip delivers it, in the same run. The build before digests repaired a lost
// write only when some daemon joined: not within any bounded time.
//  1. one lost write, median of 5 (each after the pull gap, so none waits on the previous one's pull);
//  2. 1,000 writes lost at once, until the other daemon holds them all.
// Run: node test/bench/registry.ts   (bounded: about a minute)
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FunctionName, NamespaceName } from '../../daemon/ids.ts';
import { PULL_GAP_MS } from '../../gossip/digests.ts';
import { createNamespace, lost, startRegistries, stopRegistries, writeFunction, type RegistrySide } from '../helpers/registries.ts';
import { median, report, type Row } from './report.ts';

const HEARTBEAT_MS = 250; // the daemon's default beat round
const NS = 'bench' as NamespaceName;
const BATCH = 1000;
const dir = mkdtempSync(join(tmpdir(), 'bench-registry-'));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const sides = await startRegistries(2, dir, randomBytes(32).toString('hex'), 20000 + Math.floor(Math.random() * 12000), HEARTBEAT_MS);
const [a, b] = sides as [RegistrySide, RegistrySide];

/** ms from now until the other daemon holds every named function, polled each ms; bounded */
async function until(names: string[], boundMs = 30_000): Promise<number> {
  const t0 = performance.now();
  while (names.some((n) => !b.store.getFunction(NS, n as FunctionName))) {
    if (performance.now() - t0 > boundMs) throw new Error(`not repaired within ${boundMs} ms`);
    await sleep(1);
  }
  return performance.now() - t0;
}

const deadline = Date.now() + 20_000;
while ((a.cluster.replica.memberCount === 0 || b.cluster.replica.memberCount === 0) && Date.now() < deadline) await sleep(100);
await sleep(1000); // past the anti-entropy round of the two meeting
createNamespace(a, NS);
await sleep(500);

const rows: Row[] = [];
const repaired: number[] = [];
const delivered: number[] = [];
for (let k = 0; k < 5; k++) {
  writeFunction(a, NS, `ok-${k}`, `function main() { return { k: ${k} } }`);
  delivered.push(await until([`ok-${k}`]));
  await sleep(PULL_GAP_MS + 500);
  lost(a, () => writeFunction(a, NS, `lost-${k}`, `function main() { return { lost: ${k} } }`));
  repaired.push(await until([`lost-${k}`]));
}
rows.push({
  metric: 'one lost registry write',
  unit: 'ms',
  ours: median(repaired),
  baseline: median(delivered),
  baselineName: 'the same write, gossip delivered',
  better: 'lower',
  note: `median of 5; beats each ${HEARTBEAT_MS} ms, pull after 2 s of differing digests`,
});

await sleep(PULL_GAP_MS + 500);
const names = (tag: string) => Array.from({ length: BATCH }, (_, i) => `${tag}-${i}`);
lost(a, () => {
  for (const n of names('batch-lost')) writeFunction(a, NS, n, `function main() { return '${n}' }`);
});
const batchRepaired = await until(names('batch-lost'));
await sleep(PULL_GAP_MS + 500);
for (const n of names('batch-ok')) writeFunction(a, NS, n, `function main() { return '${n}' }`);
const batchDelivered = await until(names('batch-ok'));
rows.push({
  metric: `${BATCH} lost registry writes`,
  unit: 'ms',
  ours: batchRepaired,
  baseline: batchDelivered,
  baselineName: `the same ${BATCH} writes, gossip delivered`,
  better: 'lower',
  note: `one pull: what the puller lacks (${BATCH} of ${BATCH * 2 + 6} functions), code inline`,
});

await stopRegistries(sides);
rmSync(dir, { recursive: true, force: true });
report(
  'registry-repair',
  'A registry write gossip lost, until the other daemon holds it (loopback, libp2p private network)',
  rows,
  'Without digests (the build before) a lost write waited for the next daemon to join: no bound. The repair costs the wait for differing digests to last 2 s, then one pull.',
);
process.exit(0);
