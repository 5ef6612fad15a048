import { createHash } from 'node:crypto';
import { decode, newer } from '../gossip/hlc.ts';
import { digestOf } from './blobs.ts';
import { isEntityKind, isEntityName, parseEntity, parseFunctionRecord } from './entities.ts';
import { isName, type NamespaceName } from './ids.ts';
import type { RegistryKind } from './store.ts';
import type { EntityDocs, EntityKind, FunctionRecord } from './types.ts';

// The registry's merge rules, with no I/O: a registry message from another
// daemon and what this daemon holds go in; the one step to take comes out.
// Registry (replication.ts) carries the step out on the store; the seeded
// simulation (test/unit/registry.sim.test.ts) carries it out on a map. The
// rules:
// - last writer wins by hybrid logical clock, per entity (a namespace, a
//   function, a trigger, rule or package); a stamp that does not decode is
//   refused, as it would sort after every real one and pin the entity;
// - a delete leaves a tombstone with its clock, so an older copy arriving
//   later cannot bring the entity back;
// - an entity waits for its namespace: anti-entropy sends namespaces first
//   and repeats both, so nothing is lost by waiting;
// - every field is checked before it is stored; code that came inline must
//   match its digest.

export type NsMsg = { type: 'ns'; name: string; hlc: string; deleted: boolean; created?: number; keys?: { uuid: string; hash: string }[]; limits?: { perMinute: number; concurrent: number } };
export type FnMsg = { type: 'fn'; ns: string; name: string; hlc: string; deleted: boolean; record?: FunctionRecord; code?: string };
/** a trigger, rule or package: its whole document */
export type EntMsg = { type: 'ent'; kind: EntityKind; ns: string; name: string; hlc: string; deleted: boolean; doc?: unknown };
export type RegistryMsg = NsMsg | FnMsg | EntMsg;

/** [kind, namespace, name, hlc]: what a daemon holds of one entity, as a pull names it */
export type Clock = [kind: string, namespace: string, name: string, hlc: string];

/** What the merge needs to know of this daemon's registry. */
export interface Held {
  clockOf(kind: RegistryKind, ns: string, name?: string): { hlc: string } | undefined;
  hasNamespace(ns: NamespaceName): boolean;
}

/** The one step a message asks of this daemon. */
export type Step =
  | { do: 'reject'; what: string }
  /** what this daemon holds is as new or newer */
  | { do: 'stale' }
  /** the entity's namespace has not arrived yet */
  | { do: 'wait-namespace' }
  | { do: 'tombstone'; kind: RegistryKind; ns: NamespaceName; name: string; hlc: string }
  | { do: 'namespace'; ns: NamespaceName; hlc: string; created: number | null; keys: { uuid: string; hash: string }[]; limits: { perMinute: number; concurrent: number } | null }
  /** `code`: the code, checked against the record's digest; null when it is to be fetched by digest */
  | { do: 'function'; record: FunctionRecord; hlc: string; code: Buffer | null }
  | { do: 'entity'; kind: EntityKind; doc: EntityDocs[EntityKind]; hlc: string };

/** The step for one message; `hlc`, the message's stamp when it decodes (for this daemon's clock), else null. */
export function mergeStep(raw: unknown, held: Held): { hlc: string | null; step: Step } {
  const m = raw as RegistryMsg;
  if (!m || typeof m !== 'object' || typeof m.hlc !== 'string' || decode(m.hlc) === null || typeof m.deleted !== 'boolean') return { hlc: null, step: { do: 'reject', what: 'envelope' } };
  return { hlc: m.hlc, step: stepOf(m, held) };
}

