import type { Logger } from 'pino';
import { InstanceClash } from '../gossip/addrmap.ts';
import { rendezvous, spread } from '../gossip/placement.ts';
import { activationView, type ActivationView } from './activationView.ts';
import type { Directory } from './directory.ts';
import { conflict, invalid, notFound, PeerlessError } from './errors.ts';
import type { Hosts } from './hosts.ts';
import { newActivationId, type ActivationId, type FunctionName, type HostId, type NamespaceName } from './ids.ts';
import { fnKeyOf } from './invoker.ts';
import { attemptEnded, attemptStarted, cancel, isFinal, isTraffic, newJob, type JobDoc, type JobMember, type Jobs, type RestartPolicy } from './jobs.ts';
import type { Quota } from './quota.ts';
import { toObject } from './entities.ts';
import { startSequence } from './sequences.ts';
import type { Share, ShareMember } from './share.ts';
import type { Store } from './store.ts';
import type { FunctionRecord } from './types.ts';
import type { Pool } from '../sandbox/pool.ts';

// The one way work starts. A single invocation, a named instance, a group from
// the user API or the CLI, and a spawn from a function all come here: the
// parameters are checked, the namespace's quota is charged (and held until the
// work ends, wherever it runs), the IDs are claimed, and the members are
// placed and their memory reserved on every host chosen before any of them
// starts (gang admission). A group that does not fit is refused at once, or
// waits in a bounded queue if the caller asked. Running the members is the
// Hosts' business: this daemon alone, or the cluster.

export interface InvokeRequest {
  namespace: NamespaceName;
  function: FunctionName;
  /** the caller's parameters (the function's defaults are merged under them) */
  params: Record<string, unknown>;
  /** parameters under the function's own: a binding's over its package's (an action in a package gets its package's anyway) */
  defaults?: Record<string, unknown>;
  /** instance IDs; none: one unnamed activation */
  ids: string[];
  /** a group (instances=, or a spawn): a job is made for it */
  group: boolean;
  /** the request field the IDs came from, named in errors */
  field: string;
  /** wait this long for room instead of being refused at once */
  queueTimeoutMs?: number;
  restart?: RestartPolicy | null;
  /** the activation that spawned this work: it is cancelled when that one ends first, unless detach */
  parent?: string;
  detach?: boolean;
  /** the sequence this invocation is a component of, and how deep that sequence is nested */
  cause?: ActivationId;
  depth?: number;
}

export interface Member {
  instance: string | null;
  activationId: ActivationId;
  /** settles with the member's final activation (after any restarts) */
  done: Promise<ActivationView>;
}

export interface Invocation {
  job: JobDoc | null;
  members: Member[];
}

export interface InvocationDeps {
  store: Store;
  pool: Pool;
  quota: Quota;
  directory: Directory;
  jobs: Jobs;
  hostId: HostId;
  payloadBytes: number;
  image: (fn: FunctionRecord) => string;
  log: Logger;
}

/** How long a host keeps memory reserved for members that have not started (their coordinator may have died). */
const RESERVATION_TTL_MS = 15_000;
/** How often a queued group looks for room again. */
const QUEUE_POLL_MS = 200;
/** Groups that may wait for room at once on one daemon; more are refused. */
const MAX_QUEUED = 64;
/** How long a spawned job's members may run on after their parent ended, before they are cancelled. */
const PARENT_GRACE_MS = 2_000;
/** A refused group is told to come back after this long. */
const RETRY_AFTER_S = 2;

type Placement = { host: string; count: number; reservation: string | null }[];

class Cancelled extends Error {}

export class Invocations {
  private readonly d: InvocationDeps;
  private hosts: Hosts;
  private queued = 0;
  /** queued groups, by job: cancelling one ends its wait */
  private readonly waiting = new Map<string, AbortController>();
  constructor(d: InvocationDeps, hosts: Hosts) {
    this.d = d;
    this.hosts = hosts;
  }

  /** The daemon joined a cluster: members may run on every live daemon from now on. */
  useHosts(h: Hosts): void {
    this.hosts = h;
  }

