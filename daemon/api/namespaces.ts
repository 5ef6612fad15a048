import type { FastifyInstance } from 'fastify';
import { issueKey, requireAdmin } from '../auth.ts';
import { conflict, invalid, notFound } from '../errors.ts';
import type { NamespaceName } from '../ids.ts';
import { fnKeyPrefix } from '../invoker.ts';
import { namespaceFor, principalOf, type ApiContext } from './context.ts';
import { nsParams } from './schemas.ts';

/** what these routes use of the daemon */
type Ctx = Pick<ApiContext, 'blobs' | 'config' | 'namespaceNetwork' | 'pool' | 'quota' | 'registry' | 'removeNamespaceNetwork' | 'store'>;

// Namespaces (tenants). Creating and deleting them takes the admin key; a
// namespace key sees only its own namespace.

export function namespaceRoutes(app: FastifyInstance, ctx: Ctx): void {
  app.get('/api/v1/namespaces', { schema: { tags: ['namespaces'], summary: "List namespaces: a namespace key gets OpenWhisk's one-name list, the admin key every namespace" } }, async (req) => {
    const p = principalOf(ctx, req);
    return p.kind === 'admin' ? ctx.store.listNamespaces() : [p.namespace];
  });

  app.put<{ Params: { namespace: NamespaceName } }>(
    '/api/v1/namespaces/:namespace',
    { schema: { tags: ['namespaces'], summary: 'Create a namespace and its first key (admin)', params: nsParams } },
    async (req, reply) => {
      requireAdmin(principalOf(ctx, req));
      const ns = req.params.namespace;
      if (ns === '_') throw invalid('/params/namespace', '"_" stands for the caller\'s own namespace and cannot be created');
      if (ctx.store.hasNamespace(ns)) throw conflict(`namespace ${ns} already exists`, '/params/namespace');
      const auth = ctx.store.transaction(() => {
        ctx.store.createNamespace(ns, Date.now());
        return issueKey(ctx.store, ns);
      });
      ctx.registry.namespaceWritten(ns);
      // The network is made now so the first invocation does not pay for it; if the engine is down, it is made then.
      const network = await ctx.namespaceNetwork(ns).catch((err: unknown) => {
        req.log.warn({ err, namespace: ns }, 'namespace network not created yet');
        return null;
      });
      return reply.code(201).send({ name: ns, auth, network });
    },
  );

  app.delete<{ Params: { namespace: NamespaceName } }>(
    '/api/v1/namespaces/:namespace',
    { schema: { tags: ['namespaces'], summary: 'Delete a namespace with its functions and activations (admin)', params: nsParams } },
    async (req) => {
      requireAdmin(principalOf(ctx, req));
      const ns = req.params.namespace;
      if (!ctx.store.hasNamespace(ns)) throw notFound(`namespace ${ns}`, '/params/namespace');
      const fns = ctx.store.listFunctions(ns, 1_000_000, 0);
      ctx.store.deleteNamespace(ns);
      ctx.registry.namespaceDeleted(ns);
      for (const f of fns) {
        await ctx.pool.retire(fnKeyPrefix(f));
        ctx.pool.forget(fnKeyPrefix(f));
        if (!ctx.store.digestInUse(f.digest)) ctx.blobs.delete(f.digest);
      }
      await ctx.removeNamespaceNetwork(ns);
      return { name: ns, deleted: true };
    },
  );

  const limitsBody = {
    type: 'object',
    required: ['invocationsPerMinute', 'concurrentActivations'],
    additionalProperties: false,
    properties: {
      invocationsPerMinute: { type: 'integer', minimum: 0, maximum: 1_000_000, description: '0: no limit' },
      concurrentActivations: { type: 'integer', minimum: 0, maximum: 100_000, description: '0: no limit' },
    },
  } as const;
  const limitsView = (ns: NamespaceName) => {
    const own = ctx.store.namespaceLimits(ns);
    const l = own ?? ctx.quota.defaults;
    const L = ctx.config.limits;
    return {
      namespace: ns,
      invocationsPerMinute: l.perMinute,
      concurrentActivations: l.concurrent,
      own: own !== undefined,
      // OpenWhisk's names for the same, and the action limits, as its clients read them (0: no limit).
      concurrentInvocations: l.concurrent,
      firesPerMinute: l.perMinute,
      minActionMemory: L.memoryMb.min,
      maxActionMemory: L.memoryMb.max,
      minActionTimeout: L.timeoutMs.min,
      maxActionTimeout: L.timeoutMs.max,
      minActionLogs: 0,
      maxActionLogs: Math.floor(L.logBytes / 1024 / 1024),
      minActionConcurrency: L.concurrency.min,
      maxActionConcurrency: L.concurrency.max,
      maxParameterSize: `${L.payloadBytes} B`,
    };
  };

  app.get<{ Params: { namespace: string } }>(
    '/api/v1/namespaces/:namespace/limits',
    { schema: { tags: ['namespaces'], summary: "The namespace's quota: its own, or the daemon's default", params: nsParams } },
    async (req) => limitsView(namespaceFor(ctx, req, req.params.namespace)),
  );

  app.put<{ Params: { namespace: NamespaceName }; Body: { invocationsPerMinute: number; concurrentActivations: number } }>(
    '/api/v1/namespaces/:namespace/limits',
    { schema: { tags: ['namespaces'], summary: "Set the namespace's own quota (admin); replicated to every daemon", params: nsParams, body: limitsBody } },
    async (req) => {
      requireAdmin(principalOf(ctx, req));
      const ns = req.params.namespace;
      if (!ctx.store.hasNamespace(ns)) throw notFound(`namespace ${ns}`, '/params/namespace');
      ctx.store.setNamespaceLimits(ns, { perMinute: req.body.invocationsPerMinute, concurrent: req.body.concurrentActivations });
      ctx.registry.namespaceWritten(ns);
      return limitsView(ns);
    },
  );
}
