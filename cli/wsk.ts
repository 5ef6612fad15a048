import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import { paramValue, UsageError } from './args.ts';
import { call } from './client.ts';
import { enc, entityPath, need, out, paramsOf, print, type Cmd } from './cmd.ts';

// wsk's words: `peerless action|activation|package|trigger|rule|namespace|property ...` with wsk's
// verbs and flags, so that OpenWhisk users' habits carry over. Today's `fn` verbs stay as they are.
// Unlike `fn`, --timeout is in milliseconds here, as in wsk.

export const WSK_USAGE = `
wsk's words (as in OpenWhisk's CLI):
  action create|update NAME [FILE] [--kind K] [--main M] [--docker IMAGE] [--sequence A,B,...]
                [-m MB] [-t MS] [-l MB] [-c N] [--web true|raw|false] [--web-secure SECRET|true|false]
                [-p KEY VALUE]... [-P FILE] [-a KEY VALUE]...
  action get NAME [--code] | list [PACKAGE] | delete NAME | invoke NAME [-b] [-r] [-p KEY VALUE]...
  activation poll [NAME] [--exit SECONDS]
  package create|update NAME [-p ...] [-a ...] [--shared yes|no] | bind PACKAGE BINDING [-p ...]
  package get|delete NAME | list
  trigger create|update NAME [-p ...] [-a ...] [--feed FEED] | get|delete NAME | list | fire NAME [-p ...]
  rule create|update NAME TRIGGER ACTION | enable|disable|get|delete NAME | list
  namespace get | property get
  -i / --insecure: take a daemon's self-signed certificate (https)`;

export const WSK_VALUES = ['kind', 'docker', 'sequence', 'logs', 'web', 'web-secure', 'shared', 'feed', 'exit', 'skip'];
export const WSK_SWITCHES = ['insecure'];

const kv = (pairs: [string, string][]) => pairs.map(([key, v]) => ({ key, value: paramValue(v) }));
const params = (c: Cmd) => Object.entries(paramsOf(c.a)).map(([key, value]) => ({ key, value }));
const flag = (c: Cmd, k: string) => (typeof c.a.flags.get(k) === 'string' ? (c.a.flags.get(k) as string) : undefined);
const listPath = (c: Cmd, collection: string) => `/api/v1/namespaces/${enc(c.ns)}/${collection}?limit=${enc(flag(c, 'limit') ?? '30')}&skip=${enc(flag(c, 'skip') ?? '0')}`;

/** wsk's kind from a file's extension; a zip needs --kind. */
function kindOf(file: string): string {
  const ext = extname(file);
  if (ext === '.py') return 'python:default';
  if (['.js', '.mjs', '.cjs'].includes(ext)) return 'nodejs:default';
  throw new UsageError(`cannot tell the kind of ${file}: give --kind (nodejs:default, python:default, ...)`);
}

/** The annotations wsk's --web and --web-secure set, and those it removes. */
function webAnnotations(c: Cmd): { set: { key: string; value: unknown }[]; del: string[] } {
  const set: { key: string; value: unknown }[] = [];
  const del: string[] = [];
  const web = flag(c, 'web');
  if (web !== undefined) {
    const on = ['true', 'yes', 'raw'].includes(web);
    if (!on && !['false', 'no'].includes(web)) throw new UsageError('--web must be true, raw or false');
    set.push({ key: 'web-export', value: on }, { key: 'raw-http', value: web === 'raw' }, { key: 'final', value: on });
  }
  const secure = flag(c, 'web-secure');
  if (secure === 'false') del.push('require-whisk-auth');
  else if (secure === 'true') set.push({ key: 'require-whisk-auth', value: Math.floor(Math.random() * Number.MAX_SAFE_INTEGER) });
  else if (secure !== undefined) set.push({ key: 'require-whisk-auth', value: secure });
  return { set, del };
}

