import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROTOCOLS, TOPICS, type ProtocolKind } from '../../gossip/protocols.ts';
import { forgedEntry, keyHolder, type KeyHolder } from '../helpers/forger.ts';
import { api, cleanupHost, deploy, invoke, namespace, startDaemon, waitFor, type TestDaemon, clusterFlags } from '../helpers/daemon.ts';
import { encodeJson, notJson, rng, typeConfused } from '../helpers/wirefuzz.ts';

// The wire fuzz: a holder of the cluster key (so past the private network and
// able to sign) sends every protocol and topic of the daemons random bytes,
// JSON cut short, requests too large, and well-formed samples with each field
// replaced by a value of the wrong type or out of range. The daemons must stay
// up, refuse what they cannot read with the reason, count it by kind and
// reason, never trip a listener, and still work as a cluster afterwards.

const RUN = process.pid;
const KEY = randomBytes(32).toString('hex');
const port = (i: number) => 18600 + (RUN % 50) * 10 + i;
const addr = (i: number) => `/ip4/127.0.0.1/tcp/${port(i)}`;
const SEED = 16;
const NOT_JSON = 24;
const hosts: TestDaemon[] = [];
let fuzzer: KeyHolder;
const NS = `it-wf-${RUN}-h0-ns`;

const status = async (i: number) => (await api(hosts[i]!.url, hosts[i]!.admin)('GET', '/api/v1/status')).body;
const rejected = async (i: number, kind: string, reason?: string) =>
  ((await status(i)).rejected as { kind: string; reason: string; n: number }[]).filter((r) => r.kind === kind && (reason === undefined || r.reason === reason)).reduce((s, r) => s + r.n, 0);

beforeAll(async () => {
  for (let i = 0; i < 3; i++) {
    const flags = [...clusterFlags(i, KEY, addr), '--heartbeat-ms', '200'];
    hosts.push(await startDaemon({ hostId: `it-wf-${RUN}-h${i}`, flags }));
  }
  await waitFor(async () => (await Promise.all([0, 1, 2].map(status))).every((s) => s.peers === 2), 20_000, 'a full mesh of three');
  fuzzer = await keyHolder(KEY, addr(0));
});

afterAll(async () => {
  await fuzzer?.stop();
  for (const d of hosts) if (d.proc.exitCode !== null) console.log(`daemon ${d.hostId} died; the end of its log:`, d.logs().split('\n').slice(-30).join('\n'));
  for (const d of hosts) await d.stop().catch(() => undefined);
  for (const d of hosts) await cleanupHost(d.hostId, d.dataDir);
});

const ID = 'ab'.repeat(16);
const view = {
  activationId: ID,
  namespace: 'fz',
  name: 'f',
  version: '0.0.1',
  host: 'h',
  start: 1,
  end: 2,
  duration: 1,
  response: { status: 'success', statusCode: 0, success: true, result: {} },
  logs: [],
  annotations: [],
};

/** A well-formed message (or several) of each request/response protocol, to be confused field by field. */
const REQUESTS: Record<Exclude<ProtocolKind, 'beat'>, unknown[]> = {
  beatV1: [[{ origin: 'x', incarnation: 1, beat: 1, seq: 1, load: 0, freeMb: 1, host: 'h', addrs: ['/ip4/127.0.0.1/tcp/1'], intro: 'eA==' }]],
  snapshot: [{}],
  claim: [{ op: 'claim', namespace: 'fz', ids: ['a'], holder: 'x' }],
  run: [
    { op: 'free' },
    { op: 'reserve', mb: 1, ttlMs: 100 },
    { op: 'unreserve', reservation: 'r' },
    { op: 'stop', ids: [ID], why: 'x' },
    { op: 'start', share: { namespace: 'fz', function: 'f', params: {}, members: [{ instance: 'i', activationId: ID, epoch: 0, restart: false }], reservation: null, claimedBy: null } },
    { op: 'ended', activationId: ID, activation: view },
  ],
  activation: [{ namespace: 'fz', id: ID }],
  activations: [{ namespace: 'fz', name: null, since: 0, upto: 1, limit: 10, docs: false }],
  jobs: [
    { op: 'get', namespace: 'fz', id: ID },
    { op: 'list', namespace: 'fz', limit: 5 },
  ],
  blob: [{ digest: `sha256:${'0'.repeat(64)}` }],
  registry: [{ have: [['fn', 'fz', 'f', '000000000000001:000000:x']] }],
};

