import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, lstatSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import Docker from 'dockerode';
import { ensureRuntimeImage } from '../sandbox/images.ts';
import { asset, isSingleExecutable } from '../sea/assets.ts';

// `peerless install | uninstall | cluster init | cluster join`: what an
// operator does to put a daemon on a machine and machines in a cluster, as a
// plan of steps (pure, printed by --dry-run) and one place that carries them
// out. --root DIR writes every file under DIR instead of / (tests, images).
// The cluster key goes into a file of mode 0600 and nowhere else: not on a
// command line, not in a log, not in a printed plan. A join token carries it,
// so `cluster join` reads the token from standard input.

const ETC = '/etc/peerless';
const CONFIG = `${ETC}/config.json`;
const KEY = `${ETC}/cluster.key`;
const DATA = '/var/lib/peerless';
const UNIT = '/etc/systemd/system/peerless.service';
/** where the unit starts peerless from: the single executable is copied here; a checkout links it (setup.sh) */
const BIN = '/usr/local/bin/peerless';
const CLUSTER_PORT = 7948;
const TOKEN_PREFIX = 'PLJ1.';

export type Step =
  | { do: 'mkdir'; path: string; mode: number }
  /** `keep`: an existing file is left as it is; `secret`: the content is never printed */
  | { do: 'write'; path: string; mode: number; content: string; keep?: boolean; secret?: boolean }
  | { do: 'remove'; path: string }
  /** the single executable put at `path`: copied beside it, then renamed over it */
  | { do: 'copy'; from: string; path: string; mode: number }
  | { do: 'images' }
  | { do: 'systemctl'; args: string[] }
  | { do: 'swarm-init'; advertise: string }
  | { do: 'swarm-join'; manager: string; token: string; advertise: string };

/** One line per step, as --dry-run prints them: never a secret's content. */
export function describe(s: Step): string {
  switch (s.do) {
    case 'mkdir':
      return `mkdir -p -m ${s.mode.toString(8)} ${s.path}`;
    case 'write':
      return `write ${s.path} (mode ${s.mode.toString(8)}${s.keep ? ', unless it exists' : ''}): ${s.secret ? `${s.content.length} bytes, secret, not shown` : JSON.stringify(s.content.length > 160 ? `${s.content.slice(0, 160)}…` : s.content)}`;
    case 'remove':
      return `remove ${s.path}`;
    case 'copy':
      return `install ${s.from} as ${s.path} (mode ${s.mode.toString(8)})`;
    case 'images':
      return 'build the runtime images (nodejs, python) on the engine';
    case 'systemctl':
      return `systemctl ${s.args.join(' ')}`;
    case 'swarm-init':
      return `docker swarm init --advertise-addr ${s.advertise} (kept if the engine is in a swarm already)`;
    case 'swarm-join':
      return `docker swarm join --advertise-addr ${s.advertise} ${s.manager} (token not shown)`;
  }
}

/** The hardened unit (systemd/peerless.service) with this executable's path. */
export function unitFile(template: string, exe: string): string {
  return template
    .split('\n')
    .filter((l) => !l.startsWith('# /usr/local/bin/peerless is '))
    .map((l) => (l.startsWith('ExecStart=') ? `ExecStart=${exe} daemon --config ${CONFIG}` : l))
    .join('\n');
}

const DEFAULT_CONFIG = { listen: { host: '127.0.0.1', port: 3233 }, dataDir: DATA, logLevel: 'info' };

/** `binary`: the single executable to put at /usr/local/bin/peerless, unless it runs from there already */
export function installPlan(o: { unit: string; binary?: string }): Step[] {
  return [
    ...(o.binary && o.binary !== BIN ? [{ do: 'copy', from: o.binary, path: BIN, mode: 0o755 } as Step] : []),
    { do: 'mkdir', path: ETC, mode: 0o755 },
    { do: 'mkdir', path: DATA, mode: 0o700 },
    { do: 'write', path: CONFIG, mode: 0o644, content: `${JSON.stringify(DEFAULT_CONFIG, null, 2)}\n`, keep: true },
    { do: 'write', path: UNIT, mode: 0o644, content: o.unit },
    { do: 'images' },
    { do: 'systemctl', args: ['daemon-reload'] },
    { do: 'systemctl', args: ['enable', '--now', 'peerless'] },
  ];
}

/**
 * `binary`: /usr/local/bin/peerless is the single executable install put there (not a checkout's link);
 * `previous`: an upgrade left the file it replaced beside it
 */
export function uninstallPlan(o: { purge: boolean; binary?: boolean; previous?: boolean }): Step[] {
  return [
    { do: 'systemctl', args: ['disable', '--now', 'peerless'] },
    { do: 'remove', path: UNIT },
    ...(o.binary ? [{ do: 'remove', path: BIN } as Step] : []),
    ...(o.previous ? [{ do: 'remove', path: `${BIN}.previous` } as Step] : []),
    { do: 'systemctl', args: ['daemon-reload'] },
    // Data (the store, activations, the cluster identity) and config stay unless asked.
    ...(o.purge
      ? ([
          { do: 'remove', path: ETC },
          { do: 'remove', path: DATA },
        ] as Step[])
      : []),
  ];
}

