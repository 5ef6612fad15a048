import type { Cluster } from '../gossip/cluster.ts';
import { isCount, isObj, type Codec } from '../gossip/protocols.ts';
import { activationView, parseActivationView, type ActivationView } from './activationView.ts';
import type { Directory } from './directory.ts';
import { isName, type ActivationId, type FunctionName, type NamespaceName } from './ids.ts';
import type { Invocations } from './invocations.ts';
import { jobView, type JobDoc, type JobMember, type Jobs } from './jobs.ts';
import type { Store } from './store.ts';

// Records kept where they were made, read from any daemon: an activation is
// held by the daemon that ran it, a job by the daemon that admitted it. A read
// through one daemon asks the others; a list merges every live daemon's part
// and names the daemons that did not answer in time instead of failing.

/** How long a list waits for each daemon's part. */
const ASK_MS = 3_000;
/** The most a daemon lists of its own for one merged page (skip + limit). */
const MAX_WINDOW = 10_000;

export interface ActivationQuery {
  name: string | null;
  since: number;
  upto: number;
  limit: number;
  skip: number;
  docs: boolean;
}

export interface Listing<T> {
  items: T[];
  /** daemons (host names) that did not answer in time */
  missing: string[];
}

type JobAsk = { op: 'get' | 'kill'; namespace: string; id: string } | { op: 'list'; namespace: string; limit: number };
type ActivationAsk = { namespace: string; id: ActivationId };
type ActivationsAsk = { namespace: NamespaceName; name: string | null; since: number; upto: number; limit: number; docs: boolean };

const hex32 = (v: unknown): v is string => typeof v === 'string' && /^[0-9a-f]{32}$/.test(v);
const time = (v: unknown): v is number | null => v === null || isCount(v);
const text = (v: unknown): v is string | null => v === null || typeof v === 'string';
/** every item parsed, or undefined */
const each = <T>(v: unknown, parse: (x: unknown) => T | null, max: number): T[] | undefined => {
  if (!Array.isArray(v) || v.length > max) return undefined;
  const out = v.map(parse);
  return out.every((x) => x !== null) ? (out as T[]) : undefined;
};
/** null is an answer (nothing there); anything else must parse */
const orNull =
  <T>(parse: (x: unknown) => T | null) =>
  (v: unknown): T | null | undefined =>
    v === null ? null : (parse(v) ?? undefined);

function parseMember(v: unknown): JobMember | null {
  if (!isObj(v) || typeof v.instance !== 'string' || !text(v.activationId) || !text(v.host) || !isCount(v.epoch, 1_000_000) || typeof v.state !== 'string') return null;
  if (!text(v.status) || !time(v.start) || !time(v.end) || !Array.isArray(v.attempts) || !v.attempts.every(hex32)) return null;
  if (!(v.outcome === null || (isObj(v.outcome) && typeof v.outcome.status === 'string' && text(v.outcome.error)))) return null;
  return v as unknown as JobMember;
}

/** A job record another daemon sent, checked field by field. */
function parseJob(v: unknown): JobDoc | null {
  if (!isObj(v) || !hex32(v.jobId) || typeof v.namespace !== 'string' || typeof v.function !== 'string' || typeof v.coordinator !== 'string') return null;
  if (!isCount(v.created) || !time(v.end) || typeof v.status !== 'string' || !text(v.reason) || !text(v.parent) || typeof v.detach !== 'boolean') return null;
  if (!(v.failed === null || (isObj(v.failed) && typeof v.failed.instance === 'string' && typeof v.failed.reason === 'string'))) return null;
  if (!(v.restart === null || (isObj(v.restart) && isCount(v.restart.maxRestarts, 100)))) return null;
  return each(v.members, parseMember, 10_000) ? (v as unknown as JobDoc) : null;
}

