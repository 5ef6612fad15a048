import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import Docker from 'dockerode';

// Several real hosts on one machine: each host is a network namespace with
// its own Docker engine (and, in the tests, its own peerless daemon). A bridge
// in the root namespace joins them; the engines form one Docker swarm so each
// peerless namespace gets an overlay network spanning the hosts.
// Recipe and traps: ../shared/ENVIRONMENT.md ("Several real hosts").

export const BRIDGE = 'plbr0';
const BASE = '/var/lib/peerless-hosts';
export const hostIp = (i: number) => `10.123.0.${10 + i}`;
/** where host i's daemon listens for the cluster */
export const clusterAddr = (i: number) => `/ip4/${hostIp(i)}/tcp/7948`;
export const hostNs = (i: number) => `pl-h${i}`;
export const runDir = (i: number) => `/var/run/pl-h${i}`;
export const socketOf = (i: number) => `${runDir(i)}/docker.sock`;

const sh = (cmd: string, args: string[], ok = false) => {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
  } catch (e) {
    if (ok) return '';
    throw new Error(`${cmd} ${args.join(' ')}: ${(e as { stderr?: string }).stderr ?? e}`);
  }
};
const inNs = (i: number, args: string[]) => sh('ip', ['netns', 'exec', hostNs(i), ...args]);
const engine = (i: number) => new Docker({ socketPath: socketOf(i) });

async function engineUp(i: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (
      await engine(i)
        .ping()
        .then(
          () => true,
          () => false,
        )
    )
      return true;
    await new Promise((r) => setTimeout(r, 250));
  }
  return false;
}

