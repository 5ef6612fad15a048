import type { Cluster } from '../gossip/cluster.ts';
import { activationView, type ActivationView } from './activationView.ts';
import type { Directory } from './directory.ts';
import { isName, type ActivationId, type FunctionName, type NamespaceName } from './ids.ts';
import type { Invocations } from './invocations.ts';
import { jobView, type JobDoc, type Jobs } from './jobs.ts';
import { ACTIVATION_PROTOCOL } from './remote.ts';
import type { Store } from './store.ts';

// Records kept where they were made, read from any daemon: an activation is
// held by the daemon that ran it, a job by the daemon that admitted it. A read
// through one daemon asks the others; a list merges every live daemon's part
// and names the daemons that did not answer in time instead of failing.

export const ACTIVATIONS_PROTOCOL = '/peerless/activations/1.0.0';
export const JOBS_PROTOCOL = '/peerless/jobs/1.0.0';
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

const isObj = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
const hex32 = (v: unknown): v is string => typeof v === 'string' && /^[0-9a-f]{32}$/.test(v);
const int = (v: unknown, max: number) => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= max;

export interface RecordsDeps {
  store: Store;
  jobs: Jobs;
  directory: Directory;
  invocations: Invocations;
}

export class Records {
  private cluster: Cluster | null = null;
  private readonly d: RecordsDeps;
  constructor(d: RecordsDeps) {
    this.d = d;
  }

  async serve(cluster: Cluster): Promise<void> {
    this.cluster = cluster;
    await cluster.handle(ACTIVATION_PROTOCOL, async (r) => {
      if (!isObj(r) || typeof r.namespace !== 'string' || !hex32(r.id)) return null;
      const a = this.d.store.getActivation(r.id as ActivationId);
      return a && a.namespace === r.namespace ? activationView(a) : null;
    });
    await cluster.handle(ACTIVATIONS_PROTOCOL, async (r) => {
      if (!isObj(r) || typeof r.namespace !== 'string' || !isName(r.namespace)) return [];
      const q = r as Record<string, unknown>;
      if (!(q.name === null || (typeof q.name === 'string' && isName(q.name))) || !int(q.since, Number.MAX_SAFE_INTEGER) || !int(q.upto, Number.MAX_SAFE_INTEGER) || !int(q.limit, MAX_WINDOW)) return [];
      return this.localActivations(r.namespace as NamespaceName, { name: q.name as string | null, since: q.since as number, upto: q.upto as number, limit: q.limit as number, skip: 0, docs: q.docs === true });
    });
    await cluster.handle(JOBS_PROTOCOL, async (r) => {
      if (!isObj(r) || typeof r.namespace !== 'string' || !isName(r.namespace)) return null;
      const ns = r.namespace as NamespaceName;
      if (r.op === 'list') return int(r.limit, 200) ? this.localJobs(ns, r.limit as number) : [];
      if ((r.op !== 'get' && r.op !== 'kill') || !hex32(r.id)) return null;
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
    return this.first((peer) => this.cluster!.request(peer, ACTIVATION_PROTOCOL, { namespace: ns, id }, ASK_MS) as Promise<ActivationView | null>);
  }

  /** The namespace's activations on every live daemon, newest first, one page of them. */
  async activations(ns: NamespaceName, q: ActivationQuery): Promise<Listing<ActivationView>> {
    const window = Math.min(MAX_WINDOW, q.skip + q.limit);
    const mine = this.localActivations(ns, { ...q, skip: 0, limit: window });
    const { parts, missing } = await this.everyPeer((peer) =>
      this.cluster!.request(peer, ACTIVATIONS_PROTOCOL, { namespace: ns, name: q.name, since: q.since, upto: q.upto, limit: window, docs: q.docs }, ASK_MS) as Promise<ActivationView[]>);
    const all = [mine, ...parts].flat().filter((a) => isObj(a) && typeof a.start === 'number');
    const seen = new Set<string>();
    const items = all.sort((a, b) => b.start - a.start).filter((a) => !seen.has(a.activationId) && seen.add(a.activationId));
    return { items: items.slice(q.skip, q.skip + q.limit), missing };
  }

  // jobs

  private view(j: JobDoc): JobDoc {
    return jobView(j, (ns, id) => this.d.directory.get(ns, id));
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
    return this.localJob(ns, id) ?? this.first((peer) => this.cluster!.request(peer, JOBS_PROTOCOL, { op: 'get', namespace: ns, id } satisfies JobAsk, ASK_MS) as Promise<JobDoc | null>);
  }

  async kill(ns: NamespaceName, id: string): Promise<JobDoc | null> {
    return this.killHere(ns, id) ?? this.first((peer) => this.cluster!.request(peer, JOBS_PROTOCOL, { op: 'kill', namespace: ns, id } satisfies JobAsk, ASK_MS) as Promise<JobDoc | null>);
  }

  async jobList(ns: NamespaceName, limit: number): Promise<Listing<JobDoc>> {
    const { parts, missing } = await this.everyPeer((peer) => this.cluster!.request(peer, JOBS_PROTOCOL, { op: 'list', namespace: ns, limit } satisfies JobAsk, ASK_MS) as Promise<JobDoc[]>);
    const all = [this.localJobs(ns, limit), ...parts].flat().filter((j) => isObj(j) && typeof j.created === 'number');
    return { items: all.sort((a, b) => b.created - a.created).slice(0, limit), missing };
  }

  // asking the other daemons

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
      parts: got.map((g) => (g.status === 'fulfilled' && Array.isArray(g.value) ? g.value : [])),
      missing: asked.filter((_, i) => got[i]!.status === 'rejected').map((p) => p.host),
    };
  }
}
