// Two cluster operations that cross daemons, on real libp2p nodes (private network, Noise, yamux) on
// loopback, each beside its baseline in the same run:
//  1. code fetched by digest from a peer (the blob protocol's transport: 64 KB pieces with backpressure,
//     then the digest check) vs the same bytes by plain HTTP GET on loopback, as the seed design's
//     invoker reads code from its database over HTTP; medians of 5;
//  2. an instance-ID claim granted by a remote arbiter (one stream round trip) vs a claim decided on
//     this daemon alone (the gossiped map only, as before arbiters); medians of 300.
// Run: node test/bench/clusterops.ts   (bounded: under a minute)
import { createHash, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { AddressMap } from '../../gossip/addrmap.ts';
import { arbiters } from '../../gossip/claims.ts';
import { Cluster } from '../../gossip/cluster.ts';
import type { Codec } from '../../gossip/protocols.ts';
import { serveClaims } from '../../daemon/claims.ts';
import type { Directory } from '../../daemon/directory.ts';
import { median, report, type Row } from './report.ts';

const dir = mkdtempSync(join(tmpdir(), 'bench-clusterops-'));
const key = randomBytes(32).toString('hex');
const base = 20000 + Math.floor(Math.random() * 12000); // below the ephemeral range
const log = pino({ level: 'silent' });
const nodes: Cluster[] = [];
for (let i = 0; i < 2; i++) {
  nodes.push(
    await Cluster.start({
      key,
      identityFile: join(dir, `${i}.key`),
      listen: [`/ip4/127.0.0.1/tcp/${base + i}`],
      peers: i === 0 ? [] : [`/ip4/127.0.0.1/tcp/${base}`],
      hyperswarm: false,
      bootstrap: [],
      heartbeatMs: 250,
      failureTimeoutMs: 1500,
      batchMs: 5,
      hostName: `b${i}`,
      local: new AddressMap(`b${i}`, Date.now()),
      load: () => 0,
      freeMb: () => 4096,
      onChange: () => undefined,
      log,
    }),
  );
}
const [a, b] = nodes as [Cluster, Cluster];
const deadline = Date.now() + 20_000;
while ((a.candidates().length === 0 || b.candidates().length === 0) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
if (a.candidates().length === 0) throw new Error('the two nodes did not see each other');

// 1. Code by digest.
const blobs = new Map<string, Buffer>();
// The daemon's own blob protocol, served here by a bare node from a map.
const BLOB: Codec<{ digest: string }, never> = { kind: 'blob', maxRequestBytes: 1024, request: (x) => x as { digest: string }, reply: () => undefined };
await b.handleBytes(BLOB, async ({ digest }) => blobs.get(digest) ?? Buffer.alloc(0));
const http = createServer((req, res) => res.end(blobs.get(req.url!.slice(1))));
await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
const port = (http.address() as { port: number }).port;
const digestOf = (x: Uint8Array) => createHash('sha256').update(x).digest('hex');
const rows: Row[] = [];
for (const mb of [1, 8, 48]) {
  const blob = randomBytes(mb * 1024 * 1024);
  const digest = digestOf(blob);
  blobs.set(digest, blob);
  const ours: number[] = [];
  const http1: number[] = [];
  for (let k = 0; k < 5; k++) {
    let t = performance.now();
    const got = await a.requestBytes(b.peerId, BLOB, { digest }, 60_000, 64 * 1024 * 1024);
    if (digestOf(got) !== digest) throw new Error('blob corrupted');
    ours.push(performance.now() - t);
    t = performance.now();
    const res = await fetch(`http://127.0.0.1:${port}/${digest}`);
    if (digestOf(new Uint8Array(await res.arrayBuffer())) !== digest) throw new Error('http blob corrupted');
    http1.push(performance.now() - t);
  }
  rows.push({ metric: `code of ${mb} MB`, unit: 'ms', ours: median(ours), baseline: median(http1), baselineName: 'HTTP GET, loopback', better: 'lower', note: 'median of 5, digest checked' });
  blobs.delete(digest);
}
http.close();

// 2. Claims: IDs whose arbiter is the other node, then IDs this node decides alone.
const none = { get: () => undefined } as unknown as Directory;
const [ca] = await Promise.all([serveClaims(a, none, 1500), serveClaims(b, none, 1500)]);
const members = [a.peerId, b.peerId];
const ids = (arbiter: string) =>
  Array.from({ length: 5000 }, (_, i) => `c-${i}`)
    .filter((id) => arbiters('bench', id, members)[0] === arbiter)
    .slice(0, 300);
const time = async (list: string[]) => {
  const out: number[] = [];
  for (const id of list) {
    const t = performance.now();
    const v = await ca.claim('bench', [id]);
    if (!v.ok) throw new Error(`claim of ${id} refused`);
    out.push(performance.now() - t);
  }
  return out;
};
const remote = await time(ids(b.peerId));
const local = await time(ids(a.peerId));
rows.push({
  metric: 'instance-ID claim, p50',
  unit: 'ms',
  ours: median(remote),
  baseline: median(local),
  baselineName: 'decided alone (map only)',
  better: 'lower',
  note: '300 claims each; arbiter on the other daemon',
});

await Promise.all(nodes.map((n) => n.stop()));
rmSync(dir, { recursive: true, force: true });
report(
  'cluster-ops',
  'Cluster operations across daemons (loopback, libp2p private network)',
  rows,
  'Code by digest: the price of the encrypted, multiplexed peer stream over plain HTTP. Claims: what uniqueness across daemons costs each named instance.',
);
process.exit(0);
