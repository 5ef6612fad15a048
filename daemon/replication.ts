import type { Logger } from 'pino';
import type { Cluster } from '../gossip/cluster.ts';
import type { Codec } from '../gossip/protocols.ts';
import { Hlc, newer } from '../gossip/hlc.ts';
import type { BlobStore } from './blobs.ts';
import { digestOf } from './blobs.ts';
import { isDigest, type Digest, type FunctionName, type NamespaceName } from './ids.ts';
import { ENTITY_KINDS } from './entities.ts';
import { mergeStep, registryDigest, wantedBy, type Clock, type EntMsg, type FnMsg, type NsMsg, type RegistryMsg, type Step } from './registryMerge.ts';
import type { RegistryKind, Store } from './store.ts';
import type { EntityDocs, EntityKind, FunctionRecord } from './types.ts';

// Registry replication between daemons: namespaces (with their hashed keys)
// and functions (with their code) are written anywhere and merged everywhere,
// last writer wins by hybrid logical clock. Deletes leave a tombstone with its
// clock, so an old copy arriving later cannot bring the entity back. When a
// daemon joins, every other one sends its whole registry (anti-entropy), so a
// late joiner catches up. A registry message gossip lost is found by digest:
// every beat carries a hash of its origin's registry, and a daemon whose hash
// differs from a member's for a while pulls what that member holds newer over
// a stream (gossip/digests.ts). Small code travels inline; larger code is fetched by
// digest over its own stream from the daemon that announced it (or any other
// that has it), and checked against the digest either way.

/** Code up to this size rides along in the gossip message; larger code is fetched by digest. */
export const INLINE_CODE_LIMIT = 64 * 1024;
const FETCH_TIMEOUT_MS = 60_000;
const PULL_TIMEOUT_MS = 30_000;
/** a pull names the clocks the puller holds, about 100 bytes each: room for a registry of 100,000 */
const MAX_PULL_REQUEST = 16 * 1024 * 1024;
/** code inlined in one pull's answer, at most; the rest is fetched by digest */
const PULL_INLINE_BUDGET = 16 * 1024 * 1024;

type Msg = RegistryMsg;

/** code by digest; the reply is the code's bytes, checked against the digest by the asker */
const BLOB: Codec<{ digest: Digest }, never> = {
  kind: 'blob',
  maxRequestBytes: 1024,
  request: (x) => {
    const d = (x as { digest?: unknown } | null)?.digest;
    return typeof d === 'string' && isDigest(d) ? { digest: d as Digest } : undefined;
  },
  reply: () => undefined,
};

/** what a member holds newer than the puller's clocks, small code inline; each message is checked as it is merged (receive) */
const REGISTRY: Codec<{ have: Clock[] }, unknown[]> = {
  kind: 'registry',
  maxRequestBytes: MAX_PULL_REQUEST,
  request: (x) => {
    const have = (x as { have?: unknown } | null)?.have;
    return Array.isArray(have) && have.every((k) => Array.isArray(k) && k.length === 4 && k.every((f) => typeof f === 'string')) ? { have: have as Clock[] } : undefined;
  },
  reply: (x) => (Array.isArray(x) ? x : undefined),
};

export interface ReplicationHooks {
  /** a function changed or went away: warm containers hold old code */
  retire: (ns: string, name: string) => Promise<void>;
  /** a function went away: what was learned of it goes too */
  forget: (ns: string, name: string) => void;
}

export class Registry {
  readonly clock: Hlc;
  private cluster: Cluster | null = null;
  private readonly store: Store;
  private readonly blobs: BlobStore;
  private readonly log: Logger;
  private readonly hooks: ReplicationHooks;

  private readonly maxCodeBytes: number;
  private digestCache = { version: -1, value: 0 };
  /** registry pulls made because a member's digest differed, by outcome */
  readonly pulls = { repaired: 0, unchanged: 0, failed: 0 };

  constructor(store: Store, blobs: BlobStore, node: string, log: Logger, hooks: ReplicationHooks, maxCodeBytes: number) {
    this.maxCodeBytes = maxCodeBytes;
    this.store = store;
    this.blobs = blobs;
    this.log = log;
    this.hooks = hooks;
    this.clock = new Hlc(node);
  }

