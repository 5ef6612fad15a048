import { readFileSync } from 'node:fs';
import { hostname, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import type { ClusterSettings } from '../gossip/cluster.ts';

// The daemon's configuration: defaults < file < environment < flags, validated
// once here so the rest of the daemon can trust every value it reads.

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

export const DEFAULTS: DaemonConfig = {
  listen: { host: '127.0.0.1', port: 3233, tls: { enabled: false, cert: '', key: '' } },
  dataDir: '/var/lib/peerless',
  runDir: '',
  hostId: hostname(),
  dockerSocket: '/var/run/docker.sock',
  logLevel: 'info',
  // Container memory limits are ceilings, not reservations: by default the pool may promise 80% of the host's memory.
  pool: { memoryBudgetMb: Math.max(1024, Math.floor((totalmem() / 1024 / 1024) * 0.8)), prewarm: { nodejs: 1, python: 0 }, pauseGraceMs: 500, idleTimeoutMs: 600_000, learnKeepAlive: true },
  limits: {
    memoryMb: { min: 128, max: 2048, default: 256 },
    timeoutMs: { min: 100, max: 300_000, default: 60_000 },
    // OpenWhisk's own ceiling for limits.concurrency is 500.
    concurrency: { min: 1, max: 500, default: 1 },
    codeBytes: 48 * 1024 * 1024,
    payloadBytes: 1024 * 1024,
    logBytes: 10 * 1024 * 1024,
  },
  quota: { invocationsPerMinute: 0, concurrentActivations: 0 },
  // 7946 is Docker swarm's own gossip port, hence 7948.
  cluster: { key: '', listen: ['/ip4/0.0.0.0/tcp/7948'], peers: [], hyperswarm: false, bootstrap: [], heartbeatMs: 250, failureTimeoutMs: 1500, batchMs: 5 },
};

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

/** Environment variables, PEERLESS_MEMORY_BUDGET_MB=… → pool.memoryBudgetMb. */
const ENV_KEYS: Record<string, string> = {
  PEERLESS_HOST: 'listen.host',
  PEERLESS_PORT: 'listen.port',
  PEERLESS_DATA_DIR: 'dataDir',
  PEERLESS_RUN_DIR: 'runDir',
  PEERLESS_HOST_ID: 'hostId',
  PEERLESS_DOCKER_SOCKET: 'dockerSocket',
  PEERLESS_LOG_LEVEL: 'logLevel',
  PEERLESS_MEMORY_BUDGET_MB: 'pool.memoryBudgetMb',
  PEERLESS_PREWARM_NODEJS: 'pool.prewarm.nodejs',
  PEERLESS_PREWARM_PYTHON: 'pool.prewarm.python',
  PEERLESS_PAUSE_GRACE_MS: 'pool.pauseGraceMs',
  PEERLESS_IDLE_TIMEOUT_MS: 'pool.idleTimeoutMs',
  PEERLESS_LEARN_KEEP_ALIVE: 'pool.learnKeepAlive',
  PEERLESS_INVOCATIONS_PER_MINUTE: 'quota.invocationsPerMinute',
  PEERLESS_CONCURRENT_ACTIVATIONS: 'quota.concurrentActivations',
  PEERLESS_CLUSTER_KEY: 'cluster.key',
  PEERLESS_CLUSTER_LISTEN: 'cluster.listen',
  PEERLESS_CLUSTER_PEERS: 'cluster.peers',
  PEERLESS_CLUSTER_HYPERSWARM: 'cluster.hyperswarm',
  PEERLESS_CLUSTER_BOOTSTRAP: 'cluster.bootstrap',
  PEERLESS_HEARTBEAT_MS: 'cluster.heartbeatMs',
  PEERLESS_FAILURE_TIMEOUT_MS: 'cluster.failureTimeoutMs',
  PEERLESS_MAX_CONCURRENCY: 'limits.concurrency.max',
  PEERLESS_TLS: 'listen.tls.enabled',
  PEERLESS_TLS_CERT: 'listen.tls.cert',
  PEERLESS_TLS_KEY: 'listen.tls.key',
};

/** Flags, --port 3233 → listen.port. */
const FLAG_KEYS: Record<string, string> = {
  host: 'listen.host',
  port: 'listen.port',
  'data-dir': 'dataDir',
  'run-dir': 'runDir',
  'host-id': 'hostId',
  'docker-socket': 'dockerSocket',
  'log-level': 'logLevel',
  'memory-budget-mb': 'pool.memoryBudgetMb',
  'prewarm-nodejs': 'pool.prewarm.nodejs',
  'prewarm-python': 'pool.prewarm.python',
  'pause-grace-ms': 'pool.pauseGraceMs',
  'idle-timeout-ms': 'pool.idleTimeoutMs',
  'learn-keep-alive': 'pool.learnKeepAlive',
  'invocations-per-minute': 'quota.invocationsPerMinute',
  'concurrent-activations': 'quota.concurrentActivations',
  'cluster-key': 'cluster.key',
  'cluster-listen': 'cluster.listen',
  'cluster-peers': 'cluster.peers',
  'cluster-hyperswarm': 'cluster.hyperswarm',
  'cluster-bootstrap': 'cluster.bootstrap',
  'heartbeat-ms': 'cluster.heartbeatMs',
  'failure-timeout-ms': 'cluster.failureTimeoutMs',
  'max-concurrency': 'limits.concurrency.max',
  tls: 'listen.tls.enabled',
  'tls-cert': 'listen.tls.cert',
  'tls-key': 'listen.tls.key',
};

export const FLAG_NAMES = Object.keys(FLAG_KEYS);

function setPath(tree: Tree, path: string, value: Json): void {
  const parts = path.split('.');
  let node: Tree = tree;
  for (const p of parts.slice(0, -1)) {
    const next = node[p];
    if (next === undefined || next === null || typeof next !== 'object' || Array.isArray(next)) node[p] = {};
    node = node[p] as Tree;
  }
  node[parts[parts.length - 1]!] = value;
}

function merge(base: Tree, over: Tree): Tree {
  const out: Tree = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const b = out[k];
    out[k] =
      v !== null && typeof v === 'object' && !Array.isArray(v) && b !== null && typeof b === 'object' && !Array.isArray(b)
        ? merge(b as Tree, v as Tree)
        : v;
  }
  return out;
}

