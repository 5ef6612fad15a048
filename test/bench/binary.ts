// The single executable against the checkout it is built from, in one run:
// its size against Node.js alone; `peerless --version` (process start-up)
// and `peerless daemon` to a healthy /healthz, each timed over repeated runs
// of both; and whether two builds of the same commit give the same bytes.
// Run: node test/bench/binary.ts   (BENCH_RUNS=N, default 20 and 5 for the daemon)
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI, ROOT } from '../helpers/daemon.ts';
import { median, percentile, report, type Row } from './report.ts';

const RUNS = Number(process.env.BENCH_RUNS ?? 20);
const DAEMON_RUNS = Math.max(3, Math.round(RUNS / 4));
const work = mkdtempSync(join(tmpdir(), 'pl-bench-bin-'));

function build(out: string): string {
  const r = spawnSync(process.execPath, [join(ROOT, 'scripts', 'build-binary.ts'), '--out', out], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`build failed:\n${r.stderr}`);
  return createHash('sha256').update(readFileSync(out)).digest('hex');
}

function timeCommand(cmd: string[]): number[] {
  const ms: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t = performance.now();
    const r = spawnSync(cmd[0]!, cmd.slice(1), { stdio: 'ignore' });
    if (r.status !== 0) throw new Error(`${cmd.join(' ')} exited with ${r.status}`);
    ms.push(performance.now() - t);
  }
  return ms;
}

/** From spawning `peerless daemon` (runtime images present) to its first 200 on /healthz, then a graceful stop. */
async function daemonUp(cmd: string[], i: number): Promise<number> {
  const dataDir = mkdtempSync(join(work, 'data-'));
  const port = 21000 + Math.floor(Math.random() * 10000);
  const t = performance.now();
  const p = spawn(cmd[0]!, [...cmd.slice(1), 'daemon', '--data-dir', dataDir, '--port', String(port), '--host-id', `bench-bin-${process.pid}-${i}`, '--prewarm-nodejs', '0'], { stdio: 'ignore' });
  try {
    for (;;) {
      if (p.exitCode !== null) throw new Error(`the daemon exited with ${p.exitCode}`);
      const ok = await fetch(`http://127.0.0.1:${port}/healthz`).then(
        (r) => r.ok,
        () => false,
      );
      if (ok) return performance.now() - t;
      if (performance.now() - t > 60_000) throw new Error('the daemon did not come up in 60 s');
      await new Promise((r) => setTimeout(r, 10));
    }
  } finally {
    p.kill('SIGTERM');
    await new Promise((r) => (p.exitCode !== null ? r(null) : p.once('exit', r)));
  }
}

try {
  const a = join(work, 'a', 'peerless');
  const b = join(work, 'b', 'peerless');
  const t0 = performance.now();
  const shaA = build(a);
  const buildS = (performance.now() - t0) / 1000;
  const shaB = build(b);
  const checkout = [process.execPath, CLI];
  const single = [a];
  // One daemon start of each first, untimed: it imports or builds the runtime images if the engine lacks them.
  await daemonUp(single, -1);
  await daemonUp(checkout, -2);
  const verBin = timeCommand([...single, '--version']);
  const verCheckout = timeCommand([...checkout, '--version']);
  const upBin: number[] = [];
  const upCheckout: number[] = [];
  for (let i = 0; i < DAEMON_RUNS; i++) {
    upBin.push(await daemonUp(single, i));
    upCheckout.push(await daemonUp(checkout, 100 + i));
  }
  const mb = (p: string) => statSync(p).size / 1e6;
  const rows: Row[] = [
    { metric: 'size', unit: 'MB', ours: mb(a), baseline: mb(process.execPath), baselineName: 'node alone', better: 'lower', note: 'both runtimes and the dashboard inside' },
    { metric: '--version, median', unit: 'ms', ours: median(verBin), baseline: median(verCheckout), baselineName: 'checkout (node cli/peerless.js)', better: 'lower' },
    { metric: '--version, p99', unit: 'ms', ours: percentile(verBin, 99), baseline: percentile(verCheckout, 99), baselineName: 'checkout', better: 'lower' },
    {
      metric: 'daemon to healthy, median',
      unit: 'ms',
      ours: median(upBin),
      baseline: median(upCheckout),
      baselineName: 'checkout',
      better: 'lower',
      note: `${DAEMON_RUNS} starts each, images present`,
    },
    { metric: 'daemon to healthy, max', unit: 'ms', ours: Math.max(...upBin), baseline: Math.max(...upCheckout), baselineName: 'checkout', better: 'lower' },
  ];
  report(
    'binary',
    'The single executable against the checkout',
    rows,
    [
      `build: ${buildS.toFixed(1)} s; two builds of this tree ${shaA === shaB ? 'are byte-identical' : 'DIFFER'} (sha256 ${shaA.slice(0, 16)}…${shaA === shaB ? '' : ` vs ${shaB.slice(0, 16)}…`})`,
      `runs: ${RUNS} of --version, ${DAEMON_RUNS} daemon starts, alternating`,
    ].join('\n'),
  );
} finally {
  rmSync(work, { recursive: true, force: true });
}
