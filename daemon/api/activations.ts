import type { FastifyInstance } from 'fastify';
import { invalid, notFound } from '../errors.ts';
import type { ActivationId, FunctionName, NamespaceName } from '../ids.ts';
import { namespaceFor, type ApiContext } from './context.ts';
import { activationParams, name, nsParams, paging } from './schemas.ts';

/** what these routes use of the daemon */
type Ctx = Pick<ApiContext, 'records' | 'store'>;

// Activation records, in OpenWhisk's shape, read across the cluster.

export function activationRoutes(app: FastifyInstance, ctx: Ctx): void {
  app.get<{ Params: { namespace: string }; Querystring: { name?: FunctionName; since: number; upto: number; limit: number; skip: number; docs: boolean; count: boolean } }>(
    '/api/v1/namespaces/:namespace/activations',
    {
      schema: {
        tags: ['activations'],
        summary: "List the namespace's activations on every live daemon, newest first (a Peerless-Missing-Hosts header names daemons that did not answer)",
        params: nsParams,
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            name,
            since: { type: 'integer', minimum: 0, default: 0 },
            upto: { type: 'integer', minimum: 0, default: Number.MAX_SAFE_INTEGER },
            docs: { type: 'boolean', default: false },
            count: { type: 'boolean', default: false },
            ...paging,
          },
        },
      },
    },
    async (req, reply) => {
      const ns = namespaceFor(ctx, req, req.params.namespace);
      const q = req.query;
      if (q.count && q.docs) throw invalid('/query/docs', "The parameter 'docs' is not permitted with 'count'.");
      // count=true: how many (up to the window a listing reads, 10,000); limit=0 means OpenWhisk's maximum.
      const limit = q.count ? 10_000 : q.limit || 200;
      const { items, missing } = await ctx.records.activations(ns, { name: q.name ?? null, since: q.since, upto: q.upto, limit, skip: q.count ? 0 : q.skip, docs: q.docs });
      if (missing.length > 0) void reply.header('peerless-missing-hosts', missing.join(','));
      return q.count ? { activations: items.length } : items;
    },
  );

  /** The activation as a view: held here, or (in a cluster) by the daemon that ran it. */
  const one = async (req: { params: { namespace: string; id: ActivationId } } & Parameters<typeof namespaceFor>[1]) => {
    const ns: NamespaceName = namespaceFor(ctx, req, req.params.namespace);
    const a = await ctx.records.activation(ns, req.params.id);
    if (!a) throw notFound(`activation ${req.params.id}`, '/params/id');
    return a;
  };
  const schema = (summary: string) => ({ schema: { tags: ['activations'], summary, params: activationParams } });

  app.get<{ Params: { namespace: string; id: ActivationId } }>('/api/v1/namespaces/:namespace/activations/:id', schema('Get an activation'), async (req) => one(req));
  app.get<{ Params: { namespace: string; id: ActivationId } }>('/api/v1/namespaces/:namespace/activations/:id/logs', schema("Get an activation's logs"), async (req) => ({
    logs: (await one(req)).logs,
  }));
  app.get<{ Params: { namespace: string; id: ActivationId } }>('/api/v1/namespaces/:namespace/activations/:id/result', schema("Get an activation's result"), async (req) => (await one(req)).response);
}
