import type { FastifyInstance } from 'fastify';
import { invalid, notFound, PeerlessError } from '../errors.ts';
import { parseRef, refName, refOf, refTarget, toObject } from '../entities.ts';
import { newActivationId, type FunctionName, type NamespaceName } from '../ids.ts';
import type { RuleDoc, TriggerDoc } from '../types.ts';
import { namespaceFor, type ApiContext } from './context.ts';
import { entityParams, entityRoutes, type EntityBody } from './entities.ts';
import { keyValueList } from './schemas.ts';

/** what these routes use of the daemon */
type Ctx = Pick<ApiContext, 'config' | 'hostId' | 'invocations' | 'registry' | 'store'>;

// Triggers and rules, as OpenWhisk has them. A trigger is named parameters; a rule ties it to an
// action. Firing a trigger invokes every active rule's action with the trigger's parameters under the
// event's, records a trigger activation that lists what each rule did, and answers 202 with its ID
// (204 when no rule is active). Feeds are a client-side protocol: clients invoke the feed action
// themselves, which needs nothing here.

interface TriggerBody extends EntityBody {
  parameters?: { key: string; value: unknown }[];
  limits?: Record<string, never>;
}
interface RuleBody extends EntityBody {
  trigger?: string | { path: string; name: string };
  action?: string | { path: string; name: string };
  status?: string;
}

const refString = (v: string | { path: string; name: string }) => (typeof v === 'string' ? v : `/${v.path}/${v.name}`);
const refSchema = {
  anyOf: [
    { type: 'string', minLength: 1, maxLength: 600 },
    { type: 'object', required: ['path', 'name'], properties: { path: { type: 'string', maxLength: 300 }, name: { type: 'string', maxLength: 300 } } },
  ],
};

/** A trigger's rules, as OpenWhisk shows them on the trigger: "ns/rule" → action and status. */
function rulesOf(ctx: Ctx, t: TriggerDoc): Record<string, { action: { path: string; name: string }; status: string }> {
  const out: Record<string, { action: { path: string; name: string }; status: string }> = {};
  for (const r of ctx.store.listEntities('rule', t.namespace, 1_000_000, 0)) {
    if (r.trigger.path === t.namespace && r.trigger.name === t.name) out[`${r.namespace}/${r.name}`] = { action: r.action, status: r.status };
  }
  return out;
}

export function triggerRoutes(app: FastifyInstance, ctx: Ctx): void {
  entityRoutes<'trigger', TriggerBody>(app, ctx, {
    kind: 'trigger',
    collection: 'triggers',
    body: { parameters: keyValueList, limits: { type: 'object', additionalProperties: false, properties: {} } },
    build: (_ns, _name, body, old) => {
      const parameters = body.parameters ?? old?.parameters ?? [];
      if (Buffer.byteLength(JSON.stringify(parameters)) > ctx.config.limits.payloadBytes) throw invalid('/body/parameters', 'parameters larger than allowed');
      return { parameters: parameters.map(({ key, value }) => ({ key, value })), limits: {} };
    },
    view: (t) => {
      const rules = rulesOf(ctx, t);
      return Object.keys(rules).length > 0 ? { ...t, rules } : t;
    },
    listItem: (t) => t,
  });

  app.post<{ Params: { namespace: string; name: string }; Body: Record<string, unknown> | undefined }>(
    '/api/v1/namespaces/:namespace/triggers/:name',
    {
      bodyLimit: ctx.config.limits.payloadBytes,
      schema: {
        tags: ['triggers'],
        summary: "Fire a trigger: every active rule's action is invoked; 202 with the trigger activation, 204 when no rule is active",
        params: entityParams,
        body: { type: 'object' },
      },
    },
    async (req, reply) => {
      const ns = namespaceFor(ctx, req, req.params.namespace);
      const t = ctx.store.getEntity('trigger', ns, req.params.name);
      if (!t) throw notFound(`trigger ${req.params.name}`, '/params/name');
      const active = Object.entries(rulesOf(ctx, t)).filter(([, r]) => r.status === 'active');
      if (active.length === 0) return reply.code(204).send();
      const payload = req.body ?? {};
      const params = { ...toObject(t.parameters), ...payload };
      const logs: string[] = [];
      for (const [rule, r] of active) {
        const action = refName(r.action);
        try {
          const target = refTarget(r.action);
          const { members } = await ctx.invocations.invoke({
            namespace: target.namespace as NamespaceName,
            function: target.name as FunctionName,
            params,
            ids: [],
            group: false,
            field: '/params/name',
          });
          logs.push(JSON.stringify({ statusCode: 0, success: true, activationId: members[0]!.activationId, rule, action }));
        } catch (e) {
          const statusCode = e instanceof PeerlessError && e.status < 500 ? 1 : 3;
          logs.push(JSON.stringify({ statusCode, success: false, error: (e as Error).message, rule, action }));
        }
      }
      // The trigger's own activation: the event as its result, and a line per rule saying what it started.
      const id = newActivationId();
      const now = Date.now();
      const annotations = { kind: 'trigger', path: `${ns}/${t.name}` };
      ctx.store.startActivation({ activationId: id, namespace: ns, name: t.name as FunctionName, version: 0, host: ctx.hostId, start: now, annotations });
      ctx.store.finishActivation(id, now, now, 'success', payload, logs, annotations);
      return reply.code(202).header('x-openwhisk-activation-id', id).send({ activationId: id });
    },
  );
}

