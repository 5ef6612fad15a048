import type { Logger } from 'pino';
import type { Claimant, ClaimVerdict } from '../gossip/claims.ts';
import type { Cluster } from '../gossip/cluster.ts';
import type { Candidate } from '../gossip/placement.ts';
import { isCount, isObj, type Codec } from '../gossip/protocols.ts';
import { parseActivationView, type ActivationView } from './activationView.ts';
import { PeerlessError } from './errors.ts';
import type { Hosts, LocalHosts } from './hosts.ts';
import { isEntityName } from './entities.ts';
import { isActivationId, isName, type ActivationId, type FunctionName, type HostId, type NamespaceName } from './ids.ts';
import { recordFailed } from './invocations.ts';
import { ACTIVATION } from './records.ts';
import type { Share, ShareMember, ShareRunner } from './share.ts';
import type { Store } from './store.ts';

// The invocation service's cluster side. ClusterHosts runs members on any
// live daemon: it reserves memory there, sends the share, and hears back from
// that daemon as each member ends. A member whose daemon is dropped from the
// cluster (crashed, cut off, restarted) ends here at once as a platform
// error, so its job and its caller never wait for ever. Every message on
// these protocols is read by its codec before use: a malformed one is refused
// and counted, never thrown.

const MAX_MEMBERS = 1000;
const REQUEST_MS = 5_000;
/** An ended member's news is retried this often before the coordinator is taken for gone. */
const ENDED_TRIES = 5;

export type RunRequest =
  | { op: 'free' }
  | { op: 'reserve'; mb: number; ttlMs: number }
  | { op: 'unreserve'; reservation: string }
  | { op: 'start'; share: Share }
  | { op: 'stop'; ids: ActivationId[]; why: string }
  | { op: 'ended'; activationId: ActivationId; activation: ActivationView };
type RunReply = { ok: true; reservation?: string | null; freeMb?: number } | { error: string };

function parseRunReply(v: unknown): RunReply | null {
  if (!isObj(v)) return null;
  if (typeof v.error === 'string') return { error: v.error.slice(0, 1024) };
  if (v.ok !== true || !(v.reservation === undefined || v.reservation === null || typeof v.reservation === 'string')) return null;
  if (!(v.freeMb === undefined || (typeof v.freeMb === 'number' && Number.isFinite(v.freeMb)))) return null;
  return { ok: true, ...(v.reservation === undefined ? {} : { reservation: v.reservation }), ...(v.freeMb === undefined ? {} : { freeMb: v.freeMb }) };
}

function parseMember(v: unknown): ShareMember | null {
  if (!isObj(v)) return null;
  const { instance, activationId, epoch, restart } = v;
  if (!(instance === null || (typeof instance === 'string' && isName(instance)))) return null;
  if (!isActivationId(activationId) || !isCount(epoch, 1000) || typeof restart !== 'boolean') return null;
  return { instance, activationId: activationId as ActivationId, epoch, restart };
}

/** The request, checked field by field; null when anything is off. */
export function parseRun(v: unknown): RunRequest | null {
  if (!isObj(v)) return null;
  switch (v.op) {
    case 'free':
      return { op: 'free' };
    case 'reserve':
      return isCount(v.mb, 1 << 30) && isCount(v.ttlMs, 600_000) ? { op: 'reserve', mb: v.mb, ttlMs: v.ttlMs } : null;
    case 'unreserve':
      return typeof v.reservation === 'string' && v.reservation.length < 64 ? { op: 'unreserve', reservation: v.reservation } : null;
    case 'stop':
      return Array.isArray(v.ids) && v.ids.length <= MAX_MEMBERS && v.ids.every(isActivationId) && typeof v.why === 'string'
        ? { op: 'stop', ids: v.ids as ActivationId[], why: v.why.slice(0, 1024) }
        : null;
    case 'ended': {
      const a = parseActivationView(v.activation);
      return typeof v.activationId === 'string' && a !== null && a.activationId === v.activationId ? { op: 'ended', activationId: v.activationId as ActivationId, activation: a } : null;
    }
    case 'start': {
      const s = v.share;
      if (!isObj(s) || typeof s.namespace !== 'string' || !isName(s.namespace) || typeof s.function !== 'string' || !isEntityName(s.function) || !isObj(s.params)) return null;
      if (!Array.isArray(s.members) || s.members.length === 0 || s.members.length > MAX_MEMBERS) return null;
      const members = s.members.map(parseMember);
      if (members.some((m) => m === null)) return null;
      if (!(s.reservation === null || typeof s.reservation === 'string') || !(s.claimedBy === null || typeof s.claimedBy === 'string')) return null;
      if (s.cause !== undefined && !isActivationId(s.cause)) return null;
      return {
        op: 'start',
        share: {
          namespace: s.namespace,
          function: s.function,
          params: s.params,
          members: members as ShareMember[],
          reservation: s.reservation,
          claimedBy: s.claimedBy,
          ...(s.cause === undefined ? {} : { cause: s.cause }),
        },
      };
    }
    default:
      return null;
  }
}

