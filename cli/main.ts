import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import { parseArgs, UsageError, type Parsed } from './args.ts';
import { ApiError, call, readCliConfig, resolveTarget, writeCliConfig } from './client.ts';
import { enc, entityPath, need, out, paramsOf, print, type Cmd } from './cmd.ts';
import { isSingleExecutable, version } from '../sea/assets.ts';
import { top } from './top.ts';
import { WSK_SWITCHES, WSK_USAGE, WSK_VALUES, wskDispatch } from './wsk.ts';

// The `peerless` command. `peerless daemon` runs the host agent; every other
// verb talks to a daemon's user API.

const USAGE = `usage: peerless <command> [flags]

  --version                                           this build's version
  daemon [--config FILE] [--print-config] [--port N] [--data-dir DIR] ...   run the host daemon
  images build                                        build the runtime images on this engine
  install [--dry-run] | uninstall [--purge]           this machine: systemd unit, config, images, service
  cluster init [--advertise IP] | cluster join < token   make a cluster: swarm, key (a file, 0600), peers
  upgrade [--binary FILE] [--dry-run]                 put a new executable in place; the daemon drains and starts again
  namespace create|list|delete [NAME]                 (admin key)
  namespace limits NAME [--per-minute N] [--concurrent N]   its quota (setting it: admin key; 0 = no limit)
  fn create|update NAME FILE [--runtime nodejs|python|image:NAME] [--main NAME]
                             [--memory MB] [--timeout SECONDS] [--concurrency N] [-p KEY VALUE]...
  fn get NAME [--code] | fn list | fn delete NAME
  fn invoke NAME [-p KEY VALUE]... [-P params.json] [--result | --blocking]
                [--instance ID | --instances 'worker-{0..34}' [--restart on-failure[:N]] [--queue-timeout S]]
  job list | get ID | watch ID | kill ID              groups and spawns: members, where they run, outcome
  instances [--watch]  |  instance get ID             the namespace's address map
  peers | status                                      cluster members / this daemon
  top [--once] [--interval MS]                        live numbers in the terminal: daemons, rates, latency, activations
  activation list [NAME] [--limit N] | get ID | result ID | logs ID
  config set apihost|auth|namespace VALUE | config show
${WSK_USAGE}

global flags: --apihost URL  --auth UUID:KEY  --namespace NS  --json
environment: PEERLESS_APIHOST, PEERLESS_AUTH; file: ~/.config/peerless/config.json`;

const GLOBAL_VALUES = ['apihost', 'auth', 'namespace'];
const GLOBAL_SWITCHES = ['json', 'help'];

function runtimeOf(a: Parsed, file: string): { kind: string; image?: string } {
  const r = a.flags.get('runtime');
  if (typeof r === 'string') {
    if (r.startsWith('image:')) return { kind: 'blackbox', image: r.slice(6) };
    if (r === 'nodejs' || r === 'python') return { kind: r };
    throw new UsageError(`--runtime must be nodejs, python or image:NAME, not ${r}`);
  }
  const ext = extname(file);
  if (ext === '.py') return { kind: 'python' };
  if (['.js', '.mjs', '.cjs'].includes(ext)) return { kind: 'nodejs' };
  throw new UsageError(`cannot tell the runtime of ${file}: give --runtime`);
}

function num(a: Parsed, flag: string): number | undefined {
  const v = a.flags.get(flag);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (typeof v !== 'string' || !Number.isFinite(n) || n <= 0) throw new UsageError(`--${flag} must be a positive number`);
  return n;
}

/** A count where 0 means "no limit". */
function count(a: Parsed, flag: string): number | undefined {
  const v = a.flags.get(flag);
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || !/^\d{1,7}$/.test(v)) throw new UsageError(`--${flag} must be a whole number (0: no limit)`);
  return Number(v);
}

const fnPath = (c: Cmd, name: string) => entityPath(c, 'actions', name);

