import type { EventEmitter } from 'node:events';
import type { Beat } from './liveness.ts';
import type { ProtocolKind, TopicKind } from './protocols.ts';

// What the cluster driver (cluster.ts) needs of a network, and nothing more:
// signed broadcasts on two topics, request/response to one peer, beat-table
// swaps, and word of a peer's last connection closing. Two implementations:
// libp2p.ts (TCP, Noise, yamux, pnet, gossipsub: the daemons) and memory.ts
// (a seeded, lossy, virtual-time network: tests and the simulation). Time
// comes from a Clock for the same reason.

/** What a transport tells its driver. */
export interface TransportEvents {
  /** a signed topic message; `signer` is the member whose signature it carries */
  message: [topic: TopicKind, data: Uint8Array, signer: string];
  /** a peer's beat table arrived; `answer`, when the peer asked for this daemon's table back */
  beats: [rows: Beat[], peer: string, answer: ((rows: Beat[]) => void) | null];
  /** this daemon's last connection to a peer closed (not one it hung up itself) */
  closed: [peer: string];
}

/** A request handler's input: the bytes, or null when the request was larger than allowed (the stream then goes). */
export type Handler = (data: Uint8Array | null, from: string) => Promise<Uint8Array>;

export interface Transport {
  /** this daemon's member ID (its peer ID) */
  readonly self: string;
  readonly events: EventEmitter<TransportEvents>;
  /** where this daemon listens, for its beats */
  addresses(): string[];
  /** peers this daemon holds a connection to */
  connected(): string[];
  publish(topic: TopicKind, data: Uint8Array): void;
  /** One request on a stream of its own; the reply's bytes, throwing ReplyTooLarge beyond maxBytes. */
  request(peer: string, protocol: ProtocolKind, data: Uint8Array, o: { signal: AbortSignal; maxBytes: number }): Promise<Uint8Array>;
  handle(protocol: ProtocolKind, maxRequestBytes: number, fn: Handler): Promise<void>;
  /** pushes this daemon's table to a peer, asking for its table back (push-pull) */
  swap(peer: string, rows: Beat[]): void;
  /** where a member listens, from its beats: any member can then be reached, not only those dialled */
  learn(peer: string, addrs: string[]): void;
  /** closes a connection opened only for one request, so requests do not grow a full mesh */
  release(peer: string): void;
  /** whether the member's process is gone: its host refuses the ports it listened on (a vanished host answers nothing: false) */
  processGone(peer: string, addrs: string[]): Promise<boolean>;
  /** this daemon's signature of its incarnation, carried in its beats */
  signIntro(incarnation: number): Promise<string>;
  /** whether a row's incarnation is signed by the member it names */
  introValid(b: Beat): Promise<boolean>;
  stop(): Promise<void>;
}

export class ReplyTooLarge extends Error {}

/** Time for the driver: the wall clock in a daemon, a virtual one in the simulation. */
export interface Clock {
  now(): number;
  every(ms: number, fn: () => void): { cancel(): void };
  after(ms: number, fn: () => void): { cancel(): void };
  /** a signal aborted after ms */
  timeout(ms: number): AbortSignal;
}

export const wallClock: Clock = {
  now: () => Date.now(),
  every(ms, fn) {
    const t = setInterval(fn, ms);
    return { cancel: () => clearInterval(t) };
  },
  after(ms, fn) {
    const t = setTimeout(fn, ms);
    return { cancel: () => clearTimeout(t) };
  },
  timeout: (ms) => AbortSignal.timeout(ms),
};
