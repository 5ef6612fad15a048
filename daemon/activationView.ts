import { isCount, isObj } from '../gossip/protocols.ts';
import { isActivationId } from './ids.ts';
import { STATUS_CODE, type ActivationRecord } from './types.ts';

// Activation records as OpenWhisk shows them, and how a blocking call waits for
// one: shared by the routes and by the services that start and read work (which
// must not depend on the HTTP layer).

/** A blocking invocation waits this long, then answers 202 with the activation ID (OpenWhisk's rule). */
export const BLOCKING_WAIT_MS = 60_000;

/** The outcome within the blocking wait (or a caller's shorter one, OpenWhisk's ?timeout=ms), or 'late'. */
export function withinBlockingWait<T>(p: Promise<T>, waitMs = BLOCKING_WAIT_MS): Promise<T | 'late'> {
  const late = new Promise<'late'>((r) => setTimeout(() => r('late'), waitMs).unref());
  return Promise.race([p, late]);
}

/**
 * The HTTP status of a blocking answer, as OpenWhisk gives it: 200 when every activation succeeded,
 * 500 when any failed inside the platform (undefined: one whose host was lost), else 502.
 */
export function httpStatusFor(statuses: (string | undefined)[]): number {
  if (statuses.some((s) => s === undefined || s === 'whisk internal error')) return 500;
  return statuses.every((s) => s === 'success') ? 200 : 502;
}

export const activationView = (a: ActivationRecord) => ({
  activationId: a.activationId,
  namespace: a.namespace,
  name: a.name,
  version: `0.0.${a.version}`,
  host: a.host,
  start: a.start,
  end: a.end,
  duration: a.duration,
  response: {
    status: a.status,
    statusCode: STATUS_CODE[a.status],
    success: a.status === 'success',
    result: a.result,
  },
  logs: a.logs,
  annotations: Object.entries(a.annotations).map(([key, value]) => ({ key, value })),
  // A sequence's component names the sequence's activation here, as OpenWhisk does.
  ...(a.annotations.cause ? { cause: a.annotations.cause } : {}),
});

export type ActivationView = ReturnType<typeof activationView>;

/**
 * An activation record another daemon sent, checked for what the API and the invocation service read of it
 * (its ID, namespace, name, times, outcome, logs and annotations); null when any of that is off.
 */
export function parseActivationView(v: unknown): ActivationView | null {
  if (!isObj(v) || !isObj(v.response)) return null;
  const { activationId, namespace, name, version, host, start, end, duration, response, logs, annotations } = v;
  if (!isActivationId(activationId) || typeof namespace !== 'string' || typeof name !== 'string') return null;
  if (typeof version !== 'string' || typeof host !== 'string' || !isCount(start) || !(end === null || isCount(end)) || !(duration === null || isCount(duration))) return null;
  if (typeof response.status !== 'string' || !(response.status in STATUS_CODE) || typeof response.success !== 'boolean') return null;
  if (!Array.isArray(logs) || !logs.every((l) => typeof l === 'string') || !Array.isArray(annotations) || !annotations.every((a) => isObj(a) && typeof a.key === 'string')) return null;
  if (v.cause !== undefined && typeof v.cause !== 'string') return null;
  return v as unknown as ActivationView;
}