  async invoke(r: InvokeRequest): Promise<Invocation> {
    const ns = r.namespace;
    const fn = this.d.store.getFunction(ns, r.function);
    if (!fn) throw notFound(`function ${r.function}`, '/params/name');
    // Parameters marked init reach the code at /init, as its environment, not as arguments.
    const own = fn.meta.init.length === 0 ? fn.parameters : Object.fromEntries(Object.entries(fn.parameters).filter(([k]) => !fn.meta.init.includes(k)));
    const params = { ...(r.defaults ?? this.packageDefaults(fn)), ...own, ...r.params };
    if (Buffer.byteLength(JSON.stringify(params)) > this.d.payloadBytes) throw new PeerlessError('payload_too_large', `parameters exceed ${this.d.payloadBytes} bytes`, { field: '/body' });
    if (fn.runtime.kind === 'sequence') {
      if (r.ids.length > 0 || r.group) throw invalid(r.field, `${fn.name} is a sequence: it runs no instance of its own, so it takes no instance IDs`);
      const seq = await startSequence({ store: this.d.store, hostId: this.d.hostId, log: this.d.log, invoke: (c) => this.invoke({ ...c, ids: [], group: false, field: '/params/name' }) }, fn, params, {
        ...(r.cause ? { cause: r.cause } : {}),
        depth: r.depth ?? 0,
      });
      return { job: null, members: [{ instance: null, ...seq }] };
    }
    const n = Math.max(1, r.ids.length);
    admit(this.d, ns, n);
    const giveBack = () => {
      for (let i = 0; i < n; i++) this.d.quota.done(ns);
    };
    let claimed = false;
    let job: JobDoc | null = null;
    let placed = false;
    let members: Member[];
    try {
      const here = r.ids.find((id) => this.d.directory.get(ns, id));
      if (here !== undefined) throw conflict(new InstanceClash(here).message, r.field);
      if (r.ids.length > 0) {
        const v = await this.hosts.claim(ns, r.ids);
        if (!v.ok) throw conflict(new InstanceClash(v.taken).message, r.field);
        claimed = true;
      }
      if (r.group) {
        job = newJob({ namespace: ns, function: fn.name, coordinator: this.d.hostId, parent: r.parent ?? null, detach: r.detach ?? false, restart: r.restart ?? null, ids: r.ids, now: Date.now() });
        this.d.jobs.add(job);
      }
      const placement = await this.admitted(fn, r, job);
      placed = true;
      members = await this.startPlaced(fn, params, r, job, placement);
    } catch (e) {
      // Nothing started: the quota and the IDs go back, and the job is kept ended, as the record of why.
      giveBack();
      if (claimed) this.hosts.release(ns, r.ids);
      if (job) {
        this.d.jobs.forget(job);
        const ended: JobDoc = { ...job, status: 'cancelled', reason: `${placed ? 'not started' : 'refused'}: ${(e as Error).message}`, end: Date.now() };
        this.d.store.putJob(ended);
      }
      throw e;
    }
    if (job) {
      job.status = 'running';
      this.d.jobs.save(job);
    }
    // Each member's quota slot is given back once its last attempt ended, wherever it ran.
    for (const m of members) void m.done.finally(() => this.d.quota.done(ns));
    return { job, members };
  }

  /** The parameters of the package a function is in, if it is in one (pkg/name). */
  private packageDefaults(fn: FunctionRecord): Record<string, unknown> {
    const i = fn.name.indexOf('/');
    const p = i < 0 ? undefined : this.d.store.getEntity('package', fn.namespace, fn.name.slice(0, i));
    return p ? toObject(p.parameters) : {};
  }

  /** Ends a job: queued members never start, running ones are stopped on their hosts; a job that ended stays as it was. */
  cancel(job: JobDoc, why: string): void {
    if (job.end !== null) return;
    cancel(job, why, Date.now());
    this.waiting.get(job.jobId)?.abort(new Cancelled(why));
    const byHost = new Map<string, ActivationId[]>();
    for (const m of job.members) {
      if (isFinal(m.state) || m.host === null || m.activationId === null) continue;
      byHost.set(m.host, [...(byHost.get(m.host) ?? []), m.activationId as ActivationId]);
    }
    for (const [host, ids] of byHost) void this.hosts.stop(host, ids, why).catch((err: unknown) => this.d.log.warn({ err, host }, 'could not reach a host to cancel a job'));
    this.d.jobs.save(job);
  }

