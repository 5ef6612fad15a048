// Instances at work, end to end:
//  1. word-count scatter-gather from the CLI with 6/12/17/35/100 workers (100: split by words), cold and warm,
//     beside the seed thesis's published times (Kubernetes + NATS) for 6/11/17/35 workers;
//  2. directory overhead: fib completion with and without instance registration, warm and cold.
// The floor for cold groups is the same number of `docker run -d` of the runtime image, started at once.
// Run: node test/bench/instances.ts   (bounded: a few minutes)
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { imageTag } from '../../sandbox/images.ts';
import { cleanupHost, CLI, deploy, namespace, ROOT, startDaemon } from '../helpers/daemon.ts';
import { median, report, type Row } from './report.ts';

const exec = promisify(execFile);
const HOST = `bench-inst-${process.pid}`;
const THESIS_S: Record<number, number> = { 6: 4.58, 11: 5.87, 17: 10.1, 35: 18.77 };
const text = readFileSync(join(ROOT, 'examples/wordcount/input.txt'), 'utf8');
const example = (p: string) => readFileSync(join(ROOT, 'examples', p), 'utf8');

// The same split as the master, to pick block sizes for each worker count.
function blocks(block: number): number {
  let n = 0;
  for (let start = 0; start < text.length; n++) {
    let end = Math.min(start + block, text.length);
    if (end < text.length) {
      const space = text.lastIndexOf(' ', end);
      if (space > start) end = space + 1;
    }
    start = end;
  }
  return n;
}
const blockFor = (workers: number) => {
  for (let b = 8; b < 2000; b++) if (blocks(b) <= workers) return b;
  throw new Error('no block size');
};

const d = await startDaemon({ hostId: HOST, flags: ['--pause-grace-ms', '600000'] });
const wc: Row[] = [];
const overhead: Row[] = [];
try {
  const { call, ns, auth } = await namespace(d, `${HOST}-ns`);
  const env = { ...process.env, PEERLESS_APIHOST: d.url, PEERLESS_AUTH: auth };
  const tmp = mkdtempSync(join(tmpdir(), 'bench-wc-'));
  await deploy(call, ns, 'wordcount', { kind: 'nodejs', code: example('wordcount/master.js') });
  const cli = async (...args: string[]) => {
    const t = performance.now();
    const r = await exec(process.execPath, [CLI, ...args], { env, maxBuffer: 1 << 24 });
    return { ms: performance.now() - t, out: JSON.parse(r.stdout) };
  };
  // The floor for a cold group: the same number of containers of the runtime image started at once by `docker run -d`.
  const image = imageTag('nodejs');
  const parallelRuns = async (n: number) => {
    const t = performance.now();
    const ids = await Promise.all(Array.from({ length: n }, () => exec('docker', ['run', '-d', '--label', `peerless.host=${HOST}`, image]).then((r) => r.stdout.trim())));
    const ms = performance.now() - t;
    await exec('docker', ['rm', '-f', ...ids]);
    return ms;
  };
  for (const target of [6, 12, 17, 35, 100]) {
    const block = target === 100 ? 0 : blockFor(target);
    const file = join(tmp, `in-${target}.json`);
    writeFileSync(file, JSON.stringify(target === 100 ? { text, workers: 100 } : { text, block }));
    const run = () => cli('fn', 'invoke', 'wordcount', '--instance', 'wc', '-P', file, '--result');
    const cold: number[] = [];
    let workers = 0;
    for (let i = 0; i < 2; i++) {
      // A new version of the worker: none of its containers is warm.
      await deploy(call, ns, 'wordcount-worker', { kind: 'nodejs', code: `${example('wordcount/worker.js')}\n// v${target}-${i}` }, { limits: { memory: 128 } });
      const r = await run();
      if (r.out.words !== 285) throw new Error(`wrong count: ${JSON.stringify(r.out)}`);
      workers = r.out.workers;
      cold.push(r.ms);
    }
    const warm: number[] = [];
    for (let i = 0; i < 5; i++) warm.push((await run()).ms);
    const floor = await parallelRuns(workers);
    const thesis = THESIS_S[workers === 12 ? 11 : workers];
    wc.push({
      metric: `${workers} workers, cold`,
      unit: 'ms',
      ours: median(cold),
      baseline: floor,
      baselineName: `${workers} × docker run -d`,
      better: 'lower',
      note: block ? `block ${block} B` : 'split by words',
    });
    if (thesis)
      wc.push({
        metric: `${workers} workers, cold vs thesis`,
        unit: 'ms',
        ours: median(cold),
        baseline: thesis * 1000,
        baselineName: `thesis, ${workers === 12 ? 11 : workers} workers`,
        better: 'lower',
      });
    wc.push({
      metric: `${workers} workers, warm`,
      unit: 'ms',
      ours: median(warm),
      baseline: thesis ? thesis * 1000 : median(cold),
      baselineName: thesis ? 'thesis' : 'peerless cold',
      better: 'lower',
      note: 'median of 5',
    });
    process.stdout.write(`${workers} workers: cold ${median(cold).toFixed(0)} ms, warm ${median(warm).toFixed(0)} ms\n`);
  }

  // Directory overhead: the same fib, registered under an instance ID or not.
  const fib = example('fib/fib.js');
  const invoke = async (q: string) => {
    const t = performance.now();
    const r = await call('POST', `/api/v1/namespaces/${ns}/actions/fib?blocking=true&result=true${q}`, { n: 20 });
    if (r.status !== 200) throw new Error(JSON.stringify(r.body));
    return performance.now() - t;
  };
  const coldWith: number[] = [];
  const coldWithout: number[] = [];
  for (let i = 0; i < 16; i++) {
    await deploy(call, ns, 'fib', { kind: 'nodejs', code: `${fib}\n// ${i}` });
    if (i % 2 === 0) coldWith.push(await invoke('&instance=fib-1'));
    else coldWithout.push(await invoke(''));
  }
  const warmWith: number[] = [];
  const warmWithout: number[] = [];
  for (let i = 0; i < 20; i++) await invoke('');
  for (let i = 0; i < 300; i++) {
    warmWith.push(await invoke('&instance=fib-1'));
    warmWithout.push(await invoke(''));
  }
  const coldCost = median(coldWith) - median(coldWithout);
  overhead.push({
    metric: 'fib, cold start',
    unit: 'ms',
    ours: median(coldWith),
    baseline: median(coldWithout),
    baselineName: 'no instance ID',
    better: 'lower',
    note: `${coldCost >= 0 ? '+' : ''}${coldCost.toFixed(1)} ms (8 runs each)`,
  });
  overhead.push({
    metric: 'fib, warm p50',
    unit: 'ms',
    ours: median(warmWith),
    baseline: median(warmWithout),
    baselineName: 'no instance ID',
    better: 'lower',
    note: `+${(median(warmWith) - median(warmWithout)).toFixed(2)} ms = ${(((median(warmWith) - median(warmWithout)) / median(coldWithout)) * 100).toFixed(2)}% of a cold start (300 runs each)`,
  });
} finally {
  await d.stop();
  await cleanupHost(HOST, d.dataDir);
}
report(
  'wordcount',
  'Word count scatter-gather, end to end from the CLI (1654-byte text; thesis: Kubernetes + NATS, published)',
  wc,
  'aims on this 2-core machine: 35 workers ≤ 2 s cold, ≤ 150 ms warm.',
);
report('directory-overhead', 'Directory overhead: fib (n=20) with vs without instance registration', overhead, 'aim: ≤ 5% of a cold start.');
