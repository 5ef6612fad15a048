import type { FastifyInstance } from 'fastify';
import { conflict, invalid, notFound, PeerlessError, tooLarge } from '../errors.ts';
import { expandInstances } from '../../gossip/addrmap.ts';
import { MAX_GROUP } from '../fnapi.ts';
import { ENTRY_PATTERN, IMAGE_PATTERN, isName, SEMVER_PATTERN, type FunctionName } from '../ids.ts';
import { parseRestart } from '../jobs.ts';
import { fnKeyPrefix } from '../invoker.ts';
import { bumpVersion, resolveKind } from '../kinds.ts';
import { componentOf } from '../sequences.ts';
import { parseRef } from '../entities.ts';
import type { FunctionRecord, KeyValue, Runtime } from '../types.ts';
import { BLOCKING_WAIT_MS, httpStatusFor, withinBlockingWait } from '../activationView.ts';
import { namespaceFor, type ApiContext } from './context.ts';
import { pkgFnParams, resolveAction } from './packages.ts';
import { fnParams, ignoredListParams, keyValueList, name, nsParams, paging } from './schemas.ts';

/** what these routes use of the daemon */
type Ctx = Pick<ApiContext, 'blobs' | 'config' | 'directory' | 'invocations' | 'pool' | 'registry' | 'store'>;

// Functions (OpenWhisk calls them actions): create, update, read, delete, invoke.

interface PutBody {
  exec?: { kind: string; code?: string; main?: string; binary?: boolean; image?: string; components?: (string | { path: string; name: string })[] };
  limits?: { memory?: number; timeout?: number; concurrency?: number; logs?: number };
  parameters?: { key: string; value: unknown; init?: boolean }[];
  annotations?: KeyValue[];
  delAnnotations?: string[];
  version?: string;
  publish?: boolean;
}

/** A zip (PK\x03\x04) or gzip archive, as OpenWhisk's runtimes tell them apart. */
const isArchive = (b: Buffer) => (b[0] === 0x50 && b[1] === 0x4b && b[2] === 0x03 && b[3] === 0x04) || (b[0] === 0x1f && b[1] === 0x8b);
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** The kind OpenWhisk clients read from the `exec` annotation, since lists carry no exec.kind. */
const withExec = (annotations: KeyValue[], kind: string): KeyValue[] => [...annotations.filter((a) => a.key !== 'exec'), { key: 'exec', value: kind }];

/** OpenWhisk names an action in a package by namespace ns/pkg and its own name. */
const owName = (f: Pick<FunctionRecord, 'namespace' | 'name'>) => {
  const i = f.name.indexOf('/');
  return i < 0 ? { namespace: f.namespace as string, name: f.name as string } : { namespace: `${f.namespace}/${f.name.slice(0, i)}`, name: f.name.slice(i + 1) };
};

export const functionView = (f: FunctionRecord, code?: string) => ({
  ...owName(f),
  version: f.meta.version,
  publish: f.meta.publish,
  exec:
    f.runtime.kind === 'sequence'
      ? { kind: 'sequence', components: f.runtime.components, binary: false }
      : {
          kind: f.meta.kind,
          ...(f.runtime.kind === 'image' ? { image: f.runtime.image } : {}),
          main: f.main,
          binary: f.binary,
          digest: f.digest,
          ...(code === undefined ? {} : { code }),
        },
  limits: { memory: f.limits.memoryMb, timeout: f.limits.timeoutMs, logs: f.meta.logsMb, concurrency: f.limits.concurrency },
  parameters: Object.entries(f.parameters).map(([key, value]) => (f.meta.init.includes(key) ? { key, value, init: true } : { key, value })),
  annotations: f.meta.annotations,
  created: f.created,
  updated: f.updated,
});

/** A list item, as OpenWhisk lists actions: no code and no exec.kind (the `exec` annotation has it). */
const listItem = (f: FunctionRecord) => {
  const { exec, parameters: _p, ...rest } = functionView(f);
  return { ...rest, exec: { binary: exec.binary } };
};

/** Components as fully qualified names (/ns/name), `_` read as the caller's namespace. */
function componentNames(given: NonNullable<PutBody['exec']>['components'], ns: string): string[] {
  if (!given || given.length === 0) throw invalid('/body/exec/components', 'No component specified for the sequence.');
  return given.map((c, i) => {
    const path = typeof c === 'string' ? c : `/${c.path}/${c.name}`;
    // OpenWhisk's naming: /ns/[pkg/]name, or name and pkg/name in the sequence's own namespace.
    const r = parseRef(path, ns);
    if (!r) throw invalid(`/body/exec/components/${i}`, `${JSON.stringify(path)} is not a function name (/namespace/name or /namespace/package/name)`);
    return `/${r.namespace}/${r.name}`;
  });
}

