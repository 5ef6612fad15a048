import { readFileSync } from 'node:fs';
import { paramValue, UsageError, type Parsed } from './args.ts';
import type { Target } from './client.ts';

// What every CLI command gets, and the few helpers they share.

export interface Cmd {
  t: Target;
  ns: string;
  a: Parsed;
  json: boolean;
}

export const out = (s: string) => process.stdout.write(`${s}\n`);
export const print = (c: Cmd, v: unknown, text: () => string) => out(c.json ? JSON.stringify(v, null, 2) : text());
export const enc = encodeURIComponent;

export function need(a: Parsed, i: number, what: string): string {
  const v = a.positional[i];
  if (v === undefined) throw new UsageError(`missing ${what}`);
  return v;
}

/** The -P file's parameters, with each -p KEY VALUE over them. */
export function paramsOf(a: Parsed): Record<string, unknown> {
  let base: Record<string, unknown> = {};
  const file = a.flags.get('param-file');
  if (typeof file === 'string') {
    const parsed = JSON.parse(readFileSync(file, 'utf8')) as unknown;
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new UsageError(`${file} must hold a JSON object`);
    base = parsed as Record<string, unknown>;
  }
  for (const [k, v] of a.params) base[k] = paramValue(v);
  return base;
}

/**
 * An entity's route: `name`, `pkg/name` or `/ns/[pkg/]name` (wsk's fully qualified form, `_` being the
 * caller's namespace), each segment encoded.
 */
export function entityPath(c: Cmd, collection: string, name: string): string {
  const parts = name.replace(/^\//, '').split('/');
  const [ns, rest] = name.startsWith('/') ? [parts[0]!, parts.slice(1)] : [c.ns, parts];
  if (rest.length === 0 || rest.length > 2 || rest.some((p) => p === '')) throw new UsageError(`${name} is not a name (NAME, PACKAGE/NAME or /NAMESPACE/[PACKAGE/]NAME)`);
  return `/api/v1/namespaces/${enc(ns)}/${collection}/${rest.map(enc).join('/')}`;
}
