import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FunctionName, NamespaceName } from '../../daemon/ids.ts';
import { waitFor } from '../helpers/daemon.ts';
import { createNamespace, lost, startRegistries, stopRegistries, writeFunction, type RegistrySide } from '../helpers/registries.ts';

// Two daemons' registries over real libp2p nodes on loopback. A registry message the gossip layer loses
// (here: one daemon's publish goes nowhere) is repaired by the digest in the beats, with no peer joining.

const dir = mkdtempSync(join(tmpdir(), 'it-regrepair-'));
const NS = 'repair' as NamespaceName;
const F = 'f' as FunctionName;
let sides: RegistrySide[] = [];

beforeAll(async () => {
  sides = await startRegistries(2, dir, randomBytes(32).toString('hex'), 23000 + (process.pid % 1000) * 10, 100);
});

afterAll(async () => {
  await stopRegistries(sides);
  rmSync(dir, { recursive: true, force: true });
});

describe('registry repair by digest', () => {
  it('brings a lost function write and a lost delete to the other daemon, in both directions', async () => {
    const [a, b] = sides as [RegistrySide, RegistrySide];
    await waitFor(async () => a.cluster.replica.memberCount === 1 && b.cluster.replica.memberCount === 1, 10_000, 'the two daemons seeing each other');
    // Past the anti-entropy round of the two meeting (200 ms after): from here only the digest repairs.
    await new Promise((r) => setTimeout(r, 1000));
    createNamespace(a, NS);
    await waitFor(async () => b.store.hasNamespace(NS), 10_000, 'the namespace by gossip');
    expect(a.registry.digest()).toBe(b.registry.digest());

    lost(a, () => writeFunction(a, NS, F, 'function main() { return {} }'));
    expect(a.registry.digest()).not.toBe(b.registry.digest());
    await waitFor(async () => b.store.getFunction(NS, F) !== undefined, 15_000, 'the lost write repaired');
    expect(b.blobs.get(b.store.getFunction(NS, F)!.digest).toString()).toBe('function main() { return {} }');
    expect(b.registry.pulls.repaired).toBe(1);

    // The other way round, and a delete: b deletes, its message lost; a must drop the function too.
    lost(b, () => {
      b.store.deleteFunction(NS, F);
      b.registry.functionDeleted(NS, F);
    });
    await waitFor(async () => a.store.getFunction(NS, F) === undefined, 15_000, 'the lost delete repaired');
    expect(a.registry.pulls.repaired).toBe(1);
    await waitFor(async () => a.registry.digest() === b.registry.digest(), 5000, 'the same registry on both');
    // Once equal, nobody pulls again: a few more seconds of beats add no pulls.
    const before = sides.map((s) => ({ ...s.registry.pulls }));
    await new Promise((r) => setTimeout(r, 3000));
    expect(sides.map((s) => s.registry.pulls)).toEqual(before);
  });
});
