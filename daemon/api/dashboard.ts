import { readFileSync } from 'node:fs';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Principal } from '../auth.ts';
import { PeerlessError } from '../errors.ts';
import type { NamespaceName } from '../ids.ts';
import { principalOf, type ApiContext } from './context.ts';
import { eventStreams } from './sse.ts';

/** what these routes use of the daemon */
type Ctx = Pick<ApiContext, 'cluster' | 'directory' | 'engine' | 'hostId' | 'invoker' | 'pool' | 'store'>;

// The live dashboard: one static page, and one snapshot of what an operator
// (admin key: every namespace) or a tenant (namespace key: its own) may see,
// also as a server-sent event stream that pushes the snapshot when it changes.

const PAGE = readFileSync(new URL('../dashboard.html', import.meta.url), 'utf8');
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
    state: m.synced ? 'up' : 'syncing',
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
    reply.type('text/html; charset=utf-8').header('content-security-policy', "default-src 'self'; style-src 'unsafe-inline'; script-src 'unsafe-inline'").send(PAGE),
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