export const ACTIVATION: Codec<ActivationAsk, ActivationView | null> = {
  kind: 'activation',
  maxRequestBytes: 4096,
  request: (r) => (isObj(r) && typeof r.namespace === 'string' && isName(r.namespace) && hex32(r.id) ? { namespace: r.namespace, id: r.id as ActivationId } : undefined),
  reply: orNull(parseActivationView),
};

export const ACTIVATIONS: Codec<ActivationsAsk, ActivationView[]> = {
  kind: 'activations',
  maxRequestBytes: 4096,
  request: (q) => {
    if (!isObj(q) || typeof q.namespace !== 'string' || !isName(q.namespace) || !(q.name === null || (typeof q.name === 'string' && isName(q.name)))) return undefined;
    if (!isCount(q.since) || !isCount(q.upto) || !isCount(q.limit, MAX_WINDOW)) return undefined;
    return { namespace: q.namespace as NamespaceName, name: q.name, since: q.since, upto: q.upto, limit: q.limit, docs: q.docs === true };
  },
  reply: (v) => each(v, parseActivationView, MAX_WINDOW),
};

/** get and kill answer one job or null, list answers a list */
export const JOBS: Codec<JobAsk, JobDoc | null | JobDoc[]> = {
  kind: 'jobs',
  maxRequestBytes: 4096,
  request: (r) => {
    if (!isObj(r) || typeof r.namespace !== 'string' || !isName(r.namespace)) return undefined;
    if (r.op === 'list') return isCount(r.limit, 200) ? { op: 'list', namespace: r.namespace, limit: r.limit } : undefined;
    return (r.op === 'get' || r.op === 'kill') && hex32(r.id) ? { op: r.op, namespace: r.namespace, id: r.id } : undefined;
  },
  reply: (v) => (Array.isArray(v) ? each(v, parseJob, 200) : orNull(parseJob)(v)),
};

export interface RecordsDeps {
  store: Store;
  jobs: Jobs;
  directory: Directory;
  invocations: Invocations;
}

/** A reply of the wrong form for what was asked (a list for a get) is refused like a malformed one. */
const one = (r: JobDoc | null | JobDoc[]) => (Array.isArray(r) ? Promise.reject(new Error('a list where one job was asked for')) : r);
const many = (r: JobDoc | null | JobDoc[]) => (Array.isArray(r) ? r : Promise.reject(new Error('one job where a list was asked for')));

export class Records {
  private cluster: Cluster | null = null;
  private readonly d: RecordsDeps;
  constructor(d: RecordsDeps) {
    this.d = d;
  }

  async serve(cluster: Cluster): Promise<void> {
    this.cluster = cluster;
    await cluster.handle(ACTIVATION, async (r) => {
      const a = this.d.store.getActivation(r.id);
      return a && a.namespace === r.namespace ? activationView(a) : null;
    });
    await cluster.handle(ACTIVATIONS, async (q) => this.localActivations(q.namespace, { ...q, skip: 0 }));
    await cluster.handle(JOBS, async (r) => {
      const ns = r.namespace as NamespaceName;
      if (r.op === 'list') return this.localJobs(ns, r.limit);
      return r.op === 'get' ? this.localJob(ns, r.id) : this.killHere(ns, r.id);
    });
  }

  // activations

  private localActivations(ns: NamespaceName, q: ActivationQuery): ActivationView[] {
    return this.d.store.listActivations(ns, q.name as FunctionName | null, q.since, q.limit, q.skip, q.upto).map((a) => {
      const v = activationView(a);
      return q.docs ? v : { ...v, logs: [], response: { ...v.response, result: undefined } };
    });
  }

  async activation(ns: NamespaceName, id: ActivationId): Promise<ActivationView | null> {
    const a = this.d.store.getActivation(id);
    // Another namespace's activation is reported as missing, not as forbidden: its existence is not ours to reveal.
    if (a) return a.namespace === ns ? activationView(a) : null;
    return this.first((peer) => this.cluster!.request(peer, ACTIVATION, { namespace: ns, id }, ASK_MS));
  }

