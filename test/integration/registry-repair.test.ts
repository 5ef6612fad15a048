import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BlobStore } from '../../daemon/blobs.ts';
import type { FunctionName, NamespaceName } from '../../daemon/ids.ts';
import { Registry } from '../../daemon/replication.ts';
import { Store } from '../../daemon/store.ts';
import type { FunctionRecord } from '../../daemon/types.ts';
import { AddressMap } from '../../gossip/addrmap.ts';
import { Cluster } from '../../gossip/cluster.ts';
import { waitFor } from '../helpers/daemon.ts';

// Two daemons' registries over real libp2p nodes on loopback. A registry message the gossip layer loses
// (here: one daemon's publish goes nowhere) is repaired by the digest in the beats, with no peer joining.

const dir = mkdtempSync(join(tmpdir(), 'it-regrepair-'));
const key = randomBytes(32).toString('hex');
const base = 23000 + (process.pid % 1000) * 10;
const NS = 'repair' as NamespaceName;

interface Side {
  cluster: Cluster;
  registry: Registry;
  store: Store;
  blobs: BlobStore;
}
const sides: Side[] = [];

beforeAll(async () => {
  for (let i = 0; i < 2; i++) {
    const data = join(dir, String(i));
    const store = new Store(join(dir, `${i}.db`));
    const blobs = new BlobStore(data);
    const registry = new Registry(store, blobs, `r${i}`, pino({ level: 'silent' }), { retire: async () => undefined }, 1024 * 1024);
    const cluster = await Cluster.start({
      key, identityFile: join(dir, `${i}.key`), listen: [`/ip4/127.0.0.1/tcp/${base + i}`], peers: i === 0 ? [] : [`/ip4/127.0.0.1/tcp/${base}`],
      hyperswarm: false, bootstrap: [], heartbeatMs: 100, failureTimeoutMs: 5000, batchMs: 5, hostName: `r${i}`,
      local: new AddressMap(`r${i}`, 1000 + i), load: () => 0, freeMb: () => 4096, onChange: () => undefined,
      registryDigest: () => registry.digest(), log: pino({ level: 'silent' }),
    });
    registry.attach(cluster);
    sides.push({ cluster, registry, store, blobs });
  }
});

afterAll(async () => {
  await Promise.all(sides.map((s) => s.cluster.stop()));
  for (const s of sides) s.store.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Runs a write whose registry message the gossip layer loses on its way out. */
function lost(s: Side, write: () => void): void {
  const publish = s.cluster.publishRegistry;
  s.cluster.publishRegistry = () => undefined;
  try {
    write();
  } finally {
    s.cluster.publishRegistry = publish;
  }
}

function writeFunction(s: Side, name: string, source: string): void {
  const now = Date.now();
  const f: FunctionRecord = {
    namespace: NS, name: name as FunctionName, runtime: { kind: 'nodejs' }, digest: s.blobs.put(Buffer.from(source)), binary: false, main: 'main',
    limits: { memoryMb: 128, timeoutMs: 1000 }, parameters: {}, version: 1, created: now, updated: now,
  };
  s.store.putFunction(f);
  s.registry.functionWritten(f);
}

describe('registry repair by digest', () => {
  it('brings a lost function write and a lost delete to the other daemon, in both directions', async () => {
    const [a, b] = sides as [Side, Side];
    await waitFor(async () => a.cluster.replica.memberCount === 1 && b.cluster.replica.memberCount === 1, 10_000, 'the two daemons seeing each other');
    // Past the anti-entropy round of the two meeting (200 ms after): from here only the digest repairs.
    await new Promise((r) => setTimeout(r, 1000));
    a.store.createNamespace(NS, Date.now());
    a.registry.namespaceWritten(NS);
    await waitFor(async () => b.store.hasNamespace(NS), 10_000, 'the namespace by gossip');
    expect(a.registry.digest()).toBe(b.registry.digest());

    lost(a, () => writeFunction(a, 'f', 'function main() { return {} }'));
    expect(a.registry.digest()).not.toBe(b.registry.digest());
    await waitFor(async () => b.store.getFunction(NS, 'f' as FunctionName) !== undefined, 15_000, 'the lost write repaired');
    expect(b.blobs.get(b.store.getFunction(NS, 'f' as FunctionName)!.digest).toString()).toBe('function main() { return {} }');
    expect(b.registry.pulls.repaired).toBe(1);

    // The other way round, and a delete: b deletes, its message lost; a must drop the function too.
    lost(b, () => {
      b.store.deleteFunction(NS, 'f' as FunctionName);
      b.registry.functionDeleted(NS, 'f' as FunctionName);
    });
    await waitFor(async () => a.store.getFunction(NS, 'f' as FunctionName) === undefined, 15_000, 'the lost delete repaired');
    expect(a.registry.pulls.repaired).toBe(1);
    await waitFor(async () => a.registry.digest() === b.registry.digest(), 5000, 'the same registry on both');
    // Once equal, nobody pulls again: a few more seconds of beats add no pulls.
    const before = [a, b].map((s) => ({ ...s.registry.pulls }));
    await new Promise((r) => setTimeout(r, 3000));
    expect([a, b].map((s) => s.registry.pulls)).toEqual(before);
  });
});
