import type { FastifyInstance } from 'fastify';
import { conflict, invalid, notFound, tooLarge } from '../errors.ts';
import { expandInstances } from '../../gossip/addrmap.ts';
import { MAX_GROUP } from '../fnapi.ts';
import { isName, type FunctionName } from '../ids.ts';
import { parseRestart } from '../jobs.ts';
import { fnKeyPrefix } from '../invoker.ts';
import type { FunctionRecord, Runtime } from '../types.ts';
import { httpStatusFor, withinBlockingWait } from './activations.ts';
import { namespaceFor, type ApiContext } from './context.ts';
import { fnParams, keyValueList, name, nsParams, paging } from './schemas.ts';

// Functions (OpenWhisk calls them actions): create, update, read, delete, invoke.

interface PutBody {
  exec: { kind: 'nodejs' | 'python' | 'blackbox'; code?: string; main?: string; binary?: boolean; image?: string };
  limits?: { memory?: number; timeout?: number; concurrency?: number };
  parameters?: { key: string; value: unknown }[];
}

const IMAGE_PATTERN = '^[a-z0-9][a-z0-9._/-]*(:[A-Za-z0-9_.-]{1,128})?(@sha256:[0-9a-f]{64})?$';

export const functionView = (f: FunctionRecord, code?: string) => ({
  namespace: f.namespace,
  name: f.name,
  version: `0.0.${f.version}`,
  exec: {
    kind: f.runtime.kind === 'image' ? 'blackbox' : f.runtime.kind,
    ...(f.runtime.kind === 'image' ? { image: f.runtime.image } : {}),
    main: f.main,
    binary: f.binary,
    digest: f.digest,
    ...(code === undefined ? {} : { code }),
  },
  limits: { memory: f.limits.memoryMb, timeout: f.limits.timeoutMs, concurrency: f.limits.concurrency },
  parameters: Object.entries(f.parameters).map(([key, value]) => ({ key, value })),
  created: f.created,
  updated: f.updated,
});