  /**
   * An activation ended: the jobs it spawned end with it, unless they asked to outlive it. Members that
   * already sent their answer may still be returning: they get a moment to end by themselves.
   */
  parentEnded(activationId: string): void {
    const children = this.d.jobs.childrenOf(activationId).filter((j) => !j.detach && j.end === null);
    if (children.length === 0) return;
    setTimeout(() => {
      for (const j of children) this.cancel(j, `its parent activation ${activationId} ended`);
    }, PARENT_GRACE_MS).unref();
  }

  /**
   * Where the members go, with their memory reserved there; waits for room if asked. An unnamed single
   * invocation is never refused for room: with none anywhere it waits in this host's pool, as OpenWhisk
   * queues an action; anything with IDs is admitted whole or not at all.
   */
  private async admitted(fn: FunctionRecord, r: InvokeRequest, job: JobDoc | null): Promise<Placement> {
    const n = Math.max(1, r.ids.length);
    const first = await this.tryPlace(fn, n, r.ids.length === 0);
    if (!('missing' in first)) return first;
    if (!r.queueTimeoutMs) throw this.refusal(fn, n, first.missing, r.field);
    if (this.queued >= MAX_QUEUED)
      throw new PeerlessError('unavailable', `${MAX_QUEUED} groups are already waiting for room on this daemon`, { field: '/query/queueTimeout', headers: { 'retry-after': String(RETRY_AFTER_S) } });
    const ac = new AbortController();
    if (job) this.waiting.set(job.jobId, ac);
    this.queued++;
    const deadline = Date.now() + r.queueTimeoutMs;
    try {
      let last = first.missing;
      while (Date.now() < deadline) {
        await new Promise((res) => setTimeout(res, Math.min(QUEUE_POLL_MS, Math.max(0, deadline - Date.now()))));
        if (ac.signal.aborted) throw new PeerlessError('conflict', `the job was cancelled while it waited for room: ${(ac.signal.reason as Error).message}`, { field: '/params/id' });
        const p = await this.tryPlace(fn, n, false);
        if (!('missing' in p)) return p;
        last = p.missing;
      }
      throw this.refusal(fn, n, last, '/query/queueTimeout', ` within the queue timeout of ${r.queueTimeoutMs} ms`);
    } finally {
      this.queued--;
      if (job) this.waiting.delete(job.jobId);
    }
  }

  private refusal(fn: FunctionRecord, n: number, missing: number, field: string, when = ''): PeerlessError {
    const hosts = this.hosts.candidates().length;
    const c = fn.limits.concurrency;
    const size = c > 1 ? `members (${c} to a container of ${fn.limits.memoryMb} MB)` : `members of ${fn.limits.memoryMb} MB`;
    return new PeerlessError(
      'unavailable',
      `the cluster has room for ${n - missing} of the ${n} ${size}${when}: ${containersFor(missing, c) * fn.limits.memoryMb} MB more is needed ` +
        `across its ${hosts} daemon${hosts === 1 ? '' : 's'}; nothing was started`,
      { field, headers: { 'retry-after': String(RETRY_AFTER_S) } },
    );
  }

