import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, linkSync, lstatSync, readFileSync, readlinkSync, realpathSync, renameSync, rmSync, symlinkSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { isElf, versionIn } from '../daemon/selfExec.ts';
import { isSingleExecutable } from '../sea/assets.ts';
import { ApiError, call, readCliConfig, resolveTarget, type Target } from './client.ts';

// `peerless upgrade`: on a daemon's machine, put a new executable where the
// daemon runs from (written aside, then renamed over it), then have the daemon
// drain and start again in place from it (POST /api/v1/daemon/restart), and
// wait until it answers with the new version. Run as `./peerless-new upgrade`,
// the new executable installs itself. One daemon at a time is a rolling
// upgrade: its peers keep working, and a mixed-version cluster is supported.

const USAGE = `usage: peerless upgrade [--binary FILE] [--dry-run] [--timeout SECONDS] [--apihost URL] [--auth KEY]
  FILE defaults to this executable (the single executable). The file the daemon ran from is kept
  beside it as <file>.previous: upgrade --binary that file to go back. The daemon is the one
  --apihost, PEERLESS_APIHOST or the CLI config names, else the one /etc/peerless/config.json
  describes; the admin key comes from --auth, PEERLESS_AUTH, the CLI config, or
  /var/lib/peerless/admin.key when readable.
`;
const ADMIN_KEY_FILE = '/var/lib/peerless/admin.key';
const INSTALLED_CONFIG = '/etc/peerless/config.json';

/** The installed daemon's API, from the config `peerless install` wrote, when nothing names one. */
function installedApihost(): string | undefined {
  if (!existsSync(INSTALLED_CONFIG)) return undefined;
  try {
    const c = JSON.parse(readFileSync(INSTALLED_CONFIG, 'utf8')) as { listen?: { host?: string; port?: number; tls?: { enabled?: boolean; cert?: string } } };
    const host = !c.listen?.host || c.listen.host === '0.0.0.0' ? '127.0.0.1' : c.listen.host;
    return `${c.listen?.tls?.enabled || c.listen?.tls?.cert ? 'https' : 'http'}://${host}:${c.listen?.port ?? 3233}`;
  } catch {
    return undefined; // unreadable: the usual default
  }
}

interface DaemonProcess {
  pid: number;
  version: string;
  executable: string;
  startedAt: number;
  runningActivations: number;
}

/** The version a file reports, by running it with --version. */
export function versionOf(file: string): string {
  return versionIn(file, execFileSync(file, ['--version'], { encoding: 'utf8', timeout: 20_000, stdio: ['ignore', 'pipe', 'pipe'] }));
}

/** Where the file the daemon ran from is kept by an upgrade: `peerless upgrade --binary` it to go back. */
export const previousOf = (executable: string) => `${executable}.previous`;

/**
 * Puts `from` at `to` in one step (a copy beside it, then a rename: the daemon never sees half a file),
 * keeping what was at `to` as its .previous (a hard link first, so `to` is never missing). A link (a
 * checkout's, or a .previous that is one) is put back as the link it is, not as a copy of its target.
 */
function replaceFile(from: string, to: string): void {
  const part = `${to}.upgrade-${process.pid}`;
  rmSync(part, { force: true });
  if (lstatSync(from).isSymbolicLink()) symlinkSync(resolve(dirname(from), readlinkSync(from)), part);
  else {
    copyFileSync(from, part);
    chmodSync(part, 0o755);
  }
  rmSync(previousOf(to), { force: true });
  linkSync(to, previousOf(to));
  renameSync(part, to);
}

export async function upgradeMain(argv: string[]): Promise<number> {
  let v;
  try {
    v = parseArgs({
      args: argv,
      options: { binary: { type: 'string' }, 'dry-run': { type: 'boolean' }, timeout: { type: 'string' }, apihost: { type: 'string' }, auth: { type: 'string' }, help: { type: 'boolean' } },
      strict: true,
    }).values;
  } catch (e) {
    process.stderr.write(`error: ${(e as Error).message}\n(see peerless upgrade --help)\n`);
    return 2;
  }
  if (v.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const print = (l: string) => process.stdout.write(`${l}\n`);
  const fail = (m: string) => {
    process.stderr.write(`error: ${m}\n`);
    return 1;
  };
  const file = v.binary ?? (isSingleExecutable() ? process.execPath : undefined);
  if (!file) return fail('give --binary FILE: this is a checkout, not the single executable');
  if (!existsSync(file)) return fail(`${file} does not exist`);
  const timeoutMs = Number(v.timeout ?? 120) * 1000;
  if (!(timeoutMs > 0)) return fail('--timeout must be a positive number of seconds');
  const apihost = v.apihost ?? process.env.PEERLESS_APIHOST ?? readCliConfig().apihost ?? installedApihost();
  const t: Target = resolveTarget({ ...(apihost ? { apihost } : {}), ...(v.auth ? { auth: v.auth } : {}) });
  if (!t.auth && existsSync(ADMIN_KEY_FILE)) t.auth = readFileSync(ADMIN_KEY_FILE, 'utf8').trim();
  try {
    const newVersion = versionOf(file);
    const before = (await call(t, 'GET', '/api/v1/daemon')).body as DaemonProcess;
    if (!existsSync(before.executable)) return fail(`the daemon runs from ${before.executable}, which is not on this machine: run upgrade on the daemon's machine`);
    // A daemon started as `node cli/peerless.js` runs from a source file of its checkout: not one to overwrite.
    if (!lstatSync(before.executable).isSymbolicLink() && !isElf(before.executable))
      return fail(
        `the daemon runs from ${before.executable}, a checkout's script; upgrade will not overwrite it: run the daemon from a link to it (as scripts/setup.sh links /usr/local/bin/peerless)`,
      );
    const same = realpathSync(file) === realpathSync(before.executable);
    print(`${v['dry-run'] ? '[dry run] ' : ''}daemon ${before.pid} at ${t.apihost}: ${before.version} → ${newVersion}`);
    print(`${v['dry-run'] ? '[dry run] ' : ''}${same ? `${file} is what it runs from already` : `put ${file} at ${before.executable}, keeping the old one as ${previousOf(before.executable)}`}`);
    print(`${v['dry-run'] ? '[dry run] ' : ''}restart it in place: drain ${before.runningActivations} running activations, then start again`);
    if (v['dry-run']) return 0;
    if (!same) replaceFile(file, before.executable);
    const started = Date.now();
    const r = await call(t, 'POST', '/api/v1/daemon/restart');
    if (r.status !== 202) return fail(`the daemon did not restart: ${r.status} ${JSON.stringify(r.body)}`);
    for (;;) {
      const now = await call(t, 'GET', '/api/v1/daemon').then(
        (x) => (x.status === 200 ? (x.body as DaemonProcess) : null),
        () => null, // draining or starting: not answering is expected
      );
      if (now && now.startedAt !== before.startedAt) {
        if (now.version !== newVersion) return fail(`the daemon started again as ${now.version}, not ${newVersion}`);
        print(`upgraded: ${before.version} → ${now.version} in ${((Date.now() - started) / 1000).toFixed(1)} s (pid ${now.pid}${now.pid === before.pid ? ', kept' : ''})`);
        return 0;
      }
      if (Date.now() - started > timeoutMs) return fail(`the daemon did not come back within ${timeoutMs / 1000} s: see its log`);
      await new Promise((res) => setTimeout(res, 200));
    }
  } catch (e) {
    return fail(e instanceof ApiError ? e.message : (e as Error).message);
  }
}