async function fnPut(c: Cmd, update: boolean): Promise<void> {
  const name = need(c.a, 2, 'function NAME');
  const rt = runtimeOf(c.a, c.a.positional[3] ?? '');
  const file = rt.kind === 'blackbox' ? c.a.positional[3] : need(c.a, 3, 'code FILE');
  const exec: Record<string, unknown> = { kind: rt.kind };
  if (rt.image) exec.image = rt.image;
  if (file) {
    const bytes = readFileSync(file);
    const binary = extname(file) === '.zip';
    exec.code = bytes.toString(binary ? 'base64' : 'utf8');
    exec.binary = binary;
  }
  const main = c.a.flags.get('main');
  if (typeof main === 'string') exec.main = main;
  const limits: Record<string, number> = {};
  const memory = num(c.a, 'memory');
  const timeout = num(c.a, 'timeout');
  if (memory !== undefined) limits.memory = Math.round(memory);
  if (timeout !== undefined) limits.timeout = Math.round(timeout * 1000);
  const concurrency = num(c.a, 'concurrency');
  if (concurrency !== undefined) limits.concurrency = Math.round(concurrency);
  const body = { exec, limits, parameters: Object.entries(paramsOf(c.a)).map(([key, value]) => ({ key, value })) };
  const r = await call(c.t, 'PUT', `${fnPath(c, name)}${update ? '?overwrite=true' : ''}`, body);
  print(c, r.body, () => `ok: ${r.status === 201 ? 'created' : 'updated'} function ${name}`);
}

type Activation = { activationId: string; name: string; host: string; start: number; duration: number | null; response: { status: string; result: unknown }; logs: string[] };

async function fnInvoke(c: Cmd): Promise<number> {
  const name = need(c.a, 2, 'function NAME');
  const result = c.a.flags.has('result');
  const blocking = result || c.a.flags.has('blocking');
  const instance = c.a.flags.get('instance');
  const instances = c.a.flags.get('instances');
  // An unquoted worker-{0..3} is expanded by the shell into several words: take them all back.
  const group = typeof instances === 'string' ? [instances, ...c.a.positional.slice(3)].join(',') : undefined;
  const restart = c.a.flags.get('restart');
  const queue = num(c.a, 'queue-timeout');
  const q =
    `blocking=${blocking}&result=${result}${typeof instance === 'string' ? `&instance=${enc(instance)}` : ''}${group ? `&instances=${enc(group)}` : ''}` +
    `${typeof restart === 'string' ? `&restart=${enc(restart)}` : ''}${queue !== undefined ? `&queueTimeout=${Math.round(queue * 1000)}` : ''}`;
  const r = await call(c.t, 'POST', `${fnPath(c, name)}?${q}`, paramsOf(c.a));
  if (r.status === 202) {
    const b = r.body as { jobId?: string; activationId?: string; activations?: { instance: string; activationId: string }[] };
    print(c, r.body, () =>
      b.activations
        ? `ok: invoked ${name} as ${b.activations.length} instances, job ${b.jobId}\n${b.activations.map((a) => `${a.instance} ${a.activationId}`).join('\n')}`
        : `ok: invoked ${name} with id ${b.activationId}`,
    );
    return 0;
  }
  if (result) out(JSON.stringify(r.body, null, 2));
  else print(c, r.body, () => JSON.stringify(r.body, null, 2));
  return r.status === 200 ? 0 : 1;
}

type Instance = { instance: string; function: string; host: string; ip: string | null; state: string; status: string | null; activation: string };
const instanceLine = (i: Instance) => `${i.instance.padEnd(20)} ${i.state.padEnd(9)} ${(i.ip ?? '-').padEnd(15)} ${i.host.padEnd(14)} ${i.function.padEnd(16)} ${i.status ?? ''}`;

async function instancesCmd(c: Cmd): Promise<number> {
  const path = `/api/v1/namespaces/${enc(c.ns)}/instances`;
  const show = (b: { version: number; instances: Instance[] }) => print(c, b, () => [`map version ${b.version}, ${b.instances.length} instances`, ...b.instances.map(instanceLine)].join('\n'));
  if (!c.a.flags.has('watch')) {
    show((await call(c.t, 'GET', path)).body as { version: number; instances: Instance[] });
    return 0;
  }
  // --watch: print the map whenever its version changes, until interrupted.
  const every = Number(c.a.flags.get('interval') ?? 250);
  let last = -1;
  for (;;) {
    const b = (await call(c.t, 'GET', path)).body as { version: number; instances: Instance[] };
    if (b.version !== last) {
      last = b.version;
      if (!c.json) out(`--- ${new Date().toISOString()}`);
      show(b);
    }
    await new Promise((r) => setTimeout(r, every));
  }
}

