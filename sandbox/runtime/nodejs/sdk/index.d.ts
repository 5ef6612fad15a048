// Type declarations of the peerless SDK for Node.js functions (index.js). The wire is in docs/wire.md.

/** An instance's entry in its namespace's map. */
export interface Entry {
  instance: string;
  function: string;
  activation: string;
  host: string;
  ip: string | null;
  port: number;
  state: 'starting' | 'running';
  status?: string;
  /** how many times its job has restarted it */
  epoch?: number;
  /** whether its job restarts it when it fails */
  restart?: boolean;
}

export interface Message {
  from: string;
  data: Buffer;
}

/** Options of every call that waits. */
export interface WaitOptions {
  /** milliseconds, then TimeoutError */
  timeout?: number;
  /** rejects with the signal's reason when it aborts */
  signal?: AbortSignal;
}

/** What every error of the SDK is: `code` tells them apart. */
export class PeerlessError extends Error {
  readonly code: 'PEER_GONE' | 'PEER_RESTARTED' | 'TIMEOUT' | 'API';
}
/** The peer is not in the map: it ended, failed or never ran. */
export class PeerGoneError extends PeerlessError {
  readonly name: 'PeerGoneError';
  readonly code: 'PEER_GONE';
  readonly instance: string;
}
/** The peer failed and its job started it again under the same ID (its state is new): resend what it needs. */
export class PeerRestartedError extends PeerlessError {
  readonly name: 'PeerRestartedError';
  readonly code: 'PEER_RESTARTED';
  readonly instance: string;
  readonly epoch: number;
}
export class TimeoutError extends PeerlessError {
  readonly name: 'TimeoutError';
  readonly code: 'TIMEOUT';
}
/** The function API refused a call (a bad spawn, say): its status and problem document. */
export class ApiError extends PeerlessError {
  readonly code: 'API';
  readonly status: number;
  readonly body: unknown;
}

export type Bytes = Buffer | Uint8Array | string;
type TypedArray = Float64Array | Float32Array | Int32Array | Uint32Array | Int16Array | Uint16Array | Int8Array | Uint8Array | BigInt64Array | BigUint64Array;
/** What a collective carries: a number is one f64, a bigint one i64 (docs/wire.md, "Values"). */
export type Value = number | bigint | string | Buffer | TypedArray;
/** A literal's own type (1 → number, 'x' → string), so operators and results are not held to one literal. */
export type Widen<T> = T extends number ? number : T extends bigint ? bigint : T extends string ? string : T;
/** A built-in operator (element by element on arrays), or one of your own that returns a new value. */
export type Op<T> = 'sum' | 'prod' | 'min' | 'max' | ((a: T, b: T) => T);
export const OPS: Record<'sum' | 'prod' | 'min' | 'max', <T>(a: T, b: T) => T>;

export function self(): Promise<{ namespace: string; activation: string; instance: string | null; entry: Entry | null }>;
export function instanceId(): string | null;
export function list(): Promise<Entry[]>;
export function lookup(id: string): Promise<Entry>;
/** Resolves once every ID runs; TimeoutError at the timeout (default 30 s); PeerGoneError at once if one failed before it ran. */
export function waitFor(ids: string | string[], opts?: number | WaitOptions): Promise<Entry[]>;
export function setStatus(status: string): Promise<Entry>;
/** Starts instances of a function of this namespace as a job; its ID is then in spawn.lastJob. */
export function spawn(
  fn: string,
  opts?: { instance?: string; instances?: string | string[]; params?: Record<string, unknown>; restart?: string; queueTimeout?: number; detach?: boolean },
): Promise<{ instance: string; activationId: string; host: string }[]>;

export function connect(id: string): Promise<void>;
export function send(id: string, data: Bytes, opts?: { signal?: AbortSignal }): Promise<void>;
export function recv(from?: string | null, opts?: number | WaitOptions): Promise<Message>;
/** Messages as they come, until the signal aborts or the activation ends. */
export function messages(opts?: { from?: string; signal?: AbortSignal }): AsyncGenerator<Message, void, undefined>;

/** Every member gets the root's value (default root: ids[0]); non-roots get a Buffer unless they pass a value of the kind they expect. */
export function broadcast<T extends Value>(ids: string[], value: T | undefined, opts?: WaitOptions & { root?: string }): Promise<Widen<T> | Buffer>;
/** v0 op v1 op ... op vn-1 at the root (default ids[0]), undefined elsewhere; rank order kept. */
export function reduce<T extends Value>(ids: string[], value: T, op: Op<Widen<T>>, opts?: WaitOptions & { root?: string }): Promise<Widen<T> | undefined>;
/** v0 op v1 op ... op vn-1 at every member; rank order kept. */
export function allreduce<T extends Value>(ids: string[], value: T, op: Op<Widen<T>>, opts?: WaitOptions): Promise<Widen<T>>;
/** Member r gets v0 op ... op vr. */
export function scan<T extends Value>(ids: string[], value: T, op: Op<Widen<T>>, opts?: WaitOptions): Promise<Widen<T>>;
/** parts[i] goes to member i; returns the part each member sent this one, by rank. */
export function alltoall<T extends Value>(ids: string[], parts: T[], opts?: WaitOptions): Promise<Widen<T>[]>;
export function barrier(ids: string[], opts?: WaitOptions): Promise<void>;
export function scatter(ids: string[], chunks: Bytes[], opts?: { signal?: AbortSignal }): Promise<void[]>;
export function gather(ids: string[], opts?: number | WaitOptions): Promise<Buffer[]>;

/** Connections this process dialled, by the way they went: co-located peers over Unix sockets, others over TCP. */
export const links: { unix: number; tcp: number };
/** Frames this process refused since it started, by reason (docs/wire.md). */
export const refused: { tooLong: number; badKind: number; badTag: number };
