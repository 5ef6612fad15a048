// Every protocol and topic the daemons speak to one another, in one place,
// and the contract each request/response protocol keeps: a codec that reads
// the request off the wire on the serving side and the reply on the asking
// side, field by field, or rejects it. A signature or a private-network
// handshake says who sent a message, not that it is well formed, so nothing a
// peer sends is used before its codec has read it. A rejected message is
// dropped and counted by kind and reason (Rejects below, exported as
// peerless_gossip_rejected_total), never thrown into a listener.

/** gossipsub topics: the address map (gossip/wire.ts) and the registry (daemon/replication.ts) */
export const TOPICS = {
  addrmap: 'peerless/addrmap/1',
  registry: 'peerless/registry/1',
} as const;

/** request/response protocols, each over a stream of its own; the key is the kind counted in rejections */
export const PROTOCOLS = {
  /** beat tables, swapped over kept links (gossip/links.ts) */
  beat: '/peerless/beat/2.0.0',
  /** the previous build's beat swap, one request per swap: still answered for rolling upgrades */
  beatV1: '/peerless/beat/1.0.0',
  /** an origin's address-map snapshot, from the origin itself */
  snapshot: '/peerless/snapshot/1.0.0',
  /** instance-ID claims, asked of the ID's arbiter (gossip/claims.ts) */
  claim: '/peerless/claim/1.0.0',
  /** members run for another daemon: reserve, start, stop, ended (daemon/remote.ts) */
  run: '/peerless/run/1.0.0',
  /** one activation record, from the daemon that ran it */
  activation: '/peerless/activation/1.0.0',
  /** a page of a namespace's activations, from every daemon (daemon/records.ts) */
  activations: '/peerless/activations/1.0.0',
  /** job records, from the daemon that admitted the job */
  jobs: '/peerless/jobs/1.0.0',
  /** function code by digest (daemon/replication.ts) */
  blob: '/peerless/blob/1.0.0',
  /** registry entries newer than the asker's clocks */
  registry: '/peerless/registry/1.0.0',
} as const;

export type ProtocolKind = keyof typeof PROTOCOLS;
export type TopicKind = keyof typeof TOPICS;

/** One request/response protocol's messages as each side reads them. */
export interface Codec<Req, Rep> {
  kind: ProtocolKind;
  /** the most a request may weigh, in bytes; a larger one is refused */
  maxRequestBytes: number;
  /** the request, checked; undefined rejects it (JSON has no undefined, so a reply may well be null) */
  request(x: unknown): Req | undefined;
  /** the reply, checked; undefined rejects it */
  reply(x: unknown): Rep | undefined;
}

// What every codec checks a field with: a plain object, and a count (a safe integer, 0 to max).
export const isObj = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
export const isCount = (v: unknown, max = Number.MAX_SAFE_INTEGER): v is number => Number.isSafeInteger(v) && (v as number) >= 0 && (v as number) <= max;

/** What a serving daemon sends instead of a reply when it rejects a request: the asker hears why. */
export type Refusal = { rejected: string };
export const isRefusal = (x: unknown): x is Refusal => x !== null && typeof x === 'object' && Object.keys(x).length === 1 && typeof (x as Refusal).rejected === 'string';

/** A request or reply a peer refused or could not be read: the asker's typed error. */
export class WireRejected extends Error {
  readonly code = 'wire_rejected';
  readonly kind: ProtocolKind;
  readonly reason: string;
  /** who rejected: the peer (our request), or this daemon (the peer's reply) */
  readonly by: 'peer' | 'us';
  constructor(kind: ProtocolKind, reason: string, by: 'peer' | 'us') {
    super(by === 'peer' ? `the peer refused the ${kind} request: ${reason}` : `the peer's ${kind} reply was rejected: ${reason}`);
    this.kind = kind;
    this.reason = reason;
    this.by = by;
  }
}

export type RejectReason =
  /** not JSON, or not UTF-8 */
  | 'not-json'
  /** longer than the protocol allows */
  | 'too-large'
  /** JSON, but a field is missing, of the wrong type or out of range */
  | 'malformed'
  /** a message's origin is not its signer */
  | 'forged'
  /** a listener threw on it: a defect, guarded so it cannot take the daemon down */
  | 'listener-error';

/** Rejected messages, by kind (a protocol's requests, a protocol's replies as `run-reply`, a topic as `addrmap-topic`) and reason. */
export class Rejects {
  private readonly counts = new Map<string, number>();

  count(kind: ProtocolKind | `${TopicKind}-topic` | `${ProtocolKind}-reply`, reason: RejectReason | string): void {
    const k = `${kind}\u0000${reason}`;
    this.counts.set(k, (this.counts.get(k) ?? 0) + 1);
  }

  /** every (kind, reason) seen, with its count */
  entries(): { kind: string; reason: string; n: number }[] {
    return [...this.counts].map(([k, n]) => {
      const [kind, reason] = k.split('\u0000') as [string, string];
      return { kind, reason, n };
    });
  }

  /** how many were rejected, of one kind and reason, of one kind (all reasons), or of every kind */
  total(kind?: string, reason?: string): number {
    return this.entries()
      .filter((e) => (kind === undefined || e.kind === kind) && (reason === undefined || e.reason === reason))
      .reduce((s, e) => s + e.n, 0);
  }
}