export function functionRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const L = ctx.config.limits;

  app.get<{ Params: { namespace: string }; Querystring: { limit: number; skip: number } }>(
    '/api/v1/namespaces/:namespace/actions',
    {
      schema: {
        tags: ['functions'],
        summary: 'List functions',
        params: nsParams,
        querystring: { type: 'object', additionalProperties: false, properties: paging },
      },
    },
    async (req) => {
      const ns = namespaceFor(ctx, req, req.params.namespace);
      return ctx.store.listFunctions(ns, req.query.limit, req.query.skip).map((f) => functionView(f));
    },
  );

  app.put<{ Params: { namespace: string; name: FunctionName }; Querystring: { overwrite: boolean }; Body: PutBody }>(
    '/api/v1/namespaces/:namespace/actions/:name',
    {
      // Code may be base64 (4/3 larger) plus the rest of the document.
      bodyLimit: Math.ceil((L.codeBytes * 4) / 3) + 2 * L.payloadBytes,
      schema: {
        tags: ['functions'],
        summary: 'Create or (with ?overwrite=true) update a function',
        params: fnParams,
        querystring: { type: 'object', additionalProperties: false, properties: { overwrite: { type: 'boolean', default: false } } },
        body: {
          type: 'object',
          required: ['exec'],
          additionalProperties: false,
          properties: {
            exec: {
              type: 'object',
              required: ['kind'],
              additionalProperties: false,
              properties: {
                kind: { type: 'string', enum: ['nodejs', 'python', 'blackbox'] },
                code: { type: 'string' },
                main: { type: 'string', pattern: '^[A-Za-z_$][A-Za-z0-9_$]*(\\.[A-Za-z_$][A-Za-z0-9_$]*)*$', maxLength: 256 },
                binary: { type: 'boolean' },
                image: { type: 'string', pattern: IMAGE_PATTERN, maxLength: 512 },
              },
            },
            limits: {
              type: 'object',
              additionalProperties: false,
              properties: {
                memory: { type: 'integer', minimum: L.memoryMb.min, maximum: L.memoryMb.max },
                timeout: { type: 'integer', minimum: L.timeoutMs.min, maximum: L.timeoutMs.max },
                concurrency: { type: 'integer', minimum: L.concurrency.min, maximum: L.concurrency.max },
              },
            },
            parameters: keyValueList,
          },
        },
      },
    },
    async (req, reply) => {
      const ns = namespaceFor(ctx, req, req.params.namespace);
      const { exec, limits, parameters } = req.body;
      let runtime: Runtime;
      if (exec.kind === 'blackbox') {
        if (!exec.image) throw invalid('/body/exec/image', 'a blackbox function needs an image');
        runtime = { kind: 'image', image: exec.image };
      } else {
        if (exec.image !== undefined) throw invalid('/body/exec/image', `an image is only for kind blackbox, not ${exec.kind}`);
        if (!exec.code || exec.code.trim() === '') throw invalid('/body/exec/code', `a ${exec.kind} function needs code`);
        runtime = { kind: exec.kind };
      }
      const binary = exec.binary ?? false;
      const code = exec.code ?? '';
      if (binary && !/^[A-Za-z0-9+/]*={0,2}$/.test(code)) throw invalid('/body/exec/code', 'binary code must be base64');
      const bytes = Buffer.from(code, binary ? 'base64' : 'utf8');
      if (bytes.length > L.codeBytes) throw tooLarge('/body/exec/code', `code is ${bytes.length} bytes; the limit is ${L.codeBytes}`);
      const params: Record<string, unknown> = {};
      for (const p of parameters ?? []) params[p.key] = p.value;
      if (Buffer.byteLength(JSON.stringify(params)) > L.payloadBytes)
        throw tooLarge('/body/parameters', `default parameters exceed ${L.payloadBytes} bytes`);

      const old = ctx.store.getFunction(ns, req.params.name);
      if (old && !req.query.overwrite) throw conflict(`function ${req.params.name} already exists; update it with overwrite=true`, '/params/name');
      const digest = ctx.blobs.put(bytes);
      const now = Date.now();
      const f: FunctionRecord = {
        namespace: ns,
        name: req.params.name,
        runtime,
        digest,
        binary,
        main: exec.main ?? 'main',
        limits: {
          memoryMb: limits?.memory ?? L.memoryMb.default,
          timeoutMs: limits?.timeout ?? L.timeoutMs.default,
          concurrency: limits?.concurrency ?? L.concurrency.default,
        },
        parameters: params,
        version: (old?.version ?? 0) + 1,
        created: old?.created ?? now,
        updated: now,
      };
      ctx.store.putFunction(f);
      ctx.registry.functionWritten(f);
      if (old) {
        await ctx.pool.retire(fnKeyPrefix(old));
        if (old.digest !== digest && !ctx.store.digestInUse(old.digest)) ctx.blobs.delete(old.digest);
      }
      return reply.code(old ? 200 : 201).send(functionView(f));
    },
  );

  app.get<{ Params: { namespace: string; name: FunctionName }; Querystring: { code: boolean } }>(
    '/api/v1/namespaces/:namespace/actions/:name',
    {
      schema: {
        tags: ['functions'],
        summary: 'Get a function (with its code unless code=false)',
        params: fnParams,
        querystring: { type: 'object', additionalProperties: false, properties: { code: { type: 'boolean', default: true } } },
      },
    },
    async (req) => {
      const ns = namespaceFor(ctx, req, req.params.namespace);
      const f = ctx.store.getFunction(ns, req.params.name);
      if (!f) throw notFound(`function ${req.params.name}`, '/params/name');
      return functionView(f, req.query.code ? ctx.blobs.get(f.digest).toString(f.binary ? 'base64' : 'utf8') : undefined);
    },
  );

  app.delete<{ Params: { namespace: string; name: FunctionName } }>(
    '/api/v1/namespaces/:namespace/actions/:name',
    { schema: { tags: ['functions'], summary: 'Delete a function', params: fnParams } },
    async (req) => {
      const ns = namespaceFor(ctx, req, req.params.namespace);
      const f = ctx.store.getFunction(ns, req.params.name);
      if (!f || !ctx.store.deleteFunction(ns, req.params.name)) throw notFound(`function ${req.params.name}`, '/params/name');
      ctx.registry.functionDeleted(ns, req.params.name);
      await ctx.pool.retire(fnKeyPrefix(f));
      if (!ctx.store.digestInUse(f.digest)) ctx.blobs.delete(f.digest);
      return functionView(f);
    },
  );

  app.post<{
    Params: { namespace: string; name: FunctionName };
    Querystring: { blocking: boolean; result: boolean; instance?: string; instances?: string; restart?: string; queueTimeout?: number };
    Body: Record<string, unknown> | undefined;
  }>(
    '/api/v1/namespaces/:namespace/actions/:name',
    {
      bodyLimit: L.payloadBytes,
      schema: {
        tags: ['functions'],
        summary: 'Invoke a function; the body holds its parameters. ?instance=ID names the instance; ?instances=w-{0..9} starts a group (a job)',
        params: fnParams,
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            blocking: { type: 'boolean', default: false },
            result: { type: 'boolean', default: false },
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
      const q = req.query;
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
        namespace: ns, function: req.params.name, params: req.body ?? {}, ids, group, field: q.instance ? '/query/instance' : '/query/instances',
        restart: parseRestart(q.restart, '/query/restart'), queueTimeoutMs: q.queueTimeout,
      });
      const jobId = job ? { jobId: job.jobId } : {};
      const accepted = () => reply.code(202).send(group
        ? { ...jobId, activations: members.map(({ instance, activationId }) => ({ instance, activationId })) }
        : { activationId: members[0]!.activationId });
      if (!q.blocking && !q.result) return accepted();
      const all = await withinBlockingWait(Promise.all(members.map((m) => m.done)));
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
