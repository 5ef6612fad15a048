import { isName } from './ids.ts';
import type { EntityDocs, EntityKind, EntityRef, KeyValue } from './types.ts';

// Triggers, rules and packages as documents: what a well-formed one is (a document from another
// daemon is checked before it is stored, and a bad one is dropped), and OpenWhisk's ways of naming
// one entity from another. Pure: no I/O.

export const ENTITY_KINDS: readonly EntityKind[] = ['trigger', 'rule', 'package'];
export const isEntityKind = (k: unknown): k is EntityKind => typeof k === 'string' && (ENTITY_KINDS as readonly string[]).includes(k);

/** A package's name, or a name within one (pkg/name): what entities and functions may be called. */
export const isEntityName = (s: string): boolean => {
  const parts = s.split('/');
  return parts.length <= 2 && parts.every(isName);
};

const isObj = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
const isKeyValues = (v: unknown): v is KeyValue[] => Array.isArray(v) && v.every((x) => isObj(x) && typeof x.key === 'string');
const isRef = (v: unknown): v is EntityRef => isObj(v) && typeof v.path === 'string' && typeof v.name === 'string';

/** The document if it is a well-formed entity of that kind, named as the message says; else null. */
export function parseEntity<K extends EntityKind>(kind: K, raw: unknown, ns: string, name: string): EntityDocs[K] | null {
  if (!isObj(raw) || raw.namespace !== ns || raw.name !== name || typeof raw.version !== 'string' || typeof raw.publish !== 'boolean'
    || !isKeyValues(raw.annotations) || typeof raw.updated !== 'number') return null;
  switch (kind) {
    case 'trigger':
      return isKeyValues(raw.parameters) && isObj(raw.limits) ? (raw as unknown as EntityDocs[K]) : null;
    case 'rule':
      return (raw.status === 'active' || raw.status === 'inactive') && isRef(raw.trigger) && isRef(raw.action) ? (raw as unknown as EntityDocs[K]) : null;
    case 'package':
      return isKeyValues(raw.parameters) && isObj(raw.binding) ? (raw as unknown as EntityDocs[K]) : null;
    default:
      return null;
  }
}

/**
 * An entity named the way OpenWhisk's clients name one from another: `/ns/name`, `/ns/pkg/name`, `ns/name`
 * is read as OpenWhisk does (`pkg/name` in the caller's namespace), `name`; `_` is the caller's namespace.
 * Null for a name that is none of these.
 */
export function parseRef(given: string, callerNs: string): { namespace: string; name: string } | null {
  const abs = given.startsWith('/');
  const parts = given.replace(/^\//, '').split('/');
  let ns: string;
  let rest: string[];
  if (abs) [ns, ...rest] = parts as [string, ...string[]];
  else [ns, rest] = [callerNs, parts];
  if (ns === '_') ns = callerNs;
  if (rest.length < 1 || rest.length > 2 || !isName(ns) || !rest.every(isName)) return null;
  return { namespace: ns, name: rest.join('/') };
}

/** A reference as OpenWhisk writes it in a rule: the path (namespace, with the package) and the name. */
export function refOf(r: { namespace: string; name: string }): EntityRef {
  const i = r.name.lastIndexOf('/');
  return i < 0 ? { path: r.namespace, name: r.name } : { path: `${r.namespace}/${r.name.slice(0, i)}`, name: r.name.slice(i + 1) };
}
export const refName = (r: EntityRef) => `/${r.path}/${r.name}`;
/** The namespace and the stored name (pkg/name for an action in a package) of a reference. */
export function refTarget(r: EntityRef): { namespace: string; name: string } {
  const [namespace, ...pkg] = r.path.split('/');
  return { namespace: namespace!, name: [...pkg, r.name].join('/') };
}

/** Key/value pairs as an object, later keys winning. */
export const toObject = (kv: KeyValue[]): Record<string, unknown> => Object.fromEntries(kv.map((p) => [p.key, p.value]));