async function actionPut(c: Cmd, update: boolean): Promise<number> {
  const name = need(c.a, 2, 'action NAME');
  const file = c.a.positional[3];
  const docker = flag(c, 'docker');
  const sequence = flag(c, 'sequence');
  const body: Record<string, unknown> = {};
  if (sequence !== undefined)
    body.exec = {
      kind: 'sequence',
      components: sequence
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean),
    };
  else if (docker !== undefined) body.exec = { kind: 'blackbox', image: docker, ...(file ? { code: readFileSync(file).toString(extname(file) === '.zip' ? 'base64' : 'utf8') } : {}) };
  else if (file !== undefined) {
    const zip = extname(file) === '.zip';
    body.exec = { kind: flag(c, 'kind') ?? kindOf(file), code: readFileSync(file).toString(zip ? 'base64' : 'utf8'), ...(zip ? { binary: true } : {}) };
  } else if (!update) throw new UsageError('missing code FILE (or --docker IMAGE, or --sequence A,B)');
  const main = flag(c, 'main');
  if (main !== undefined && body.exec) (body.exec as Record<string, unknown>).main = main;
  const limits: Record<string, number> = {};
  for (const [f, k] of [
    ['memory', 'memory'],
    ['timeout', 'timeout'],
    ['logs', 'logs'],
    ['concurrency', 'concurrency'],
  ] as const) {
    const v = flag(c, f);
    if (v !== undefined) {
      if (!/^\d+$/.test(v)) throw new UsageError(`--${f} must be a whole number`);
      limits[k] = Number(v);
    }
  }
  if (Object.keys(limits).length > 0) body.limits = limits;
  if (c.a.params.length > 0 || c.a.flags.has('param-file')) body.parameters = params(c);
  const web = webAnnotations(c);
  const annotations = [...kv(c.a.annotations), ...web.set];
  if (annotations.length > 0) body.annotations = annotations;
  if (web.del.length > 0) body.delAnnotations = web.del;
  const r = await call(c.t, 'PUT', `${entityPath(c, 'actions', name)}?overwrite=${update}`, body);
  print(c, r.body, () => `ok: ${update ? 'updated' : 'created'} action ${name}`);
  return 0;
}

async function entityPut(c: Cmd, collection: string, noun: string, update: boolean, extra: Record<string, unknown> = {}): Promise<number> {
  const name = need(c.a, 2, `${noun} NAME`);
  const body: Record<string, unknown> = { ...extra };
  if (c.a.params.length > 0 || c.a.flags.has('param-file')) body.parameters = params(c);
  if (c.a.annotations.length > 0) body.annotations = kv(c.a.annotations);
  const shared = flag(c, 'shared');
  if (shared !== undefined) body.publish = shared === 'yes' || shared === 'true';
  const r = await call(c.t, 'PUT', `${entityPath(c, collection, name)}?overwrite=${update}`, body);
  print(c, r.body, () => `ok: ${update ? 'updated' : 'created'} ${noun} ${name}`);
  return 0;
}

type Named = { name: string; namespace: string; version?: string; publish?: boolean; binding?: unknown; annotations?: { key: string; value: unknown }[] };
const listLine = (e: Named, extra = '') => `/${e.namespace}/${e.name}`.padEnd(50) + ` ${extra}`;

async function getOrDelete(c: Cmd, collection: string, noun: string, verb: 'get' | 'delete'): Promise<number> {
  const name = need(c.a, 2, `${noun} NAME`);
  const q = collection === 'actions' && verb === 'get' ? `?code=${c.a.flags.has('code')}` : '';
  const r = await call(c.t, verb === 'get' ? 'GET' : 'DELETE', `${entityPath(c, collection, name)}${q}`);
  print(c, r.body, () => (verb === 'get' ? `ok: got ${noun} ${name}\n${JSON.stringify(r.body, null, 2)}` : `ok: deleted ${noun} ${name}`));
  return 0;
}

