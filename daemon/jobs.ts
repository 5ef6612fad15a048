import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { Brand, NamespaceName } from './ids.ts';
import { invalid } from './errors.ts';
import type { Store } from './store.ts';

// Jobs: a group invocation (or a spawn) as one thing the user can watch and
// cancel. The daemon that admitted the group coordinates it and keeps its
// record; members run wherever placement put them. The rules for how members'
// outcomes make the job's are pure functions here, so they can be tested
// without daemons; the Jobs class only keeps the documents and writes them.

export type JobId = Brand<string, 'JobId'>;
const newJobId = (): JobId => randomBytes(16).toString('hex') as JobId;
export const JOB_ID_PATTERN = '^[0-9a-f]{32}$';

export type JobStatus = 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled';
export type MemberState = 'queued' | 'starting' | 'running' | 'restarting' | 'succeeded' | 'failed' | 'cancelled';

/** `restart: on-failure[:N]`: a member that fails is started again, up to N times (3 if N is not given). */
export interface RestartPolicy {
  maxRestarts: number;
}
export const MAX_RESTARTS = 10;

/** Parses `no`, `on-failure` or `on-failure:N` (1 ≤ N ≤ 10); a bad spec is a 400 naming the field. */
export function parseRestart(spec: string | undefined, field: string): RestartPolicy | null {
  if (spec === undefined || spec === 'no') return null;
  const m = /^on-failure(?::(\d{1,2}))?$/.exec(spec);
  const n = m ? (m[1] === undefined ? 3 : Number(m[1])) : NaN;
  if (!m || n < 1 || n > MAX_RESTARTS) throw invalid(field, `restart must be "no", "on-failure" or "on-failure:N" with 1 ≤ N ≤ ${MAX_RESTARTS}, not ${JSON.stringify(spec)}`);
  return { maxRestarts: n };
}

export interface MemberOutcome {
  status: string;
  error: string | null;
}

export interface JobMember {
  instance: string;
  /** the current (or last) attempt's activation; earlier attempts are in `attempts` */
  activationId: string | null;
  host: string | null;
  epoch: number;
  state: MemberState;
  /** what the member published about itself (filled in when the job is read) */
  status: string | null;
  start: number | null;
  end: number | null;
  outcome: MemberOutcome | null;
  attempts: string[];
  /** bytes it sent each other member, as its SDK reported them: live from the address map, then from its last attempt's record */
  traffic?: Record<string, number>;
}

export interface JobDoc {
  jobId: JobId;
  namespace: NamespaceName;
  function: string;
  /** the host whose daemon admitted the job and keeps this record */
  coordinator: string;
  created: number;
  end: number | null;
  status: JobStatus;
  /** why the job failed or was cancelled */
  reason: string | null;
  /** the first member that failed for good */
  failed: { instance: string; reason: string } | null;
  /** the activation that spawned the job, if a function did */
  parent: string | null;
  /** a spawned job outlives its parent only when it asked to */
  detach: boolean;
  restart: RestartPolicy | null;
  members: JobMember[];
}

const FINAL: ReadonlySet<MemberState> = new Set(['succeeded', 'failed', 'cancelled']);
export const isFinal = (s: MemberState) => FINAL.has(s);

export function newJob(o: Pick<JobDoc, 'namespace' | 'function' | 'coordinator' | 'parent' | 'detach' | 'restart'> & { ids: string[]; now: number }): JobDoc {
  return {
    jobId: newJobId(),
    namespace: o.namespace,
    function: o.function,
    coordinator: o.coordinator,
    created: o.now,
    end: null,
    status: 'queued',
    reason: null,
    failed: null,
    parent: o.parent,
    detach: o.detach,
    restart: o.restart,
    members: o.ids.map((instance) => ({ instance, activationId: null, host: null, epoch: 0, state: 'queued', status: null, start: null, end: null, outcome: null, attempts: [] })),
  };
}

/**
 * A member's attempt ended. Says whether the member is to be started again: only a failure, only while
 * the job is not cancelled, and only within the restart budget.
 */
export function attemptEnded(j: JobDoc, m: JobMember, o: MemberOutcome, now: number, canRestart = true): 'restart' | 'final' {
  m.end = now;
  m.outcome = o;
  if (o.status === 'success') m.state = 'succeeded';
  else if (j.status === 'cancelled') m.state = 'cancelled';
  else if (canRestart && j.restart && m.epoch < j.restart.maxRestarts) {
    m.state = 'restarting';
    return 'restart';
  } else m.state = 'failed';
  settle(j, m, now);
  return 'final';
}

/** The job's own status after a member's state became final. */
function settle(j: JobDoc, m: JobMember, now: number): void {
  if (m.state === 'failed' && j.failed === null) {
    const reason = `${m.outcome?.status ?? 'failed'}${m.outcome?.error ? `: ${m.outcome.error}` : ''}`;
    j.failed = { instance: m.instance, reason };
    if (j.status !== 'cancelled') {
      j.status = 'failed';
      j.reason = `member ${m.instance} failed (${reason})`;
    }
  }
  if (j.members.every((x) => isFinal(x.state))) {
    j.end = now;
    if (j.status === 'running' || j.status === 'queued') j.status = 'succeeded';
  }
}