export function ruleRoutes(app: FastifyInstance, ctx: Ctx): void {
  /** The trigger or action a rule names, which must exist in the rule's namespace. */
  const resolve = (ns: NamespaceName, what: 'trigger' | 'action', given: string | { path: string; name: string }) => {
    const s = refString(given);
    const r = parseRef(s, ns);
    const field = `/body/${what}`;
    if (!r) throw invalid(field, `${JSON.stringify(s)} is not a ${what} name (/namespace/name)`);
    if (r.namespace !== ns) throw new PeerlessError('forbidden', `The supplied authentication is not authorized to access '${s}': a rule's ${what} must be in its own namespace`, { field });
    const exists = what === 'trigger' ? ctx.store.getEntity('trigger', ns, r.name) : ctx.store.getFunction(ns, r.name as FunctionName);
    if (!exists) throw invalid(field, `${what} /${r.namespace}/${r.name} does not exist`);
    return refOf(r);
  };

  entityRoutes<'rule', RuleBody>(app, ctx, {
    kind: 'rule',
    collection: 'rules',
    body: { trigger: refSchema, action: refSchema, status: { type: 'string', maxLength: 32 } },
    build: (ns, _name, body, old) => {
      if (!old && (body.trigger === undefined || body.action === undefined))
        throw invalid(body.trigger === undefined ? '/body/trigger' : '/body/action', 'rule requires a valid trigger and a valid action');
      return {
        trigger: body.trigger === undefined ? old!.trigger : resolve(ns, 'trigger', body.trigger),
        action: body.action === undefined ? old!.action : resolve(ns, 'action', body.action),
        status: old?.status ?? 'active',
      };
    },
    // OpenWhisk lists rules without their status (wsk gets each to show it).
    listItem: ({ status: _s, ...rest }: RuleDoc) => rest,
  });

  app.post<{ Params: { namespace: string; name: string }; Body: { status?: unknown } | undefined }>(
    '/api/v1/namespaces/:namespace/rules/:name',
    {
      schema: {
        tags: ['rules'],
        summary: 'Enable or disable a rule: {"status":"active"} or {"status":"inactive"}',
        params: entityParams,
        body: { type: 'object', properties: { status: { type: 'string', maxLength: 32 } } },
      },
    },
    async (req) => {
      const ns = namespaceFor(ctx, req, req.params.namespace);
      const r = ctx.store.getEntity('rule', ns, req.params.name);
      if (!r) throw notFound(`rule ${req.params.name}`, '/params/name');
      const status = req.body?.status;
      if (status !== 'active' && status !== 'inactive') throw invalid('/body/status', `'${String(status)}' is not a recognized rule state, must be one of ['active', 'inactive']`);
      if (status === 'active' && !ctx.store.getEntity('trigger', ns, r.trigger.name)) throw notFound('Only rules with existing triggers can be activated: the trigger', '/body/status');
      if (r.status !== status) {
        const doc: RuleDoc = { ...r, status, updated: Date.now() };
        ctx.store.putEntity('rule', doc);
        ctx.registry.entityWritten('rule', doc);
        return doc;
      }
      return r;
    },
  );
}