  /** The namespace's activations on every live daemon, newest first, one page of them. */
  async activations(ns: NamespaceName, q: ActivationQuery): Promise<Listing<ActivationView>> {
    const window = Math.min(MAX_WINDOW, q.skip + q.limit);
    const mine = this.localActivations(ns, { ...q, skip: 0, limit: window });
    const { parts, missing } = await this.everyPeer((peer) =>
      this.cluster!.request(peer, ACTIVATIONS, { namespace: ns, name: q.name, since: q.since, upto: q.upto, limit: window, docs: q.docs }, ASK_MS),
    );
    const all = [mine, ...parts].flat();
    const seen = new Set<string>();
    const items = all.sort((a, b) => b.start - a.start).filter((a) => !seen.has(a.activationId) && seen.add(a.activationId));
    return { items: items.slice(q.skip, q.skip + q.limit), missing };
  }

  // jobs

  private view(j: JobDoc): JobDoc {
    return jobView(
      j,
      (ns, id) => this.d.directory.get(ns, id),
      (activation) => this.d.directory.trafficOf(activation),
    );
  }

  private localJob(ns: NamespaceName, id: string): JobDoc | null {
    const j = this.d.jobs.get(id);
    return j && j.namespace === ns ? this.view(j) : null;
  }

  private localJobs(ns: NamespaceName, limit: number): JobDoc[] {
    return this.d.jobs.list(ns, limit).map((j) => this.view(j));
  }

  private killHere(ns: NamespaceName, id: string): JobDoc | null {
    const j = this.d.jobs.liveJob(id) ?? this.d.jobs.get(id);
    if (!j || j.namespace !== ns) return null;
    this.d.invocations.cancel(j, 'cancelled by the user');
    return this.view(j);
  }

  async job(ns: NamespaceName, id: string): Promise<JobDoc | null> {
    return this.localJob(ns, id) ?? this.first((peer) => this.askJobs(peer, { op: 'get', namespace: ns, id }).then(one));
  }

  async kill(ns: NamespaceName, id: string): Promise<JobDoc | null> {
    return this.killHere(ns, id) ?? this.first((peer) => this.askJobs(peer, { op: 'kill', namespace: ns, id }).then(one));
  }

  async jobList(ns: NamespaceName, limit: number): Promise<Listing<JobDoc>> {
    const { parts, missing } = await this.everyPeer((peer) => this.askJobs(peer, { op: 'list', namespace: ns, limit }).then(many));
    const all = [this.localJobs(ns, limit), ...parts].flat();
    return { items: all.sort((a, b) => b.created - a.created).slice(0, limit), missing };
  }

  // asking the other daemons

  private askJobs(peer: string, ask: JobAsk): Promise<JobDoc | null | JobDoc[]> {
    return this.cluster!.request(peer, JOBS, ask, ASK_MS);
  }

  /** The first non-null answer of any peer, or null. */
  private async first<T>(ask: (peer: string) => Promise<T | null>): Promise<T | null> {
    const peers = this.cluster?.candidates().map((c) => c.origin) ?? [];
    if (peers.length === 0) return null;
    return Promise.any(peers.map((p) => ask(p).then((v) => (isObj(v) ? v : Promise.reject(new Error('not there')))))).catch(() => null);
  }

  private async everyPeer<T>(ask: (peer: string) => Promise<T[]>): Promise<{ parts: T[][]; missing: string[] }> {
    const peers = this.cluster?.peers() ?? [];
    const asked = peers.filter((p) => p.synced);
    const got = await Promise.allSettled(asked.map((p) => ask(p.origin)));
    return {
      parts: got.map((g) => (g.status === 'fulfilled' ? g.value : [])),
      missing: asked.filter((_, i) => got[i]!.status === 'rejected').map((p) => p.host),
    };
  }
}
