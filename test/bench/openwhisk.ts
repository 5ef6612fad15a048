// OpenWhisk compatibility, measured with the official `openwhisk` client against a real daemon, warm:
//  - a three-component sequence, invoked blocking once, against the floor a user would otherwise
//    write: three blocking invocations, one after another, each with the previous result;
//  - a web action (GET .../web/ns/default/name.json, no key) against a blocking invocation of the
//    same action through the client.
// p50 and p99 of each, in one run, interleaved so the machine's noise falls on both alike.
// Run: node test/bench/openwhisk.ts [--quick]
import openwhisk from 'openwhisk';
import { cleanupHost, namespace, startDaemon } from '../helpers/daemon.ts';
import { percentile, report, type Row } from './report.ts';

const QUICK = process.argv.includes('--quick');
const N = QUICK ? 20 : 200;
const HOST = `bench-ow-${process.pid}`;

const d = await startDaemon({ hostId: HOST, flags: ['--pause-grace-ms', '600000'] });
try {
  const { ns, auth } = await namespace(d, `${HOST}-ns`);
  type Loose = Record<string, Record<string, (o?: Record<string, unknown>) => Promise<any>>>; // eslint-disable-line @typescript-eslint/no-explicit-any
  const ow = openwhisk({ apihost: d.url, api_key: auth, namespace: ns }) as unknown as Loose;
  for (const [name, code] of [
    ['a', 'function main(p) { return { n: (p.n || 0) + 1 } }'],
    ['b', 'function main(p) { return { n: p.n * 2 } }'],
    ['c', 'function main(p) { return { n: p.n - 1 } }'],
  ]) {
    await ow.actions!.create!({ name, action: code, annotations: { 'web-export': true } });
  }
  await ow.actions!.create!({ name: 'abc', sequence: ['/_/a', '/_/b', '/_/c'] });

  const timed = async (f: () => Promise<unknown>) => {
    const t0 = performance.now();
    await f();
    return performance.now() - t0;
  };
  const sequence = () => ow.actions!.invoke!({ name: 'abc', params: { n: 1 }, blocking: true, result: true });
  const chained = async () => {
    let p: Record<string, unknown> = { n: 1 };
    for (const name of ['a', 'b', 'c']) p = await ow.actions!.invoke!({ name, params: p, blocking: true, result: true });
    return p;
  };
  const web = async () => (await fetch(`${d.url}/api/v1/web/${ns}/default/a.json?n=1`)).json();
  const blocking = () => ow.actions!.invoke!({ name: 'a', params: { n: 1 }, blocking: true, result: true });

  // Warm every container first; then measure, interleaved.
  for (let i = 0; i < 5; i++) await Promise.all([sequence(), chained(), web(), blocking()].map((p) => p.catch(() => undefined)));
  if ((await sequence()).n !== 3 || (await chained()).n !== 3) throw new Error('the sequence and its floor disagree');
  const t = { sequence: [] as number[], chained: [] as number[], web: [] as number[], blocking: [] as number[] };
  for (let i = 0; i < N; i++) {
    t.sequence.push(await timed(sequence));
    t.chained.push(await timed(chained));
    t.web.push(await timed(web));
    t.blocking.push(await timed(blocking));
  }
  const rows: Row[] = [];
  for (const p of [50, 99]) {
    rows.push({
      metric: `3-component sequence, p${p}`,
      unit: 'ms',
      ours: percentile(t.sequence, p),
      baseline: percentile(t.chained, p),
      baselineName: '3 blocking invokes in turn',
      better: 'lower',
      note: `n=${N}`,
    });
  }
  for (const p of [50, 99]) {
    rows.push({
      metric: `web action (.json, no key), p${p}`,
      unit: 'ms',
      ours: percentile(t.web, p),
      baseline: percentile(t.blocking, p),
      baselineName: 'blocking invoke, same action',
      better: 'lower',
      note: `n=${N}`,
    });
  }
  report('openwhisk', 'OpenWhisk compatibility: a sequence against the client chaining its components, a web action against a blocking invoke (warm, one daemon)', rows);
} finally {
  await d.stop();
  await cleanupHost(HOST, d.dataDir);
}
