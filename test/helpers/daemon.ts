import { spawn, type ChildProcess } from 'node:child_process';
import { get as httpsGet } from 'node:https';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import Docker from 'dockerode';

// Real daemons for integration tests: each is a child process running
// `peerless daemon` against the machine's Docker engine, with its own data dir
// and host ID so tests never touch each other's containers.

export const ROOT = resolve(import.meta.dirname, '../..');
export const CLI = join(ROOT, 'cli/peerless.js');
export const docker = new Docker();

/** The flags that put daemon i of n (three unless told) in a cluster with the others, each listening at addr(j). */
export function clusterFlags(i: number, key: string, addr: (j: number) => string, n = 3): string[] {
  const others = Array.from({ length: n }, (_, j) => j)
    .filter((j) => j !== i)
    .map(addr);
  return ['--cluster-key-file', keyFile(key), '--cluster-listen', addr(i), '--cluster-peers', others.join(',')];
}

/** A cluster key in a file of its own (mode 0600), for --cluster-key-file: a key never goes on a command line. */
export function keyFile(key: string): string {
  const f = join(mkdtempSync(join(tmpdir(), 'pl-key-')), 'cluster.key');
  writeFileSync(f, key, { mode: 0o600 });
  return f;
}

export interface TestDaemon {
  url: string;
  port: number;
  admin: string;
  hostId: string;
  dataDir: string;
  proc: ChildProcess;
  logs: () => string;
  /** graceful stop (SIGTERM) */
  stop(): Promise<number | null>;
  /** kill -9 */
  kill(): Promise<void>;
}

const exited = (p: ChildProcess) => new Promise<number | null>((r) => (p.exitCode !== null || p.signalCode !== null ? r(p.exitCode) : p.once('exit', (code) => r(code))));

/** `cli`: the `peerless` script to run under this Node.js (a link to cli/peerless.js, for `peerless upgrade` to replace) */
export async function startDaemon(opts: { hostId: string; dataDir?: string; port?: number; flags?: string[]; env?: Record<string, string>; cli?: string }): Promise<TestDaemon> {
  const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), `peerless-${opts.hostId}-`));
  // Below the kernel's ephemeral range (32768+), where an outgoing connection could hold the port first.
  const port = opts.port ?? 20000 + Math.floor(Math.random() * 12000);
  const proc = spawn(process.execPath, [opts.cli ?? CLI, 'daemon', '--data-dir', dataDir, '--port', String(port), '--host-id', opts.hostId, '--prewarm-nodejs', '0', ...(opts.flags ?? [])], {
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  proc.stderr!.on('data', (c: Buffer) => (out += c.toString()));
  // A daemon asked for TLS (--tls true) is checked over HTTPS, trusting the certificate it made.
  const tls = (opts.flags ?? []).includes('--tls');
  const url = `${tls ? 'https' : 'http'}://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`daemon exited with ${proc.exitCode}:\n${out}`);
    try {
      if (tls ? await httpsOk(`${url}/healthz`, join(dataDir, 'tls/cert.pem')) : (await fetch(`${url}/healthz`)).ok) break;
    } catch {
      /* not yet */
    }
    if (Date.now() > deadline) throw new Error(`daemon did not come up:\n${out}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    port,
    admin: readFileSync(join(dataDir, 'admin.key'), 'utf8').trim(),
    hostId: opts.hostId,
    dataDir,
    proc,
    logs: () => out,
    async stop() {
      proc.kill('SIGTERM');
      return exited(proc);
    },
    async kill() {
      proc.kill('SIGKILL');
      await exited(proc);
    },
  };
}

/** Whether an HTTPS GET answers 2xx, trusting the given certificate. */
export function httpsOk(url: string, caFile: string): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const req = httpsGet(url, { ca: readFileSync(caFile) }, (res) => {
      res.resume();
      resolve((res.statusCode ?? 500) < 300);
    });
    req.on('error', reject);
  });
}

/** Removes what a test host left on the engine: its containers, its control network, test namespaces' networks. */
export async function cleanupHost(hostId: string, dataDir?: string): Promise<void> {
  const cs = await docker.listContainers({ all: true, filters: { label: [`peerless.host=${hostId}`] } });
  await Promise.all(
    cs.map((c) =>
      docker
        .getContainer(c.Id)
        .remove({ force: true })
        .catch(() => undefined),
    ),
  );
  const nets = await docker.listNetworks({ filters: { label: ['peerless.managed-by=peerless'] } });
  for (const n of nets) {
    const labels = n.Labels ?? {};
    if (labels['peerless.host'] === hostId || (labels['peerless.namespace'] ?? '').startsWith(`${hostId}-`)) {
      // An endpoint of a container removed a moment ago can linger briefly: try a few times.
      for (let i = 0; i < 5; i++) {
        const ok = await docker
          .getNetwork(n.Id)
          .remove()
          .then(
            () => true,
            () => false,
          );
        if (ok) break;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  }
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
}

export type Api = (method: string, path: string, body?: unknown, headers?: Record<string, string>) => Promise<{ status: number; body: any; type: string }>;

export function api(url: string, auth: string | null): Api {
  return async (method, path, body, headers = {}) => {
    const h: Record<string, string> = { ...headers };
    if (auth && !('authorization' in h)) h.authorization = `Basic ${Buffer.from(auth).toString('base64')}`;
    let payload: string | undefined;
    if (body !== undefined) {
      payload = typeof body === 'string' ? body : JSON.stringify(body);
      h['content-type'] ??= 'application/json';
    }
    const send = () => fetch(`${url}${path}`, { method, headers: h, body: payload ?? null });
    // A kept-alive connection the daemon closed as idle just as this request went out on it (the two
    // idle timers race on a loaded machine): nothing reached the daemon, so it is sent once more.
    let res: Response | undefined;
    for (let attempt = 0; !res; attempt++) {
      res = await send().catch(async (err: { cause?: { code?: string } }) => {
        if (attempt >= 2 || (err.cause?.code !== 'UND_ERR_SOCKET' && err.cause?.code !== 'EPIPE')) throw err;
        await new Promise((r) => setTimeout(r, 50));
        return undefined;
      });
    }
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      /* keep text */
    }
    return { status: res.status, body: parsed, type: res.headers.get('content-type') ?? '' };
  };
}

/** Creates a namespace through the admin API and returns a client with its key. */
export async function namespace(d: TestDaemon, name: string): Promise<{ ns: string; auth: string; call: Api }> {
  const r = await api(d.url, d.admin)('PUT', `/api/v1/namespaces/${name}`);
  if (r.status !== 201) throw new Error(`namespace create: ${r.status} ${JSON.stringify(r.body)}`);
  return { ns: name, auth: r.body.auth as string, call: api(d.url, r.body.auth) };
}

export const deploy = (call: Api, ns: string, name: string, exec: Record<string, unknown>, extra: Record<string, unknown> = {}) =>
  call('PUT', `/api/v1/namespaces/${ns}/actions/${name}?overwrite=true`, { exec, ...extra });

export const invoke = (call: Api, ns: string, name: string, params: unknown = {}, q = 'blocking=true') => call('POST', `/api/v1/namespaces/${ns}/actions/${name}?${q}`, params);

export const annotation = (activation: { annotations: { key: string; value: unknown }[] }, key: string) => activation.annotations.find((a) => a.key === key)?.value;

export async function waitFor<T>(fn: () => Promise<T | undefined | null | false>, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