/** A collection as wsk lists it: a heading, then each entity's full name and a word or two about it. */
async function list(c: Cmd, collection: string, about: (e: Named) => string): Promise<number> {
  const r = await call(c.t, 'GET', listPath(c, collection));
  print(c, r.body, () => [collection, ...(r.body as Named[]).map((e) => listLine(e, about(e)))].join('\n'));
  return 0;
}

/** `activation poll`: new activations as they end, as wsk prints them, until --exit seconds pass. */
async function poll(c: Cmd): Promise<number> {
  const name = c.a.positional[2];
  const exit = Number(flag(c, 'exit') ?? 0);
  const until = exit > 0 ? Date.now() + exit * 1000 : Infinity;
  const seen = new Set<string>();
  let since = Date.now();
  out(`Enter Ctrl-c to exit.\nPolling for activation logs`);
  while (Date.now() < until) {
    const r = await call(c.t, 'GET', `/api/v1/namespaces/${enc(c.ns)}/activations?docs=true&limit=200&since=${since}${name ? `&name=${enc(name)}` : ''}`);
    type A = { activationId: string; name: string; start: number; end: number | null; response: { status: string }; logs: string[] };
    for (const a of (r.body as A[]).reverse()) {
      if (seen.has(a.activationId) || a.end === null || a.response.status === 'running') continue;
      seen.add(a.activationId);
      since = Math.max(since, a.start);
      out(`\nActivation: '${a.name}' (${a.activationId})\n${a.logs.map((l) => `  ${l}`).join('\n')}`);
    }
    await new Promise((res) => setTimeout(res, 1000));
  }
  return 0;
}