type Job = {
  jobId: string;
  function: string;
  coordinator: string;
  created: number;
  end: number | null;
  status: string;
  reason: string | null;
  members: {
    instance: string;
    host: string | null;
    state: string;
    status: string | null;
    epoch: number;
    start: number | null;
    end: number | null;
    outcome: { status: string; error: string | null } | null;
  }[];
};
const jobPath = (c: Cmd, id?: string) => `/api/v1/namespaces/${enc(c.ns)}/jobs${id === undefined ? '' : `/${enc(id)}`}`;
const ms = (a: number | null, b: number | null) => (a !== null && b !== null ? `${b - a} ms` : '');
function jobText(j: Job): string {
  const count = (s: string) => j.members.filter((m) => m.state === s).length;
  const states = ['queued', 'starting', 'running', 'restarting', 'succeeded', 'failed', 'cancelled']
    .filter((s) => count(s) > 0)
    .map((s) => `${count(s)} ${s}`)
    .join(', ');
  return [
    `job ${j.jobId} ${j.function}: ${j.status}${j.reason ? ` (${j.reason})` : ''}; ${j.members.length} members: ${states}; coordinated by ${j.coordinator}${j.end ? `, took ${j.end - j.created} ms` : ''}`,
    ...j.members.map(
      (m) =>
        `  ${m.instance.padEnd(20)} ${m.state.padEnd(10)} ${(m.host ?? '-').padEnd(16)} ${m.epoch > 0 ? `epoch ${m.epoch} ` : ''}${ms(m.start, m.end).padEnd(9)} ` +
        `${m.status ?? ''}${m.outcome && m.outcome.status !== 'success' ? ` ${m.outcome.status}: ${m.outcome.error ?? ''}` : ''}`,
    ),
  ].join('\n');
}
const missingNote = (h: Headers) => (h.get('peerless-missing-hosts') ? `(no answer from ${h.get('peerless-missing-hosts')}: their records are not shown)` : null);

async function jobCmd(c: Cmd, verb: string): Promise<number> {
  if (verb === 'list') {
    const r = await call(c.t, 'GET', `${jobPath(c)}?limit=${enc(String(c.a.flags.get('limit') ?? '30'))}`);
    const note = missingNote(r.headers);
    print(c, r.body, () =>
      [
        ...(r.body as Job[]).map(
          (j) => `${new Date(j.created).toISOString()} ${j.jobId} ${j.function.padEnd(20)} ${j.status.padEnd(10)} ${String(j.members.length).padStart(4)} members ${j.reason ?? ''}`,
        ),
        ...(note ? [note] : []),
      ].join('\n'),
    );
    return 0;
  }
  const id = need(c.a, 2, 'job ID');
  if (verb === 'get' || verb === 'kill') {
    const r = await call(c.t, verb === 'get' ? 'GET' : 'DELETE', jobPath(c, id));
    print(c, r.body, () => jobText(r.body as Job));
    return 0;
  }
  // watch: the job as it changes, until it ends.
  let last = '';
  for (;;) {
    const j = (await call(c.t, 'GET', jobPath(c, id))).body as Job;
    const text = c.json ? JSON.stringify(j) : jobText(j);
    if (text !== last) {
      out(c.json ? text : `--- ${new Date().toISOString()}\n${text}`);
      last = text;
    }
    if (j.end !== null) return j.status === 'succeeded' ? 0 : 1;
    await new Promise((r) => setTimeout(r, Number(c.a.flags.get('interval') ?? 500)));
  }
}

