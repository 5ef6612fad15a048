import { existsSync, mkdirSync, statSync } from 'node:fs';
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
