import { InstanceClash, type Entry } from '../gossip/addrmap.ts';
import type { Directory } from './directory.ts';
import { conflict, notFound, PeerlessError } from './errors.ts';
import { newActivationId, type ActivationId, type FunctionName, type HostId, type NamespaceName } from './ids.ts';
import type { Invoker } from './invoker.ts';
import type { Quota } from './quota.ts';
import type { Store } from './store.ts';
import type { ActivationRecord } from './types.ts';

// Starting activations, alone or as a group of named instances. A group's IDs
// are claimed all at once in the address map before anything starts, so an ID
// clash refuses the whole group and starts none of it.

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
}

export function startInstances(s: Starter, ns: NamespaceName, name: FunctionName, given: Record<string, unknown>, ids: string[], field = '/query/instances'): Started[] {
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
  let entries: Entry[];
  try {
    entries = s.directory.reserve(ids.map((instance) => ({ namespace: ns, instance, function: name, activation: newActivationId(), host: s.hostId })));
  } catch (e) {
    for (let i = 0; i < ids.length; i++) s.quota.done(ns);
    if (e instanceof InstanceClash) throw conflict(e.message, field);
    throw e;
  }
  return entries.map((entry) => {
    const { activationId, done } = s.invoker.start(fn, params, { instance: entry });
    release(done);
    return { instance: entry.instance, activationId, done };
  });
}

/** Refuses with 429 and Retry-After when the namespace is over its rate or its concurrency (its own, or the default). */
export function admit(s: Pick<Starter, 'quota' | 'store'>, ns: NamespaceName, n: number): void {
  const a = s.quota.admit(ns, n, Date.now(), s.store.namespaceLimits(ns));
  if (!a.ok) throw new PeerlessError('too_many_requests', a.reason, { headers: { 'retry-after': String(a.retryAfterS) } });
}
