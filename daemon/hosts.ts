import type { ClaimVerdict } from '../gossip/claims.ts';
import type { Candidate } from '../gossip/placement.ts';
import type { Pool } from '../sandbox/pool.ts';
import type { ActivationView } from './activationView.ts';
import type { ActivationId } from './ids.ts';
import type { Share, ShareRunner } from './share.ts';

// Where the invocation service can run members: behind one small interface,
// this daemon alone (LocalHosts) or every live daemon of the cluster
// (ClusterHosts, in remote.ts). The service decides; a Hosts only carries out.

export interface Hosts {
  /** this daemon's own name among the hosts */
  readonly self: string;
  /** every host that could take members now, this one first, with the memory it can promise (as last heard) */
  candidates(): Candidate[];
  /** the same, each host asked now: what it last said may be a beat old */
  freshCandidates(): Promise<Candidate[]>;
  /** a host's name for people (its host ID) */
  nameOf(host: string): string;
  /** sets memory aside on a host for a group's members there; null: it has not that much free */
  reserve(host: string, mb: number, ttlMs: number): Promise<string | null>;
  unreserve(host: string, reservation: string): void;
  /** starts a share on a host; each member's promise settles with its activation once it ended */
  start(host: string, share: Share): Promise<Promise<ActivationView>[]>;
  /** ends running activations on a host (a cancelled job) */
  stop(host: string, ids: ActivationId[], why: string): Promise<void>;
  /** takes instance IDs for the namespace, all or none (from their arbiters in a cluster) */
  claim(ns: string, ids: string[]): Promise<ClaimVerdict>;
  release(ns: string, ids: string[]): void;
}

/** This daemon alone. */
export class LocalHosts implements Hosts {
  readonly self: string;
  readonly pool: Pool;
  private readonly runner: ShareRunner;
  constructor(self: string, pool: Pool, runner: ShareRunner) {
    this.self = self;
    this.pool = pool;
    this.runner = runner;
  }

  candidates(): Candidate[] {
    return [{ origin: this.self, freeMb: this.pool.freeMb() }];
  }

  async freshCandidates(): Promise<Candidate[]> {
    return this.candidates();
  }

  nameOf(host: string): string {
    return host;
  }

  async reserve(_host: string, mb: number, ttlMs: number): Promise<string | null> {
    return this.pool.reserve(mb, ttlMs);
  }

  unreserve(_host: string, reservation: string): void {
    this.pool.unreserve(reservation);
  }

  async start(_host: string, share: Share): Promise<Promise<ActivationView>[]> {
    return this.runner.run(share);
  }

  async stop(_host: string, ids: ActivationId[], why: string): Promise<void> {
    this.runner.stop(ids, why);
  }

  async claim(): Promise<ClaimVerdict> {
    // Alone, the address map is the whole truth: the share runner's reserve refuses a clash.
    return { ok: true };
  }

  release(): void {}
}
