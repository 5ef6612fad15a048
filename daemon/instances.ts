import { InstanceClash, type Entry } from '../gossip/addrmap.ts';
import type { Claimant } from '../gossip/claims.ts';
import type { Directory } from './directory.ts';
import { conflict, notFound, PeerlessError } from './errors.ts';
import { newActivationId, type ActivationId, type FunctionName, type HostId, type NamespaceName } from './ids.ts';
import type { Invoker } from './invoker.ts';
import type { Quota } from './quota.ts';
import type { Store } from './store.ts';
import type { ActivationRecord } from './types.ts';

// Starting activations, alone or as a group of named instances. A group's IDs
// are claimed all at once before anything starts (from each ID's arbiter in a
// cluster, then in the address map), so an ID clash refuses the whole group
// and starts none of it.

export interface Started {
  instance: string | null;
  activationId: ActivationId;
  done: Promise<ActivationRecord>;
}

export interface Starter {
  quota: Quota;
  store: Store;
  invoker: Invoker;
  directory: Directory;
  hostId: HostId;
  payloadBytes: number;
  /** set once the daemon is in a cluster: IDs are then granted by their arbiters */
  claims?: Claimant;
}

/**
 * Starts one activation, or one per ID. `claimedBy` names the daemon that already claimed the IDs from
 * their arbiters (a group spread over the cluster is claimed whole by the daemon that spread it).
 */
export async function startInstances(s: Starter, ns: NamespaceName, name: FunctionName, given: Record<string, unknown>, ids: string[], field = '/query/instances', claimedBy?: string): Promise<Started[]> {
  const fn = s.store.getFunction(ns, name);
  if (!fn) throw notFound(`function ${name}`, '/params/name');
  const params = { ...fn.parameters, ...given };
  if (Buffer.byteLength(JSON.stringify(params)) > s.payloadBytes)
    throw new PeerlessError('payload_too_large', `parameters exceed ${s.payloadBytes} bytes`, { field: '/body' });
  admit(s, ns, Math.max(1, ids.length));
  const release = (d: Promise<unknown>) => void d.finally(() => s.quota.done(ns));
  if (ids.length === 0) {
    const { activationId, done } = s.invoker.start(fn, params);
    release(done);
    return [{ instance: null, activationId, done }];
  }
  // Nothing starts: the quota admitted above is given back.
  const giveBack = () => {
    for (let i = 0; i < ids.length; i++) s.quota.done(ns);
  };
  const refuse = (message: string) => {
    giveBack();
    return conflict(message, field);
  };
  // Known taken here: no need to ask anyone.
  const here = ids.find((id) => s.directory.get(ns, id));
  if (here) throw refuse(new InstanceClash(here).message);
  if (s.claims && claimedBy === undefined) {
    const v = await s.claims.claim(ns, ids);
    if (!v.ok) throw refuse(new InstanceClash(v.taken).message);
  }
  const holder = claimedBy ?? s.claims?.self;
  let entries: Entry[];
  try {
    entries = s.directory.reserve(ids.map((instance) => ({ namespace: ns, instance, function: name, activation: newActivationId(), host: s.hostId })));
  } catch (e) {
    // Not released at the arbiters: the clash may be a claim of this same daemon that holds them now.
    if (e instanceof InstanceClash) throw refuse(e.message);
    giveBack();
    throw e;
  }
  return entries.map((entry) => {
    const { activationId, done } = s.invoker.start(fn, params, { instance: entry });
    release(done);
    void done.finally(() => s.claims?.release(ns, [entry.instance], holder));
    return { instance: entry.instance, activationId, done };
  });
}

/** Refuses with 429 and Retry-After when the namespace is over its rate or its concurrency (its own, or the default). */
export function admit(s: Pick<Starter, 'quota' | 'store'>, ns: NamespaceName, n: number): void {
  const a = s.quota.admit(ns, n, Date.now(), s.store.namespaceLimits(ns));
  if (!a.ok) throw new PeerlessError('too_many_requests', a.reason, { headers: { 'retry-after': String(a.retryAfterS) } });
}