export const RUN: Codec<RunRequest, RunReply> = {
  kind: 'run',
  maxRequestBytes: 2 * 1024 * 1024,
  request: (x) => parseRun(x) ?? undefined,
  reply: (x) => parseRunReply(x) ?? undefined,
};

interface Pending {
  peer: string;
  share: Share;
  member: ShareMember;
  resolve: (v: ActivationView) => void;
  watchdog: NodeJS.Timeout;
}

/** Past its time limit and this, a member never heard of is asked after (its news may have been lost). */
const OVERDUE_MS = 120_000;

export interface ClusterHostsDeps {
  cluster: Cluster;
  local: LocalHosts;
  runner: ShareRunner;
  claims: Claimant;
  store: Store;
  hostId: HostId;
  log: Logger;
}

export class ClusterHosts implements Hosts {
  readonly self: string;
  /** members running on other daemons for this one, by activation */
  private readonly pending = new Map<string, Pending>();
  private readonly d: ClusterHostsDeps;
  constructor(d: ClusterHostsDeps) {
    this.d = d;
    this.self = d.cluster.peerId;
  }

  /** Serves other daemons' requests to run members here, and their news of members that ended. */
  async listen(): Promise<void> {
    await this.d.cluster.handle(RUN, async (r, signer): Promise<RunReply> => {
      try {
        return this.serve(r, signer);
      } catch (e) {
        return { error: e instanceof PeerlessError ? e.message : 'the request failed on this host' };
      }
    });
    this.d.cluster.events.on('member-down', (origin, host) => this.memberDown(origin, host));
  }

  private serve(r: RunRequest, signer: string): RunReply {
    switch (r.op) {
      case 'free':
        return { ok: true, freeMb: this.d.local.pool.freeMb() };
      case 'reserve':
        return { ok: true, reservation: this.d.local.pool.reserve(r.mb, r.ttlMs) };
      case 'unreserve':
        this.d.local.pool.unreserve(r.reservation);
        return { ok: true };
      case 'stop':
        this.d.runner.stop(r.ids, r.why);
        return { ok: true };
      case 'ended': {
        // Only the daemon a member was sent to speaks for its end.
        const p = this.pending.get(r.activationId);
        if (p && p.peer === signer) this.settle(r.activationId, r.activation);
        return { ok: true };
      }
      case 'start': {
        const dones = this.d.runner.run(r.share);
        dones.forEach((done, i) => void done.then((a) => this.tell(signer, r.share.members[i]!.activationId, a)));
        return { ok: true };
      }
    }
  }