  attach(cluster: Cluster): void {
    this.cluster = cluster;
    cluster.events.on('registry', (m, signer) => void this.receive(m, signer).catch((err: unknown) => this.log.warn({ err }, 'registry message not applied')));
    // Only code some function uses is served, by exact digest: nothing else of the data dir is reachable.
    void cluster
      .handleBytes(BLOB, async ({ digest }) => {
        if (!this.store.digestInUse(digest) || !this.blobs.has(digest)) throw new Error(`no blob ${digest}`);
        return this.blobs.get(digest);
      })
      .catch((err: unknown) => this.log.error({ err }, 'could not serve code blobs to peers'));
    cluster.events.on(
      'registry-differs',
      (peer, done) =>
        void this.pull(peer)
          .catch((err: Error) => this.log.warn({ peer, err: err.message }, 'registry pull failed'))
          .finally(done),
    );
    void cluster.handle(REGISTRY, async (r) => this.newerThan(r.have)).catch((err: unknown) => this.log.error({ err }, 'could not serve the registry to peers'));
    // Several peers come up together when a daemon joins: answer them all with one round.
    let pending: NodeJS.Timeout | null = null;
    cluster.events.on('peer-up', () => {
      pending ??= setTimeout(() => {
        pending = null;
        this.sendAll();
      }, 200);
    });
  }

  // local writes: stamp, then tell the others

  namespaceWritten(ns: NamespaceName): void {
    const hlc = this.clock.now();
    this.store.setClock('ns', ns, '', hlc, false);
    this.cluster?.publishRegistry(this.nsMessage(ns, hlc));
  }
  namespaceDeleted(ns: NamespaceName): void {
    const hlc = this.clock.now();
    this.store.setClock('ns', ns, '', hlc, true);
    this.cluster?.publishRegistry({ type: 'ns', name: ns, hlc, deleted: true } satisfies NsMsg);
  }
  functionWritten(f: FunctionRecord): void {
    const hlc = this.clock.now();
    this.store.setClock('fn', f.namespace, f.name, hlc, false);
    this.cluster?.publishRegistry(this.fnMessage(f, hlc));
  }
  functionDeleted(ns: NamespaceName, name: FunctionName): void {
    const hlc = this.clock.now();
    this.store.setClock('fn', ns, name, hlc, true);
    this.cluster?.publishRegistry({ type: 'fn', ns, name, hlc, deleted: true } satisfies FnMsg);
  }

  entityWritten<K extends EntityKind>(kind: K, doc: EntityDocs[K]): void {
    const hlc = this.clock.now();
    this.store.setClock(kind, doc.namespace, doc.name, hlc, false);
    this.cluster?.publishRegistry({ type: 'ent', kind, ns: doc.namespace, name: doc.name, hlc, deleted: false, doc } satisfies EntMsg);
  }
  entityDeleted(kind: EntityKind, ns: NamespaceName, name: string): void {
    const hlc = this.clock.now();
    this.store.setClock(kind, ns, name, hlc, true);
    this.cluster?.publishRegistry({ type: 'ent', kind, ns, name, hlc, deleted: true } satisfies EntMsg);
  }

  private nsMessage(ns: NamespaceName, hlc: string): NsMsg {
    const limits = this.store.namespaceLimits(ns);
    return { type: 'ns', name: ns, hlc, deleted: false, created: this.store.namespaceCreated(ns) ?? Date.now(), keys: this.store.keysOf(ns), ...(limits ? { limits } : {}) };
  }

  /** A function's message: its code rides along when small, and when mayInline (a caller's budget) allows. */
  private fnMessage(f: FunctionRecord, hlc: string, mayInline: (size: number) => boolean = () => true): FnMsg {
    const size = this.blobs.size(f.digest); // known from the file: large code is never read just to be left out
    const code = size <= INLINE_CODE_LIMIT && mayInline(size) ? this.blobs.get(f.digest).toString('base64') : undefined;
    return { type: 'fn', ns: f.namespace, name: f.name, hlc, deleted: false, record: f, ...(code === undefined ? {} : { code }) };
  }

  /**
   * A pull's answer: what this daemon holds newer than the puller's clocks say it does (body: the puller's
   * clocks as [kind, namespace, name, hlc] rows). Small code rides along until the budget is spent.
   */
  private newerThan(have: Clock[]): Msg[] {
    let budget = PULL_INLINE_BUDGET;
    return this.messages(wantedBy(have), (size) => (budget -= size) >= 0);
  }

