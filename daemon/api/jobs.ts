import type { FastifyInstance } from 'fastify';
import { notFound } from '../errors.ts';
import { JOB_ID_PATTERN } from '../jobs.ts';
import { namespaceFor, type ApiContext } from './context.ts';
import { name, nsParams } from './schemas.ts';

/** what these routes use of the daemon */
type Ctx = Pick<ApiContext, 'records' | 'store'>;

// Jobs: every group invocation and every spawn. Any daemon answers for any
// job; the one that admitted it holds the record and carries out a cancel.

const jobParams = {
  type: 'object',
  required: ['namespace', 'id'],
  additionalProperties: false,
  properties: { namespace: name, id: { type: 'string', pattern: JOB_ID_PATTERN } },
} as const;

export function jobRoutes(app: FastifyInstance, ctx: Ctx): void {
  app.get<{ Params: { namespace: string }; Querystring: { limit: number } }>(
    '/api/v1/namespaces/:namespace/jobs',
    {
      schema: {
        tags: ['jobs'],
        summary: "The namespace's jobs on every live daemon, newest first (a Peerless-Missing-Hosts header names daemons that did not answer)",
        params: nsParams,
        querystring: { type: 'object', additionalProperties: false, properties: { limit: { type: 'integer', minimum: 1, maximum: 200, default: 30 } } },
      },
    },
    async (req, reply) => {
      const ns = namespaceFor(ctx, req, req.params.namespace);
      const { items, missing } = await ctx.records.jobList(ns, req.query.limit);
      if (missing.length > 0) void reply.header('peerless-missing-hosts', missing.join(','));
      return items;
    },
  );

  app.get<{ Params: { namespace: string; id: string } }>(
    '/api/v1/namespaces/:namespace/jobs/:id',
    { schema: { tags: ['jobs'], summary: 'A job: its members (instance, host, state, published status, start, end, outcome) and its own outcome', params: jobParams } },
    async (req) => {
      const ns = namespaceFor(ctx, req, req.params.namespace);
      const j = await ctx.records.job(ns, req.params.id);
      if (!j) throw notFound(`job ${req.params.id}`, '/params/id');
      return j;
    },
  );

  app.delete<{ Params: { namespace: string; id: string } }>(
    '/api/v1/namespaces/:namespace/jobs/:id',
    { schema: { tags: ['jobs'], summary: 'Cancel a job: members that wait never start, running ones are stopped on every daemon', params: jobParams } },
    async (req) => {
      const ns = namespaceFor(ctx, req, req.params.namespace);
      const j = await ctx.records.kill(ns, req.params.id);
      if (!j) throw notFound(`job ${req.params.id}`, '/params/id');
      return j;
    },
  );
}