  /** Tells the coordinator a member ended; it may be busy, so a few tries. */
  private async tell(coordinator: string, activationId: ActivationId, activation: ActivationView): Promise<void> {
    for (let i = 0; i < ENDED_TRIES; i++) {
      try {
        await this.d.cluster.request(coordinator, RUN, { op: 'ended', activationId, activation }, REQUEST_MS);
        return;
      } catch {
        if (!this.d.cluster.candidates().some((c) => c.origin === coordinator)) return; // it is gone: nobody is waiting
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
    this.d.log.warn({ coordinator, activationId }, 'could not tell the coordinating daemon that a member ended');
  }

  /** A member daemon was dropped: what it ran for this daemon ends now, failed. */
  private memberDown(origin: string, host: string): void {
    for (const [id, p] of this.pending) if (p.peer === origin) this.lost(id, p, `The host ${host} running the activation is gone.`);
  }

  private settle(id: string, v: ActivationView): void {
    const p = this.pending.get(id);
    if (!p) return;
    clearTimeout(p.watchdog);
    this.pending.delete(id);
    p.resolve(v);
  }

  private lost(id: string, p: Pending, why: string): void {
    const fn = { namespace: p.share.namespace as NamespaceName, name: p.share.function as FunctionName, version: this.fnOf(p.share)?.version ?? 0 };
    this.settle(id, recordFailed(this.d.store, fn, p.member, this.d.hostId, why, { forwardedTo: this.nameOf(p.peer) }));
  }

  private fnOf(s: Share) {
    return this.d.store.getFunction(s.namespace as NamespaceName, s.function as FunctionName);
  }

  /** A member overdue by far: asks its host how it ended; one the host does not know of is lost. */
  private overdue(id: string): void {
    const p = this.pending.get(id);
    if (!p) return;
    void this.d.cluster.request(p.peer, ACTIVATION, { namespace: p.share.namespace, id: id as ActivationId }, REQUEST_MS).then(
      (a) => {
        if (a && a.response.status !== 'running') this.settle(id, a);
        else if (a) p.watchdog = this.watch(id, p.share);
        else this.lost(id, p, `The host ${this.nameOf(p.peer)} does not know the activation.`);
      },
      () => {
        p.watchdog = this.watch(id, p.share);
      },
    );
  }

  private watch(id: string, share: Share): NodeJS.Timeout {
    const t = setTimeout(() => this.overdue(id), (this.fnOf(share)?.limits.timeoutMs ?? 300_000) + OVERDUE_MS);
    t.unref();
    return t;
  }

  candidates(): Candidate[] {
    return [...this.d.local.candidates().map((c) => ({ ...c, origin: this.self })), ...this.d.cluster.candidates()];
  }

  async freshCandidates(): Promise<Candidate[]> {
    const [self, ...others] = this.candidates();
    const asked = await Promise.all(
      others.map(async (c) => {
        const r = await this.d.cluster.request(c.origin, RUN, { op: 'free' }, REQUEST_MS).catch(() => null);
        return r && 'ok' in r && typeof r.freeMb === 'number' ? { origin: c.origin, freeMb: r.freeMb } : c;
      }),
    );
    return [self!, ...asked];
  }

  nameOf(host: string): string {
    if (host === this.self) return this.d.hostId;
    return this.d.cluster.peers().find((p) => p.origin === host)?.host ?? host;
  }

  async reserve(host: string, mb: number, ttlMs: number): Promise<string | null> {
    if (host === this.self) return this.d.local.reserve(host, mb, ttlMs);
    const r = await this.d.cluster.request(host, RUN, { op: 'reserve', mb, ttlMs }, REQUEST_MS);
    return 'ok' in r && typeof r.reservation === 'string' ? r.reservation : null;
  }

  unreserve(host: string, reservation: string): void {
    if (host === this.self) return this.d.local.unreserve(host, reservation);
    void this.d.cluster.request(host, RUN, { op: 'unreserve', reservation }, REQUEST_MS).catch(() => undefined);
  }

  async start(host: string, share: Share): Promise<Promise<ActivationView>[]> {
    if (host === this.self) return this.d.local.start(host, share);
    // Listening before asking: a member that ends at once may be heard of before the answer.
    const dones = share.members.map(
      (member) => new Promise<ActivationView>((resolve) => this.pending.set(member.activationId, { peer: host, share, member, resolve, watchdog: this.watch(member.activationId, share) })),
    );
    const forget = () => {
      for (const m of share.members) {
        clearTimeout(this.pending.get(m.activationId)?.watchdog);
        this.pending.delete(m.activationId);
      }
    };
    let r: RunReply;
    try {
      r = await this.d.cluster.request(host, RUN, { op: 'start', share }, REQUEST_MS);
    } catch (e) {
      forget();
      throw new Error(`it did not answer (${(e as Error).message})`);
    }
    if ('error' in r) {
      forget();
      throw new Error(r.error);
    }
    return dones;
  }

  async stop(host: string, ids: ActivationId[], why: string): Promise<void> {
    if (host === this.self || host === this.d.hostId) return this.d.local.stop(host, ids, why);
    const origin = this.d.cluster.peers().find((p) => p.host === host)?.origin ?? host;
    await this.d.cluster.request(origin, RUN, { op: 'stop', ids, why }, REQUEST_MS);
  }

  claim(ns: string, ids: string[]): Promise<ClaimVerdict> {
    return this.d.claims.claim(ns, ids);
  }

  release(ns: string, ids: string[]): void {
    this.d.claims.release(ns, ids);
  }
}
