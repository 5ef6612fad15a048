import { isObj } from '../gossip/protocols.ts';
import { ENTRY_PATTERN, IMAGE_PATTERN, isDigest, isName, type Digest, type FunctionName, type NamespaceName } from './ids.ts';
import { metaOf } from './kinds.ts';
import type { EntityDocs, EntityKind, EntityRef, FunctionRecord, KeyValue, Runtime } from './types.ts';

// The registry's documents (functions, triggers, rules, packages): what a well-formed one is (a
// document from another daemon is checked before it is stored, and a bad one is dropped), and
// OpenWhisk's ways of naming one entity from another. Pure: no I/O.

export const ENTITY_KINDS: readonly EntityKind[] = ['trigger', 'rule', 'package'];
export const isEntityKind = (k: unknown): k is EntityKind => typeof k === 'string' && (ENTITY_KINDS as readonly string[]).includes(k);

/** A package's name, or a name within one (pkg/name): what entities and functions may be called. */
export const isEntityName = (s: string): boolean => {
  const parts = s.split('/');
  return parts.length <= 2 && parts.every(isName);
};

const isKeyValues = (v: unknown): v is KeyValue[] => Array.isArray(v) && v.every((x) => isObj(x) && typeof x.key === 'string');
const isRef = (v: unknown): v is EntityRef => isObj(v) && typeof v.path === 'string' && typeof v.name === 'string';

/** The document if it is a well-formed entity of that kind, named as the message says; else null. */
export function parseEntity<K extends EntityKind>(kind: K, raw: unknown, ns: string, name: string): EntityDocs[K] | null {
  if (
    !isObj(raw) ||
    raw.namespace !== ns ||
    raw.name !== name ||
    typeof raw.version !== 'string' ||
    typeof raw.publish !== 'boolean' ||
    !isKeyValues(raw.annotations) ||
    typeof raw.updated !== 'number'
  )
    return null;
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

const ENTRY = new RegExp(ENTRY_PATTERN);
const IMAGE = new RegExp(IMAGE_PATTERN);
const int = (v: unknown, min: number, max: number): v is number => Number.isSafeInteger(v) && (v as number) >= min && (v as number) <= max;

function parseRuntime(v: unknown): Runtime | null {
  if (!isObj(v)) return null;
  if (v.kind === 'nodejs' || v.kind === 'python') return { kind: v.kind };
  if (v.kind === 'image') return typeof v.image === 'string' && v.image.length <= 512 && IMAGE.test(v.image) ? { kind: 'image', image: v.image } : null;
  if (v.kind === 'sequence') {
    const c = v.components;
    const ok = Array.isArray(c) && c.length > 0 && c.length <= 50 && c.every((x) => typeof x === 'string' && x.startsWith('/') && parseRef(x, '_') !== null);
    return ok ? { kind: 'sequence', components: c as string[] } : null;
  }
  return null;
}

/**
 * A function record from another daemon, if it is well formed and named as its message says; else null.
 * Every field the daemon later reads is checked here, so a signed but malformed record cannot reach the
 * invoker or the API (a record from before limits.concurrency gets 1; one without meta, its defaults).
 */
export function parseFunctionRecord(raw: unknown, ns: string, name: string): FunctionRecord | null {
  if (!isObj(raw) || raw.namespace !== ns || raw.name !== name || !isEntityName(name)) return null;
  const runtime = parseRuntime(raw.runtime);
  const l = raw.limits;
  if (!runtime || typeof raw.digest !== 'string' || !isDigest(raw.digest) || typeof raw.binary !== 'boolean') return null;
  if (typeof raw.main !== 'string' || !ENTRY.test(raw.main) || raw.main.length > 256) return null;
  if (!isObj(l) || !int(l.memoryMb, 1, 1 << 20) || !int(l.timeoutMs, 1, 86_400_000) || !(l.concurrency === undefined || int(l.concurrency, 1, 100_000))) return null;
  if (!isObj(raw.parameters) || !int(raw.version, 0, Number.MAX_SAFE_INTEGER) || typeof raw.created !== 'number' || typeof raw.updated !== 'number') return null;
  const f = {
    namespace: ns as NamespaceName,
    name: name as FunctionName,
    runtime,
    digest: raw.digest as Digest,
    binary: raw.binary,
    main: raw.main,
    limits: { memoryMb: l.memoryMb, timeoutMs: l.timeoutMs, concurrency: (l.concurrency as number | undefined) ?? 1 },
    parameters: raw.parameters,
    version: raw.version,
    created: raw.created,
    updated: raw.updated,
  };
  return { ...f, meta: metaOf(raw.meta, f) };
}