function walkUnknown(defaults: Tree, given: Tree, prefix: string): void {
  for (const [k, v] of Object.entries(given)) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (!(k in defaults)) throw new ConfigError(key, 'unknown key');
    const d = defaults[k];
    if (d !== null && typeof d === 'object' && !Array.isArray(d)) {
      if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new ConfigError(key, 'must be an object');
      walkUnknown(d as Tree, v as Tree, key);
    }
  }
}

/** The value at a dotted key ("pool.prewarm.nodejs"), if the path exists. */
function at(tree: Tree, key: string): Json | undefined {
  return key.split('.').reduce<Json | undefined>((n, p) => (n && typeof n === 'object' && !Array.isArray(n) ? n[p] : undefined), tree);
}

function int(tree: Tree, key: string, min: number, max: number): number {
  const v = at(tree, key);
  const n = typeof v === 'string' && v.trim() !== '' ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n)) throw new ConfigError(key, `must be an integer, got ${JSON.stringify(v)}`);
  if (n < min || n > max) throw new ConfigError(key, `must be between ${min} and ${max}, got ${n}`);
  return n;
}

function bool(tree: Tree, key: string): boolean {
  const v = at(tree, key);
  if (v === true || v === 'true' || v === '1') return true;
  if (v === false || v === 'false' || v === '0') return false;
  throw new ConfigError(key, `must be true or false, got ${JSON.stringify(v)}`);
}

/** A list: a JSON array in the file, comma-separated in the environment and on the command line. */
function list(tree: Tree, key: string, pattern: RegExp): string[] {
  const v = at(tree, key);
  const xs = typeof v === 'string' ? v.split(',').map((x) => x.trim()).filter(Boolean) : v;
  if (!Array.isArray(xs) || xs.some((x) => typeof x !== 'string')) throw new ConfigError(key, 'must be a list of strings');
  const bad = (xs as string[]).find((x) => !pattern.test(x));
  if (bad !== undefined) throw new ConfigError(key, `${JSON.stringify(bad)} does not have the expected form (${pattern.source})`);
  return xs as string[];
}

function str(tree: Tree, key: string, pattern?: RegExp): string {
  const v = at(tree, key);
  if (typeof v !== 'string' || v === '') throw new ConfigError(key, 'must be a non-empty string');
  if (pattern && !pattern.test(v)) throw new ConfigError(key, `must match ${pattern}, got ${JSON.stringify(v)}`);
  return v;
}

export interface ConfigSources {
  file?: string | undefined;
  env?: NodeJS.ProcessEnv;
  flags?: Record<string, string>;
}

