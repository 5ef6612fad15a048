import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AddressMap } from '../../gossip/addrmap.ts';
import { BEAT_V1, Cluster } from '../../gossip/cluster.ts';
import { WireRejected } from '../../gossip/protocols.ts';
import type { Beat } from '../../gossip/liveness.ts';
import type { Libp2p } from 'libp2p';
import { waitFor } from '../helpers/daemon.ts';

// Two gossip layers in this process, real libp2p nodes on loopback (private network, Noise, yamux): beats
// travel over one kept stream per peer; the previous build's one-request-per-swap protocol is still answered.

const FAILURE_MS = 600;
const dir = mkdtempSync(join(tmpdir(), 'it-beats-'));
const key = randomBytes(32).toString('hex');
const base = 20000 + (process.pid % 1000) * 10;
const nodes: Cluster[] = [];

beforeAll(async () => {
  for (let i = 0; i < 2; i++) {
    nodes.push(
      await Cluster.start({
        key,
        identityFile: join(dir, `${i}.key`),
        listen: [`/ip4/127.0.0.1/tcp/${base + i}`],
        peers: i === 0 ? [] : [`/ip4/127.0.0.1/tcp/${base}`],
        hyperswarm: false,
        bootstrap: [],
        heartbeatMs: 100,
        failureTimeoutMs: FAILURE_MS,
        batchMs: 5,
        hostName: `b${i}`,
        local: new AddressMap(`b${i}`, 1000 + i),
        load: () => i,
        freeMb: () => 4096,
        onChange: () => undefined,
        log: pino({ level: 'silent' }),
      }),
    );
  }
});

afterAll(async () => {
  await Promise.all(nodes.map((n) => n.stop()));
  rmSync(dir, { recursive: true, force: true });
});

describe('beat swaps', () => {
  it('keep each daemon in the other’s sight over kept links, many failure timeouts long', async () => {
    const [a, b] = nodes as [Cluster, Cluster];
    await waitFor(async () => a.replica.memberCount === 1 && b.replica.memberCount === 1, 10_000, 'the two daemons seeing each other');
    // Five failure timeouts: a member whose beats stopped coming would be dropped in the first.
    const counts: number[] = [];
    for (let t = 0; t < 30; t++) {
      await new Promise((r) => setTimeout(r, 100));
      counts.push(a.replica.memberCount, b.replica.memberCount);
    }
    expect(counts.every((n) => n === 1)).toBe(true);
    // Load rides in the compact rows: each sees the other's as the other reports it.
    expect(a.peers()[0]).toMatchObject({ origin: b.peerId, load: 1 });
    expect(Date.now() - a.peers()[0]!.lastSeen).toBeLessThan(FAILURE_MS);
  });

  it('still answers a daemon of the previous build, which asks once per swap, with the whole table', async () => {
    const [a, b] = nodes as [Cluster, Cluster];
    const table: Beat[] = await b.request(a.peerId, BEAT_V1, [], 2000);
    expect(table.map((r) => r.origin).sort()).toEqual([a.peerId, b.peerId].sort());
    expect(table.find((r) => r.origin === a.peerId)).toMatchObject({ host: 'b0', incarnation: 1000, freeMb: 4096 });
    // Something else than a table is refused, with the reason, and counted where it arrived.
    const refused = await b.request(a.peerId, BEAT_V1, 'not a table' as unknown as Beat[], 2000).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(WireRejected);
    expect(refused).toMatchObject({ kind: 'beatV1', reason: 'malformed', by: 'peer' });
    expect(a.rejects.total('beatV1', 'malformed')).toBe(1);
  });

  it('keeps gossip flowing when one of two connections between two daemons closes', async () => {
    const [a, b] = nodes as [Cluster, Cluster];
    const nodeOf = (c: Cluster) => (c.transport as unknown as { node: Libp2p }).node;
    const got: unknown[] = [];
    const take = (m: unknown) => void got.push(m);
    a.events.on('registry', take);
    // A second connection, as when two daemons dial each other at once; then the first one goes.
    const first = [...nodeOf(b).getConnections(nodeOf(a).peerId)];
    expect(first.length).toBeGreaterThan(0);
    await nodeOf(b).dial(nodeOf(a).getMultiaddrs()[0]!, { force: true } as never);
    await waitFor(async () => nodeOf(b).getConnections(nodeOf(a).peerId).length === first.length + 1, 5000, 'a second connection');
    // Once the new connection is identified (gossipsub then sees the peer on it, and keeps its stream where it is).
    await new Promise((r) => setTimeout(r, 1500));
    await Promise.all(first.map((c) => c.close()));
    await new Promise((r) => setTimeout(r, 1500));
    b.publishRegistry({ probe: 1 });
    await waitFor(async () => got.length > 0, 5000, 'a registry message over the connection left');
    expect(got).toEqual([{ probe: 1 }]);
    a.events.off('registry', take);
  });
});