/** What a second machine needs to join: the swarm's manager and token, this daemon's address, the key. */
export interface JoinToken {
  manager: string;
  swarmToken: string;
  peers: string[];
  key: string;
}

export const encodeToken = (t: JoinToken): string => TOKEN_PREFIX + Buffer.from(JSON.stringify(t)).toString('base64url');

/** The token in what was given: the line that starts with PLJ1. (all of `cluster init`'s output may be piped in). */
export function decodeToken(s: string): JoinToken {
  const text = (s.split('\n').find((l) => l.trim().startsWith(TOKEN_PREFIX)) ?? s).trim();
  if (!text.startsWith(TOKEN_PREFIX)) throw new Error('not a peerless join token (it starts with PLJ1.)');
  let t: Partial<JoinToken>;
  try {
    t = JSON.parse(Buffer.from(text.slice(TOKEN_PREFIX.length), 'base64url').toString('utf8')) as Partial<JoinToken>;
  } catch {
    throw new Error('the join token is damaged: copy it whole');
  }
  if (typeof t.manager !== 'string' || typeof t.swarmToken !== 'string' || !Array.isArray(t.peers) || typeof t.key !== 'string' || !/^[0-9a-f]{64}$/.test(t.key))
    throw new Error('the join token is damaged: copy it whole');
  return t as JoinToken;
}

/** The config file with the cluster settings merged in (other settings kept). */
export function withCluster(config: string | null, cluster: { peers: string[] }): string {
  const c = config ? (JSON.parse(config) as Record<string, unknown>) : { ...DEFAULT_CONFIG };
  const prev = (c.cluster ?? {}) as Record<string, unknown>;
  delete prev.key;
  c.cluster = { ...prev, keyFile: KEY, listen: [`/ip4/0.0.0.0/tcp/${CLUSTER_PORT}`], peers: cluster.peers };
  return `${JSON.stringify(c, null, 2)}\n`;
}

export function clusterInitPlan(o: { advertise: string; key: string; config: string | null }): Step[] {
  return [
    { do: 'swarm-init', advertise: o.advertise },
    { do: 'mkdir', path: ETC, mode: 0o755 },
    { do: 'mkdir', path: DATA, mode: 0o700 },
    { do: 'write', path: KEY, mode: 0o600, content: `${o.key}\n`, secret: true },
    { do: 'write', path: CONFIG, mode: 0o644, content: withCluster(o.config, { peers: [] }) },
    { do: 'systemctl', args: ['restart', 'peerless'] },
  ];
}

export function clusterJoinPlan(o: { token: JoinToken; advertise: string; config: string | null }): Step[] {
  return [
    { do: 'swarm-join', manager: o.token.manager, token: o.token.swarmToken, advertise: o.advertise },
    { do: 'mkdir', path: ETC, mode: 0o755 },
    { do: 'mkdir', path: DATA, mode: 0o700 },
    { do: 'write', path: KEY, mode: 0o600, content: `${o.token.key}\n`, secret: true },
    { do: 'write', path: CONFIG, mode: 0o644, content: withCluster(o.config, { peers: o.token.peers }) },
    { do: 'systemctl', args: ['restart', 'peerless'] },
  ];
}

interface Env {
  root: string;
  dryRun: boolean;
  docker: Docker;
  /** systemd runs here (PID 1): otherwise systemctl steps are reported, not run */
  systemd: boolean;
  print: (line: string) => void;
}

const under = (root: string, p: string) => (root === '/' ? p : join(root, p));

async function apply(steps: Step[], e: Env): Promise<void> {
  for (const s of steps) {
    e.print(`${e.dryRun ? '[dry run] ' : ''}${describe(s)}`);
    if (e.dryRun) continue;
    switch (s.do) {
      case 'mkdir':
        mkdirSync(under(e.root, s.path), { recursive: true, mode: s.mode });
        break;
      case 'write': {
        const p = under(e.root, s.path);
        if (s.keep && existsSync(p)) break;
        mkdirSync(dirname(p), { recursive: true });
        writeFileSync(p, s.content, { mode: s.mode });
        chmodSync(p, s.mode);
        break;
      }
      case 'remove':
        rmSync(under(e.root, s.path), { recursive: true, force: true });
        break;
      case 'copy': {
        const p = under(e.root, s.path);
        mkdirSync(dirname(p), { recursive: true });
        copyFileSync(s.from, `${p}.install`);
        chmodSync(`${p}.install`, s.mode);
        renameSync(`${p}.install`, p);
        break;
      }
      case 'images':
        for (const kind of ['nodejs', 'python'] as const) e.print(`  ${(await ensureRuntimeImage(e.docker, kind)).tag}`);
        break;
      case 'systemctl':
        if (!e.systemd) e.print('  (systemd is not running here: skipped)');
        else execFileSync('systemctl', s.args, { stdio: 'inherit' });
        break;
      case 'swarm-init': {
        const info = (await e.docker.info()) as { Swarm?: { LocalNodeState?: string } };
        if (info.Swarm?.LocalNodeState === 'active') e.print('  (already in a swarm: kept)');
        else await e.docker.swarmInit({ ListenAddr: '0.0.0.0:2377', AdvertiseAddr: s.advertise });
        break;
      }
      case 'swarm-join': {
        const info = (await e.docker.info()) as { Swarm?: { LocalNodeState?: string } };
        if (info.Swarm?.LocalNodeState === 'active') e.print('  (already in a swarm: kept)');
        else await e.docker.swarmJoin({ RemoteAddrs: [s.manager], JoinToken: s.token, ListenAddr: '0.0.0.0:2377', AdvertiseAddr: s.advertise });
        break;
      }
    }
  }
}