  /**
   * A hash of the registry as anti-entropy would send it (every clock, tombstones included), as a 48-bit
   * integer for the beat rows. Two daemons holding the same registry hold the same clocks.
   */
  digest(): number {
    if (this.digestCache.version !== this.store.registryVersion) {
      this.digestCache = { version: this.store.registryVersion, value: registryDigest(this.store.registryClocks()) };
    }
    return this.digestCache.value;
  }

  /** Anti-entropy: everything this daemon knows, tombstones included. */
  sendAll(): void {
    const c = this.cluster;
    if (c)
      for (const m of this.messages(
        () => true,
        () => true,
      ))
        c.publishRegistry(m);
  }

  /**
   * The registry as messages, those wanted of it: each namespace before its functions, tombstones last.
   * inline: whether small code of this size may ride in the message (see fnMessage).
   */
  private messages(wanted: (kind: RegistryKind, ns: string, name: string, hlc: string) => boolean, inline: (size: number) => boolean): Msg[] {
    const out: Msg[] = [];
    // A record written before this daemon stamped its writes (an older version, or a data dir from before
    // it joined a cluster) is stamped now, as if written now, so it replicates too.
    const stamp = (kind: RegistryKind, ns: NamespaceName, name: string) => {
      const c = this.store.clockOf(kind, ns, name);
      if (c) return c.hlc;
      const hlc = this.clock.now();
      this.store.setClock(kind, ns, name, hlc, false);
      return hlc;
    };
    for (const { name } of this.store.listNamespaces()) {
      const hlc = stamp('ns', name, '');
      if (wanted('ns', name, '', hlc)) out.push(this.nsMessage(name, hlc));
      for (const f of this.store.listFunctions(name, 1_000_000, 0)) {
        const fhlc = stamp('fn', f.namespace, f.name);
        if (!wanted('fn', f.namespace, f.name, fhlc)) continue;
        out.push(this.fnMessage(f, fhlc, inline));
      }
      for (const kind of ENTITY_KINDS) {
        for (const doc of this.store.listEntities(kind, name, 1_000_000, 0)) {
          const ehlc = stamp(kind, name, doc.name);
          if (wanted(kind, name, doc.name, ehlc)) out.push({ type: 'ent', kind, ns: name, name: doc.name, hlc: ehlc, deleted: false, doc });
        }
      }
    }
    for (const t of this.store.tombstones()) {
      if (!wanted(t.kind, t.namespace, t.name, t.hlc)) continue;
      out.push(
        t.kind === 'ns'
          ? { type: 'ns', name: t.namespace, hlc: t.hlc, deleted: true }
          : t.kind === 'fn'
            ? { type: 'fn', ns: t.namespace, name: t.name, hlc: t.hlc, deleted: true }
            : { type: 'ent', kind: t.kind, ns: t.namespace, name: t.name, hlc: t.hlc, deleted: true },
      );
    }
    return out;
  }

  /** What a member holds newer than this daemon, merged here in order (namespaces before their functions). */
  private async pull(peer: string): Promise<void> {
    const c = this.cluster;
    if (!c) return;
    const before = this.digest();
    let ms: unknown[];
    try {
      const have = this.store.registryClocks().map((k): Clock => [k.kind, k.namespace, k.name, k.hlc]);
      ms = await c.request(peer, REGISTRY, { have }, PULL_TIMEOUT_MS);
      for (const m of ms) await this.receive(m, peer);
    } catch (err) {
      this.pulls.failed++;
      throw err;
    }
    if (this.digest() === before) return void this.pulls.unchanged++;
    this.pulls.repaired++;
    this.log.info({ peer, messages: ms.length }, 'registry repaired from a member');
  }

  /** A registry message from another daemon: merged by the rules of registryMerge.ts, the step carried out here. */
  async receive(raw: unknown, signer: string): Promise<void> {
    const { hlc, step } = mergeStep(raw, this.store);
    if (hlc !== null) this.clock.receive(hlc);
    switch (step.do) {
      case 'reject':
        return this.reject(signer, step.what);
      case 'stale':
      case 'wait-namespace': // its namespace comes first; anti-entropy repeats both
        return;
      case 'tombstone':
        return this.applyTombstone(step);
      case 'namespace':
        return this.applyNamespace(step);
      case 'entity':
        this.store.transaction(() => {
          this.store.putEntity(step.kind, step.doc);
          this.store.setClock(step.kind, step.doc.namespace, step.doc.name, step.hlc, false);
        });
        this.log.info({ namespace: step.doc.namespace, kind: step.kind, name: step.doc.name }, 'entity replicated');
        return;
      case 'function':
        return this.applyFunction(step, signer);
    }
  }

