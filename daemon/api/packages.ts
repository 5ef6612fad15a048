import type { FastifyInstance } from 'fastify';
import { toObject } from '../entities.ts';
import { conflict, invalid, notFound, PeerlessError } from '../errors.ts';
import type { FunctionName, NamespaceName } from '../ids.ts';
import { fnKeyPrefix } from '../invoker.ts';
import type { FunctionRecord, KeyValue, PackageDoc } from '../types.ts';
import type { ApiContext } from './context.ts';
import { entityRoutes, type EntityBody } from './entities.ts';
import { keyValueList, name } from './schemas.ts';

/** what these routes use of the daemon */
type Ctx = Pick<ApiContext, 'config' | 'pool' | 'registry' | 'store'>;

// Packages, as OpenWhisk has them: a named set of actions (stored as functions named pkg/action)
// with default parameters, or a binding to another package of the namespace with parameters of its
// own. An action's parameters are, weakest first: its package's, its binding's, its own, the call's.

interface PackageBody extends EntityBody {
  parameters?: KeyValue[];
  binding?: { namespace?: string; name?: string };
}

/** What the routes act on for /actions/{pkg}/{name}: the function, and a binding's parameters over its package's. */
export interface ResolvedAction {
  /** the stored function's name (pkg/name) */
  function: FunctionName;
  /** the package's parameters, overridden by the binding's when called through one */
  defaults: Record<string, unknown>;
  binding: { namespace: string; name: string } | null;
}

/** Resolves a package name (a binding to what it binds), or says why not. */
export function resolveAction(ctx: Ctx, ns: NamespaceName, pkg: string | undefined, action: string, write: boolean): ResolvedAction {
  if (pkg === undefined) return { function: action as FunctionName, defaults: {}, binding: null };
  const p = ctx.store.getEntity('package', ns, pkg);
  if (!p) throw notFound(`package ${pkg}`, '/params/pkg');
  if (!('name' in p.binding)) return { function: `${pkg}/${action}` as FunctionName, defaults: toObject(p.parameters), binding: null };
  if (write) throw new PeerlessError('bad_request', 'Operation not permitted on package binding.', { field: '/params/pkg' });
  const bound = ctx.store.getEntity('package', p.binding.namespace as NamespaceName, p.binding.name);
  if (!bound) throw notFound(`package ${p.binding.name}, which the binding ${pkg} binds,`, '/params/pkg');
  return { function: `${bound.name}/${action}` as FunctionName, defaults: { ...toObject(bound.parameters), ...toObject(p.parameters) }, binding: { namespace: ns, name: pkg } };
}

/** A package's actions, as OpenWhisk lists them on the package. */
const actionsOf = (ctx: Ctx, ns: NamespaceName, pkg: string): FunctionRecord[] => ctx.store.listFunctions(ns, 1_000_000, 0).filter((f) => f.name.startsWith(`${pkg}/`));

export function packageRoutes(app: FastifyInstance, ctx: Ctx): void {
  entityRoutes<'package', PackageBody>(app, ctx, {
    kind: 'package',
    collection: 'packages',
    body: {
      parameters: keyValueList,
      binding: { type: 'object', additionalProperties: false, properties: { namespace: { type: 'string', maxLength: 256 }, name: { type: 'string', maxLength: 256 } } },
    },
    build: (ns, pkgName, body, old) => {
      if (pkgName === 'default') throw invalid('/params/name', "Package name 'default' is reserved.");
      const parameters = (body.parameters ?? old?.parameters ?? []).map(({ key, value }) => ({ key, value }));
      if (Buffer.byteLength(JSON.stringify(parameters)) > ctx.config.limits.payloadBytes) throw invalid('/body/parameters', 'parameters larger than allowed');
      let binding: PackageDoc['binding'] = old?.binding ?? {};
      const b = body.binding;
      if (b && b.name !== undefined) {
        if (old && !('name' in old.binding)) throw conflict('Resource is a package and cannot be converted into a binding.', '/body/binding');
        const target = { namespace: !b.namespace || b.namespace === '_' ? ns : b.namespace, name: b.name };
        // Tenants do not run each other's code: a binding binds a package of its own namespace.
        if (target.namespace !== ns)
          throw new PeerlessError('forbidden', `The supplied authentication is not authorized to access '/${target.namespace}/${target.name}': bindings are to packages of the same namespace`, {
            field: '/body/binding/namespace',
          });
        const t = ctx.store.getEntity('package', ns, target.name);
        if (!t) throw invalid('/body/binding/name', 'Binding references a package that does not exist.');
        if ('name' in t.binding) throw invalid('/body/binding/name', 'Cannot bind to another package binding.');
        binding = target;
      }
      return { parameters, binding };
    },
    view: (p) => {
      const of = 'name' in p.binding ? ctx.store.getEntity('package', p.binding.namespace as NamespaceName, p.binding.name) : p;
      const fns = of ? actionsOf(ctx, of.namespace, of.name) : [];
      const listed = (feed: boolean) =>
        fns
          .filter((f) => f.meta.annotations.some((a) => a.key === 'feed') === feed)
          .map((f) => ({ name: f.name.slice(of!.name.length + 1), version: f.meta.version, annotations: f.meta.annotations }));
      const parameters = of && of !== p ? [...new Map([...of.parameters, ...p.parameters].map((kv) => [kv.key, kv])).values()] : p.parameters;
      return { ...p, parameters, actions: listed(false), feeds: listed(true) };
    },
    listItem: (p) => ({
      namespace: p.namespace,
      name: p.name,
      version: p.version,
      publish: p.publish,
      annotations: p.annotations,
      binding: 'name' in p.binding ? p.binding : false,
      updated: p.updated,
    }),
    beforeDelete: (p, req) => {
      const fns = actionsOf(ctx, p.namespace, p.name);
      if (fns.length === 0) return;
      if (!(req.query as { force?: boolean }).force) throw conflict(`Package not empty (contains ${fns.length} entities). Set force param or delete package contents.`, '/query/force');
      for (const f of fns) {
        ctx.store.deleteFunction(f.namespace, f.name);
        ctx.registry.functionDeleted(f.namespace, f.name);
        void ctx.pool.retire(fnKeyPrefix(f));
        ctx.pool.forget(fnKeyPrefix(f));
      }
    },
  });
}

/** Route params for an action in a package: /namespaces/{namespace}/actions/{pkg}/{name}. */
export const pkgFnParams = {
  type: 'object',
  required: ['namespace', 'pkg', 'name'],
  additionalProperties: false,
  properties: { namespace: name, pkg: name, name },
} as const;
