import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanupHost, deploy, invoke, namespace, ROOT, startDaemon, type Api, type TestDaemon } from '../helpers/daemon.ts';

// The live dashboard in a real headless browser (Debian's chromium, driven by
// playwright-core): hosts, instances appearing and leaving, recent activations.

const HOST = `it-dash-${process.pid}`;
const SHOT = join(ROOT, 'test/results/dashboard.png');
let d: TestDaemon;
let browser: Browser;
let call: Api;
let ns: string;

beforeAll(async () => {
  d = await startDaemon({ hostId: HOST });
  ({ call, ns } = await namespace(d, `${HOST}-ns`));
  await deploy(call, ns, 'hold', { kind: 'nodejs', code: 'async function main(p) { await new Promise(r => setTimeout(r, p.ms)); return { held: p.ms } }' });
  browser = await chromium.launch({ executablePath: process.env.PEERLESS_CHROMIUM ?? '/usr/bin/chromium', args: ['--no-sandbox'] });
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await d?.stop();
  await cleanupHost(HOST, d?.dataDir);
});

describe('dashboard', () => {
  it("refuses a wrong key with the daemon's own problem text and keeps the board hidden", async () => {
    const page = await browser.newPage();
    await page.goto(`${d.url}/dashboard`);
    await page.fill('#key', 'not-a:valid-key');
    await page.click('button[type=submit]');
    await expect.poll(() => page.textContent('#problem'), { timeout: 5_000 }).toMatch(/credential is not valid/);
    expect(await page.isHidden('#board')).toBe(true);
    await page.close();
  });

  it('shows this host, then instances as they start and leave, and their activations, live', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    await page.goto(`${d.url}/dashboard`);
    await page.fill('#key', d.admin);
    await page.click('button[type=submit]');
    await expect.poll(() => page.textContent('#hosts tbody'), { timeout: 5_000 }).toContain(`${HOST} (this)`);

    const started = await invoke(call, ns, 'hold', { ms: 6000 }, 'blocking=false&instances=w-{0..2}');
    expect(started.status).toBe(202);
    const rows = () => page.$$eval(`[data-namespace="${ns}"] tbody tr td:first-child`, (tds) => tds.map((t) => t.textContent));
    // Same page, no reload: the stream brings the instances in as they start.
    await expect.poll(rows, { timeout: 30_000 }).toEqual(['w-0', 'w-1', 'w-2']);
    expect(await page.textContent(`[data-namespace="${ns}"] h3`)).toBe(`${ns}: 3 instances`);
    expect(await page.textContent('#activations tbody')).toContain('running');
    // Each goes from starting to running, with its address on the namespace network, as its code starts.
    const states = () => page.$$eval(`[data-namespace="${ns}"] tbody tr td:nth-child(5)`, (tds) => tds.map((t) => t.textContent));
    await expect.poll(states, { timeout: 30_000 }).toEqual(['running', 'running', 'running']);
    mkdirSync(join(ROOT, 'test/results'), { recursive: true });
    await page.screenshot({ path: SHOT, fullPage: true });
    expect(existsSync(SHOT) && statSync(SHOT).size).toBeGreaterThan(10_000);

    // ...and out as they end, with their activations finished.
    await expect.poll(rows, { timeout: 30_000 }).toEqual([]);
    await expect.poll(async () => page.$$eval('#activations tbody tr.success', (trs) => trs.length), { timeout: 10_000 }).toBe(3);
    await page.close();
  }, 90_000);

  it('draws the last hour as charts, the cluster as a graph, and a 35-worker job as a grid, a timeline and a traffic matrix', async () => {
    const example = (f: string) => readFileSync(join(ROOT, 'examples', f), 'utf8');
    await deploy(call, ns, 'wc', { kind: 'nodejs', code: example('wordcount/master.js') }, { limits: { timeout: 300_000 } });
    await deploy(call, ns, 'wc-worker-35', { kind: 'nodejs', code: example('wordcount/worker.js') }, { limits: { memory: 1024, concurrency: 35, timeout: 300_000 } });
    const page = await browser.newPage({ viewport: { width: 1440, height: 1000 } });
    await page.goto(`${d.url}/dashboard`);
    await page.fill('#key', d.admin);
    await page.click('button[type=submit]');
    await expect.poll(() => page.$$eval(`#graph g[data-host="${HOST}"]`, (g) => g.length), { timeout: 5_000 }).toBe(1);
    const input = JSON.parse(example('wordcount/input-50.json'));
    const r = await invoke(call, ns, 'wc', { ...input, worker: 'wc-worker-35' }, 'blocking=false&instance=wc');
    expect(r.status).toBe(202);
    // The job appears and is picked; its members fill the grid, 35 of them.
    await expect.poll(() => page.$$eval('#job-grid .cell', (c) => c.length), { timeout: 60_000 }).toBe(35);
    await expect.poll(() => page.$$eval('#job-grid .cell[data-state="running"], #job-grid .cell[data-state="succeeded"]', (c) => c.length), { timeout: 120_000 }).toBeGreaterThan(0);
    await page.screenshot({ path: join(ROOT, 'docs/dashboard-job.png'), fullPage: true });
    // When it ends: every member succeeded, each a bar on the timeline, and the bytes they sent the master drawn.
    await expect.poll(() => page.$$eval('#job-grid .cell[data-state="succeeded"]', (c) => c.length), { timeout: 180_000 }).toBe(35);
    expect(await page.$$eval('#job-timeline rect', (r) => r.length)).toBe(35);
    await expect.poll(() => page.$$eval('#job-matrix rect', (r) => r.length), { timeout: 10_000 }).toBeGreaterThanOrEqual(35);
    const bytes = await page.$$eval('#job-matrix rect', (r) => r.reduce((a, x) => a + Number(x.getAttribute('data-bytes')), 0));
    expect(bytes).toBeGreaterThan(35 * 9);
    expect(await page.textContent('#job-traffic')).toContain('wc');
    // The charts count the job's activations (the master and its 35 workers, at least).
    await expect.poll(async () => Number(await page.getAttribute('#board', 'data-invocations')), { timeout: 15_000 }).toBeGreaterThanOrEqual(36);
    expect(await page.$$eval('#c-rate canvas, #c-lat canvas, #c-cold canvas', (c) => c.length)).toBe(3);
    await page.screenshot({ path: join(ROOT, 'docs/dashboard-overview.png'), fullPage: true });
    await page.close();
  }, 300_000);

  it('shows a tenant only its own namespace', async () => {
    const other = await namespace(d, `${HOST}-other`);
    const page = await browser.newPage();
    await page.goto(`${d.url}/dashboard`);
    await page.fill('#key', other.auth);
    await page.click('button[type=submit]');
    await expect.poll(() => page.$$eval('#instances .ns', (els) => els.map((e) => e.getAttribute('data-namespace'))), { timeout: 5_000 }).toEqual([other.ns]);
    expect(await page.textContent('#activations tbody')).not.toContain(ns);
    await page.close();
  });
});
