import { chmodSync, mkdirSync, rmSync } from 'node:fs';
import http from 'node:http';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { expandInstances } from '../gossip/addrmap.ts';
import { problems } from './api/problems.ts';
import { eventStreams } from './api/sse.ts';
import { name } from './api/schemas.ts';
import type { Caller, Directory } from './directory.ts';
import { invalid, notFound, PeerlessError } from './errors.ts';
import { MAX_TRAFFIC_PEERS, parseRestart, type RestartPolicy } from './jobs.ts';

// The function API: what a running function may ask of its daemon, as HTTP
// over a Unix socket. There is one socket per namespace, and a container only
// ever sees its own namespace's, so a function cannot even name another
// tenant. One fastify app serves every socket; the socket a request came in on
// fixes its namespace, and the bearer token (one per activation, in the
// function's environment) says which activation is asking.

export const MAX_GROUP = 1000;

export interface SpawnRequest {
  namespace: string;
  function: string;
  instances: string[];
  params: Record<string, unknown>;
  /** the activation that asks: the job is its child */
  parent: string;
  detach: boolean;
  restart: RestartPolicy | null;
  queueTimeoutMs: number | undefined;
}

export type Spawner = (req: SpawnRequest) => Promise<{ jobId: string | null; activations: { instance: string | null; activationId: string }[] }>;

const NS = Symbol('namespace');

function callerOf(dir: Directory, req: FastifyRequest): Caller {
  const ns = (req.raw as http.IncomingMessage & { [NS]?: string })[NS];
  const m = /^Bearer\s+(\S+)$/.exec(req.headers.authorization ?? '');
  if (!ns) throw new PeerlessError('forbidden', 'the function API is only served on namespace sockets');
  if (!m) throw new PeerlessError('unauthorized', 'send the token from __OW_PEERLESS_TOKEN as a bearer token', { field: '/headers/authorization' });
  const c = dir.caller(m[1]!);
  if (!c) throw new PeerlessError('unauthorized', 'the token is not valid (forged, or its activation has ended)', { field: '/headers/authorization' });
  if (c.namespace !== ns) throw new PeerlessError('forbidden', 'this token belongs to another namespace', { field: '/headers/authorization' });
  return c;
}

export class FunctionApi {
  private readonly app: FastifyInstance;
  private readonly servers = new Map<string, http.Server>();
  private readonly root: string;

  private constructor(app: FastifyInstance, root: string) {
    this.app = app;
    this.root = root;
  }

  socketPath(ns: string): string {
    return join(this.root, createHash('sha256').update(ns).digest('hex').slice(0, 16), 'api.sock');
  }

  /** Starts (once) the namespace's socket; its path is what containers get linked to. */
  async ensureSocket(ns: string): Promise<string> {
    const path = this.socketPath(ns);
    if (this.servers.has(ns)) return path;
    mkdirSync(join(path, '..'), { recursive: true, mode: 0o755 });
    rmSync(path, { force: true });
    const server = http.createServer((req, res) => {
      (req as http.IncomingMessage & { [NS]?: string })[NS] = ns;
      this.app.routing(req, res);
    });
    // Instances wait long between calls (a cold group's members wait for the slowest): their kept-alive
    // connections are kept a minute rather than Node's 5 s, so fewer of their calls meet one just closed.
    server.keepAliveTimeout = 60_000;
    this.servers.set(ns, server);
    await new Promise<void>((resolve, reject) => server.once('error', reject).listen(path, resolve));
    // The container's user is not ours: anyone who can reach the socket may connect, and the token decides.
    chmodSync(path, 0o666);
    return path;
  }

  async close(): Promise<void> {
    for (const s of this.servers.values()) {
      s.closeAllConnections();
      s.close();
    }
    await this.app.close();
  }