async function dispatch(c: Cmd): Promise<number> {
  const [noun, verb] = c.a.positional;
  const key = noun === 'instances' || noun === 'peers' || noun === 'status' || noun === 'top' ? noun : `${noun ?? ''} ${verb ?? ''}`.trim();
  switch (key) {
    case 'namespace create': {
      const name = need(c.a, 2, 'namespace NAME');
      const r = await call(c.t, 'PUT', `/api/v1/namespaces/${enc(name)}`);
      const b = r.body as { auth: string };
      print(c, r.body, () => `ok: created namespace ${name}\nauth: ${b.auth}`);
      return 0;
    }
    case 'namespace list': {
      const r = await call(c.t, 'GET', '/api/v1/namespaces');
      // A namespace key gets OpenWhisk's list of names; the admin key, every namespace with its details.
      print(c, r.body, () => (r.body as (string | { name: string })[]).map((n) => (typeof n === 'string' ? n : n.name)).join('\n'));
      return 0;
    }
    case 'namespace limits': {
      const name = need(c.a, 2, 'namespace NAME');
      const path = `/api/v1/namespaces/${enc(name)}/limits`;
      type L = { invocationsPerMinute: number; concurrentActivations: number; own: boolean };
      let r = await call(c.t, 'GET', path);
      const perMinute = count(c.a, 'per-minute');
      const concurrent = count(c.a, 'concurrent');
      if (perMinute !== undefined || concurrent !== undefined) {
        const now = r.body as L;
        r = await call(c.t, 'PUT', path, { invocationsPerMinute: perMinute ?? now.invocationsPerMinute, concurrentActivations: concurrent ?? now.concurrentActivations });
      }
      const l = r.body as L;
      const show = (n: number) => (n === 0 ? 'no limit' : String(n));
      print(c, r.body, () => `${name}: ${show(l.invocationsPerMinute)} invocations a minute, ${show(l.concurrentActivations)} at once (${l.own ? 'its own' : 'the default'})`);
      return 0;
    }
    case 'namespace delete': {
      const name = need(c.a, 2, 'namespace NAME');
      const r = await call(c.t, 'DELETE', `/api/v1/namespaces/${enc(name)}`);
      print(c, r.body, () => `ok: deleted namespace ${name}`);
      return 0;
    }
    case 'fn create':
      await fnPut(c, false);
      return 0;
    case 'fn update':
      await fnPut(c, true);
      return 0;
    case 'fn get': {
      const name = need(c.a, 2, 'function NAME');
      const r = await call(c.t, 'GET', `${fnPath(c, name)}?code=${c.a.flags.has('code')}`);
      print(c, r.body, () => JSON.stringify(r.body, null, 2));
      return 0;
    }
    case 'fn list': {
      const r = await call(c.t, 'GET', `/api/v1/namespaces/${enc(c.ns)}/actions?limit=200`);
      // Lists carry no exec.kind, as in OpenWhisk: the exec annotation has it.
      type F = { name: string; namespace: string; annotations: { key: string; value: unknown }[]; version: string };
      const kind = (f: F) => String(f.annotations.find((a) => a.key === 'exec')?.value ?? '');
      const shown = (f: F) => (f.namespace.includes('/') ? `${f.namespace.split('/').slice(1).join('/')}/${f.name}` : f.name);
      print(c, r.body, () => (r.body as F[]).map((f) => `${shown(f).padEnd(32)} ${kind(f).padEnd(11)} ${f.version}`).join('\n'));
      return 0;
    }
    case 'fn delete': {
      const name = need(c.a, 2, 'function NAME');
      const r = await call(c.t, 'DELETE', fnPath(c, name));
      print(c, r.body, () => `ok: deleted function ${name}`);
      return 0;
    }
    case 'fn invoke':
      return fnInvoke(c);
    case 'job list':
    case 'job get':
    case 'job watch':
    case 'job kill':
      return jobCmd(c, verb!);
    case 'activation list': {
      const name = c.a.positional[2];
      const limit = c.a.flags.get('limit') ?? '30';
      const q = `limit=${enc(String(limit))}${name ? `&name=${enc(name)}` : ''}`;
      const r = await call(c.t, 'GET', `/api/v1/namespaces/${enc(c.ns)}/activations?${q}`);
      const note = missingNote(r.headers);
      print(c, r.body, () =>
        [
          ...(r.body as Activation[]).map(
            (a) => `${new Date(a.start).toISOString()} ${a.activationId} ${a.name.padEnd(24)} ${a.host.padEnd(14)} ${a.response.status.padEnd(22)} ${a.duration ?? '-'} ms`,
          ),
          ...(note ? [note] : []),
        ].join('\n'),
      );
      return 0;
    }
    case 'activation get':
    case 'activation result':
    case 'activation logs': {
      const id = need(c.a, 2, 'activation ID');
      const suffix = verb === 'get' ? '' : `/${verb}`;
      const r = await call(c.t, 'GET', `/api/v1/namespaces/${enc(c.ns)}/activations/${enc(id)}${suffix}`);
      if (verb === 'logs') print(c, r.body, () => (r.body as { logs: string[] }).logs.join('\n'));
      else if (verb === 'result') print(c, r.body, () => JSON.stringify((r.body as { result: unknown }).result, null, 2));
      else print(c, r.body, () => JSON.stringify(r.body, null, 2));
      return 0;
    }
    case 'instances':
    case 'instances list':
      return instancesCmd(c);
    case 'instance get': {
      const id = need(c.a, 2, 'instance ID');
      const r = await call(c.t, 'GET', `/api/v1/namespaces/${enc(c.ns)}/instances/${enc(id)}`);
      print(c, r.body, () => JSON.stringify(r.body, null, 2));
      return 0;
    }
    case 'peers': {
      const r = await call(c.t, 'GET', '/api/v1/cluster/peers');
      type P = { origin: string; host: string; connected: boolean; synced: boolean; suspected: boolean; load: number; lastSeen: number; entries: number; incarnation: number };
      const b = r.body as { self: { peerId: string; host: string } | null; peers: P[] };
      print(c, b, () =>
        b.self === null
          ? 'this daemon is not in a cluster (no cluster key)'
          : [
              `self ${b.self.host} ${b.self.peerId}`,
              ...b.peers.map(
                (p) =>
                  `${p.host.padEnd(16)} ${p.connected ? 'connected' : 'gossip-only'} ${p.synced ? 'synced ' : 'syncing'}${p.suspected ? ' SUSPECTED' : ''} load ${String(p.load).padEnd(4)} instances ${String(p.entries).padEnd(5)} last heartbeat ${Date.now() - p.lastSeen} ms ago  ${p.origin}`,
              ),
            ].join('\n'),
      );
      return 0;
    }
    case 'top':
      return top(c.t, { once: c.a.flags.has('once'), intervalMs: Number(c.a.flags.get('interval') ?? 2000), json: c.json });
    case 'status': {
      const r = await call(c.t, 'GET', '/api/v1/status');
      print(c, r.body, () => JSON.stringify(r.body, null, 2));
      return 0;
    }
    case 'config set': {
      const k = need(c.a, 2, 'KEY');
      if (!['apihost', 'auth', 'namespace'].includes(k)) throw new UsageError('config keys: apihost, auth, namespace');
      writeCliConfig({ ...readCliConfig(), [k]: need(c.a, 3, 'VALUE') });
      out(`ok: ${k} set`);
      return 0;
    }
    case 'config show': {
      const cfg = readCliConfig();
      const shown = { ...cfg, ...(cfg.auth ? { auth: `${cfg.auth.split(':')[0]}:***` } : {}) };
      out(JSON.stringify(shown, null, 2));
      return 0;
    }
    default:
      if (noun !== undefined && verb !== undefined) {
        const code = await wskDispatch(c, noun, verb);
        if (code !== null) return code;
      }
      throw new UsageError(noun ? `unknown command: ${key}` : 'no command given');
  }
}