/** A member starts (again) on a host under a new activation. */
export function attemptStarted(m: JobMember, host: string, activationId: string, now: number): void {
  if (m.activationId !== null && m.activationId !== activationId) m.attempts.push(m.activationId);
  m.activationId = activationId;
  m.host = host;
  m.state = 'starting';
  m.start = now;
  m.end = null;
  m.outcome = null;
}

/** Cancels what is left of a job: no member starts or restarts any more. A job that already failed keeps saying so. */
export function cancel(j: JobDoc, why: string, now: number): void {
  if (j.end !== null) return;
  j.restart = null;
  if (j.status !== 'failed') {
    j.status = 'cancelled';
    j.reason = why;
  }
  for (const m of j.members)
    if (m.state === 'queued') {
      m.state = 'cancelled';
      m.end = now;
    }
  if (j.members.every((x) => isFinal(x.state))) j.end = now;
}

/** Jobs this daemon coordinates: live ones in memory, every one in the store. */
export class Jobs {
  private readonly live = new Map<string, JobDoc>();
  private readonly store: Store;
  /** 'changed' after every write of a job (a function waiting on members listens for failures) */
  readonly events = new EventEmitter<{ changed: [] }>();
  constructor(store: Store) {
    this.store = store;
    this.events.setMaxListeners(0);
  }

  add(j: JobDoc): void {
    this.live.set(j.jobId, j);
    this.save(j);
  }

  /** Writes the document; a finished job leaves memory. */
  save(j: JobDoc): void {
    this.store.putJob(j);
    if (j.end !== null) this.live.delete(j.jobId);
    this.events.emit('changed');
  }

  /** A refused group never became a job the user can see. */
  forget(j: JobDoc): void {
    this.live.delete(j.jobId);
  }

  liveJob(id: string): JobDoc | undefined {
    return this.live.get(id);
  }

  get(id: string): JobDoc | undefined {
    return this.live.get(id) ?? this.store.getJob<JobDoc>(id);
  }

  list(ns: NamespaceName, limit: number): JobDoc[] {
    return this.store.listJobs<JobDoc>(ns, limit, 0).map((j) => this.live.get(j.jobId) ?? j);
  }

  /** Why a member of a live job of the namespace failed for good, or null. */
  failedMember(ns: string, instance: string): string | null {
    for (const j of this.live.values()) {
      if (j.namespace !== ns) continue;
      const m = j.members.find((x) => x.instance === instance);
      if (m?.state === 'failed') return `${m.outcome?.status ?? 'failed'}${m.outcome?.error ? `: ${m.outcome.error}` : ''}`;
    }
    return null;
  }

  /** Live jobs spawned by this activation. */
  childrenOf(parent: string): JobDoc[] {
    return [...this.live.values()].filter((j) => j.parent === parent);
  }

  /** Recovery: jobs a previous run coordinated cannot be followed any more. */
  failOpen(now: number, why: string): number {
    const open = this.store.openJobs<JobDoc>();
    for (const j of open) {
      j.status = 'failed';
      j.reason = why;
      j.end = now;
      for (const m of j.members)
        if (!isFinal(m.state)) {
          m.state = 'failed';
          m.end = now;
          m.outcome ??= { status: 'whisk internal error', error: why };
        }
      this.store.putJob(j);
    }
    return open.length;
  }
}

/** the most peers one instance's traffic names: as many as a group may have members */
export const MAX_TRAFFIC_PEERS = 1024;

/** Bytes sent per peer instance: a plain object of at most MAX_TRAFFIC_PEERS IDs to byte counts. */
export function isTraffic(x: unknown): x is Record<string, number> {
  if (x === null || typeof x !== 'object' || Array.isArray(x)) return false;
  const entries = Object.entries(x);
  return entries.length <= MAX_TRAFFIC_PEERS && entries.every(([k, v]) => k.length <= 128 && Number.isSafeInteger(v) && v >= 0);
}

/**
 * What a reader sees: live members' map state and published status filled in from the address map, and
 * the traffic of those running on this daemon (trafficOf); a member's traffic from elsewhere comes with its end.
 */
export function jobView(
  j: JobDoc,
  entryOf: (ns: string, id: string) => { activation: string; state: string; status: string | null } | undefined,
  trafficOf: (activation: string) => Record<string, number> | undefined = () => undefined,
): JobDoc {
  return {
    ...j,
    members: j.members.map((m) => {
      if (isFinal(m.state)) return m;
      const e = entryOf(j.namespace, m.instance);
      if (!e || e.activation !== m.activationId) return m;
      const traffic = trafficOf(e.activation);
      return { ...m, state: e.state === 'running' ? 'running' : m.state, status: e.status, ...(traffic ? { traffic } : {}) };
    }),
  };
}
