import { version } from '../sea/assets.ts';
import { randomBytes } from 'node:crypto';
import swagger from '@fastify/swagger';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { activationRoutes } from './api/activations.ts';
import { principalOf, type ApiContext } from './api/context.ts';
import { dashboardRoutes } from './api/dashboard.ts';
import { functionRoutes } from './api/functions.ts';
import { jobRoutes } from './api/jobs.ts';
import { namespaceRoutes } from './api/namespaces.ts';
import { problems, sendProblem } from './api/problems.ts';
import { restartRoutes } from './api/restart.ts';
import { packageRoutes } from './api/packages.ts';
import { ruleRoutes, triggerRoutes } from './api/triggers.ts';
import { webRoutes } from './api/web.ts';
import { PeerlessError } from './errors.ts';
import { runtimesManifest } from './kinds.ts';
import { MAX_SEQUENCE } from './sequences.ts';
import { problem } from './api/schemas.ts';

/** This build's version: the package's in a checkout, the stamped one in the single executable. */
export const VERSION = version();

/** The user API: OpenWhisk-shaped REST over fastify, every route schema-validated. */
export async function buildApp(ctx: ApiContext, https?: { cert: Buffer; key: Buffer }): Promise<FastifyInstance> {
  const app = Fastify({
    ...(https ? { https } : {}),
    loggerInstance: ctx.log as FastifyBaseLogger,
    // One log line per request would cost more than a warm invocation's own overhead.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: ctx.config.limits.payloadBytes,
    // Unknown fields are refused with a 400 naming them, not silently dropped.
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', useDefaults: true, allErrors: false } },
    return503OnClosing: true,
    // Long names reach the schema, which answers with a problem naming the field, instead of the router's bare 414.
    routerOptions: { maxParamLength: 2048 },
    // Every request has an ID, sent back as X-Request-ID and as `code` in error bodies (OpenWhisk's
    // transaction ID). A caller's own ID is kept if it is a sane token (the openwhisk client sends one).
    requestIdHeader: false,
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && /^[A-Za-z0-9._:-]{1,128}$/.test(given) ? given : randomBytes(16).toString('hex');
    },
    // Errors fastify raises before routing (a malformed percent-encoding in the path) leave as problems too.
    frameworkErrors: (error, _req, reply) => {
      void sendProblem(reply, new PeerlessError('bad_request', `the URL is malformed: ${error.message}`, { field: '/path' }));
    },
  });
  problems(app);
  app.addHook('onRequest', async (req, reply) => {
    void reply.header('x-request-id', req.id);
  });
  // An empty body on PUT or POST counts as {} (OpenWhisk's rule; its clients send none to invoke without parameters).
  app.addHook('preValidation', async (req) => {
    if (req.body === undefined && (req.method === 'POST' || req.method === 'PUT')) req.body = {};
  });
  await app.register(swagger, {
    openapi: {
      info: { title: 'peerless user API', version: VERSION, description: 'OpenWhisk-shaped API of a peerless daemon' },
      components: {
        securitySchemes: { basic: { type: 'http', scheme: 'basic', description: 'uuid:key of a namespace, or the admin key' } },
        schemas: { Problem: problem },
      },
      security: [{ basic: [] }],
    },
  });
  // OpenWhisk's info documents (wsk property get --apibuild reads the first), with this daemon's identity.
  app.get('/api/v1', { schema: { tags: ['meta'], summary: "API information (OpenWhisk's document, and this daemon)", security: [] } }, async () => ({
    description: 'OpenWhisk API',
    api_version: '1.0.0',
    api_version_path: 'v1',
    build: VERSION,
    buildno: VERSION,
    swagger_paths: { ui: '/api/v1/openapi.json', 'api-docs': '/api/v1/openapi.json' },
    api: 'peerless',
    version: VERSION,
    host: ctx.hostId,
  }));
  app.get('/', { schema: { tags: ['meta'], summary: "Platform information: API paths, limits, runtimes (OpenWhisk's document)", security: [] } }, async () => {
    const L = ctx.config.limits;
    const q = ctx.config.quota;
    return {
      description: "peerless: a peer-to-peer serverless platform with OpenWhisk's API",
      support: { github: 'peerless', slack: '' },
      api_paths: ['/api/v1'],
      limits: {
        actions_per_minute: q.invocationsPerMinute,
        triggers_per_minute: q.invocationsPerMinute,
        concurrent_actions: q.concurrentActivations,
        sequence_length: MAX_SEQUENCE,
        min_action_duration: L.timeoutMs.min,
        max_action_duration: L.timeoutMs.max,
        default_action_duration: L.timeoutMs.default,
        min_action_memory: L.memoryMb.min * 1024 * 1024,
        max_action_memory: L.memoryMb.max * 1024 * 1024,
        default_action_memory: L.memoryMb.default * 1024 * 1024,
        min_action_logs: 0,
        max_action_logs: L.logBytes,
        default_action_logs: L.logBytes,
        min_action_concurrency: L.concurrency.min,
        max_action_concurrency: L.concurrency.max,
        default_action_concurrency: L.concurrency.default,
      },
      runtimes: runtimesManifest(),
    };
  });
  app.get('/healthz', { schema: { tags: ['meta'], summary: 'Liveness', security: [] } }, async () => ({ ok: true }));
  app.get('/api/v1/status', { schema: { tags: ['meta'], summary: 'This daemon: host, cluster, pool, activations (any key)' } }, async (req) => {
    principalOf(ctx, req);
    return {
      host: ctx.hostId,
      version: VERSION,
      peerId: ctx.cluster?.peerId ?? null,
      addresses: ctx.cluster?.addresses() ?? [],
      peers: ctx.cluster ? ctx.cluster.peers().length : 0,
      forgedDropped: ctx.cluster?.rejects.total('addrmap-topic', 'forged') ?? 0,
      malformedDropped: ctx.cluster?.rejects.total('addrmap-topic', 'malformed') ?? 0,
      registryMalformedDropped: ctx.cluster?.rejects.total('registry-topic', 'malformed') ?? 0,
      // every message from a peer dropped unread, by protocol or topic and why (gossip/protocols.ts)
      rejected: ctx.cluster?.rejects.entries() ?? [],
      localInstances: ctx.directory.map.size(),
      runningActivations: ctx.invoker.running,
      unsavedActivations: ctx.invoker.unsavedCount,
      engine: ctx.engine.isLost ? 'lost' : 'up',
      containers: ctx.pool.stats(),
    };
  });
  app.get('/api/v1/cluster/peers', { schema: { tags: ['meta'], summary: 'Cluster members seen by this daemon (any key)' } }, async (req) => {
    principalOf(ctx, req);
    return { self: ctx.cluster ? { peerId: ctx.cluster.peerId, host: ctx.hostId, addresses: ctx.cluster.addresses() } : null, peers: ctx.cluster?.peers() ?? [] };
  });
  // Prometheus scrapes without credentials; the daemon listens on loopback by default.
  ctx.metrics.readFrom(() => {
    const peers = ctx.cluster?.peers() ?? [];
    return {
      containers: ctx.pool.stats(),
      mapEntries: ctx.directory.map.size(),
      remoteEntries: ctx.cluster?.replica.entries().length ?? 0,
      peers: peers.length,
      running: ctx.invoker.running,
      rejected: ctx.cluster?.rejects.entries() ?? [],
      oldestHeartbeatMs: Math.max(0, ...peers.map((p) => Date.now() - p.lastSeen)),
      engineUp: !ctx.engine.isLost,
      unsaved: ctx.invoker.unsavedCount,
      dropped: ctx.cluster?.dropped ?? {},
      suspicions: ctx.cluster?.suspicions ?? {},
      registryPulls: ctx.registry.pulls,
    };
  });
  // Prometheus scrapes without credentials; the daemon listens on loopback by default.
  app.get('/metrics', { schema: { tags: ['meta'], summary: 'Prometheus metrics', security: [] } }, async (_req, reply) => reply.type(ctx.metrics.contentType).send(await ctx.metrics.render()));
  app.get('/api/v1/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  namespaceRoutes(app, ctx);
  functionRoutes(app, ctx);
  activationRoutes(app, ctx);
  jobRoutes(app, ctx);
  dashboardRoutes(app, ctx);
  restartRoutes(app, ctx);
  webRoutes(app, ctx);
  triggerRoutes(app, ctx);
  packageRoutes(app, ctx);
  ruleRoutes(app, ctx);
  return app;
}