  /** A registry message that is not well formed: dropped, counted and logged with its signer. */
  private reject(signer: string, what: string): void {
    this.cluster?.rejects.count('registry-topic', 'malformed');
    this.log.warn({ signer, what }, 'dropped a malformed registry message');
  }

  private async applyTombstone(t: Extract<Step, { do: 'tombstone' }>): Promise<void> {
    if (t.kind === 'ns') {
      this.store.transaction(() => {
        this.store.setClock('ns', t.ns, '', t.hlc, true);
        this.store.deleteNamespace(t.ns);
      });
      this.log.info({ namespace: t.ns, deleted: true }, 'namespace replicated');
      return;
    }
    this.store.setClock(t.kind, t.ns, t.name, t.hlc, true);
    if (t.kind !== 'fn') return void this.store.deleteEntity(t.kind, t.ns, t.name);
    const name = t.name as FunctionName;
    if (!this.store.deleteFunction(t.ns, name)) return;
    await this.hooks.retire(t.ns, name);
    this.hooks.forget(t.ns, name);
    this.log.info({ namespace: t.ns, function: name }, 'function deleted by replication');
  }

  private applyNamespace(n: Extract<Step, { do: 'namespace' }>): void {
    this.store.transaction(() => {
      this.store.setClock('ns', n.ns, '', n.hlc, false);
      if (!this.store.hasNamespace(n.ns)) this.store.createNamespace(n.ns, n.created ?? Date.now());
      for (const k of n.keys) if (!this.store.getKey(k.uuid)) this.store.insertKey(k.uuid, k.hash, n.ns, Date.now());
      if (n.limits) this.store.setNamespaceLimits(n.ns, n.limits);
    });
    this.log.info({ namespace: n.ns, deleted: false }, 'namespace replicated');
  }

  private async applyFunction(f: Extract<Step, { do: 'function' }>, signer: string): Promise<void> {
    const r = f.record;
    if (f.code) this.blobs.put(f.code);
    else if (!this.blobs.has(r.digest)) {
      const code = await this.fetchCode(r.digest, signer);
      if (!code) {
        this.log.warn({ namespace: r.namespace, function: r.name, digest: r.digest }, "no peer could give this function's code; the next anti-entropy round retries");
        return;
      }
      this.blobs.put(code);
      // Another write may have won while the code was on its way.
      if (!newer(f.hlc, this.store.clockOf('fn', r.namespace, r.name)?.hlc)) return;
    }
    this.store.putFunction(r);
    this.store.setClock('fn', r.namespace, r.name, f.hlc, false);
    await this.hooks.retire(r.namespace, r.name);
    this.log.info({ namespace: r.namespace, function: r.name }, 'function replicated');
  }

  /** Code being fetched, by digest: a registry pull during a long fetch waits for it instead of fetching again. */
  private readonly fetching = new Map<Digest, Promise<Buffer | null>>();

  private fetchCode(digest: Digest, announcer: string): Promise<Buffer | null> {
    let f = this.fetching.get(digest);
    if (!f) {
      f = this.fetchFrom(digest, announcer).finally(() => this.fetching.delete(digest));
      this.fetching.set(digest, f);
    }
    return f;
  }

  /** From the daemon that announced it first, then from any other connected one; checked against its digest. */
  private async fetchFrom(digest: Digest, announcer: string): Promise<Buffer | null> {
    const c = this.cluster;
    if (!c) return null;
    for (const peer of [announcer, ...c.connectedPeers().filter((p) => p !== announcer)]) {
      try {
        const bytes = Buffer.from(await c.requestBytes(peer, BLOB, { digest }, FETCH_TIMEOUT_MS, this.maxCodeBytes));
        if (digestOf(bytes) === digest) return bytes;
        this.log.warn({ peer, digest }, 'a peer sent code that does not match its digest');
      } catch (err) {
        this.log.debug({ peer, digest, err: (err as Error).message }, 'peer could not give the code');
      }
    }
    return null;
  }
}
