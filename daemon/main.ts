import Docker from 'dockerode';
import { parseArgs, UsageError } from '../cli/args.ts';
import { ensureRuntimeImage } from '../sandbox/images.ts';
import { ConfigError, FLAG_NAMES, loadConfig, printable } from './config.ts';
import { startDaemon } from './daemon.ts';

// `peerless daemon`: parse flags, validate the whole configuration once, run
// until SIGTERM or SIGINT, then stop gracefully.

export async function daemonMain(argv: string[]): Promise<number> {
  let config;
  try {
    const a = parseArgs(argv, { values: ['config', 'drain-ms', ...FLAG_NAMES], switches: ['print-config'] });
    if (a.positional.length > 0) throw new UsageError(`unexpected argument ${a.positional[0]}`);
    const flags: Record<string, string> = {};
    for (const [k, v] of a.flags) if (typeof v === 'string' && FLAG_NAMES.includes(k)) flags[k] = v;
    const file = a.flags.get('config');
    config = loadConfig({ file: typeof file === 'string' ? file : undefined, env: process.env, flags });
    if (a.flags.has('print-config')) {
      process.stdout.write(`${JSON.stringify(printable(config), null, 2)}\n`);
      return 0;
    }
    const drainMs = Number(a.flags.get('drain-ms') ?? 30_000);
    const d = await startDaemon(config);
    await new Promise<void>((resolve) => {
      const stop = (signal: string) => {
        d.log.info({ signal }, 'signal received');
        void d.stop(drainMs).then(resolve);
      };
      process.once('SIGTERM', () => stop('SIGTERM'));
      process.once('SIGINT', () => stop('SIGINT'));
    });
    return 0;
  } catch (e) {
    if (e instanceof ConfigError || e instanceof UsageError) {
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
  const a = parseArgs(argv.slice(1), { values: ['docker-socket'], switches: [] });
  const socketPath = (a.flags.get('docker-socket') as string | undefined) ?? process.env.PEERLESS_DOCKER_SOCKET ?? '/var/run/docker.sock';
  const docker = new Docker({ socketPath });
  for (const kind of ['nodejs', 'python'] as const) {
    const t0 = Date.now();
    const r = await ensureRuntimeImage(docker, kind);
    process.stdout.write(`${r.tag} ${r.built ? `built in ${Date.now() - t0} ms` : 'already present'}\n`);
  }
  return 0;
}
