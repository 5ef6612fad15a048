import { parseArgs, type ParseArgsOptionsConfig } from 'node:util';
import Docker from 'dockerode';
import { ensureRuntimeImage } from '../sandbox/images.ts';
import { ConfigError, envName, loadConfig, printable, SETTINGS } from './config.ts';
import { startDaemon } from './daemon.ts';
import { reexec, restartCommand } from './selfExec.ts';

// `peerless daemon`: parse flags, validate the whole configuration once, run
// until SIGTERM or SIGINT, then stop gracefully.

/** The daemon's flags: one per setting (config.ts), a -file one per secret, and the daemon's own. */
const OPTIONS = {
  config: { type: 'string' },
  'drain-ms': { type: 'string' },
  'print-config': { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  ...Object.fromEntries(SETTINGS.flatMap((s) => [[s.name, { type: 'string' }], ...(s.secret ? [[`${s.name}-file`, { type: 'string' }]] : [])])),
} as const satisfies ParseArgsOptionsConfig;

const USAGE = [
  'usage: peerless daemon [--config FILE] [--print-config] [--drain-ms MS] [--SETTING VALUE ...]',
  '',
  'settings (flag, environment variable, what; docs/config.md has the file keys and defaults):',
  ...SETTINGS.map((s) => `  --${s.name.padEnd(24)} ${envName(s).padEnd(34)} ${s.help}`),
  '',
].join('\n');

export async function daemonMain(argv: string[]): Promise<number> {
  let config;
  try {
    let a;
    try {
      a = parseArgs({ args: argv, options: OPTIONS, strict: true, allowPositionals: false });
    } catch (e) {
      process.stderr.write(`error: ${(e as Error).message}\n${USAGE}`);
      return 2;
    }
    const { config: file, 'drain-ms': drain, 'print-config': print, help, ...settings } = a.values as Record<string, string | boolean | undefined>;
    if (help) {
      process.stdout.write(USAGE);
      return 0;
    }
    const flags = Object.fromEntries(Object.entries(settings).filter((e): e is [string, string] => typeof e[1] === 'string'));
    config = loadConfig({ file: typeof file === 'string' ? file : undefined, env: process.env, flags });
    if (print) {
      process.stdout.write(`${JSON.stringify(printable(config), null, 2)}\n`);
      return 0;
    }
    // The single executable extracts native addons (hyperswarm's) into the run directory (sea/addons.ts).
    process.env.PEERLESS_RUN_DIR = config.runDir;
    const drainMs = Number(drain ?? 30_000);
    const d = await startDaemon(config);
    const why = await new Promise<string>((resolve) => {
      const stop = (why: string) => {
        d.log.info({ why }, 'stopping');
        void d.stop(drainMs).then(() => resolve(why));
      };
      process.once('SIGTERM', () => stop('SIGTERM'));
      process.once('SIGINT', () => stop('SIGINT'));
      d.events.once('restart', () => stop('restart'));
    });
    if (why === 'restart') {
      d.log.info({ command: restartCommand().args.slice(0, 2) }, 'starting again in place');
      const err = reexec();
      // Exited with a failure, so that systemd's Restart=on-failure starts the unit again.
      d.log.error({ err: err.message }, 'could not start again in place');
      return 1;
    }
    return 0;
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`error: ${e.message}\n`);
      return 2;
    }
    process.stderr.write(`error: the daemon could not start: ${(e as Error).message}\n`);
    // What started before the failure (the cluster node, the engine watch, timers) would keep the process
    // alive, half a daemon that systemd thinks is running: end it once stderr is out.
    setTimeout(() => process.exit(1), 200).unref();
    return 1;
  }
}

/** `peerless images build`: build the runtime images ahead of the daemon (set-up scripts use it). */
export async function imagesMain(argv: string[]): Promise<number> {
  if (argv[0] !== 'build') {
    process.stderr.write('usage: peerless images build [--docker-socket PATH]\n');
    return 2;
  }
  const { values } = parseArgs({ args: argv.slice(1), options: { 'docker-socket': { type: 'string' } }, strict: true });
  const socketPath = values['docker-socket'] ?? process.env.PEERLESS_DOCKER_SOCKET ?? '/var/run/docker.sock';
  const docker = new Docker({ socketPath });
  for (const kind of ['nodejs', 'python'] as const) {
    const t0 = Date.now();
    const r = await ensureRuntimeImage(docker, kind);
    process.stdout.write(`${r.tag} ${r.built ? `built in ${Date.now() - t0} ms` : 'already present'}\n`);
  }
  return 0;
}
