import { randomBytes } from 'node:crypto';

// Branded identifiers: a plain string cannot be passed where one of these is
// expected, so a function name never ends up where a namespace belongs.
declare const brand: unique symbol;
export type Brand<T, B extends string> = T & { readonly [brand]: B };

export type NamespaceName = Brand<string, 'NamespaceName'>;
export type FunctionName = Brand<string, 'FunctionName'>;
export type ActivationId = Brand<string, 'ActivationId'>;
export type HostId = Brand<string, 'HostId'>;
export type Digest = Brand<string, 'Digest'>;

/** Entity names: OpenWhisk's rule (letters, digits, _ @ . -), first char not a symbol, at most 256. */
export const NAME_PATTERN = '^[A-Za-z0-9_][A-Za-z0-9_@.\\-]{0,255}$';
const NAME_RE = new RegExp(NAME_PATTERN);

export const isName = (s: string): boolean => NAME_RE.test(s) && s !== '.' && s !== '..';

/** A function's entry point: an identifier, or a dotted path of them (file.func). */
export const ENTRY_PATTERN = '^[A-Za-z_$][A-Za-z0-9_$]*(\\.[A-Za-z_$][A-Za-z0-9_$]*)*$';
/** A local image reference (a blackbox function's). */
export const IMAGE_PATTERN = '^[a-z0-9][a-z0-9._/-]*(:[A-Za-z0-9_.-]{1,128})?(@sha256:[0-9a-f]{64})?$';
/** An entity's version, as OpenWhisk writes it. */
export const SEMVER_PATTERN = '^\\d{1,9}\\.\\d{1,9}\\.\\d{1,9}$';

export const newActivationId = (): ActivationId => randomBytes(16).toString('hex') as ActivationId;
export const ACTIVATION_ID_PATTERN = '^[0-9a-f]{32}$';
const ACTIVATION_ID = new RegExp(ACTIVATION_ID_PATTERN);
export const isActivationId = (s: unknown): s is ActivationId => typeof s === 'string' && ACTIVATION_ID.test(s);

export const isDigest = (s: string): s is Digest => /^sha256:[0-9a-f]{64}$/.test(s);