export function loadConfig(src: ConfigSources = {}): DaemonConfig {
  let tree = structuredClone(DEFAULTS) as unknown as Tree;
  const file = src.file ?? src.env?.PEERLESS_CONFIG;
  if (file) {
    let parsed: Json;
    try {
      parsed = JSON.parse(readFileSync(file, 'utf8')) as Json;
    } catch (e) {
      throw new ConfigError('file', `cannot read ${file}: ${(e as Error).message}`);
    }
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new ConfigError('file', `${file} must hold a JSON object`);
    walkUnknown(tree, parsed, '');
    tree = merge(tree, parsed);
  }
  for (const [env, key] of Object.entries(ENV_KEYS)) {
    const v = src.env?.[env];
    if (v !== undefined && v !== '') setPath(tree, key, v);
  }
  for (const [flag, v] of Object.entries(src.flags ?? {})) {
    const key = FLAG_KEYS[flag];
    if (!key) throw new ConfigError(flag, 'unknown flag');
    setPath(tree, key, v);
  }
  const lim = DEFAULTS.limits;
  const levels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
  const logLevel = str(tree, 'logLevel');
  if (!(levels as readonly string[]).includes(logLevel)) throw new ConfigError('logLevel', `must be one of ${levels.join(', ')}`);
  return {
    listen: { host: str(tree, 'listen.host'), port: int(tree, 'listen.port', 0, 65535), tls: tlsOf(tree) },
    dataDir: resolve(str(tree, 'dataDir')),
    runDir: resolve(tree.runDir === '' ? join(str(tree, 'dataDir'), 'run') : str(tree, 'runDir')),
    hostId: str(tree, 'hostId', /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/),
    dockerSocket: str(tree, 'dockerSocket'),
    logLevel: logLevel as DaemonConfig['logLevel'],
    pool: {
      memoryBudgetMb: int(tree, 'pool.memoryBudgetMb', lim.memoryMb.min, 1 << 20),
      prewarm: { nodejs: int(tree, 'pool.prewarm.nodejs', 0, 64), python: int(tree, 'pool.prewarm.python', 0, 64) },
      pauseGraceMs: int(tree, 'pool.pauseGraceMs', 0, 3_600_000),
      idleTimeoutMs: int(tree, 'pool.idleTimeoutMs', 1000, 86_400_000),
      learnKeepAlive: bool(tree, 'pool.learnKeepAlive'),
    },
    limits: { ...structuredClone(lim), concurrency: { ...lim.concurrency, max: int(tree, 'limits.concurrency.max', 1, 10_000) } },
    quota: {
      invocationsPerMinute: int(tree, 'quota.invocationsPerMinute', 0, 10_000_000),
      concurrentActivations: int(tree, 'quota.concurrentActivations', 0, 1_000_000),
    },
    cluster: {
      key: clusterKey(tree),
      listen: list(tree, 'cluster.listen', MULTIADDR),
      peers: list(tree, 'cluster.peers', MULTIADDR),
      hyperswarm: bool(tree, 'cluster.hyperswarm'),
      bootstrap: list(tree, 'cluster.bootstrap', /^[A-Za-z0-9.-]+:\d{1,5}$/),
      heartbeatMs: int(tree, 'cluster.heartbeatMs', 20, 60_000),
      failureTimeoutMs: int(tree, 'cluster.failureTimeoutMs', 100, 600_000),
      batchMs: int(tree, 'cluster.batchMs', 1, 1000),
    },
  };
}

function tlsOf(tree: Tree): DaemonConfig['listen']['tls'] {
  const file = (key: string) => {
    const v = at(tree, key);
    if (v !== '' && typeof v !== 'string') throw new ConfigError(key, 'must be a file path');
    return v;
  };
  const t = { enabled: bool(tree, 'listen.tls.enabled'), cert: file('listen.tls.cert'), key: file('listen.tls.key') };
  if ((t.cert === '') !== (t.key === '')) throw new ConfigError(t.cert === '' ? 'listen.tls.cert' : 'listen.tls.key', 'give the certificate and its key together');
  // Files given mean TLS is wanted.
  return { ...t, enabled: t.enabled || t.cert !== '', ...(t.cert === '' ? {} : { cert: resolve(t.cert), key: resolve(t.key) }) };
}

const MULTIADDR = /^\/(ip4|ip6|dns4|dns6|dns)\/[^/]+\/tcp\/\d+(\/p2p\/\w+)?$/;

function clusterKey(tree: Tree): string {
  const v = (tree.cluster as Tree | undefined)?.key;
  if (v === '' || v === undefined) return '';
  if (typeof v !== 'string' || !/^[0-9a-fA-F]{64}$/.test(v)) throw new ConfigError('cluster.key', 'must be 64 hex characters (e.g. openssl rand -hex 32)');
  return v;
}

/** The effective configuration with secrets hidden, for --print-config. */
export function printable(c: DaemonConfig): DaemonConfig {
  return { ...c, cluster: { ...c.cluster, key: c.cluster.key ? '***' : '' } };
}
