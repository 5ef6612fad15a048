import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { authenticate } from '../auth.ts';
import { PeerlessError } from '../errors.ts';
import { isName, type NamespaceName } from '../ids.ts';
import type { FunctionRecord } from '../types.ts';
import { withinBlockingWait } from '../activationView.ts';
import type { ApiContext } from './context.ts';
import { resolveAction, type ResolvedAction } from './packages.ts';
import { sendProblem } from './problems.ts';

/** what these routes use of the daemon */
type Ctx = Pick<ApiContext, 'config' | 'invocations' | 'pool' | 'registry' | 'store'>;

// Web actions: /api/v1/web/{namespace}/{package|default}/{action}[.ext][/path], as OpenWhisk serves
// them. Any verb, any body, no key needed unless the action asks for one (require-whisk-auth); the
// request comes to the action as __ow_* parameters and its result goes back as the extension says.
// The action runs as its owner, through the invocation service, so it runs on any daemon with room.

const EXTENSIONS = ['http', 'json', 'html', 'svg', 'text'] as const;
type Ext = (typeof EXTENSIONS)[number];
const METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS'] as const;
const CORS_METHODS = 'OPTIONS, GET, DELETE, POST, PUT, HEAD, PATCH';
const CORS_HEADERS = 'Authorization, Origin, X-Requested-With, Content-Type, Accept, User-Agent';

const notFound = () => new PeerlessError('not_found', 'The requested resource does not exist.', { field: '/path' });
const badRequest = (message: string, field = '/path') => new PeerlessError('bad_request', message, { field });
const RESERVED = 'Request defines parameters that are not allowed (e.g., reserved properties).';

/** Name, extension and the rest of the path, from what follows /web/{ns}/{pkg}/. */
export function parseWebPath(rest: string): { name: string; ext: Ext; path: string } {
  const slash = rest.indexOf('/');
  const head = slash < 0 ? rest : rest.slice(0, slash);
  const path = slash < 0 ? '' : rest.slice(slash);
  const dot = head.lastIndexOf('.');
  const ext = dot > 0 ? head.slice(dot + 1) : '';
  // An unknown extension is part of the name, and .http is implied (OpenWhisk's rule).
  if ((EXTENSIONS as readonly string[]).includes(ext)) return { name: head.slice(0, dot), ext: ext as Ext, path };
  return { name: head, ext: 'http', path };
}

const annotation = (f: FunctionRecord, key: string) => f.meta.annotations.find((a) => a.key === key)?.value;

/** A media type whose bodies are text (sent as strings) rather than bytes (sent as base64). */
function isText(type: string): boolean {
  return /^text\//.test(type) || /[/+](json|xml|javascript|x-www-form-urlencoded)$/.test(type) || type === '';
}
const mediaType = (h: string | undefined) => (h ?? '').split(';')[0]!.trim().toLowerCase();

/** The action's parameters for this request (OpenWhisk's table: query < body, __ow_* beside them). */
function webParams(req: FastifyRequest, raw: boolean, path: string, user: string | null): Record<string, unknown> {
  const url = new URL(req.url, 'http://x');
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.headers)) if (v !== undefined) headers[k.toLowerCase()] = Array.isArray(v) ? v.join(', ') : v;
  const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
  const type = mediaType(req.headers['content-type']);
  const p: Record<string, unknown> = {};
  const from: Record<string, unknown> = {};
  if (raw) {
    p.__ow_query = url.search.replace(/^\?/, '');
    p.__ow_body = body.length === 0 ? '' : type === 'application/x-www-form-urlencoded' ? body.toString('utf8') : body.toString('base64');
  } else {
    for (const [k, v] of url.searchParams) from[k] = v;
    if (body.length > 0) {
      if (/^application\/(.+\+)?json$/.test(type)) {
        let json: unknown;
        try {
          json = JSON.parse(body.toString('utf8'));
        } catch (e) {
          throw badRequest(`the body is not valid JSON: ${(e as Error).message}`, '/body');
        }
        if (json !== null && typeof json === 'object' && !Array.isArray(json)) Object.assign(from, json);
        else p.__ow_body = json;
      } else if (type === 'application/x-www-form-urlencoded') {
        for (const [k, v] of new URLSearchParams(body.toString('utf8'))) from[k] = v;
      } else p.__ow_body = isText(type) ? body.toString('utf8') : body.toString('base64');
    }
  }
  if (Object.keys(from).some((k) => k.startsWith('__ow_'))) throw badRequest(RESERVED, '/query');
  Object.assign(p, from, { __ow_method: req.method.toLowerCase(), __ow_headers: headers, __ow_path: path });
  if (user !== null) p.__ow_user = user;
  return p;
}