/** Stops the engines of these hosts together (SIGTERM, as systemd would; SIGKILL after 30 s) and clears what they leave. */
async function stopEngines(hosts: number[]): Promise<void> {
  const pids = hosts.map((i) => {
    const pidFile = `${runDir(i)}/pid`;
    const pid = existsSync(pidFile) ? Number(readFileSync(pidFile, 'utf8')) : 0;
    if (pid > 0 && alive(pid)) process.kill(pid, 'SIGTERM');
    return pid;
  });
  // Each stops its containers first, in parallel, each with a 10 s grace.
  const deadline = Date.now() + 30_000;
  while (pids.some((p) => p > 0 && alive(p)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  for (const p of pids) if (p > 0 && alive(p)) process.kill(p, 'SIGKILL');
  for (const i of hosts) clearEngine(i);
}

/**
 * An engine killed hard leaves its containerd shims (and their containers and mounts) behind: they would
 * keep its state directory busy. They are this engine's, found by its own containerd address.
 */
function clearEngine(i: number): void {
  const mine = `${runDir(i)}/exec/containerd`;
  for (const p of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    let cmd = '';
    try {
      cmd = readFileSync(`/proc/${p}/cmdline`, 'utf8');
    } catch {
      continue;
    }
    if (cmd.startsWith('/usr/bin/containerd-shim') && cmd.includes(mine)) {
      try {
        process.kill(Number(p), 'SIGKILL');
      } catch {
        /* gone */
      }
    }
  }
  const mounts = readFileSync('/proc/mounts', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[1] ?? '')
    .filter((m) => m.startsWith(`${BASE}/h${i}/`));
  for (const m of mounts.reverse()) sh('umount', ['-l', m], true);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function startEngine(i: number): void {
  // nsenter, not `ip netns exec`: the latter remounts /sys and the engine then fails on cgroups.
  spawn(
    'nsenter',
    [
      `--net=/var/run/netns/${hostNs(i)}`,
      'dockerd',
      '--data-root',
      `${BASE}/h${i}/data`,
      '--exec-root',
      `${runDir(i)}/exec`,
      '--pidfile',
      `${runDir(i)}/pid`,
      '-H',
      `unix://${socketOf(i)}`,
      '--bip',
      `172.30.${i + 1}.1/24`,
    ],
    {
      detached: true,
      stdio: 'ignore',
    },
  ).unref();
}

/** Stops host i's engine (SIGTERM, as systemd would) and starts it again on the same state. */
export async function restartEngine(i: number): Promise<void> {
  await stopEngines([i]);
  startEngine(i);
  if (!(await engineUp(i, 60_000))) throw new Error(`engine of host ${i} did not come back`);
}

/** Creates (or re-creates) N hosts with fresh engines in one swarm. Idempotent on a reused machine. */
export async function hostsUp(n: number): Promise<void> {
  if (!sh('ip', ['link', 'show', BRIDGE], true)) {
    sh('ip', ['link', 'add', BRIDGE, 'type', 'bridge']);
    sh('ip', ['addr', 'add', '10.123.0.1/24', 'dev', BRIDGE]);
  }
  sh('ip', ['link', 'set', BRIDGE, 'up']);
  // The root engine's FORWARD policy is DROP: let the hosts talk to each other across the bridge.
  if (!hasRule(['DOCKER-USER', '-i', BRIDGE, '-o', BRIDGE, '-j', 'ACCEPT'])) sh('iptables', ['-I', 'DOCKER-USER', '-i', BRIDGE, '-o', BRIDGE, '-j', 'ACCEPT']);
  for (let i = 0; i < n; i++) {
    // A fresh engine in a fresh namespace every run: no swarm, network or bridge device survives from an
    // earlier one (an engine's state wiped under its namespace leaves its bridges there, and enough of
    // them exhaust the engine's default address pools on a reused machine).
    await stopEngines([i]);
    dropNamespace(i);
    sh('ip', ['netns', 'add', hostNs(i)]);
    sh('ip', ['link', 'add', `plv${i}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', hostNs(i)]);
    sh('ip', ['link', 'set', `plv${i}`, 'master', BRIDGE]);
    sh('ip', ['link', 'set', `plv${i}`, 'up']);
    inNs(i, ['ip', 'addr', 'replace', `${hostIp(i)}/24`, 'dev', 'eth0']);
    inNs(i, ['ip', 'link', 'set', 'eth0', 'up']);
    inNs(i, ['ip', 'link', 'set', 'lo', 'up']);
    rmSync(`${BASE}/h${i}`, { recursive: true, force: true });
    mkdirSync(`${BASE}/h${i}`, { recursive: true });
    mkdirSync(runDir(i), { recursive: true });
    startEngine(i);
  }
  for (let i = 0; i < n; i++) if (!(await engineUp(i, 60_000))) throw new Error(`engine of host ${i} did not start (see ${BASE}/h${i})`);
  await engine(0).swarmInit({ ListenAddr: `${hostIp(0)}:2377`, AdvertiseAddr: hostIp(0) });
  const token = ((await engine(0).swarmInspect()) as { JoinTokens: { Manager: string } }).JoinTokens.Manager;
  // All managers: any host may create a namespace's overlay network.
  for (let i = 1; i < n; i++) await engine(i).swarmJoin({ ListenAddr: `${hostIp(i)}:2377`, AdvertiseAddr: hostIp(i), RemoteAddrs: [`${hostIp(0)}:2377`], JoinToken: token });
}

/** Deletes host i's namespace (and with it every device in it) and its end of the bridge. */
function dropNamespace(i: number): void {
  if (
    sh('ip', ['netns', 'list'], true)
      .split('\n')
      .some((l) => l.split(' ')[0] === hostNs(i))
  )
    sh('ip', ['netns', 'del', hostNs(i)]);
  // Normally gone with its peer; still there if something kept the old namespace alive.
  // (It may still vanish between the look and the delete: the kernel tears a namespace down in the background.)
  if (sh('ip', ['link', 'show', `plv${i}`], true)) sh('ip', ['link', 'del', `plv${i}`], true);
}

/** Whether an iptables rule is there, in host i's namespace or (without i) the root one. */
function hasRule(rule: string[], i?: number): boolean {
  const cmd = ['iptables', '-C', ...rule];
  try {
    if (i === undefined) execFileSync(cmd[0]!, cmd.slice(1), { stdio: 'ignore' });
    else execFileSync('ip', ['netns', 'exec', hostNs(i), ...cmd], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Cuts a host off the network (its veth down) or puts it back. */
export function setLink(i: number, up: boolean): void {
  sh('ip', ['link', 'set', `plv${i}`, up ? 'up' : 'down']);
}

/**
 * Splits host i from these other hosts (packets between them dropped in i's namespace) or joins them
 * again; the root namespace, where clients and tests are, still reaches both sides, as users on either
 * side of a real partition would.
 */
export function splitOff(i: number, others: number[], split: boolean): void {
  for (const j of others) {
    for (const rule of [
      ['INPUT', '-s', hostIp(j)],
      ['OUTPUT', '-d', hostIp(j)],
    ]) {
      const has = hasRule([...rule, '-j', 'DROP'], i);
      if (split && !has) inNs(i, ['iptables', '-I', ...rule, '-j', 'DROP']);
      if (!split && has) inNs(i, ['iptables', '-D', ...rule, '-j', 'DROP']);
    }
  }
}

/** Stops the engines (by the PIDs they wrote), removes their state and their namespaces; the bridge stays for reuse. */
export async function hostsDown(n: number): Promise<void> {
  const all = Array.from({ length: n }, (_, i) => i);
  await Promise.all(
    all.map((i) =>
      engine(i)
        .swarmLeave({ force: true })
        .catch(() => undefined),
    ),
  );
  await stopEngines(all);
  for (const i of all) {
    rmSync(`${BASE}/h${i}`, { recursive: true, force: true });
    dropNamespace(i);
  }
}

/** Runs `peerless daemon` inside host i's namespace against host i's engine, API on <host IP>:3233. */
/** `exe`: an executable to run instead of this checkout's cli/peerless.js (the single executable) */
export async function daemonOn(i: number, dataDir: string, flags: string[], exe?: string): Promise<ChildProcess> {
  // Its log is kept beside its data: the first thing to read when a cluster test fails.
  const log = openSync(`${dataDir}/daemon.log`, 'a');
  const cli = new URL('../../cli/peerless.js', import.meta.url).pathname;
  const p = spawn(
    'nsenter',
    [
      `--net=/var/run/netns/${hostNs(i)}`,
      ...(exe ? [exe] : [process.execPath, cli]),
      'daemon',
      '--data-dir',
      dataDir,
      '--host',
      hostIp(i),
      '--port',
      '3233',
      '--docker-socket',
      socketOf(i),
      '--prewarm-nodejs',
      '0',
      ...flags,
    ],
    { stdio: ['ignore', log, log] },
  );
  closeSync(log);
  const deadline = Date.now() + 90_000;
  while (
    !(await fetch(`http://${hostIp(i)}:3233/healthz`).then(
      (r) => r.ok,
      () => false,
    ))
  ) {
    if (p.exitCode !== null) throw new Error(`daemon on host ${i} exited with ${p.exitCode}:\n${logTail(dataDir)}`);
    if (Date.now() > deadline) throw new Error(`daemon on host ${i} did not come up:\n${logTail(dataDir)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  return p;
}

/** The end of a daemon's log, so a failure in CI says why without a second run. */
export function logTail(dataDir: string, lines = 30): string {
  try {
    return readFileSync(`${dataDir}/daemon.log`, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no daemon.log)';
  }
}
