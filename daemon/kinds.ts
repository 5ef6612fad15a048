import { invalid } from './errors.ts';
import type { FunctionMeta } from './types.ts';

// OpenWhisk's `exec.kind` strings, and what runs them here. A `<family>:default` kind is
// resolved to the family's default and stored resolved, as OpenWhisk does; other known
// kinds are stored as given, so a client reads back what it wrote.

export type Family = 'nodejs' | 'python';

/** The kind each family's `:default` resolves to: the versions the runtime images carry. */
export const DEFAULT_KIND: Record<Family, string> = { nodejs: 'nodejs:24', python: 'python:3.11' };

/** Every kind a function may name, by family. `python:3` is OpenWhisk's old default, still in its docs. */
const KINDS: Record<Family, string[]> = {
  nodejs: ['nodejs', 'nodejs:default', 'nodejs:24'],
  python: ['python', 'python:default', 'python:3', 'python:3.11'],
};

export interface ResolvedKind {
  family: Family | 'blackbox' | 'sequence';
  kind: string;
}

export const KNOWN_KINDS = [...KINDS.nodejs, ...KINDS.python, 'blackbox', 'sequence'];

/** The kind, trimmed and lowercased as OpenWhisk reads it, resolved; a 400 naming the field for one we do not run. */
export function resolveKind(given: string, field = '/body/exec/kind'): ResolvedKind {
  const k = given.trim().toLowerCase();
  if (k === 'blackbox' || k === 'sequence') return { family: k, kind: k };
  for (const family of ['nodejs', 'python'] as const) {
    if (KINDS[family].includes(k)) return { family, kind: k === `${family}:default` ? DEFAULT_KIND[family] : k };
  }
  throw invalid(field, `The specified runtime '${given}' is not supported by this platform. Valid values are: ${KNOWN_KINDS.map((x) => `'${x}'`).join(', ')}.`);
}

/** The runtimes manifest of GET /, in OpenWhisk's shape. */
export const runtimesManifest = () => ({
  nodejs: [{ kind: DEFAULT_KIND.nodejs, default: true, deprecated: false, image: 'peerless/runtime-nodejs', attached: false, requireMain: false }],
  python: [{ kind: DEFAULT_KIND.python, default: true, deprecated: false, image: 'peerless/runtime-python', attached: false, requireMain: false }],
  blackboxes: [],
});

/** OpenWhisk's versions are semver strings, patch-bumped on every update that names none. */
export function bumpVersion(v: string): string {
  const m = /^(\d+)\.(\d+)\.(\d+)$/.exec(v);
  return m ? `${m[1]}.${m[2]}.${Number(m[3]) + 1}` : '0.0.1';
}

/** The meta a record carries if it is well formed (it may come from another daemon), else the default. */
export function metaOf(given: unknown, f: { runtime: { kind: string }; version: number }): FunctionMeta {
  const m = given as Partial<FunctionMeta> | null;
  const ok =
    m !== null &&
    typeof m === 'object' &&
    typeof m.kind === 'string' &&
    typeof m.version === 'string' &&
    typeof m.publish === 'boolean' &&
    Number.isSafeInteger(m.logsMb) &&
    Array.isArray(m.init) &&
    m.init.every((k) => typeof k === 'string') &&
    Array.isArray(m.annotations) &&
    m.annotations.every((a) => a !== null && typeof a === 'object' && typeof (a as { key?: unknown }).key === 'string');
  return ok ? (m as FunctionMeta) : defaultMeta(f);
}

/** The meta of a record that has none: written before OpenWhisk documents were kept, here or on an older daemon. */
export function defaultMeta(f: { runtime: { kind: string }; version: number; limits?: unknown }): FunctionMeta {
  const kind = f.runtime.kind === 'image' ? 'blackbox' : f.runtime.kind;
  return { kind, annotations: [{ key: 'exec', value: kind }], publish: false, version: `0.0.${f.version}`, init: [], logsMb: 10 };
}