/** wsk's words; null when the noun and verb are none of them. */
export async function wskDispatch(c: Cmd, noun: string, verb: string): Promise<number | null> {
  switch (`${noun} ${verb}`) {
    case 'action create':
    case 'action update':
      return actionPut(c, verb === 'update');
    case 'action get':
    case 'action delete':
      return getOrDelete(c, 'actions', 'action', verb as 'get' | 'delete');
    case 'action list': {
      const pkg = c.a.positional[2];
      const r = await call(c.t, 'GET', pkg ? `${entityPath(c, 'actions', pkg)}/?limit=200` : listPath(c, 'actions'));
      const kind = (e: Named) => String(e.annotations?.find((a) => a.key === 'exec')?.value ?? '');
      print(c, r.body, () => ['actions', ...(r.body as Named[]).map((e) => listLine(e, `private ${kind(e)}`))].join('\n'));
      return 0;
    }
    case 'action invoke': {
      const name = need(c.a, 2, 'action NAME');
      const result = c.a.flags.has('result');
      const blocking = result || c.a.flags.has('blocking');
      const r = await call(c.t, 'POST', `${entityPath(c, 'actions', name)}?blocking=${blocking}&result=${result}`, paramsOf(c.a));
      const id = r.headers.get('x-openwhisk-activation-id') ?? (r.body as { activationId?: string }).activationId;
      if (r.status === 202) print(c, r.body, () => `ok: invoked /${c.ns}/${name}${blocking ? ', but the request has not yet finished,' : ''} with id ${id}`);
      else if (result) out(JSON.stringify(r.body, null, 2));
      else print(c, r.body, () => `ok: invoked /${c.ns}/${name} with id ${id}\n${JSON.stringify(r.body, null, 2)}`);
      return r.status === 200 || r.status === 202 ? 0 : 1;
    }
    case 'activation poll':
      return poll(c);
    case 'package create':
    case 'package update':
      return entityPut(c, 'packages', 'package', verb === 'update');
    case 'package bind': {
      const [pkg, binding] = [need(c.a, 2, 'PACKAGE'), need(c.a, 3, 'BINDING')];
      const abs = pkg.startsWith('/') ? pkg.slice(1).split('/') : [c.ns, pkg];
      c.a.positional.splice(2, 2, binding);
      return entityPut(c, 'packages', 'binding', false, { binding: { namespace: abs[0], name: abs[1] } });
    }
    case 'package get':
    case 'package delete':
      return getOrDelete(c, 'packages', 'package', verb as 'get' | 'delete');
    case 'package list':
      return list(c, 'packages', (e) => `${e.publish ? 'shared' : 'private'}${e.binding ? ' binding' : ''}`);
    case 'trigger create':
    case 'trigger update': {
      const feed = flag(c, 'feed');
      if (feed !== undefined) c.a.annotations.push(['feed', feed]);
      return entityPut(c, 'triggers', 'trigger', verb === 'update');
    }
    case 'trigger get':
    case 'trigger delete':
      return getOrDelete(c, 'triggers', 'trigger', verb as 'get' | 'delete');
    case 'trigger list':
      return list(c, 'triggers', (e) => (e.publish ? 'shared' : 'private'));
    case 'trigger fire': {
      const name = need(c.a, 2, 'trigger NAME');
      const r = await call(c.t, 'POST', entityPath(c, 'triggers', name), paramsOf(c.a));
      print(c, r.body, () =>
        r.status === 204 ? `ok: triggered /${c.ns}/${name}, but no rule is active` : `ok: triggered /${c.ns}/${name} with id ${(r.body as { activationId: string }).activationId}`,
      );
      return 0;
    }
    case 'rule create':
    case 'rule update': {
      const name = need(c.a, 2, 'rule NAME');
      const [trigger, action] = [c.a.positional[3], c.a.positional[4]];
      if (verb === 'create' && (trigger === undefined || action === undefined)) throw new UsageError('rule create NAME TRIGGER ACTION');
      const body = { ...(trigger ? { trigger } : {}), ...(action ? { action } : {}) };
      const r = await call(c.t, 'PUT', `${entityPath(c, 'rules', name)}?overwrite=${verb === 'update'}`, body);
      print(c, r.body, () => `ok: ${verb === 'update' ? 'updated' : 'created'} rule ${name}`);
      return 0;
    }
    case 'rule enable':
    case 'rule disable': {
      const name = need(c.a, 2, 'rule NAME');
      const r = await call(c.t, 'POST', entityPath(c, 'rules', name), { status: verb === 'enable' ? 'active' : 'inactive' });
      print(c, r.body, () => `ok: ${verb}d rule ${name}`);
      return 0;
    }
    case 'rule get':
    case 'rule delete':
      return getOrDelete(c, 'rules', 'rule', verb as 'get' | 'delete');
    case 'rule list':
      return list(c, 'rules', (e) => (e.publish ? 'shared' : 'private'));
    case 'namespace get': {
      const all = await Promise.all(
        ['actions', 'packages', 'triggers', 'rules'].map(async (k) => [k, (await call(c.t, 'GET', `/api/v1/namespaces/${enc(c.ns)}/${k}?limit=0`)).body as Named[]] as const),
      );
      print(c, Object.fromEntries(all), () =>
        [`Entities in namespace: ${c.ns === '_' ? 'default' : c.ns}`, ...all.flatMap(([k, xs]) => [k, ...xs.map((e) => `/${e.namespace}/${e.name}`)])].join('\n'),
      );
      return 0;
    }
    case 'property get': {
      const info = (await call(c.t, 'GET', '/api/v1')).body as { build: string; host: string };
      const names = (await call(c.t, 'GET', '/api/v1/namespaces')).body as (string | { name: string })[];
      const ns = names.map((n) => (typeof n === 'string' ? n : n.name));
      const props = { apihost: c.t.apihost, namespace: ns[0] ?? c.ns, apibuild: info.build, apiversion: 'v1', host: info.host };
      print(c, props, () =>
        [
          `whisk API host        ${props.apihost}`,
          `whisk namespace       ${props.namespace}`,
          `whisk API build       ${props.apibuild}`,
          `whisk API version     v1`,
          `daemon host           ${props.host}`,
        ].join('\n'),
      );
      return 0;
    }
    default:
      return null;
  }
}
