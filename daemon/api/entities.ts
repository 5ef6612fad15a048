import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { conflict, invalid, notFound } from '../errors.ts';
import { bumpVersion } from '../kinds.ts';
import { SEMVER_PATTERN, type NamespaceName } from '../ids.ts';
import type { EntityDocs, EntityKind, KeyValue } from '../types.ts';
import { namespaceFor, type ApiContext } from './context.ts';
import { fnParams, ignoredListParams, keyValueList, nsParams, paging } from './schemas.ts';

/** what these routes use of the daemon */
type Ctx = Pick<ApiContext, 'config' | 'registry' | 'store'>;

// What OpenWhisk's triggers, rules and packages have in common: list (with count), create or
// update (409 without overwrite), get and delete, in one namespace, each write replicated to the
// cluster by the registry. Each kind says how its document is built from a PUT body and shown.

/** The fields every entity's PUT body may carry (OpenWhisk's clients send name and namespace too). */
export const entityBodyFields = {
  version: { type: 'string', pattern: SEMVER_PATTERN },
  publish: { type: 'boolean' },
  annotations: keyValueList,
  name: { type: 'string', maxLength: 1024 },
  namespace: { type: 'string', maxLength: 1024 },
} as const;

export interface EntityBody {
  version?: string;
  publish?: boolean;
  annotations?: KeyValue[];
}

export interface EntityKindRoutes<K extends EntityKind, B extends EntityBody> {
  kind: K;
  /** OpenWhisk's collection: triggers, rules, packages */
  collection: string;
  /** the PUT body's own fields, besides entityBodyFields */
  body: Record<string, unknown>;
  /** the new document from the body and what was there; throws a 4xx naming the field when the body will not do */
  build: (ns: NamespaceName, name: string, body: B, old: EntityDocs[K] | undefined) => Omit<EntityDocs[K], keyof EntityBodyDoc>;
  /** the document as GET shows it */
  view?: (doc: EntityDocs[K]) => unknown;
  /** the document as a list shows it */
  listItem?: (doc: EntityDocs[K]) => unknown;
  /** what must hold before a delete (a package that is not empty) */
  beforeDelete?: (doc: EntityDocs[K], req: FastifyRequest) => void;
}

type EntityBodyDoc = { namespace: NamespaceName; name: string; version: string; publish: boolean; annotations: KeyValue[]; updated: number };

/** Route params for one entity: the same as a function's (namespace, name). */
export const entityParams = fnParams;

export function entityRoutes<K extends EntityKind, B extends EntityBody>(app: FastifyInstance, ctx: Ctx, k: EntityKindRoutes<K, B>): void {
  const base = `/api/v1/namespaces/:namespace/${k.collection}`;
  const tags = [k.collection];
  const view = k.view ?? ((d: EntityDocs[K]) => d);
  const one = (ns: NamespaceName, n: string) => {
    const doc = ctx.store.getEntity(k.kind, ns, n);
    if (!doc) throw notFound(`${k.kind} ${n}`, '/params/name');
    return doc;
  };

  app.get<{ Params: { namespace: string }; Querystring: { limit: number; skip: number; count: boolean } }>(
    base,
    {
      schema: {
        tags,
        summary: `List ${k.collection} (count=true: how many)`,
        params: nsParams,
        querystring: { type: 'object', additionalProperties: false, properties: { ...paging, count: { type: 'boolean', default: false }, ...ignoredListParams } },
      },
    },
    async (req) => {
      const ns = namespaceFor(ctx, req, req.params.namespace);
      if (req.query.count) return { [k.collection]: ctx.store.countEntities(k.kind, ns) };
      return ctx.store.listEntities(k.kind, ns, req.query.limit || 200, req.query.skip).map(k.listItem ?? view);
    },
  );

  app.put<{ Params: { namespace: string; name: string }; Querystring: { overwrite: boolean }; Body: B | undefined }>(
    `${base}/:name`,
    {
      schema: {
        tags,
        summary: `Create or (with ?overwrite=true) update a ${k.kind}`,
        params: entityParams,
        querystring: { type: 'object', additionalProperties: false, properties: { overwrite: { type: 'boolean', default: false } } },
        body: { type: 'object', additionalProperties: false, properties: { ...entityBodyFields, ...k.body } },
      },
    },
    async (req, reply: FastifyReply) => {
      const ns = namespaceFor(ctx, req, req.params.namespace);
      const body = (req.body ?? {}) as B;
      const old = ctx.store.getEntity(k.kind, ns, req.params.name);
      if (old && !req.query.overwrite) throw conflict('resource already exists: update it with overwrite=true', '/params/name');
      const own = k.build(ns, req.params.name, body, old);
      // Unlike actions, these replace their annotations when given (OpenWhisk's rule).
      const annotations = body.annotations ?? old?.annotations ?? [];
      if (Buffer.byteLength(JSON.stringify(annotations)) > ctx.config.limits.payloadBytes) throw invalid('/body/annotations', 'annotations larger than allowed');
      const doc = {
        ...own,
        namespace: ns,
        name: req.params.name,
        version: body.version ?? (old ? bumpVersion(old.version) : '0.0.1'),
        publish: body.publish ?? old?.publish ?? false,
        annotations,
        updated: Date.now(),
      } as EntityDocs[K];
      ctx.store.putEntity(k.kind, doc);
      ctx.registry.entityWritten(k.kind, doc);
      return reply.code(old ? 200 : 201).send(view(doc));
    },
  );

  app.get<{ Params: { namespace: string; name: string } }>(`${base}/:name`, { schema: { tags, summary: `Get a ${k.kind}`, params: entityParams } }, async (req) =>
    view(one(namespaceFor(ctx, req, req.params.namespace), req.params.name)),
  );

  app.delete<{ Params: { namespace: string; name: string }; Querystring: { force?: boolean } }>(
    `${base}/:name`,
    {
      schema: { tags, summary: `Delete a ${k.kind}`, params: entityParams, querystring: { type: 'object', additionalProperties: false, properties: { force: { type: 'boolean' } } } },
    },
    async (req) => {
      const ns = namespaceFor(ctx, req, req.params.namespace);
      const doc = one(ns, req.params.name);
      k.beforeDelete?.(doc, req);
      ctx.store.deleteEntity(k.kind, ns, req.params.name);
      ctx.registry.entityDeleted(k.kind, ns, req.params.name);
      return view(doc);
    },
  );
}
