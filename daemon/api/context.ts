import type Docker from 'dockerode';
import type { FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { Cluster } from '../../gossip/cluster.ts';
import type { EngineWatch } from '../../sandbox/engine.ts';
import type { Pool } from '../../sandbox/pool.ts';
import { authenticate, requireNamespace, type Principal } from '../auth.ts';
import type { BlobStore } from '../blobs.ts';
import type { DaemonConfig } from '../config.ts';
import { notFound } from '../errors.ts';
import type { HostId, NamespaceName } from '../ids.ts';
import type { Directory } from '../directory.ts';
import type { Invocations } from '../invocations.ts';
import type { Quota } from '../quota.ts';
import type { Records } from '../records.ts';
import type { Invoker } from '../invoker.ts';
import type { Metrics } from '../metrics.ts';
import type { Registry } from '../replication.ts';
import type { Store } from '../store.ts';

/** What the routes need from the daemon, handed to each route plugin. */
export interface ApiContext {
  config: DaemonConfig;
  store: Store;
  blobs: BlobStore;
  invoker: Invoker;
  pool: Pool;
  docker: Docker;
  engine: EngineWatch;
  hostId: HostId;
  log: Logger;
  directory: Directory;
  /** the one way work starts */
  invocations: Invocations;
  /** activations and jobs, read across the cluster */
  records: Records;
  quota: Quota;
  cluster: Cluster | null;
  registry: Registry;
  metrics: Metrics;
  /** creates the namespace's network if it does not exist yet */
  namespaceNetwork: (ns: string) => Promise<string>;
  removeNamespaceNetwork: (ns: string) => Promise<void>;
  /** drain, then start again in place (RunningDaemon's `restart` event) */
  restart: () => void;
}

export const principalOf = (ctx: Pick<ApiContext, 'store'>, req: FastifyRequest): Principal => authenticate(ctx.store, req.headers.authorization);

/**
 * Authenticates the caller for a namespaced route. `_` means "the caller's own
 * namespace", as in OpenWhisk. Admins may act on any namespace that exists.
 */
export function namespaceFor(ctx: Pick<ApiContext, 'store'>, req: FastifyRequest, given: string): NamespaceName {
  const p = principalOf(ctx, req);
  const ns = (given === '_' && p.kind === 'namespace' ? p.namespace : given) as NamespaceName;
  requireNamespace(p, ns);
  if (!ctx.store.hasNamespace(ns)) throw notFound(`namespace ${ns}`, '/params/namespace');
  return ns;
}
