import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Principal } from '../auth.ts';
import { PeerlessError } from '../errors.ts';
import type { NamespaceName } from '../ids.ts';
import { asset } from '../../sea/assets.ts';
import { principalOf, type ApiContext } from './context.ts';
import { eventStreams } from './sse.ts';

/** what these routes use of the daemon */
type Ctx = Pick<ApiContext, 'cluster' | 'directory' | 'engine' | 'hostId' | 'invoker' | 'metrics' | 'pool' | 'store'>;

// The live dashboard: one static page, and one snapshot of what an operator
// (admin key: every namespace) or a tenant (namespace key: its own) may see,
// also as a server-sent event stream that pushes the snapshot when it changes.

const PAGE = asset('dashboard.html').toString('utf8');
// The charts are drawn by uPlot, served as its package ships it: no build step.
const ASSETS: Record<string, { type: string; body: string }> = {
  'uplot.js': { type: 'text/javascript; charset=utf-8', body: asset('uplot.js').toString('utf8') },
  'uplot.css': { type: 'text/css; charset=utf-8', body: asset('uplot.css').toString('utf8') },
};
const RECENT = 25;
const TICK_MS = 500;

function snapshot(ctx: Ctx, p: Principal) {
  const namespaces = p.kind === 'admin' ? ctx.store.listNamespaces().map((n) => n.name) : [p.namespace];
  const self = {
    host: ctx.hostId,
    self: true,
    state: ctx.engine.isLost ? 'engine lost' : 'up',
    load: ctx.invoker.running,
    freeMb: ctx.pool.freeMb(),
    instances: ctx.directory.map.size(),
    lastSeenMs: 0,
  };
  const peers = (ctx.cluster?.peers() ?? []).map((m) => ({
    host: m.host,
    self: false,
    state: m.suspected ? 'suspected' : m.synced ? 'up' : 'syncing',
    connected: m.connected,
    load: m.load,
    freeMb: m.freeMb,
    instances: m.entries,
    lastSeenMs: Date.now() - m.lastSeen,
  }));
  return {
    host: ctx.hostId,
    scope: p.kind === 'admin' ? 'admin' : p.namespace,
    hosts: [self, ...peers],
    containers: ctx.pool.stats(),
    /** this daemon's last hour, in 10-second buckets */
    series: ctx.metrics.series.points(Date.now()),
    namespaces: namespaces.map((ns) => ({ namespace: ns, instances: ctx.directory.view(ns).instances })),
    activations: ctx.store.recentActivations(p.kind === 'admin' ? null : (p.namespace as NamespaceName), RECENT).map((a) => ({
      activationId: a.activationId,
      namespace: a.namespace,
      name: a.name,
      host: a.host,
      start: a.start,
      duration: a.duration,
      status: a.status,
    })),
  };
}

/** As principalOf, but a 401 without WWW-Authenticate: the browser must not pop up its own login over the page's. */
function viewer(ctx: Ctx, req: FastifyRequest): Principal {
  try {
    return principalOf(ctx, req);
  } catch (e) {
    if (e instanceof PeerlessError && e.code === 'unauthorized') throw new PeerlessError('unauthorized', e.message, { field: '/headers/authorization' });
    throw e;
  }
}

export function dashboardRoutes(app: FastifyInstance, ctx: Ctx): void {
  const stream = eventStreams(app);
  // The page holds no data: it asks for a key and reads the API with it.
  app.get('/dashboard', { schema: { tags: ['dashboard'], summary: 'Live dashboard (HTML)', security: [] } }, async (_req, reply) =>
    reply.type('text/html; charset=utf-8').header('content-security-policy', "default-src 'self'; style-src 'self' 'unsafe-inline'; script-src 'self' 'unsafe-inline'").send(PAGE),
  );
  app.get<{ Params: { file: string } }>(
    '/dashboard/:file',
    {
      schema: { tags: ['dashboard'], summary: "The dashboard's chart library (uPlot)", security: [], params: { type: 'object', properties: { file: { type: 'string', enum: Object.keys(ASSETS) } } } },
    },
    async (req, reply) => {
      const a = ASSETS[req.params.file]!;
      return reply.type(a.type).header('cache-control', 'public, max-age=86400').send(a.body);
    },
  );

  app.get('/api/v1/dashboard', { schema: { tags: ['dashboard'], summary: 'Hosts, instances per namespace and recent activations visible to this key' } }, async (req) =>
    snapshot(ctx, viewer(ctx, req)),
  );

  app.get('/api/v1/dashboard/stream', { schema: { tags: ['dashboard'], summary: 'The dashboard snapshot as server-sent events, pushed on change' } }, async (req, reply) => {
    const p = viewer(ctx, req);
    // Load and heartbeats change without events of their own: compare snapshots on a short tick.
    let last = '';
    const timer = setInterval(() => push(), TICK_MS);
    const out = stream(req, reply, () => clearInterval(timer));
    const push = () => {
      const s = JSON.stringify(snapshot(ctx, p));
      if (s !== last) out.send('snapshot', s);
      last = s;
    };
    push();
  });
}