const hlc = `${String(Date.now()).padStart(15, '0')}:000000:fuzz`;
/** Well-formed messages of each topic, from the fuzzer itself (its own origin). */
const topicSamples = (self: string): Record<keyof typeof TOPICS, unknown[]> => ({
  addrmap: [
    {
      type: 'delta',
      origin: self,
      incarnation: 1,
      seq: 1,
      changes: [
        { kind: 'upsert', entry: forgedEntry('fz', 'i') },
        { kind: 'remove', namespace: 'fz', instance: 'j' },
      ],
    },
    { type: 'snapshot', origin: self, incarnation: 1, seq: 1, entries: [forgedEntry('fz', 'i')] },
    { type: 'heartbeat', origin: self, incarnation: 1, seq: 1, load: 0 },
    { type: 'pull', origin: self, from: self },
    { type: 'down', origin: self, incarnation: 1 },
  ],
  registry: [
    { type: 'ns', name: 'fzns', hlc, deleted: false, created: 0, keys: [], limits: { perMinute: 1, concurrent: 1 } },
    { type: 'fn', ns: 'fzns', name: 'f', hlc, deleted: true },
    { type: 'ent', kind: 'trigger', ns: 'fzns', name: 't', hlc, deleted: false, doc: { namespace: 'fzns', name: 't', parameters: [] } },
  ],
});

/** Runs the asks a few at a time: the fuzz is a flood in count, not in concurrency. */
async function inBatches<T>(items: T[], n: number, fn: (x: T) => Promise<void>): Promise<void> {
  for (let i = 0; i < items.length; i += n) await Promise.all(items.slice(i, i + n).map(fn));
}

const dec = new TextDecoder();