  /** One placement attempt: a plan from the hosts' free memory, then a reservation on every host of it. */
  private async tryPlace(fn: FunctionRecord, n: number, unnamedSingle: boolean): Promise<Placement | { missing: number }> {
    const mb = fn.limits.memoryMb;
    const seats = fn.limits.concurrency;
    let plan: Map<string, number>;
    if (unnamedSingle) {
      // Where it is warm (or can be made): here first, else the host rendezvous hashing gives the function.
      const here = this.d.pool.hasRoom(fnKeyOf(fn), this.d.image(fn), mb, seats);
      const there = here ? null : rendezvous(fnKeyOf(fn), this.hosts.candidates().slice(1), mb);
      plan = new Map([[there ?? this.hosts.self, 1]]);
    } else {
      const planFor = (cands: { origin: string; freeMb: number }[]) => (n === 1 && (cands[0]?.freeMb ?? 0) >= mb ? new Map([[this.hosts.self, 1]]) : spread(n, cands, mb, seats));
      plan = planFor(this.hosts.candidates());
      // What other daemons said of their room is up to a beat old: before refusing, ask them.
      if (sum(plan) < n) plan = planFor(await this.hosts.freshCandidates());
    }
    const placed = sum(plan);
    if (placed < n) return { missing: n - placed };
    const out: Placement = await Promise.all(
      [...plan].map(async ([host, count]) => ({
        // A host's members share containers of the function, `seats` to each: its memory is counted per container.
        host,
        count,
        reservation: await this.hosts.reserve(host, containersFor(count, seats) * mb, RESERVATION_TTL_MS).catch(() => null),
      })),
    );
    const refused = out.filter((p) => p.reservation === null);
    if (refused.length === 0) return out;
    // A single invocation with no room reserved anywhere waits in this host's pool.
    if (unnamedSingle) return [{ host: this.hosts.self, count: 1, reservation: null }];
    for (const p of out) if (p.reservation !== null) this.hosts.unreserve(p.host, p.reservation);
    return { missing: refused.reduce((a, p) => a + p.count, 0) };
  }

  /**
   * Starts the placed members. This host's share starts first, in the request: when it cannot (a full data
   * disk, an ID taken meanwhile) nothing has started and the caller hears why. A share another host cannot
   * start fails its members (who may restart elsewhere).
   */
  private async startPlaced(fn: FunctionRecord, params: Record<string, unknown>, r: InvokeRequest, job: JobDoc | null, placement: Placement): Promise<Member[]> {
    const ids: (string | null)[] = r.ids.length > 0 ? r.ids : [null];
    const self = this.hosts.self;
    const ordered = [...placement].sort((a, b) => Number(b.host === self) - Number(a.host === self));
    let next = 0;
    const shares = ordered.map((p) => ({
      p,
      part: ids.slice(next, (next += p.count)).map((instance): ShareMember => ({ instance, activationId: newActivationId(), epoch: 0, restart: !!r.restart })),
    }));
    const members: Member[] = [];
    for (const { p, part } of shares) {
      let dones: Promise<ActivationView>[];
      if (p.host === self) {
        try {
          dones = await this.hosts.start(p.host, this.shareOf(fn, params, part, p.reservation, job, p.host, r.cause));
        } catch (e) {
          for (const x of shares) if (x.p.reservation !== null) this.hosts.unreserve(x.p.host, x.p.reservation);
          throw e;
        }
      } else dones = this.startShare(fn, params, p.host, p.reservation, part, job, r.cause);
      part.forEach((m, i) => {
        const jm = job?.members.find((x) => x.instance === m.instance);
        members.push({ instance: m.instance, activationId: m.activationId, done: jm && job ? this.follow(fn, params, job, jm, dones[i]!) : dones[i]! });
      });
    }
    return members;
  }

  /** The share for a host, its members marked as starting there in the job. */
  private shareOf(fn: FunctionRecord, params: Record<string, unknown>, part: ShareMember[], reservation: string | null, job: JobDoc | null, host: string, cause?: string): Share {
    const now = Date.now();
    for (const m of part) {
      const jm = job?.members.find((x) => x.instance === m.instance);
      if (jm) attemptStarted(jm, this.hosts.nameOf(host), m.activationId, now);
    }
    return { namespace: fn.namespace, function: fn.name, params, members: part, reservation, claimedBy: this.hosts.self, ...(cause ? { cause } : {}) };
  }

  /** Starts a share on a host; a share that cannot start there fails its members (they may restart elsewhere). */
  private startShare(
    fn: FunctionRecord,
    params: Record<string, unknown>,
    host: string,
    reservation: string | null,
    part: ShareMember[],
    job: JobDoc | null,
    cause?: string,
  ): Promise<ActivationView>[] {
    const started = this.hosts.start(host, this.shareOf(fn, params, part, reservation, job, host, cause));
    return part.map((m, i) =>
      started.then(
        (dones) => dones[i]!,
        (err: unknown) => {
          if (reservation !== null) this.hosts.unreserve(host, reservation);
          return recordFailed(this.d.store, fn, m, this.d.hostId, `The member could not start on host ${this.hosts.nameOf(host)}: ${(err as Error).message}`);
        },
      ),
    );
  }