  static async create(opts: {
    root: string;
    directory: Directory;
    spawn: Spawner;
    log: Logger;
    /** why a member of a job failed for good, or null; `jobsChanged` says when to ask again */
    failed: (ns: string, id: string) => string | null;
    jobsChanged: (listener: () => void) => () => void;
  }): Promise<FunctionApi> {
    const dir = opts.directory;
    const app = Fastify({
      loggerInstance: opts.log.child({ api: 'function' }) as FastifyBaseLogger,
      logController: new LogController({ disableRequestLogging: true }),
      bodyLimit: 1024 * 1024,
      ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', useDefaults: true } },
    });
    problems(app);
    const stream = eventStreams(app);
    const idParams = { type: 'object', required: ['id'], properties: { id: name } } as const;

    app.get('/v1/self', async (req) => {
      const c = callerOf(dir, req);
      return { namespace: c.namespace, activation: c.activation, instance: c.instance, entry: c.instance ? (dir.get(c.namespace, c.instance) ?? null) : null };
    });
    app.get('/v1/instances', async (req) => dir.view(callerOf(dir, req).namespace));
    app.get<{ Params: { id: string } }>('/v1/instances/:id', { schema: { params: idParams } }, async (req) => {
      const c = callerOf(dir, req);
      const e = dir.get(c.namespace, req.params.id);
      if (!e) throw notFound(`instance ${req.params.id}`, '/params/id');
      return e;
    });
    app.get<{ Querystring: { ids: string[]; timeout: number } }>(
      '/v1/wait',
      {
        schema: {
          querystring: {
            type: 'object',
            required: ['ids'],
            properties: { ids: { type: 'array', items: name, minItems: 1, maxItems: MAX_GROUP }, timeout: { type: 'integer', minimum: 0, maximum: 300_000, default: 30_000 } },
          },
        },
      },
      async (req, reply) => {
        const c = callerOf(dir, req);
        const ac = new AbortController();
        req.raw.once('close', () => ac.abort());
        const ids = req.query.ids.flatMap((s) => s.split(',')).filter(Boolean);
        // A member of a job that failed before it ran will never run: say so at once, not at the timeout.
        const failure = () => {
          for (const id of ids) {
            const why = opts.failed(c.namespace, id);
            if (why !== null) return { id, why };
          }
          return null;
        };
        const off = opts.jobsChanged(() => failure() && ac.abort());
        let got;
        try {
          got = failure() ? null : await dir.waitFor(c.namespace, ids, req.query.timeout, ac.signal);
        } finally {
          off();
        }
        const f = failure();
        if (!got && f) {
          return reply
            .code(410)
            .type('application/problem+json')
            .send({
              type: 'https://peerless.dev/problems/peer-gone',
              title: 'peer gone',
              status: 410,
              code: 'peer_gone',
              detail: `instance ${f.id} failed: ${f.why}`,
              field: '/query/ids',
              instance: f.id,
            });
        }
        if (!got) {
          const missing = ids.filter((id) => dir.get(c.namespace, id)?.state !== 'running');
          return reply
            .code(408)
            .type('application/problem+json')
            .send({
              type: 'https://peerless.dev/problems/timeout',
              title: 'timeout',
              status: 408,
              code: 'timeout',
              detail: `not running after ${req.query.timeout} ms: ${missing.slice(0, 20).join(', ')}`,
              field: '/query/ids',
              missing,
            });
        }
        return { instances: got };
      },
    );
    app.get('/v1/events', async (req, reply) => {
      const c = callerOf(dir, req);
      let queued = false;
      const off = dir.onChange((ns) => {
        if (ns !== c.namespace || queued) return;
        queued = true;
        setImmediate(() => {
          queued = false;
          send();
        });
      });
      const out = stream(req, reply, off);
      const send = () => out.send('map', JSON.stringify(dir.view(c.namespace)));
      send();
    });
    app.put<{ Body: { status: string } }>(
      '/v1/self/status',
      { schema: { body: { type: 'object', required: ['status'], additionalProperties: false, properties: { status: { type: 'string', maxLength: 256 } } } } },
      async (req) => {
        const c = callerOf(dir, req);
        if (!c.instance) throw invalid('/headers/authorization', 'only an instance invoked with an ID can publish a status');
        return dir.update(c.namespace, c.instance, { status: req.body.status });
      },
    );
    app.put<{ Body: { sent: Record<string, number> } }>(
      '/v1/self/traffic',
      {
        schema: {
          body: {
            type: 'object',
            required: ['sent'],
            additionalProperties: false,
            properties: { sent: { type: 'object', maxProperties: MAX_TRAFFIC_PEERS, propertyNames: { maxLength: 128 }, additionalProperties: { type: 'integer', minimum: 0 } } },
          },
        },
      },
      async (req, reply) => {
        const c = callerOf(dir, req);
        if (!c.instance) throw invalid('/headers/authorization', 'only an instance invoked with an ID reports its traffic');
        dir.reportTraffic(c.activation, req.body.sent);
        return reply.code(204).send();
      },
    );
    app.post<{ Body: { function: string; instance?: string; instances?: string | string[]; params?: Record<string, unknown>; restart?: string; queueTimeout?: number; detach?: boolean } }>(
      '/v1/spawn',
      {
        schema: {
          body: {
            type: 'object',
            required: ['function'],
            additionalProperties: false,
            properties: {
              function: name,
              instance: name,
              instances: {
                anyOf: [
                  { type: 'string', maxLength: 4096 },
                  { type: 'array', items: name, maxItems: MAX_GROUP },
                ],
              },
              params: { type: 'object' },
              restart: { type: 'string', maxLength: 32 },
              queueTimeout: { type: 'integer', minimum: 0, maximum: 300_000 },
              detach: { type: 'boolean' },
            },
          },
        },
      },
      async (req, reply) => {
        const c = callerOf(dir, req);
        const b = req.body;
        let ids: string[] = [];
        try {
          if (b.instance) ids = [b.instance];
          else if (typeof b.instances === 'string') ids = expandInstances(b.instances, MAX_GROUP);
          else if (b.instances) ids = b.instances;
        } catch (e) {
          throw invalid('/body/instances', (e as Error).message);
        }
        if (ids.length === 0) throw invalid('/body/instances', 'spawn needs an instance or instances');
        const restart = parseRestart(b.restart, '/body/restart');
        const started = await opts.spawn({
          namespace: c.namespace,
          function: b.function,
          instances: ids,
          params: b.params ?? {},
          parent: c.activation,
          detach: b.detach ?? false,
          restart,
          queueTimeoutMs: b.queueTimeout,
        });
        return reply.code(202).send(started);
      },
    );
    await app.ready();
    return new FunctionApi(app, opts.root);
  }
}