/** Sends the action's result as the extension says (OpenWhisk's transcoding rules). */
function respond(reply: FastifyReply, ext: Ext, result: unknown): FastifyReply {
  const obj = result !== null && typeof result === 'object' && !Array.isArray(result) ? (result as Record<string, unknown>) : null;
  const pick = (prop: string) => (obj ? (obj.body ?? obj[prop]) : undefined);
  switch (ext) {
    case 'json':
      if (result === null || typeof result !== 'object') throw badRequest("Response is not valid 'application/json'.");
      return reply.code(200).type('application/json').send(JSON.stringify(result));
    case 'html':
    case 'svg': {
      const v = pick(ext);
      if (typeof v !== 'string') throw badRequest(v === undefined ? 'Response does not include requested property.' : `Response is not valid '${ext === 'html' ? 'text/html' : 'image/svg+xml'}'.`);
      return reply
        .code(200)
        .type(ext === 'html' ? 'text/html; charset=utf-8' : 'image/svg+xml')
        .send(v);
    }
    case 'text': {
      const v = pick('text');
      if (v === undefined) return reply.code(404).type('text/plain').send('Response does not include requested property.');
      return reply
        .code(200)
        .type('text/plain; charset=utf-8')
        .send(typeof v === 'string' ? v : JSON.stringify(v, null, 2));
    }
    case 'http': {
      if (!obj) throw badRequest("Response is not valid 'message/http'.");
      const status = obj.statusCode === undefined ? null : Number(obj.statusCode);
      if (status !== null && !(Number.isInteger(status) && status >= 100 && status <= 599)) throw badRequest("Response is not valid 'message/http'.");
      const headers = obj.headers && typeof obj.headers === 'object' ? (obj.headers as Record<string, unknown>) : {};
      let type = '';
      for (const [k, v] of Object.entries(headers)) {
        const values = Array.isArray(v) ? v : [v];
        if (!values.every((x) => ['string', 'number', 'boolean'].includes(typeof x))) throw badRequest("Response is not valid 'message/http'.");
        if (k.toLowerCase() === 'content-type') type = String(values[0]);
        void reply.header(k, values.length === 1 ? String(values[0]) : values.map(String));
      }
      const body = obj.body;
      if (body === undefined || body === null || body === '') return reply.code(status ?? 204).send();
      if (typeof body !== 'string') {
        if (!type) void reply.type('application/json');
        return reply.code(status ?? 200).send(JSON.stringify(body));
      }
      if (!type) {
        void reply.type('text/html; charset=utf-8');
        return reply.code(status ?? 200).send(body);
      }
      const media = mediaType(type);
      if (!/^[\w.+-]+\/[\w.+-]+$/.test(media)) throw badRequest('Response did not specify a known content-type.');
      if (isText(media)) return reply.code(status ?? 200).send(body);
      // A binary type's body is base64, as OpenWhisk's actions send images and files.
      if (!/^[A-Za-z0-9+/]*={0,2}$/.test(body.replace(/\s/g, ''))) throw badRequest('Response type in header did not match generated content type.');
      return reply.code(status ?? 200).send(Buffer.from(body, 'base64'));
    }
  }
}

export function webRoutes(app: FastifyInstance, ctx: Ctx): void {
  void app.register(async (web) => {
    // Any body, as bytes: the action decides what it is.
    web.removeAllContentTypeParsers();
    web.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: ctx.config.limits.payloadBytes }, (_req, body, done) => done(null, body));
    web.route<{ Params: { namespace: string; package: string; '*': string } }>({
      method: [...METHODS],
      url: '/api/v1/web/:namespace/:package/*',
      exposeHeadRoute: false,
      schema: { tags: ['web actions'], summary: 'A web action (annotation web-export): any verb and body; .json .html .svg .text .http (default) choose the answer', security: [] },
      handler: async (req, reply) => {
        const { namespace, package: pkg } = req.params;
        const { name, ext, path } = parseWebPath(req.params['*']);
        // `default` is OpenWhisk's name for no package.
        if (!isName(namespace) || !isName(pkg) || !isName(name) || !ctx.store.hasNamespace(namespace as NamespaceName)) throw notFound();
        let action: ResolvedAction;
        try {
          action = resolveAction(ctx, namespace as NamespaceName, pkg === 'default' ? undefined : pkg, name, false);
        } catch {
          throw notFound();
        }
        const fn = ctx.store.getFunction(namespace as NamespaceName, action.function);
        if (!fn || annotation(fn, 'web-export') !== true) throw notFound();
        const custom = annotation(fn, 'web-custom-options') === true;
        if (!custom) {
          void reply.header('access-control-allow-origin', '*');
          void reply.header('access-control-allow-methods', CORS_METHODS);
          void reply.header('access-control-allow-headers', req.headers['access-control-request-headers'] ?? CORS_HEADERS);
          if (req.method === 'OPTIONS') return reply.code(200).send();
        }
        // Credentials are optional; given and valid, they name the caller (__ow_user).
        let user: string | null = null;
        if (req.headers.authorization) {
          try {
            const p = authenticate(ctx.store, req.headers.authorization);
            user = p.kind === 'namespace' ? p.namespace : 'admin';
          } catch {
            user = null;
          }
        }
        const secure = annotation(fn, 'require-whisk-auth');
        if (secure === true && user === null)
          throw new PeerlessError('unauthorized', 'The resource requires authentication, which was not supplied with the request', { field: '/headers/authorization' });
        if ((typeof secure === 'string' || typeof secure === 'number') && req.headers['x-require-whisk-auth'] !== String(secure))
          throw new PeerlessError('unauthorized', 'The resource requires authentication, which was not supplied with the request', { field: '/headers/x-require-whisk-auth' });
        const params = webParams(req, annotation(fn, 'raw-http') === true, path, user);
        if (annotation(fn, 'final') === true && Object.keys(params).some((k) => k in fn.parameters || k in action.defaults)) throw badRequest(RESERVED, '/query');
        const { members } = await ctx.invocations.invoke({ namespace: fn.namespace, function: fn.name, params, defaults: action.defaults, ids: [], group: false, field: '/path' });
        const m = members[0]!;
        void reply.header('x-openwhisk-activation-id', m.activationId);
        const a = await withinBlockingWait(m.done);
        if (a === 'late') return reply.code(202).type('application/json').send({ error: 'Response not yet ready.', code: req.id });
        const { status, result } = a.response;
        if (status === 'success') return respond(reply, ext, result);
        if (status === 'application error') return respond(reply, ext, (result as { error?: unknown } | null)?.error);
        return sendProblem(reply, badRequest('There was an error processing your request.'));
      },
    });
  });
}