type FnRouteParams = { namespace: string; name: FunctionName; pkg?: string };
/** Every action route twice: for an action of the namespace, and for one in a package (or a binding). */
const ROUTES = [
  ['/api/v1/namespaces/:namespace/actions/:name', fnParams],
  ['/api/v1/namespaces/:namespace/actions/:pkg/:name', pkgFnParams],
] as const;

export function functionRoutes(app: FastifyInstance, ctx: Ctx): void {
  const L = ctx.config.limits;

  app.get<{ Params: { namespace: string }; Querystring: { limit: number; skip: number; count: boolean } }>(
    '/api/v1/namespaces/:namespace/actions',
    {
      schema: {
        tags: ['functions'],
        summary: 'List functions (count=true: how many)',
        params: nsParams,
        querystring: { type: 'object', additionalProperties: false, properties: { ...paging, count: { type: 'boolean', default: false }, ...ignoredListParams } },
      },
    },
    async (req) => {
      const ns = namespaceFor(ctx, req, req.params.namespace);
      if (req.query.count) return { actions: ctx.store.countFunctions(ns) };
      // OpenWhisk's limit=0 means its maximum.
      return ctx.store.listFunctions(ns, req.query.limit || 200, req.query.skip).map(listItem);
    },
  );

  app.get<{ Params: { namespace: string; pkg: string }; Querystring: { limit: number; skip: number; count: boolean } }>(
    '/api/v1/namespaces/:namespace/actions/:pkg/',
    {
      schema: {
        tags: ['functions'],
        summary: "List a package's functions (a binding's: those of the package it binds)",
        params: { type: 'object', required: ['namespace', 'pkg'], additionalProperties: false, properties: { namespace: name, pkg: name } },
        querystring: { type: 'object', additionalProperties: false, properties: { ...paging, count: { type: 'boolean', default: false }, ...ignoredListParams } },
      },
    },
    async (req) => {
      const ns = namespaceFor(ctx, req, req.params.namespace);
      const prefix = resolveAction(ctx, ns, req.params.pkg, '', false).function; // "pkg/"
      const all = ctx.store.listFunctions(ns, 1_000_000, 0).filter((f) => f.name.startsWith(prefix));
      if (req.query.count) return { actions: all.length };
      return all.slice(req.query.skip, req.query.skip + (req.query.limit || 200)).map(listItem);
    },
  );

  for (const [url, params] of ROUTES)
    app.put<{ Params: FnRouteParams; Querystring: { overwrite: boolean }; Body: PutBody }>(
      url,
      {
        // Code may be base64 (4/3 larger) plus the rest of the document.
        bodyLimit: Math.ceil((L.codeBytes * 4) / 3) + 2 * L.payloadBytes,
        schema: {
          tags: ['functions'],
          summary: 'Create or (with ?overwrite=true) update a function, as OpenWhisk takes an action document',
          params,
          querystring: { type: 'object', additionalProperties: false, properties: { overwrite: { type: 'boolean', default: false } } },
          body: {
            type: 'object',
            additionalProperties: false,
            properties: {
              exec: {
                type: 'object',
                required: ['kind'],
                additionalProperties: false,
                properties: {
                  kind: { type: 'string', minLength: 1, maxLength: 64 },
                  code: { type: 'string' },
                  main: { type: 'string', pattern: ENTRY_PATTERN, maxLength: 256 },
                  binary: { type: 'boolean' },
                  image: { type: 'string', pattern: IMAGE_PATTERN, maxLength: 512 },
                  components: {
                    type: 'array',
                    maxItems: 50,
                    items: {
                      anyOf: [
                        { type: 'string', minLength: 1, maxLength: 600 },
                        { type: 'object', required: ['path', 'name'], properties: { path: { type: 'string', maxLength: 300 }, name: { type: 'string', maxLength: 300 } } },
                      ],
                    },
                  },
                },
              },
              limits: {
                type: 'object',
                additionalProperties: false,
                properties: {
                  memory: { type: 'integer', minimum: L.memoryMb.min, maximum: L.memoryMb.max },
                  timeout: { type: 'integer', minimum: L.timeoutMs.min, maximum: L.timeoutMs.max },
                  concurrency: { type: 'integer', minimum: L.concurrency.min, maximum: L.concurrency.max },
                  logs: { type: 'integer', minimum: 0, maximum: Math.floor(L.logBytes / 1024 / 1024) },
                },
              },
              parameters: keyValueList,
              annotations: keyValueList,
              delAnnotations: { type: 'array', maxItems: 1000, items: { type: 'string', maxLength: 256 } },
              version: { type: 'string', pattern: SEMVER_PATTERN },
              publish: { type: 'boolean' },
              // OpenWhisk clients send these; the path says both.
              name: { type: 'string', maxLength: 1024 },
              namespace: { type: 'string', maxLength: 1024 },
            },
          },
        },
      },
      async (req, reply) => {
        const ns = namespaceFor(ctx, req, req.params.namespace);
        const fname = resolveAction(ctx, ns, req.params.pkg, req.params.name, true).function;
        const body = req.body ?? {};
        const old = ctx.store.getFunction(ns, fname);
        if (old && !req.query.overwrite) throw conflict('resource already exists: update it with overwrite=true', '/params/name');
        if (!old && !body.exec) throw invalid('/body/exec', 'exec undefined: a new function needs exec (its kind, and code or an image)');
        const { exec, limits } = body;
        let runtime: Runtime = old?.runtime ?? { kind: 'nodejs' };
        let kind = old?.meta.kind ?? 'nodejs';
        let binary = old?.binary ?? false;
        let main = old?.main ?? 'main';
        let digest = old?.digest;
        let bytes: Buffer | undefined;
        if (exec) {
          const k = resolveKind(exec.kind);
          kind = k.kind;
          const code = exec.code ?? '';
          if (k.family === 'sequence') {
            if (exec.code !== undefined || exec.image !== undefined) throw invalid('/body/exec', 'a sequence has components, not code or an image');
            const components = componentNames(exec.components, ns);
            if (components.includes(`/${ns}/${fname}`)) throw invalid('/body/exec/components', 'Sequence may not refer to itself.');
            for (const [i, c] of components.entries()) {
              const comp = componentOf(c);
              // Tenants do not run each other's functions: without shared packages, components are the namespace's own.
              if (comp.namespace !== ns)
                throw new PeerlessError('forbidden', `The supplied authentication is not authorized to access '${c}': a sequence's components must be in its own namespace`, {
                  field: `/body/exec/components/${i}`,
                });
              if (!ctx.store.getFunction(comp.namespace, comp.name)) throw invalid(`/body/exec/components/${i}`, `Sequence component does not exist: ${c}`);
            }
            runtime = { kind: 'sequence', components };
            bytes = Buffer.alloc(0);
            binary = false;
          } else {
            if (exec.components !== undefined) throw invalid('/body/exec/components', `components are only for kind sequence, not ${exec.kind}`);
            if (k.family === 'blackbox') {
              if (!exec.image) throw invalid('/body/exec/image', 'a blackbox function needs an image');
              runtime = { kind: 'image', image: exec.image };
            } else {
              if (exec.image !== undefined) throw invalid('/body/exec/image', `an image is only for kind blackbox, not ${exec.kind}`);
              if (code.trim() === '') throw invalid('/body/exec/code', `a ${exec.kind} function needs code`);
              runtime = { kind: k.family };
            }
            // OpenWhisk's clients send an archive as base64 with no flag: one that decodes to a zip or gzip is one.
            const b64 = code.length % 4 === 0 && BASE64.test(code);
            binary = exec.binary ?? (b64 && code.length > 0 && isArchive(Buffer.from(code.slice(0, 8), 'base64')));
            if (binary && !b64) throw invalid('/body/exec/code', 'binary code must be base64');
            bytes = Buffer.from(code, binary ? 'base64' : 'utf8');
            if (bytes.length > L.codeBytes) throw tooLarge('/body/exec/code', `exec larger than allowed: ${bytes.length} > ${L.codeBytes} bytes`);
          }
          main = exec.main ?? 'main';
        }
        let params = old?.parameters ?? {};
        let init = old?.meta.init ?? [];
        if (body.parameters) {
          params = {};
          for (const p of body.parameters) params[p.key] = p.value;
          init = body.parameters.filter((p) => p.init === true).map((p) => p.key);
        }
        if (runtime.kind === 'sequence') {
          params = {};
          init = [];
        }
        if (Buffer.byteLength(JSON.stringify(params)) > L.payloadBytes) throw tooLarge('/body/parameters', `parameters larger than allowed: the limit is ${L.payloadBytes} bytes`);
        // Annotations merge on update (new keys win; delAnnotations removes), as OpenWhisk does since #4940.
        const merged = new Map((old?.meta.annotations ?? []).map((a) => [a.key, a.value] as const));
        for (const a of body.annotations ?? []) merged.set(a.key, a.value);
        for (const k of body.delAnnotations ?? []) merged.delete(k);
        if (!old && !merged.has('provide-api-key')) merged.set('provide-api-key', false);
        const annotations = withExec(
          [...merged].map(([key, value]) => ({ key, value })),
          kind,
        );
        if (Buffer.byteLength(JSON.stringify(annotations)) > L.payloadBytes) throw tooLarge('/body/annotations', `annotations larger than allowed: the limit is ${L.payloadBytes} bytes`);

        if (bytes) digest = ctx.blobs.put(bytes);
        const now = Date.now();
        const f: FunctionRecord = {
          namespace: ns,
          name: fname,
          runtime,
          digest: digest!,
          binary,
          main,
          limits: {
            memoryMb: limits?.memory ?? old?.limits.memoryMb ?? L.memoryMb.default,
            timeoutMs: limits?.timeout ?? old?.limits.timeoutMs ?? L.timeoutMs.default,
            concurrency: limits?.concurrency ?? old?.limits.concurrency ?? L.concurrency.default,
          },
          parameters: params,
          version: (old?.version ?? 0) + 1,
          created: old?.created ?? now,
          updated: now,
          meta: {
            kind,
            annotations,
            publish: body.publish ?? old?.meta.publish ?? false,
            version: body.version ?? (old ? bumpVersion(old.meta.version) : '0.0.1'),
            init,
            logsMb: limits?.logs ?? old?.meta.logsMb ?? Math.floor(L.logBytes / 1024 / 1024),
          },
        };
        ctx.store.putFunction(f);
        ctx.registry.functionWritten(f);
        if (old) {
          await ctx.pool.retire(fnKeyPrefix(old));
          if (old.digest !== f.digest && !ctx.store.digestInUse(old.digest)) ctx.blobs.delete(old.digest);
        }
        return reply.code(old ? 200 : 201).send(functionView(f));
      },
    );

  for (const [url, params] of ROUTES)
    app.get<{ Params: FnRouteParams; Querystring: { code: boolean } }>(
      url,
      {
        schema: {
          tags: ['functions'],
          summary: 'Get a function (with its code unless code=false)',
          params,
          querystring: { type: 'object', additionalProperties: false, properties: { code: { type: 'boolean', default: true } } },
        },
      },
      async (req) => {
        const ns = namespaceFor(ctx, req, req.params.namespace);
        const a = resolveAction(ctx, ns, req.params.pkg, req.params.name, false);
        const f = ctx.store.getFunction(ns, a.function);
        if (!f) throw notFound(`function ${a.function}`, '/params/name');
        const view = functionView(f, req.query.code ? ctx.blobs.get(f.digest).toString(f.binary ? 'base64' : 'utf8') : undefined);
        // Through a binding: its parameters under the action's, and the binding named (OpenWhisk's shape).
        if (!a.binding) return view;
        const parameters = Object.entries({ ...a.defaults, ...f.parameters }).map(([key, value]) => ({ key, value }));
        return { ...view, parameters, binding: a.binding };
      },
    );

  for (const [url, params] of ROUTES)
    app.delete<{ Params: FnRouteParams; Querystring: Record<string, never> }>(url, { schema: { tags: ['functions'], summary: 'Delete a function', params } }, async (req) => {
      const ns = namespaceFor(ctx, req, req.params.namespace);
      const fname = resolveAction(ctx, ns, req.params.pkg, req.params.name, true).function;
      const f = ctx.store.getFunction(ns, fname);
      if (!f || !ctx.store.deleteFunction(ns, fname)) throw notFound(`function ${fname}`, '/params/name');
      ctx.registry.functionDeleted(ns, fname);
      await ctx.pool.retire(fnKeyPrefix(f));
      ctx.pool.forget(fnKeyPrefix(f));
      if (!ctx.store.digestInUse(f.digest)) ctx.blobs.delete(f.digest);
      return functionView(f);
    });

  for (const [url, params] of ROUTES)
    app.post<{
      Params: FnRouteParams;
      Querystring: { blocking: boolean; result: boolean; timeout?: number; instance?: string; instances?: string; restart?: string; queueTimeout?: number };
      Body: Record<string, unknown> | undefined;
    }>(
      url,
      {
        bodyLimit: L.payloadBytes,
        schema: {
          tags: ['functions'],
          summary: 'Invoke a function; the body holds its parameters. ?instance=ID names the instance; ?instances=w-{0..9} starts a group (a job)',
          params,
          querystring: {
            type: 'object',
            additionalProperties: false,
            properties: {
              blocking: { type: 'boolean', default: false },
              result: { type: 'boolean', default: false },
              // OpenWhisk's: how long a blocking call waits (ms) before it answers 202 with the activation ID.
              timeout: { type: 'integer', minimum: 1, maximum: BLOCKING_WAIT_MS },
              instance: name,
              instances: { type: 'string', minLength: 1, maxLength: 8192 },
              restart: { type: 'string', maxLength: 32 },
              queueTimeout: { type: 'integer', minimum: 0, maximum: 300_000 },
            },
          },
          body: { type: 'object' },
        },
      },
      async (req, reply) => {
        const ns = namespaceFor(ctx, req, req.params.namespace);
        const action = resolveAction(ctx, ns, req.params.pkg, req.params.name, false);
        const q = req.query;
        const fn = ctx.store.getFunction(ns, action.function);
        // final: what the function (or its package) defines, the caller cannot override (OpenWhisk's rule).
        if (fn?.meta.annotations.some((a) => a.key === 'final' && a.value === true) && Object.keys(req.body ?? {}).some((k) => k in fn.parameters || k in action.defaults)) {
          throw invalid('/body', 'Request defines parameters that are not allowed (e.g., reserved properties).');
        }
        if (q.instance && q.instances) throw invalid('/query/instances', 'give either instance or instances, not both');
        let ids: string[] = [];
        if (q.instance) ids = [q.instance];
        else if (q.instances) {
          try {
            ids = expandInstances(q.instances, MAX_GROUP);
          } catch (e) {
            throw invalid('/query/instances', (e as Error).message);
          }
          const bad = ids.find((id) => !isName(id));
          if (bad !== undefined) throw invalid('/query/instances', `${JSON.stringify(bad)} is not a valid instance ID`);
        }
        const group = q.instances !== undefined;
        if (!group && q.restart !== undefined) throw invalid('/query/restart', 'restart applies to a group (instances=...)');
        const { job, members } = await ctx.invocations.invoke({
          namespace: ns,
          function: action.function,
          params: req.body ?? {},
          defaults: action.defaults,
          ids,
          group,
          field: q.instance ? '/query/instance' : '/query/instances',
          restart: parseRestart(q.restart, '/query/restart'),
          queueTimeoutMs: q.queueTimeout,
        });
        const jobId = job ? { jobId: job.jobId } : {};
        if (!group) void reply.header('x-openwhisk-activation-id', members[0]!.activationId);
        const accepted = () =>
          reply.code(202).send(group ? { ...jobId, activations: members.map(({ instance, activationId }) => ({ instance, activationId })) } : { activationId: members[0]!.activationId });
        if (!q.blocking && !q.result) return accepted();
        const all = await withinBlockingWait(Promise.all(members.map((m) => m.done)), q.timeout);
        if (all === 'late') return accepted();
        const shown = all.map((a) => (q.result ? a.response.result : a));
        return reply.code(httpStatusFor(all.map((a) => a.response.status))).send(group ? { ...jobId, activations: shown } : shown[0]);
      },
    );

  app.get<{ Params: { namespace: string } }>(
    '/api/v1/namespaces/:namespace/instances',
    { schema: { tags: ['instances'], summary: "The namespace's address map: live instances by ID", params: nsParams } },
    async (req) => ctx.directory.view(namespaceFor(ctx, req, req.params.namespace)),
  );

  app.get<{ Params: { namespace: string; id: string } }>(
    '/api/v1/namespaces/:namespace/instances/:id',
    {
      schema: {
        tags: ['instances'],
        summary: 'One live instance',
        params: { type: 'object', required: ['namespace', 'id'], additionalProperties: false, properties: { namespace: name, id: name } },
      },
    },
    async (req) => {
      const ns = namespaceFor(ctx, req, req.params.namespace);
      const e = ctx.directory.get(ns, req.params.id);
      if (!e) throw notFound(`instance ${req.params.id}`, '/params/id');
      return e;
    },
  );
}
