import type { Change, Entry } from './addrmap.ts';
import { isCount, isObj } from './protocols.ts';
import type { GossipMessage } from './replica.ts';

// The address-map topic's messages as they come off the wire: checked field by
// field before anything reads them. A signature says who sent a message, not
// that it is well formed: any holder of the cluster key can sign `changes:
// null`, and a daemon that trusted it would throw inside its event listener.
// What fails here is dropped and counted (`malformed` in the cluster's stats).

/** What the topic carries besides the replica's messages: a request for an origin's snapshot. */
export type PullMessage = { type: 'pull'; origin: string; from: string };
export type TopicMessage = GossipMessage | PullMessage;

const MAX_ID = 256;
const MAX_CHANGES = 100_000;

const isStr = (x: unknown, max = MAX_ID): x is string => typeof x === 'string' && x.length > 0 && x.length <= max;

/** An address-map entry, every field of the right type (unknown extra fields are dropped). */
export function parseEntry(x: unknown): Entry | null {
  if (!isObj(x)) return null;
  const { namespace, instance, function: fn, activation, host, ip, port, state, status, since, epoch, restart } = x;
  if (!isStr(namespace) || !isStr(instance) || !isStr(fn) || !isStr(activation) || !isStr(host)) return null;
  if (!(ip === null || isStr(ip, 64)) || !(Number.isInteger(port) && (port as number) > 0 && (port as number) < 65536)) return null;
  if (state !== 'starting' && state !== 'running') return null;
  if (!(status === null || (typeof status === 'string' && status.length <= 1024)) || !isCount(since)) return null;
  if (!(epoch === undefined || isCount(epoch)) || !(restart === undefined || typeof restart === 'boolean')) return null;
  return {
    namespace,
    instance,
    function: fn,
    activation,
    host,
    ip,
    port: port as number,
    state,
    status,
    since,
    ...(epoch !== undefined ? { epoch } : {}),
    ...(restart !== undefined ? { restart } : {}),
  };
}

function parseChange(x: unknown): Change | null {
  if (!isObj(x)) return null;
  if (x.kind === 'upsert') {
    const entry = parseEntry(x.entry);
    return entry && { kind: 'upsert', entry };
  }
  if (x.kind === 'remove' && isStr(x.namespace) && isStr(x.instance)) return { kind: 'remove', namespace: x.namespace, instance: x.instance };
  return null;
}

/** Every item parsed, or null if any is not. */
function all<T>(xs: unknown, parse: (x: unknown) => T | null): T[] | null {
  if (!Array.isArray(xs) || xs.length > MAX_CHANGES) return null;
  const out: T[] = [];
  for (const x of xs) {
    const v = parse(x);
    if (v === null) return null;
    out.push(v);
  }
  return out;
}

/** A message of the address-map topic, checked; null when anything in it is not what the protocol says. */
export function parseTopicMessage(x: unknown): TopicMessage | null {
  if (!isObj(x) || !isStr(x.origin)) return null;
  const origin = x.origin;
  if (x.type === 'pull') return isStr(x.from) ? { type: 'pull', origin, from: x.from } : null;
  if (!isCount(x.incarnation)) return null;
  const incarnation = x.incarnation;
  switch (x.type) {
    case 'leave':
      return { type: 'leave', origin, incarnation };
    case 'down':
      if (x.why === undefined) return { type: 'down', origin, incarnation };
      return x.why === 'refused' || x.why === 'timeout' ? { type: 'down', origin, incarnation, why: x.why } : null;
    case 'heartbeat':
      return isCount(x.seq) && typeof x.load === 'number' && Number.isFinite(x.load) ? { type: 'heartbeat', origin, incarnation, seq: x.seq, load: x.load } : null;
    case 'delta': {
      const changes = all(x.changes, parseChange);
      // A delta's changes end at its seq: it cannot hold more changes than its seq counts.
      return changes && isCount(x.seq) && changes.length <= x.seq ? { type: 'delta', origin, incarnation, seq: x.seq, changes } : null;
    }
    case 'snapshot': {
      const entries = all(x.entries, parseEntry);
      return entries && isCount(x.seq) ? { type: 'snapshot', origin, incarnation, seq: x.seq, entries } : null;
    }
    default:
      return null;
  }
}