/** The address other machines reach this one at: the source address of the default route. */
function defaultAddress(): string {
  try {
    const out = execFileSync('ip', ['-4', 'route', 'get', '1.1.1.1'], { encoding: 'utf8' });
    const m = /\bsrc (\d+\.\d+\.\d+\.\d+)/.exec(out);
    if (m) return m[1]!;
  } catch {
    /* no ip tool or no route: the operator names it */
  }
  throw new Error("cannot tell this machine's address: give --advertise IP");
}

const readIf = (p: string) => (existsSync(p) ? readFileSync(p, 'utf8') : null);

const unitTemplate = (): string => asset('peerless.service').toString('utf8');

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

const USAGE = `usage:
  peerless install [--dry-run] [--root DIR] [--docker-socket PATH]
  peerless uninstall [--purge] [--dry-run] [--root DIR]
  peerless cluster init [--advertise IP] [--dry-run] [--root DIR] [--docker-socket PATH]
  peerless cluster join [--advertise IP] [--dry-run] [--root DIR] [--docker-socket PATH]  < token
`;

/** `peerless install|uninstall|cluster init|cluster join`; the first argument is the verb. */
export async function installMain(verb: string, argv: string[]): Promise<number> {
  let v: { 'dry-run'?: boolean; root?: string; 'docker-socket'?: string; purge?: boolean; advertise?: string };
  try {
    v = parseArgs({
      args: argv,
      options: { 'dry-run': { type: 'boolean' }, root: { type: 'string' }, 'docker-socket': { type: 'string' }, purge: { type: 'boolean' }, advertise: { type: 'string' } },
      strict: true,
    }).values;
  } catch (e) {
    process.stderr.write(`error: ${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  const root = v.root ?? '/';
  const e: Env = {
    root,
    dryRun: v['dry-run'] === true,
    docker: new Docker({ socketPath: v['docker-socket'] ?? process.env.PEERLESS_DOCKER_SOCKET ?? '/var/run/docker.sock' }),
    systemd: root === '/' && existsSync('/run/systemd/system'),
    print: (l) => process.stdout.write(`${l}\n`),
  };
  const config = readIf(under(root, CONFIG));
  switch (verb) {
    case 'install':
      await apply(installPlan({ unit: unitFile(unitTemplate(), BIN), ...(isSingleExecutable() ? { binary: process.execPath } : {}) }), e);
      if (!e.dryRun) e.print(`installed: ${UNIT}, config ${CONFIG}; the admin key will be ${DATA}/admin.key`);
      return 0;
    case 'uninstall':
      await apply(
        uninstallPlan({
          purge: v.purge === true,
          binary: lstatSync(under(root, BIN), { throwIfNoEntry: false })?.isFile() === true,
          previous: lstatSync(under(root, `${BIN}.previous`), { throwIfNoEntry: false }) !== undefined,
        }),
        e,
      );
      if (!v.purge) e.print(`kept ${ETC} and ${DATA} (--purge removes them)`);
      return 0;
    case 'cluster init': {
      const advertise = v.advertise ?? defaultAddress();
      const key = randomBytes(32).toString('hex');
      await apply(clusterInitPlan({ advertise, key, config }), e);
      if (e.dryRun) return 0;
      const swarm = (await e.docker.swarmInspect()) as { JoinTokens: { Manager: string } };
      // The daemon's identity, made now if it has none yet: the token names the peer ID others dial.
      const { loadIdentity } = await import('../gossip/libp2p.ts');
      const { peerIdFromPrivateKey } = await import('@libp2p/peer-id');
      const id = await loadIdentity(under(root, `${DATA}/node.key`));
      const peer = `/ip4/${advertise}/tcp/${CLUSTER_PORT}/p2p/${peerIdFromPrivateKey(id).toString()}`;
      process.stdout.write(
        `\nOn each other machine, as root, give this token to \`peerless cluster join\` on its standard input\n` +
          `(it holds the cluster key: keep it as secret as the key):\n\n${encodeToken({ manager: `${advertise}:2377`, swarmToken: swarm.JoinTokens.Manager, peers: [peer], key })}\n`,
      );
      return 0;
    }
    case 'cluster join': {
      if (process.stdin.isTTY) process.stderr.write('paste the join token, then Ctrl-D:\n');
      const token = decodeToken(await readStdin());
      await apply(clusterJoinPlan({ token, advertise: v.advertise ?? defaultAddress(), config }), e);
      return 0;
    }
    default:
      process.stderr.write(USAGE);
      return 2;
  }
}