const VERB_VALUES = ['runtime', 'main', 'memory', 'timeout', 'concurrency', 'param-file', 'limit', 'instance', 'instances', 'interval', 'per-minute', 'concurrent', 'restart', 'queue-timeout'];
const VERB_SWITCHES = ['result', 'blocking', 'code', 'watch', 'once'];

export async function main(argv: string[]): Promise<number> {
  if (argv[0] === '--version' || argv[0] === 'version') {
    out(`peerless ${version()} (Node.js ${process.version}${isSingleExecutable() ? ', single executable' : ''})`);
    return 0;
  }
  if (argv[0] === 'daemon') return (await import('../daemon/main.ts')).daemonMain(argv.slice(1));
  if (argv[0] === 'images') return (await import('../daemon/main.ts')).imagesMain(argv.slice(1));
  if (argv[0] === 'install' || argv[0] === 'uninstall') return (await import('./install.ts')).installMain(argv[0], argv.slice(1));
  if (argv[0] === 'upgrade') return (await import('./upgrade.ts')).upgradeMain(argv.slice(1));
  if (argv[0] === 'cluster' && (argv[1] === 'init' || argv[1] === 'join')) return (await import('./install.ts')).installMain(`cluster ${argv[1]}`, argv.slice(2));
  try {
    const a = parseArgs(argv, {
      values: [...GLOBAL_VALUES, ...VERB_VALUES, ...WSK_VALUES],
      switches: [...GLOBAL_SWITCHES, ...VERB_SWITCHES, ...WSK_SWITCHES],
      aliases: { P: 'param-file', r: 'result', b: 'blocking', m: 'memory', t: 'timeout', l: 'logs', c: 'concurrency', i: 'insecure', u: 'auth' },
    });
    // -i, as wsk has it: a self-signed certificate is taken (a daemon's own, made with --tls true).
    if (a.flags.has('insecure') || process.env.PEERLESS_INSECURE === '1') process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0';
    if (a.flags.has('help') || a.positional.length === 0) {
      out(USAGE);
      return a.flags.has('help') ? 0 : 2;
    }
    const flag = (k: string) => (typeof a.flags.get(k) === 'string' ? (a.flags.get(k) as string) : undefined);
    const t = resolveTarget({ ...(flag('apihost') ? { apihost: flag('apihost')! } : {}), ...(flag('auth') ? { auth: flag('auth')! } : {}) });
    const ns = flag('namespace') ?? process.env.PEERLESS_NAMESPACE ?? readCliConfig().namespace ?? '_';
    return await dispatch({ t, ns, a, json: a.flags.has('json') });
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`error: ${e.message}\n(see peerless --help)\n`);
      return 2;
    }
    if (e instanceof ApiError) {
      process.stderr.write(`error: ${e.message}\n`);
      return 1;
    }
    process.stderr.write(`error: ${(e as Error).message}\n`);
    return 1;
  }
}