describe('wire fuzz', () => {
  it('refuses and counts every malformed message on every protocol and topic, and the cluster carries on', async () => {
    const rand = rng(SEED);
    const target = (await status(0)).peerId as string;
    const tried: Record<string, number> = {};
    const t0 = Date.now();
    const sentNotJson: Record<string, number> = {};

    // 1. Request/response protocols, on daemon 0.
    for (const [kind, samples] of Object.entries(REQUESTS) as [Exclude<ProtocolKind, 'beat'>, unknown[]][]) {
      const garbage = samples.flatMap((s) => notJson(s, rand, NOT_JSON));
      const confused = samples.flatMap(typeConfused).map(encodeJson);
      // Too large for any protocol: past the registry pull's 16 MB, the largest request any takes.
      const huge = encodeJson(Array.from({ length: (16 * 1024 * 1024) / 8 + 1 }, () => 1234567));
      tried[kind] = garbage.length + confused.length + 1;
      sentNotJson[kind] = garbage.length;
      const refusals: string[] = [];
      await inBatches(garbage, 8, async (b) => {
        const r = await fuzzer.ask(target, PROTOCOLS[kind], b);
        refusals.push(r instanceof Error ? `error: ${r.message}` : dec.decode(r));
      });
      // Every one answered with the reason, not by a reset or silence.
      expect(new Set(refusals), kind).toEqual(new Set(['{"rejected":"not-json"}']));
      await inBatches(confused, 8, async (b) => void (await fuzzer.ask(target, PROTOCOLS[kind], b)));
      const big = await fuzzer.ask(target, PROTOCOLS[kind], huge, 30_000);
      if (!(big instanceof Error)) expect(dec.decode(big), kind).toBe('{"rejected":"too-large"}');
      console.log(`${kind}: ${tried[kind]} tried by ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    }

    // 2. The kept beat links: frames of garbage, of a length past any limit, of confused rows.
    const beatFrames: Uint8Array[] = [];
    const frame = (body: Uint8Array) => Buffer.concat([Buffer.from(Uint32Array.of(body.length).buffer).reverse(), body]);
    for (const b of notJson(REQUESTS.beatV1[0], rand, NOT_JSON)) beatFrames.push(frame(b));
    for (const c of typeConfused({ rows: REQUESTS.beatV1[0], reply: true })) beatFrames.push(frame(encodeJson(c)));
    beatFrames.push(Buffer.from([0xff, 0xff, 0xff, 0xff, 1, 2, 3]));
    tried.beat = beatFrames.length;
    await inBatches(beatFrames, 16, async (b) => void (await fuzzer.ask(target, PROTOCOLS.beat, b, 1000)));

    // 3. Both topics, signed by the fuzzer: garbage and confused messages. A delta applies when it continues
    // its origin's sequence, or opens a new incarnation: each confused delta opens one, so that the daemons
    // read its changes instead of setting it aside as out of order.
    const topics = topicSamples(fuzzer.peerId);
    let incarnation = 1;
    const fresh = (m: unknown) => {
      const d = m as { type?: unknown; incarnation?: unknown; seq?: unknown; changes?: unknown } | null;
      if (d === null || typeof d !== 'object' || d.type !== 'delta' || d.incarnation !== 1 || d.seq !== 1 || !Array.isArray(d.changes)) return m;
      return { ...d, incarnation: ++incarnation, seq: d.changes.length };
    };
    for (const [kind, samples] of Object.entries(topics) as [keyof typeof TOPICS, unknown[]][]) {
      const garbage = samples.flatMap((s) => notJson(s, rand, 8));
      const confused = samples.flatMap(typeConfused).map(fresh).map(encodeJson);
      tried[`topic ${kind}`] = garbage.length + confused.length;
      sentNotJson[`topic ${kind}`] = garbage.length;
      for (const b of [...garbage, ...confused]) await fuzzer.publish(TOPICS[kind], b);
    }
    console.log(`wire fuzz, messages tried by protocol: ${JSON.stringify(tried)}; total ${Object.values(tried).reduce((a, b) => a + b, 0)}`);

    // Counted where they arrived, by kind and reason: exactly as many "not JSON" as were sent.
    for (const kind of Object.keys(REQUESTS)) {
      expect(await rejected(0, kind, 'not-json'), kind).toBe(sentNotJson[kind]);
      // The huge one, and for small protocols also the confused ones carrying a long string or a deep array.
      expect(await rejected(0, kind, 'too-large'), kind).toBeGreaterThanOrEqual(1);
      if (kind !== 'snapshot') expect(await rejected(0, kind, 'malformed'), kind).toBeGreaterThan(0);
    }
    // As Prometheus reads them too.
    const metrics = await (await fetch(`${hosts[0]!.url}/metrics`)).text();
    expect(metrics).toContain(`peerless_gossip_rejected_total{kind="run",reason="not-json"} ${sentNotJson.run}`);
    await waitFor(async () => (await rejected(0, 'addrmap-topic', 'not-json')) === sentNotJson['topic addrmap'], 10_000, 'every garbage address-map message counted');
    await waitFor(async () => (await rejected(0, 'registry-topic', 'not-json')) === sentNotJson['topic registry'], 10_000, 'every garbage registry message counted');
    expect(await rejected(0, 'addrmap-topic', 'malformed')).toBeGreaterThan(0);
    expect(await rejected(0, 'registry-topic', 'malformed')).toBeGreaterThan(0);
    // Relayed: the others saw the topics' garbage too.
    for (const i of [1, 2]) await waitFor(async () => (await rejected(i, 'addrmap-topic', 'not-json')) > 0, 10_000, `garbage relayed to daemon ${i}`);

    // Nothing tripped a listener, nothing died, and the mesh held.
    for (let i = 0; i < 3; i++) {
      expect(hosts[i]!.proc.exitCode, `daemon ${i}`).toBeNull();
      expect(await rejected(i, 'addrmap-topic', 'listener-error'), `daemon ${i}`).toBe(0);
      expect(await rejected(i, 'registry-topic', 'listener-error'), `daemon ${i}`).toBe(0);
    }
    await waitFor(async () => (await Promise.all([0, 1, 2].map(status))).every((s) => s.peers === 2), 20_000, 'the mesh of three still whole');

    // 4. Still a cluster: a namespace and a function made on daemon 1 run through daemon 2, with a named instance
    // daemon 0 maps, and the activation reads through daemon 0.
    const { auth } = await namespace(hosts[1]!, NS);
    const on = (i: number) => api(hosts[i]!.url, auth);
    expect((await deploy(on(1), NS, 'after', { kind: 'nodejs', code: 'async function main(p) { return { n: p.n + 1 } }' })).status).toBe(201);
    await waitFor(async () => (await on(2)('GET', `/api/v1/namespaces/${NS}/actions/after`)).status === 200, 20_000, 'the function on daemon 2');
    const r = await invoke(on(2), NS, 'after', { n: 41 }, 'blocking=true&instance=after-1');
    expect(r.body.response).toMatchObject({ status: 'success', result: { n: 42 } });
    expect((await on(0)('GET', `/api/v1/namespaces/${NS}/activations/${r.body.activationId}`)).body.response.result).toEqual({ n: 42 });
  }, 300_000);
});
