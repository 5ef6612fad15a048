import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { imageTag } from '../../sandbox/images.ts';
import { binaryImageFiles, buildBinaryImage, singleExecutable } from '../helpers/binary.ts';
import { api, cleanupHost, deploy, docker, invoke, keyFile, ROOT, startDaemon, waitFor, type Api } from '../helpers/daemon.ts';

// The single executable where nothing else of the project is: a container
// whose image holds only the binary and the system libraries it links (no
// Node.js, no checkout, no node_modules), with the host's Docker socket, runs
// `peerless daemon`; the daemon imports its embedded runtime images into the
// engine and runs fib in Node.js and Python, and finds a peer through
// hyperswarm with the native addons it carries.

const HOST = `it-bin-${process.pid}`;
const TAG = `peerless-test/binary:${process.pid}`;
const PORT = 20000 + Math.floor(Math.random() * 12000);
let dir: string;
let binary: string;
let c: Docker.Container | undefined;
let admin: Api;
let testnet: { bootstrap: { host: string; port: number }[]; destroy(): Promise<void> };
const KEY = randomBytes(32).toString('hex');
const clusterFlags = (listenPort: number) => [
  '--cluster-listen',
  `/ip4/127.0.0.1/tcp/${listenPort}`,
  '--cluster-hyperswarm',
  'true',
  '--cluster-bootstrap',
  testnet.bootstrap.map((b) => `${b.host}:${b.port}`).join(','),
  '--heartbeat-ms',
  '200',
];

beforeAll(async () => {
  binary = singleExecutable();
  await buildBinaryImage(binary, TAG);
  // The daemon's data and run directories are bind-mounted at the same path, since it mounts
  // directories under its run directory into the function containers it starts on the host's engine.
  dir = mkdtempSync(join(tmpdir(), 'pl-bin-'));
  writeFileSync(join(dir, 'cluster.key'), KEY, { mode: 0o600 });
  // Discovery through hyperswarm, whose native addons the executable carries: a DHT on loopback to find peers in.
  const { default: createTestnet } = await import('hyperdht/testnet.js');
  testnet = await createTestnet(3, { host: '127.0.0.1' });
  c = await docker.createContainer({
    Image: TAG,
    User: '0',
    Cmd: [
      '/usr/local/bin/peerless',
      'daemon',
      '--data-dir',
      join(dir, 'data'),
      '--port',
      String(PORT),
      '--host-id',
      HOST,
      '--prewarm-nodejs',
      '0',
      '--cluster-key-file',
      join(dir, 'cluster.key'),
      ...clusterFlags(PORT + 1),
    ],
    HostConfig: { NetworkMode: 'host', Binds: ['/var/run/docker.sock:/var/run/docker.sock', `${dir}:${dir}`] },
  });
  await c.start();
  await waitFor(
    async () => {
      if (!(await c!.inspect()).State.Running) throw new Error(`the daemon's container stopped:\n${await logs()}`);
      return fetch(`http://127.0.0.1:${PORT}/healthz`).then(
        (r) => r.ok,
        () => false,
      );
    },
    90_000,
    'the daemon in the container',
  );
  admin = api(`http://127.0.0.1:${PORT}`, readFileSync(join(dir, 'data', 'admin.key'), 'utf8').trim());
}, 300_000);

async function logs(): Promise<string> {
  return ((await c!.logs({ stdout: true, stderr: true })) as Buffer).toString('utf8');
}

afterAll(async () => {
  if (c) {
    await c.stop({ t: 40 }).catch(() => undefined);
    await c.remove({ force: true }).catch(() => undefined);
  }
  await cleanupHost(HOST);
  await docker
    .getImage(TAG)
    .remove({ force: true })
    .catch(() => undefined);
  if (dir) rmSync(dir, { recursive: true, force: true });
  await testnet?.destroy();
});

describe('the single executable', () => {
  it("is alone in its image with the system libraries it links: no node, no checkout's files", () => {
    const files = binaryImageFiles(binary);
    expect(files).toContain('/usr/local/bin/peerless');
    const others = files.filter((f) => f !== '/usr/local/bin/peerless');
    expect(others.length).toBeGreaterThan(0);
    for (const f of others) expect(f).toMatch(/^\/(usr\/)?lib(64)?\/.*\.so(\.[0-9]+)*$/);
    expect(files.some((f) => /node_modules|\.ts$|\.js$|\/node$/.test(f))).toBe(false);
  });

  it('runs as a daemon there and runs fib in Node.js and Python', async () => {
    const r = await admin('PUT', `/api/v1/namespaces/${HOST}-fib`);
    expect(r.status).toBe(201);
    const call = api(`http://127.0.0.1:${PORT}`, r.body.auth as string);
    const ns = `${HOST}-fib`;
    for (const [name, file, kind] of [
      ['fibjs', 'fib.js', 'nodejs:default'],
      ['fibpy', 'fib.py', 'python:default'],
    ] as const) {
      const code = readFileSync(join(ROOT, 'examples', 'fib', file), 'utf8');
      expect((await deploy(call, ns, name, { kind, code })).status).toBe(201);
      const a = await invoke(call, ns, name, { n: 20 }, 'blocking=true&result=true');
      expect(a.status, JSON.stringify(a.body)).toBe(200);
      expect(a.body).toMatchObject({ fib: 6765 });
    }
    // The runtime images came out of the executable: their tags name the embedded root filesystems,
    // not what `peerless images build` makes from this checkout.
    const ready = /"nodejs":"([^"]+)","python":"([^"]+)"/.exec(await logs());
    expect(ready).not.toBeNull();
    expect(ready![1]).not.toBe(imageTag('nodejs'));
    expect(ready![2]).not.toBe(imageTag('python'));
  }, 120_000);

  it("loads hyperswarm's native addons from inside itself and finds a peer through the DHT", async () => {
    const peer = await startDaemon({ hostId: `${HOST}-peer`, flags: ['--cluster-key-file', keyFile(KEY), ...clusterFlags(PORT + 2)] });
    try {
      await waitFor(
        async () => ((await admin('GET', '/api/v1/cluster/peers')).body.peers as { host: string }[]).some((p) => p.host === peer.hostId),
        60_000,
        'the daemon in the container finding its peer',
      );
      // Extracted once into its run directory, named by content hash.
      expect(readdirSync(join(dir, 'data', 'run', 'addons')).sort()).toEqual([expect.stringMatching(/^sodium-native-[0-9a-f]{16}\.node$/), expect.stringMatching(/^udx-native-[0-9a-f]{16}\.node$/)]);
    } finally {
      await peer.stop();
      await cleanupHost(peer.hostId, peer.dataDir);
    }
  }, 90_000);

  it("reports the version the build stamped into it (the package's and the commit's)", async () => {
    const s = await admin('GET', '/api/v1/status');
    expect(s.body.version).toMatch(/^\d+\.\d+\.\d+\+[0-9a-f]{12}/);
  });
});
