import { readFileSync } from 'node:fs';
import { hostname, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import type { ClusterSettings } from '../gossip/cluster.ts';

// The daemon's configuration as one schema: every setting once, with its
// default, its description and its check. The config file's keys, the
// environment variables (PEERLESS_ and the name: PEERLESS_MEMORY_BUDGET_MB)
// and the flags (--memory-budget-mb) are all derived from it, as is the
// reference in docs/config.md. Defaults < file < environment < flags, checked
// once here, so the rest of the daemon can trust every value it reads. A
// secret is also accepted from a file (--cluster-key-file,
// PEERLESS_CLUSTER_KEY_FILE, "cluster": {"keyFile": ...}), so it need not be
// on a command line or in the environment.

export interface Limits {
  memoryMb: { min: number; max: number; default: number };
  timeoutMs: { min: number; max: number; default: number };
  concurrency: { min: number; max: number; default: number };
  codeBytes: number;
  payloadBytes: number;
  logBytes: number;
}

export interface DaemonConfig {
  /** the user API; with tls.enabled it speaks HTTPS (cert and key files, or a self-signed pair made in <dataDir>/tls) */
  listen: { host: string; port: number; tls: { enabled: boolean; cert: string; key: string } };
  dataDir: string;
  /** sockets and the directories mounted into containers; empty means <dataDir>/run */
  runDir: string;
  hostId: string;
  dockerSocket: string;
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  pool: {
    memoryBudgetMb: number;
    prewarm: { nodejs: number; python: number };
    pauseGraceMs: number;
    idleTimeoutMs: number;
    /** keep each function's idle containers as long as its own idle times say (hybrid histogram); idleTimeoutMs until known */
    learnKeepAlive: boolean;
  };
  limits: Limits;
  /** per namespace; 0 means no limit */
  quota: { invocationsPerMinute: number; concurrentActivations: number };
  /** peer-to-peer cluster; off while key is empty */
  cluster: ClusterSettings;
}

export class ConfigError extends Error {
  readonly key: string;
  constructor(key: string, message: string) {
    super(`config ${key}: ${message}`);
    this.name = 'ConfigError';
    this.key = key;
  }
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type Tree = { [k: string]: Json };

/** One setting's check: a value from the file (JSON) or from text (environment, flag) to the typed value. */
interface Check {
  /** what a value looks like, for the reference */
  kind: string;
  read(v: Json, key: string): Json;
}

const int = (min: number, max: number): Check => ({
  kind: `integer, ${min}–${max}`,
  read(v, key) {
    const n = typeof v === 'string' && v.trim() !== '' ? Number(v) : v;
    if (typeof n !== 'number' || !Number.isInteger(n)) throw new ConfigError(key, `must be an integer, got ${JSON.stringify(v)}`);
    if (n < min || n > max) throw new ConfigError(key, `must be between ${min} and ${max}, got ${n}`);
    return n;
  },
});

const bool: Check = {
  kind: 'true or false',
  read(v, key) {
    if (v === true || v === 'true' || v === '1') return true;
    if (v === false || v === 'false' || v === '0') return false;
    throw new ConfigError(key, `must be true or false, got ${JSON.stringify(v)}`);
  },
};

const str = (pattern?: RegExp, what?: string): Check => ({
  kind: what ?? 'text',
  read(v, key) {
    if (typeof v !== 'string' || v === '') throw new ConfigError(key, 'must be a non-empty string');
    if (pattern && !pattern.test(v)) throw new ConfigError(key, `must match ${pattern}, got ${JSON.stringify(v)}`);
    return v;
  },
});

/** a file path, or empty for none */
const path: Check = {
  kind: 'a path, or empty',
  read(v, key) {
    if (typeof v !== 'string') throw new ConfigError(key, 'must be a file path');
    return v;
  },
};

const oneOf = (xs: readonly string[]): Check => ({
  kind: xs.join(' | '),
  read(v, key) {
    if (typeof v !== 'string' || !xs.includes(v)) throw new ConfigError(key, `must be one of ${xs.join(', ')}`);
    return v;
  },
});

/** A list: a JSON array in the file, comma-separated in the environment and on the command line. */
const list = (pattern: RegExp, what: string): Check => ({
  kind: `list of ${what}`,
  read(v, key) {
    const xs =
      typeof v === 'string'
        ? v
            .split(',')
            .map((x) => x.trim())
            .filter(Boolean)
        : v;
    if (!Array.isArray(xs) || xs.some((x) => typeof x !== 'string')) throw new ConfigError(key, 'must be a list of strings');
    const bad = (xs as string[]).find((x) => !pattern.test(x));
    if (bad !== undefined) throw new ConfigError(key, `${JSON.stringify(bad)} does not have the expected form (${pattern.source})`);
    return xs;
  },
});

const clusterKey: Check = {
  kind: '64 hex characters, or empty',
  read(v, key) {
    if (v === '') return '';
    if (typeof v !== 'string' || !/^[0-9a-fA-F]{64}$/.test(v.trim())) throw new ConfigError(key, 'must be 64 hex characters (e.g. openssl rand -hex 32)');
    return v.trim();
  },
};

const MULTIADDR = /^\/(ip4|ip6|dns4|dns6|dns)\/[^/]+\/tcp\/\d+(\/p2p\/\w+)?$/;

export interface Setting {
  /** where it sits in the config file and in DaemonConfig */
  path: string;
  /** the flag (--name) and, as PEERLESS_NAME, the environment variable */
  name: string;
  help: string;
  default: Json;
  check: Check;
  /** hidden in --print-config; also read from a file named by <name>-file, or <path>File in the config file */
  secret?: true;
  /** the default in words, where it depends on the machine */
  shown?: string;
}

const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** Every setting, once. */
export const SETTINGS: Setting[] = [
  { path: 'listen.host', name: 'host', help: 'address the user API listens on', default: '127.0.0.1', check: str() },
  { path: 'listen.port', name: 'port', help: 'port of the user API (0: any free port)', default: 3233, check: int(0, 65535) },
  { path: 'listen.tls.enabled', name: 'tls', help: 'serve the API over HTTPS (a self-signed pair is made in <dataDir>/tls unless cert and key are given)', default: false, check: bool },
  { path: 'listen.tls.cert', name: 'tls-cert', help: 'PEM certificate file for HTTPS (turns TLS on)', default: '', check: path },
  { path: 'listen.tls.key', name: 'tls-key', help: 'PEM key file of that certificate', default: '', check: path },
  { path: 'dataDir', name: 'data-dir', help: 'state: the store, code blobs, the admin key, the cluster identity', default: '/var/lib/peerless', check: str() },
  { path: 'runDir', name: 'run-dir', help: 'sockets and directories mounted into containers; empty: <dataDir>/run', default: '', check: path },
  {
    path: 'hostId',
    name: 'host-id',
    help: "this host's name in activations, logs and the cluster",
    default:
      hostname()
        .replace(/[^A-Za-z0-9_.-]/g, '-')
        .slice(0, 63) || 'host',
    shown: 'the host name',
    check: str(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/, 'a host name'),
  },
  { path: 'dockerSocket', name: 'docker-socket', help: "the Docker engine's socket", default: '/var/run/docker.sock', check: str() },
  { path: 'logLevel', name: 'log-level', help: 'pino log level', default: 'info', check: oneOf(LEVELS) },
  // Container memory limits are ceilings, not reservations: by default the pool may promise 80% of the host's memory.
  {
    path: 'pool.memoryBudgetMb',
    name: 'memory-budget-mb',
    help: 'memory the pool may promise to containers, in MB',
    default: Math.max(1024, Math.floor((totalmem() / 1024 / 1024) * 0.8)),
    shown: '80% of the memory, at least 1024',
    check: int(128, 1 << 20),
  },
  { path: 'pool.prewarm.nodejs', name: 'prewarm-nodejs', help: 'Node.js containers kept started and waiting', default: 1, check: int(0, 64) },
  { path: 'pool.prewarm.python', name: 'prewarm-python', help: 'Python containers kept started and waiting', default: 0, check: int(0, 64) },
  { path: 'pool.pauseGraceMs', name: 'pause-grace-ms', help: 'an idle container is paused after this long', default: 500, check: int(0, 3_600_000) },
  {
    path: 'pool.idleTimeoutMs',
    name: 'idle-timeout-ms',
    help: "an idle container is removed after this long (until its function's own idle times are known)",
    default: 600_000,
    check: int(1000, 86_400_000),
  },
  { path: 'pool.learnKeepAlive', name: 'learn-keep-alive', help: "keep each function's idle containers as long as its own idle times say", default: true, check: bool },
  { path: 'limits.memoryMb.min', name: 'min-memory-mb', help: 'smallest memory limit a function may ask for, in MB', default: 128, check: int(32, 1 << 20) },
  { path: 'limits.memoryMb.max', name: 'max-memory-mb', help: 'largest memory limit a function may ask for, in MB', default: 2048, check: int(32, 1 << 20) },
  { path: 'limits.memoryMb.default', name: 'default-memory-mb', help: 'memory limit of a function that gives none, in MB', default: 256, check: int(32, 1 << 20) },
  { path: 'limits.timeoutMs.min', name: 'min-timeout-ms', help: 'shortest time limit a function may ask for', default: 100, check: int(1, 86_400_000) },
  { path: 'limits.timeoutMs.max', name: 'max-timeout-ms', help: 'longest time limit a function may ask for', default: 300_000, check: int(1, 86_400_000) },
  { path: 'limits.timeoutMs.default', name: 'default-timeout-ms', help: 'time limit of a function that gives none', default: 60_000, check: int(1, 86_400_000) },
  // OpenWhisk's own ceiling for limits.concurrency is 500.
  { path: 'limits.concurrency.min', name: 'min-concurrency', help: 'fewest activations a function may ask to share a container', default: 1, check: int(1, 10_000) },
  { path: 'limits.concurrency.max', name: 'max-concurrency', help: 'most activations a function may ask to share a container', default: 500, check: int(1, 10_000) },
  { path: 'limits.concurrency.default', name: 'default-concurrency', help: 'activations sharing a container for a function that gives none', default: 1, check: int(1, 10_000) },
  { path: 'limits.codeBytes', name: 'max-code-bytes', help: 'largest function code, in bytes', default: 48 * 1024 * 1024, check: int(1024, 1 << 30) },
  { path: 'limits.payloadBytes', name: 'max-payload-bytes', help: 'largest parameters or result of an activation, in bytes', default: 1024 * 1024, check: int(1024, 1 << 30) },
  { path: 'limits.logBytes', name: 'max-log-bytes', help: 'log kept per activation, in bytes', default: 10 * 1024 * 1024, check: int(0, 1 << 30) },
  { path: 'quota.invocationsPerMinute', name: 'invocations-per-minute', help: 'invocations a namespace may start a minute (0: no limit)', default: 0, check: int(0, 10_000_000) },
  { path: 'quota.concurrentActivations', name: 'concurrent-activations', help: 'activations a namespace may run at once (0: no limit)', default: 0, check: int(0, 1_000_000) },
  { path: 'cluster.key', name: 'cluster-key', help: "the cluster's pre-shared key (openssl rand -hex 32), the same on every daemon; empty: no cluster", default: '', check: clusterKey, secret: true },
  // 7946 is Docker swarm's own gossip port, hence 7948.
  { path: 'cluster.listen', name: 'cluster-listen', help: 'multiaddrs the cluster node listens on', default: ['/ip4/0.0.0.0/tcp/7948'], check: list(MULTIADDR, 'multiaddrs') },
  { path: 'cluster.peers', name: 'cluster-peers', help: 'multiaddrs of other daemons to keep connected to', default: [], check: list(MULTIADDR, 'multiaddrs') },
  { path: 'cluster.hyperswarm', name: 'cluster-hyperswarm', help: 'find peers through a hyperswarm topic derived from the key', default: false, check: bool },
  { path: 'cluster.bootstrap', name: 'cluster-bootstrap', help: 'hyperswarm DHT bootstrap nodes; empty: its public ones', default: [], check: list(/^[A-Za-z0-9.-]+:\d{1,5}$/, 'host:port') },
  { path: 'cluster.heartbeatMs', name: 'heartbeat-ms', help: "a beat round: the daemon's counter advances and its table goes to two peers", default: 250, check: int(20, 60_000) },
  { path: 'cluster.failureTimeoutMs', name: 'failure-timeout-ms', help: 'a member silent this long is dropped', default: 1500, check: int(100, 600_000) },
  { path: 'cluster.batchMs', name: 'batch-ms', help: 'address-map changes are shipped this long after the first of a batch', default: 5, check: int(1, 1000) },
];

export const envName = (s: Setting) => `PEERLESS_${s.name.toUpperCase().replace(/-/g, '_')}`;

function setPath(tree: Tree, key: string, value: Json): void {
  const parts = key.split('.');
  let node: Tree = tree;
  for (const p of parts.slice(0, -1)) {
    const next = node[p];
    if (next === undefined || next === null || typeof next !== 'object' || Array.isArray(next)) node[p] = {};
    node = node[p] as Tree;
  }
  node[parts[parts.length - 1]!] = value;
}

/** The value at a dotted key ("pool.prewarm.nodejs"), if the path exists. */
function at(tree: Tree, key: string): Json | undefined {
  return key.split('.').reduce<Json | undefined>((n, p) => (n && typeof n === 'object' && !Array.isArray(n) ? n[p] : undefined), tree);
}

function defaultsTree(): Tree {
  const t: Tree = {};
  for (const s of SETTINGS) setPath(t, s.path, structuredClone(s.default));
  return t;
}

export const DEFAULTS = build(defaultsTree());

/** The keys a config file may hold: every setting's path, and <path>File for a secret. */
function fileKeys(given: Tree, prefix: string, out: [string, Json][]): void {
  for (const [k, v] of Object.entries(given)) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (v !== null && typeof v === 'object' && !Array.isArray(v)) fileKeys(v, key, out);
    else out.push([key, v]);
  }
}

function readSecret(file: Json, key: string): string {
  if (typeof file !== 'string' || file === '') throw new ConfigError(key, 'must be a file path');
  try {
    return readFileSync(file, 'utf8').trim();
  } catch (e) {
    throw new ConfigError(key, `cannot read ${file}: ${(e as Error).message}`);
  }
}

export interface ConfigSources {
  file?: string | undefined;
  env?: NodeJS.ProcessEnv;
  /** by setting name, or <name>-file for a secret */
  flags?: Record<string, string>;
}

export function loadConfig(src: ConfigSources = {}): DaemonConfig {
  const tree = defaultsTree();
  const byPath = new Map(SETTINGS.map((s) => [s.path, s]));
  const byName = new Map(SETTINGS.map((s) => [s.name, s]));
  const file = src.file ?? src.env?.PEERLESS_CONFIG;
  if (file) {
    let parsed: Json;
    try {
      parsed = JSON.parse(readFileSync(file, 'utf8')) as Json;
    } catch (e) {
      throw new ConfigError('file', `cannot read ${file}: ${(e as Error).message}`);
    }
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new ConfigError('file', `${file} must hold a JSON object`);
    const given: [string, Json][] = [];
    fileKeys(parsed, '', given);
    for (const [key, v] of given) {
      const s = byPath.get(key) ?? byPath.get(key.replace(/File$/, ''));
      if (!s || (key.endsWith('File') && !s.secret && !byPath.has(key))) {
        // A path that is a prefix of settings must be an object, not a value.
        const prefix = [...byPath.keys()].some((p) => p.startsWith(`${key}.`));
        throw new ConfigError(key, prefix ? 'must be an object' : 'unknown key');
      }
      setPath(tree, s.path, byPath.has(key) ? v : readSecret(v, key));
    }
  }
  for (const s of SETTINGS) {
    const v = src.env?.[envName(s)];
    if (v !== undefined && v !== '') setPath(tree, s.path, v);
    const f = s.secret ? src.env?.[`${envName(s)}_FILE`] : undefined;
    if (f) setPath(tree, s.path, readSecret(f, `${envName(s)}_FILE`));
  }
  for (const [flag, v] of Object.entries(src.flags ?? {})) {
    const s = byName.get(flag) ?? byName.get(flag.replace(/-file$/, ''));
    if (!s || (flag.endsWith('-file') && !s.secret)) throw new ConfigError(flag, 'unknown flag');
    setPath(tree, s.path, byName.has(flag) ? v : readSecret(v, `--${flag}`));
  }
  return build(tree);
}

/** Checks every setting, then what no one setting can check alone. */
function build(tree: Tree): DaemonConfig {
  const out: Tree = {};
  for (const s of SETTINGS) setPath(out, s.path, s.check.read(at(tree, s.path) ?? null, s.path));
  const c = out as unknown as DaemonConfig;
  for (const k of ['memoryMb', 'timeoutMs', 'concurrency'] as const) {
    const l = c.limits[k];
    if (l.min > l.max) throw new ConfigError(`limits.${k}.min`, `must not be above limits.${k}.max (${l.max})`);
    if (l.default < l.min || l.default > l.max) throw new ConfigError(`limits.${k}.default`, `must be between limits.${k}.min and .max (${l.min}–${l.max})`);
  }
  if (c.pool.memoryBudgetMb < c.limits.memoryMb.min) throw new ConfigError('pool.memoryBudgetMb', `must be at least limits.memoryMb.min (${c.limits.memoryMb.min})`);
  const tls = c.listen.tls;
  if ((tls.cert === '') !== (tls.key === '')) throw new ConfigError(tls.cert === '' ? 'listen.tls.cert' : 'listen.tls.key', 'give the certificate and its key together');
  // Files given mean TLS is wanted.
  c.listen.tls = { ...tls, enabled: tls.enabled || tls.cert !== '', ...(tls.cert === '' ? {} : { cert: resolve(tls.cert), key: resolve(tls.key) }) };
  c.runDir = resolve(c.runDir === '' ? join(c.dataDir, 'run') : c.runDir);
  c.dataDir = resolve(c.dataDir);
  return c;
}

/** The effective configuration with secrets hidden, for --print-config. */
export function printable(c: DaemonConfig): DaemonConfig {
  const out = structuredClone(c) as unknown as Tree;
  for (const s of SETTINGS) if (s.secret && at(out, s.path)) setPath(out, s.path, '***');
  return out as unknown as DaemonConfig;
}

/** The reference of every setting, as docs/config.md holds it. */
export function reference(): string {
  const row = (s: Setting) =>
    `| \`${s.path}\`${s.secret ? ` (or \`${s.path}File\`)` : ''} | \`--${s.name}\`${s.secret ? `, \`--${s.name}-file\`` : ''} | \`${envName(s)}\`${s.secret ? `, \`${envName(s)}_FILE\`` : ''} | ${s.check.kind} | ${s.shown ?? `\`${JSON.stringify(s.default)}\``} | ${s.help} |`;
  return [
    "# The daemon's settings",
    '',
    'Generated from `daemon/config.ts` (`peerless daemon --help`); a unit test keeps this file in step.',
    'Each setting is a key of the config file (`--config FILE` or `PEERLESS_CONFIG`), an environment variable and a flag;',
    'flags win over the environment, which wins over the file. A list is a JSON array in the file and',
    'comma-separated elsewhere. A secret is also read from a file, so it need not be on a command line.',
    '',
    '| key | flag | environment | value | default | what |',
    '|---|---|---|---|---|---|',
    ...SETTINGS.map(row),
    '',
  ].join('\n');
}