function stepOf(m: RegistryMsg, held: Held): Step {
  if (m.type === 'ns' && typeof m.name === 'string' && isName(m.name)) {
    const ns = m.name as NamespaceName;
    if (!newer(m.hlc, held.clockOf('ns', ns)?.hlc)) return { do: 'stale' };
    if (m.deleted) return { do: 'tombstone', kind: 'ns', ns, name: '', hlc: m.hlc };
    const keys = (Array.isArray(m.keys) ? m.keys : []).filter((k) => typeof k?.uuid === 'string' && k.uuid.length <= 128 && /^[0-9a-f]{64}$/.test(String(k.hash)));
    const l = m.limits;
    const limits = l && Number.isSafeInteger(l.perMinute) && Number.isSafeInteger(l.concurrent) && l.perMinute >= 0 && l.concurrent >= 0 ? { perMinute: l.perMinute, concurrent: l.concurrent } : null;
    return { do: 'namespace', ns, hlc: m.hlc, created: typeof m.created === 'number' ? m.created : null, keys, limits };
  }
  if (m.type === 'fn' && typeof m.ns === 'string' && typeof m.name === 'string' && isName(m.ns) && isEntityName(m.name)) {
    const ns = m.ns as NamespaceName;
    if (!newer(m.hlc, held.clockOf('fn', ns, m.name)?.hlc)) return { do: 'stale' };
    if (m.deleted) return { do: 'tombstone', kind: 'fn', ns, name: m.name, hlc: m.hlc };
    const record = parseFunctionRecord(m.record, ns, m.name);
    if (!record) return { do: 'reject', what: `function ${ns}/${m.name}` };
    if (!held.hasNamespace(ns)) return { do: 'wait-namespace' };
    if (typeof m.code !== 'string') return { do: 'function', record, hlc: m.hlc, code: null };
    const code = Buffer.from(m.code, 'base64');
    if (digestOf(code) !== record.digest) return { do: 'reject', what: `function ${ns}/${m.name}: code does not match its digest` };
    return { do: 'function', record, hlc: m.hlc, code };
  }
  if (m.type === 'ent' && isEntityKind(m.kind) && typeof m.ns === 'string' && typeof m.name === 'string' && isName(m.ns) && isEntityName(m.name)) {
    const ns = m.ns as NamespaceName;
    if (!newer(m.hlc, held.clockOf(m.kind, ns, m.name)?.hlc)) return { do: 'stale' };
    if (m.deleted) return { do: 'tombstone', kind: m.kind, ns, name: m.name, hlc: m.hlc };
    const doc = parseEntity(m.kind, m.doc, ns, m.name);
    if (!doc) return { do: 'reject', what: `${m.kind} ${ns}/${m.name}` };
    if (!held.hasNamespace(ns)) return { do: 'wait-namespace' };
    return { do: 'entity', kind: m.kind, doc, hlc: m.hlc };
  }
  return { do: 'reject', what: 'kind or name' };
}

export const clockKey = (kind: string, ns: string, name: string) => `${kind}\0${ns}\0${name}`;

/** For a pull: whether this daemon holds an entity newer than the puller's clocks say the puller does. */
export function wantedBy(have: Clock[]): (kind: string, ns: string, name: string, hlc: string) => boolean {
  const held = new Map(have.map(([kind, ns, name, hlc]) => [clockKey(kind, ns, name), hlc]));
  return (kind, ns, name, hlc) => newer(hlc, held.get(clockKey(kind, ns, name)));
}

/**
 * A hash of a registry's clocks (tombstones included), as a 48-bit integer for the beat rows: two daemons
 * holding the same registry hold the same clocks. The clocks must come in a stable order; `deleted` as the
 * store keeps it (1 or 0), since daemons of every version compare these.
 */
export function registryDigest(clocks: Iterable<{ kind: string; namespace: string; name: string; hlc: string; deleted: number | boolean }>): number {
  const h = createHash('sha256');
  for (const c of clocks) h.update(`${c.kind}\0${c.namespace}\0${c.name}\0${c.hlc}\0${c.deleted}\n`);
  return parseInt(h.digest('hex').slice(0, 12), 16);
}
