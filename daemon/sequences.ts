import type { Logger } from 'pino';
import { activationView, type ActivationView } from './activationView.ts';
import { PeerlessError } from './errors.ts';
import { newActivationId, type ActivationId, type FunctionName, type HostId, type NamespaceName } from './ids.ts';
import type { Store } from './store.ts';
import type { ActivationAnnotations, ActivationStatus, FunctionRecord } from './types.ts';

// A sequence (OpenWhisk's `kind: sequence`) runs its components one after another, each with the
// previous one's result as its parameters, and stops at the first that fails. Its own activation
// record lists the component activations in `logs`; each component records the sequence as its
// `cause`. Components are invoked through the invocation service like any other work, so they are
// admitted, placed and charged to the quota as single invocations, on whichever daemon has room.

/** How deep sequences may nest (OpenWhisk caps a sequence at 50 actions). */
export const MAX_SEQUENCE = 50;

/** One component's invocation, as the invocation service starts it. */
export interface ComponentRequest {
  namespace: NamespaceName;
  function: FunctionName;
  params: Record<string, unknown>;
  cause: ActivationId;
  depth: number;
}
type Started = { members: { activationId: ActivationId; done: Promise<ActivationView> }[] };

export interface SequenceDeps {
  store: Store;
  hostId: HostId;
  log: Logger;
  invoke: (r: ComponentRequest) => Promise<Started>;
}

/** Parses a fully qualified component name (/ns/name), as the API stored it. */
export const componentOf = (fqn: string) => {
  const [, namespace, ...name] = fqn.split('/');
  return { namespace: namespace as NamespaceName, name: name.join('/') as FunctionName };
};

/**
 * Starts the sequence: its first component is invoked before anything is recorded, so a refusal (quota,
 * a missing component) reaches the caller with nothing started; the rest run in the background.
 */
export async function startSequence(
  d: SequenceDeps,
  fn: FunctionRecord,
  params: Record<string, unknown>,
  opts: { cause?: ActivationId; depth: number },
): Promise<{ activationId: ActivationId; done: Promise<ActivationView> }> {
  if (fn.runtime.kind !== 'sequence') throw new Error(`${fn.name} is not a sequence`);
  if (opts.depth >= MAX_SEQUENCE) throw new PeerlessError('bad_request', `Too many actions in the sequence: sequences nest more than ${MAX_SEQUENCE} deep`, { field: '/params/name' });
  const components = fn.runtime.components;
  const id = newActivationId();
  const call = (i: number, p: Record<string, unknown>) => {
    const c = componentOf(components[i]!);
    return d.invoke({ namespace: c.namespace, function: c.name, params: p, cause: id, depth: opts.depth + 1 });
  };
  const first = await call(0, params);
  const start = Date.now();
  const annotations: Partial<ActivationAnnotations> = {
    kind: 'sequence',
    path: `${fn.namespace}/${fn.name}`,
    limits: { memory: fn.limits.memoryMb, timeout: fn.limits.timeoutMs },
    topmost: opts.cause === undefined,
    ...(opts.cause ? { causedBy: 'sequence' as const, cause: opts.cause } : {}),
  };
  d.store.startActivation({ activationId: id, namespace: fn.namespace, name: fn.name, version: fn.version, host: d.hostId, start, annotations });
  const run = async (): Promise<{ status: Exclude<ActivationStatus, 'running'>; result: unknown; ids: string[] }> => {
    const ids: string[] = [];
    let member = first.members[0]!;
    for (let i = 0; ; i++) {
      ids.push(member.activationId);
      const view = await member.done;
      const { status, result } = view.response;
      if (status !== 'success' || i === components.length - 1) return { status: status as Exclude<ActivationStatus, 'running'>, result, ids };
      // An array result is passed on whole in OpenWhisk; parameters here are an object, so it is wrapped.
      const next = result !== null && typeof result === 'object' && !Array.isArray(result) ? (result as Record<string, unknown>) : { value: result };
      try {
        member = (await call(i + 1, next)).members[0]!;
      } catch (e) {
        return { status: 'action developer error', result: { error: `Sequence component ${components[i + 1]} could not be invoked: ${(e as Error).message}` }, ids };
      }
    }
  };
  const done = run()
    .catch((err: unknown) => {
      d.log.error({ err, activationId: id }, 'sequence failed inside the platform');
      return { status: 'whisk internal error' as const, result: { error: 'The platform failed to run the sequence.' }, ids: [] };
    })
    .then((o) => {
      d.store.finishActivation(id, Date.now(), start, o.status, o.result, o.ids, annotations);
      return activationView(d.store.getActivation(id)!);
    });
  return { activationId: id, done };
}