  /** Follows a job member through its attempts; settles with the last one. */
  private async follow(fn: FunctionRecord, params: Record<string, unknown>, job: JobDoc, m: JobMember, attempt: Promise<ActivationView>): Promise<ActivationView> {
    let canRestart = true;
    for (;;) {
      const view = await attempt;
      const result = view.response.result as { error?: unknown } | null;
      const error = view.response.status === 'success' ? null : String(result?.error ?? view.response.status);
      const verdict = attemptEnded(job, m, { status: view.response.status, error }, Date.now(), canRestart);
      const traffic = view.annotations.find((a) => a.key === 'traffic')?.value;
      if (isTraffic(traffic)) m.traffic = traffic;
      this.d.jobs.save(job);
      if (verdict === 'final') return view;
      this.d.log.info({ job: job.jobId, instance: m.instance, epoch: m.epoch + 1, why: error }, 'restarting a failed job member');
      const next = await this.restart(fn, params, job, m).catch((err: unknown) => err as Error);
      if (next instanceof Error) {
        canRestart = false;
        attempt = Promise.resolve(
          recordFailed(this.d.store, fn, { instance: m.instance, activationId: newActivationId() }, this.d.hostId, `The member failed (${error}) and could not be restarted: ${next.message}`),
        );
        continue;
      }
      attempt = next.done;
    }
  }

  /** The member again, under the same ID with the next epoch, wherever there is room. */
  private async restart(fn: FunctionRecord, params: Record<string, unknown>, job: JobDoc, m: JobMember): Promise<{ done: Promise<ActivationView> }> {
    m.epoch++;
    const deadline = Date.now() + 10_000;
    // Its old entry may still be in the arbiter's map for a moment, and room may take a moment to free.
    for (;;) {
      if (job.status === 'cancelled') throw new Error('the job was cancelled');
      const v = await this.hosts.claim(fn.namespace, [m.instance]);
      if (v.ok) {
        const p = await this.tryPlace(fn, 1, false);
        if (!('missing' in p)) {
          const member: ShareMember = { instance: m.instance, activationId: newActivationId(), epoch: m.epoch, restart: true };
          return { done: this.startShare(fn, params, p[0]!.host, p[0]!.reservation, [member], job)[0]! };
        }
        this.hosts.release(fn.namespace, [m.instance]);
      }
      if (Date.now() > deadline) throw new Error(v.ok ? 'no host has room for it' : `its ID is still held (${v.taken})`);
      await new Promise((res) => setTimeout(res, 100));
    }
  }
}

/** Containers that hold `members` instances, `seats` to a container. */
const containersFor = (members: number, seats: number) => Math.ceil(members / seats);
const sum = (plan: Map<string, number>) => [...plan.values()].reduce((a, b) => a + b, 0);

/** Refuses with 429 and Retry-After when the namespace is over its rate or its concurrency (its own, or the default). */
function admit(d: { quota: Quota; store: Store }, ns: NamespaceName, n: number): void {
  const a = d.quota.admit(ns, n, Date.now(), d.store.namespaceLimits(ns));
  if (!a.ok) throw new PeerlessError('too_many_requests', a.reason, { headers: { 'retry-after': String(a.retryAfterS) } });
}

/**
 * An activation whose host could not run it, or was lost while it ran: recorded as failed here, so
 * every daemon finds it (none is ever left unknown or "running").
 */
export function recordFailed(
  store: Store,
  fn: Pick<FunctionRecord, 'namespace' | 'name' | 'version'>,
  m: Pick<ShareMember, 'instance' | 'activationId'>,
  host: HostId,
  error: string,
  annotations: Record<string, unknown> = {},
): ActivationView {
  const now = Date.now();
  const ann = { ...(m.instance ? { instance: m.instance } : {}), ...annotations };
  if (!store.getActivation(m.activationId)) store.startActivation({ activationId: m.activationId, namespace: fn.namespace, name: fn.name, version: fn.version, host, start: now, annotations: ann });
  store.finishActivation(m.activationId, now, now, 'whisk internal error', { error }, [], ann);
  return activationView(store.getActivation(m.activationId)!);
}
