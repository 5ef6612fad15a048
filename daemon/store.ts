import { DatabaseSync, type StatementSync } from 'node:sqlite';
import type { ActivationId, Digest, FunctionName, HostId, NamespaceName } from './ids.ts';
import { metaOf } from './kinds.ts';
import type { ActivationRecord, ActivationStatus, EntityDocs, EntityKind, FunctionLimits, FunctionRecord, Runtime } from './types.ts';

/** What the registry replicates, by the kind its clocks are kept under. */
export type RegistryKind = 'ns' | 'fn' | EntityKind;

// The daemon's embedded store. Every write is synchronous and in WAL mode, so
// an activation is on disk before the caller hears about it.

export interface KeyRow {
  uuid: string;
  hash: string;
  namespace: NamespaceName | null;
}

type Row = Record<string, unknown>;

export class Store {
  readonly db: DatabaseSync;
  private readonly st: Record<string, StatementSync>;
  /** counts writes to namespaces, functions and registry clocks, so a digest of them is recomputed only after one */
  registryVersion = 0;

  constructor(path: string) {
    this.db = new DatabaseSync(path);
    this.db.exec(`
      PRAGMA journal_mode = WAL;
      PRAGMA synchronous = NORMAL;
      PRAGMA foreign_keys = ON;
      PRAGMA busy_timeout = 5000;
      CREATE TABLE IF NOT EXISTS namespaces (name TEXT PRIMARY KEY, created INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS keys (
        uuid TEXT PRIMARY KEY, hash TEXT NOT NULL,
        namespace TEXT REFERENCES namespaces(name) ON DELETE CASCADE, created INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS functions (
        namespace TEXT NOT NULL REFERENCES namespaces(name) ON DELETE CASCADE, name TEXT NOT NULL,
        runtime TEXT NOT NULL, digest TEXT NOT NULL, binary INTEGER NOT NULL, main TEXT NOT NULL,
        memory_mb INTEGER NOT NULL, timeout_ms INTEGER NOT NULL, parameters TEXT NOT NULL,
        concurrency INTEGER NOT NULL DEFAULT 1,
        version INTEGER NOT NULL, created INTEGER NOT NULL, updated INTEGER NOT NULL,
        PRIMARY KEY (namespace, name));
      CREATE TABLE IF NOT EXISTS activations (
        id TEXT PRIMARY KEY, namespace TEXT NOT NULL, name TEXT NOT NULL, version INTEGER NOT NULL,
        host TEXT NOT NULL, start INTEGER NOT NULL, end INTEGER, duration INTEGER, status TEXT NOT NULL,
        result TEXT, logs TEXT NOT NULL DEFAULT '[]', annotations TEXT NOT NULL DEFAULT '{}');
      CREATE INDEX IF NOT EXISTS activations_by_ns ON activations (namespace, start DESC);
      CREATE TABLE IF NOT EXISTS registry_clock (
        kind TEXT NOT NULL, namespace TEXT NOT NULL, name TEXT NOT NULL, hlc TEXT NOT NULL, deleted INTEGER NOT NULL,
        PRIMARY KEY (kind, namespace, name));
      CREATE TABLE IF NOT EXISTS namespace_limits (
        namespace TEXT PRIMARY KEY REFERENCES namespaces(name) ON DELETE CASCADE,
        per_minute INTEGER NOT NULL, concurrent INTEGER NOT NULL);
      CREATE INDEX IF NOT EXISTS activations_by_start ON activations (start DESC);
      CREATE INDEX IF NOT EXISTS activations_running ON activations (status) WHERE status = 'running';
      CREATE TABLE IF NOT EXISTS entities (
        kind TEXT NOT NULL, namespace TEXT NOT NULL REFERENCES namespaces(name) ON DELETE CASCADE, name TEXT NOT NULL,
        doc TEXT NOT NULL, updated INTEGER NOT NULL, PRIMARY KEY (kind, namespace, name));
      CREATE TABLE IF NOT EXISTS jobs (
        id TEXT PRIMARY KEY, namespace TEXT NOT NULL, created INTEGER NOT NULL, status TEXT NOT NULL, doc TEXT NOT NULL);
      CREATE INDEX IF NOT EXISTS jobs_by_ns ON jobs (namespace, created DESC);
    `);
    // A data directory from before limits.concurrency: its functions keep one instance per container.
    const cols = this.db.prepare('PRAGMA table_info(functions)').all() as { name: string }[];
    if (!cols.some((c) => c.name === 'concurrency')) this.db.exec('ALTER TABLE functions ADD COLUMN concurrency INTEGER NOT NULL DEFAULT 1');
    // ...and from before OpenWhisk's documents were kept: their meta is made up on reading (defaultMeta).
    if (!cols.some((c) => c.name === 'meta')) this.db.exec("ALTER TABLE functions ADD COLUMN meta TEXT NOT NULL DEFAULT 'null'");
    const p = (sql: string) => this.db.prepare(sql);
    this.st = {
      insertNs: p('INSERT INTO namespaces (name, created) VALUES (?, ?)'),
      getNs: p('SELECT name, created FROM namespaces WHERE name = ?'),
      listNs: p('SELECT name, created FROM namespaces ORDER BY name'),
      deleteNs: p('DELETE FROM namespaces WHERE name = ?'),
      insertKey: p('INSERT INTO keys (uuid, hash, namespace, created) VALUES (?, ?, ?, ?)'),
      getKey: p('SELECT uuid, hash, namespace FROM keys WHERE uuid = ?'),
      countAdmin: p('SELECT count(*) AS n FROM keys WHERE namespace IS NULL'),
      upsertFn: p(`INSERT INTO functions (namespace, name, runtime, digest, binary, main, memory_mb, timeout_ms, parameters, version, created, updated, concurrency, meta)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
        ON CONFLICT (namespace, name) DO UPDATE SET runtime = excluded.runtime, digest = excluded.digest, binary = excluded.binary,
          main = excluded.main, memory_mb = excluded.memory_mb, timeout_ms = excluded.timeout_ms, parameters = excluded.parameters,
          concurrency = excluded.concurrency, meta = excluded.meta,
          version = excluded.version, updated = excluded.updated`),
      getFn: p('SELECT * FROM functions WHERE namespace = ? AND name = ?'),
      // Newest first, as OpenWhisk lists entities.
      listFn: p('SELECT * FROM functions WHERE namespace = ? ORDER BY updated DESC, name LIMIT ? OFFSET ?'),
      countFn: p('SELECT count(*) AS n FROM functions WHERE namespace = ?'),
      putEnt: p(`INSERT INTO entities (kind, namespace, name, doc, updated) VALUES (?, ?, ?, ?, ?)
        ON CONFLICT (kind, namespace, name) DO UPDATE SET doc = excluded.doc, updated = excluded.updated`),
      getEnt: p('SELECT doc FROM entities WHERE kind = ? AND namespace = ? AND name = ?'),
      listEnt: p('SELECT doc FROM entities WHERE kind = ? AND namespace = ? ORDER BY updated DESC, name LIMIT ? OFFSET ?'),
      countEnt: p('SELECT count(*) AS n FROM entities WHERE kind = ? AND namespace = ?'),
      deleteEnt: p('DELETE FROM entities WHERE kind = ? AND namespace = ? AND name = ?'),
      deleteFn: p('DELETE FROM functions WHERE namespace = ? AND name = ?'),
      digestInUse: p('SELECT 1 FROM functions WHERE digest = ? LIMIT 1'),
      insertAct: p(`INSERT INTO activations (id, namespace, name, version, host, start, status, annotations) VALUES (?, ?, ?, ?, ?, ?, 'running', ?)`),
      finishAct: p(`UPDATE activations SET end = ?, duration = ?, status = ?, result = ?, logs = ?, annotations = ? WHERE id = ? AND status = 'running'`),
      getAct: p('SELECT * FROM activations WHERE id = ?'),
      listAct: p('SELECT * FROM activations WHERE namespace = ? AND (? IS NULL OR name = ?) AND start >= ? AND start <= ? ORDER BY start DESC LIMIT ? OFFSET ?'),
      putJob: p(`INSERT INTO jobs (id, namespace, created, status, doc) VALUES (?, ?, ?, ?, ?)
        ON CONFLICT (id) DO UPDATE SET status = excluded.status, doc = excluded.doc`),
      getJob: p('SELECT doc FROM jobs WHERE id = ?'),
      listJobs: p('SELECT doc FROM jobs WHERE namespace = ? ORDER BY created DESC LIMIT ? OFFSET ?'),
      openJobs: p(`SELECT doc FROM jobs WHERE status IN ('queued', 'running')`),
      getLimits: p('SELECT per_minute, concurrent FROM namespace_limits WHERE namespace = ?'),
      setLimits: p(`INSERT INTO namespace_limits (namespace, per_minute, concurrent) VALUES (?, ?, ?)
        ON CONFLICT (namespace) DO UPDATE SET per_minute = excluded.per_minute, concurrent = excluded.concurrent`),
      recentAll: p('SELECT * FROM activations ORDER BY start DESC LIMIT ?'),
      recentOfNs: p('SELECT * FROM activations WHERE namespace = ? ORDER BY start DESC LIMIT ?'),
      failRunning: p(`UPDATE activations SET end = ?, duration = ? - start, status = 'whisk internal error', result = ? WHERE status = 'running' AND host = ?`),
      deleteActsOfNs: p('DELETE FROM activations WHERE namespace = ?'),
      deleteJobsOfNs: p('DELETE FROM jobs WHERE namespace = ?'),
      getClock: p('SELECT hlc, deleted FROM registry_clock WHERE kind = ? AND namespace = ? AND name = ?'),
      setClock: p(`INSERT INTO registry_clock (kind, namespace, name, hlc, deleted) VALUES (?, ?, ?, ?, ?)
        ON CONFLICT (kind, namespace, name) DO UPDATE SET hlc = excluded.hlc, deleted = excluded.deleted`),
      tombstones: p('SELECT kind, namespace, name, hlc FROM registry_clock WHERE deleted = 1'),
      buryNsClocks: p("UPDATE registry_clock SET deleted = 1 WHERE namespace = ? AND kind <> 'ns'"),
      // What a daemon sends in an anti-entropy round, by clock: tombstones, and clocks of what exists. A clock
      // whose entity is gone with its namespace, or never arrived, is left out: other daemons need not hold it.
      registryClocks: p(`SELECT kind, namespace, name, hlc, deleted FROM registry_clock c WHERE deleted = 1
        OR (kind = 'ns' AND EXISTS (SELECT 1 FROM namespaces WHERE name = c.namespace))
        OR (kind = 'fn' AND EXISTS (SELECT 1 FROM functions f WHERE f.namespace = c.namespace AND f.name = c.name))
        OR EXISTS (SELECT 1 FROM entities e WHERE e.kind = c.kind AND e.namespace = c.namespace AND e.name = c.name)
        ORDER BY kind, namespace, name`),
      keysOf: p('SELECT uuid, hash FROM keys WHERE namespace = ?'),
      nsCreated: p('SELECT created FROM namespaces WHERE name = ?'),
    };
  }

  close(): void {
    this.db.close();
  }

  transaction<T>(fn: () => T): T {
    this.db.exec('BEGIN IMMEDIATE');
    try {
      const out = fn();
      this.db.exec('COMMIT');
      return out;
    } catch (e) {
      this.db.exec('ROLLBACK');
      throw e;
    }
  }

  // namespaces and keys

  createNamespace(name: NamespaceName, now: number): void {
    this.registryVersion++;
    this.st.insertNs!.run(name, now);
  }
  hasNamespace(name: NamespaceName): boolean {
    return this.st.getNs!.get(name) !== undefined;
  }
  listNamespaces(): { name: NamespaceName; created: number }[] {
    return this.st.listNs!.all() as { name: NamespaceName; created: number }[];
  }
  deleteNamespace(name: NamespaceName): boolean {
    this.st.deleteActsOfNs!.run(name);
    this.st.deleteJobsOfNs!.run(name);
    // What went with the namespace becomes a tombstone at its own clock: a daemon that never saw an entity's
    // last write and one that did then agree (the newest tombstone spreads by pull), where a clock left
    // behind unlisted kept their registry digests apart for good (test/unit/registry.sim.test.ts found it).
    this.st.buryNsClocks!.run(name);
    this.registryVersion++;
    return this.st.deleteNs!.run(name).changes > 0;
  }
  insertKey(uuid: string, hash: string, namespace: NamespaceName | null, now: number): void {
    this.st.insertKey!.run(uuid, hash, namespace, now);
  }
  getKey(uuid: string): KeyRow | undefined {
    return this.st.getKey!.get(uuid) as KeyRow | undefined;
  }
  hasAdminKey(): boolean {
    return (this.st.countAdmin!.get() as { n: number }).n > 0;
  }

  /** A namespace's own quota, if an operator set one (0 = no limit). */
  namespaceLimits(ns: NamespaceName): { perMinute: number; concurrent: number } | undefined {
    const r = this.st.getLimits!.get(ns) as { per_minute: number; concurrent: number } | undefined;
    return r && { perMinute: r.per_minute, concurrent: r.concurrent };
  }
  setNamespaceLimits(ns: NamespaceName, l: { perMinute: number; concurrent: number }): void {
    this.st.setLimits!.run(ns, l.perMinute, l.concurrent);
  }

  keysOf(ns: NamespaceName): { uuid: string; hash: string }[] {
    return this.st.keysOf!.all(ns) as { uuid: string; hash: string }[];
  }
  namespaceCreated(ns: NamespaceName): number | undefined {
    return (this.st.nsCreated!.get(ns) as { created: number } | undefined)?.created;
  }

  // registry clocks: the last write (or delete) of each replicated entity, by hybrid logical clock

  clockOf(kind: RegistryKind, ns: string, name = ''): { hlc: string; deleted: boolean } | undefined {
    const r = this.st.getClock!.get(kind, ns, name) as { hlc: string; deleted: number } | undefined;
    return r && { hlc: r.hlc, deleted: r.deleted === 1 };
  }
  setClock(kind: RegistryKind, ns: string, name: string, hlc: string, deleted: boolean): void {
    this.registryVersion++;
    this.st.setClock!.run(kind, ns, name, hlc, deleted ? 1 : 0);
  }
  tombstones(): { kind: RegistryKind; namespace: string; name: string; hlc: string }[] {
    return this.st.tombstones!.all() as { kind: RegistryKind; namespace: string; name: string; hlc: string }[];
  }
  registryClocks(): { kind: RegistryKind; namespace: string; name: string; hlc: string; deleted: number }[] {
    return this.st.registryClocks!.all() as { kind: RegistryKind; namespace: string; name: string; hlc: string; deleted: number }[];
  }

  // functions

  putFunction(f: FunctionRecord): void {
    this.registryVersion++;
    this.st.upsertFn!.run(
      f.namespace,
      f.name,
      JSON.stringify(f.runtime),
      f.digest,
      f.binary ? 1 : 0,
      f.main,
      f.limits.memoryMb,
      f.limits.timeoutMs,
      JSON.stringify(f.parameters),
      f.version,
      f.created,
      f.updated,
      concurrencyOf(f.limits),
      JSON.stringify(f.meta ?? null),
    );
  }
  getFunction(ns: NamespaceName, name: FunctionName): FunctionRecord | undefined {
    const r = this.st.getFn!.get(ns, name) as Row | undefined;
    return r && fnFromRow(r);
  }
  listFunctions(ns: NamespaceName, limit: number, skip: number): FunctionRecord[] {
    return (this.st.listFn!.all(ns, limit, skip) as Row[]).map(fnFromRow);
  }
  // triggers, rules and packages: one JSON document each, as the API wrote it

  putEntity<K extends EntityKind>(kind: K, doc: EntityDocs[K]): void {
    this.registryVersion++;
    this.st.putEnt!.run(kind, doc.namespace, doc.name, JSON.stringify(doc), doc.updated);
  }
  getEntity<K extends EntityKind>(kind: K, ns: NamespaceName, name: string): EntityDocs[K] | undefined {
    const r = this.st.getEnt!.get(kind, ns, name) as Row | undefined;
    return r && (JSON.parse(r.doc as string) as EntityDocs[K]);
  }
  listEntities<K extends EntityKind>(kind: K, ns: NamespaceName, limit: number, skip: number): EntityDocs[K][] {
    return (this.st.listEnt!.all(kind, ns, limit, skip) as Row[]).map((r) => JSON.parse(r.doc as string) as EntityDocs[K]);
  }
  countEntities(kind: EntityKind, ns: NamespaceName): number {
    return (this.st.countEnt!.get(kind, ns) as { n: number }).n;
  }
  deleteEntity(kind: EntityKind, ns: NamespaceName, name: string): boolean {
    this.registryVersion++;
    return this.st.deleteEnt!.run(kind, ns, name).changes > 0;
  }

  countFunctions(ns: NamespaceName): number {
    return (this.st.countFn!.get(ns) as { n: number }).n;
  }
  deleteFunction(ns: NamespaceName, name: FunctionName): boolean {
    this.registryVersion++;
    return this.st.deleteFn!.run(ns, name).changes > 0;
  }
  digestInUse(digest: Digest): boolean {
    return this.st.digestInUse!.get(digest) !== undefined;
  }

  // activations

  startActivation(a: Pick<ActivationRecord, 'activationId' | 'namespace' | 'name' | 'version' | 'host' | 'start' | 'annotations'>): void {
    this.st.insertAct!.run(a.activationId, a.namespace, a.name, a.version, a.host, a.start, JSON.stringify(a.annotations));
  }
  /** Returns false when the activation was already finished (e.g. failed by recovery). */
  finishActivation(id: ActivationId, end: number, start: number, status: Exclude<ActivationStatus, 'running'>, result: unknown, logs: string[], annotations: object): boolean {
    return this.st.finishAct!.run(end, end - start, status, JSON.stringify(result ?? null), JSON.stringify(logs), JSON.stringify(annotations), id).changes > 0;
  }
  getActivation(id: ActivationId): ActivationRecord | undefined {
    const r = this.st.getAct!.get(id) as Row | undefined;
    return r && actFromRow(r);
  }
  listActivations(ns: NamespaceName, name: FunctionName | null, since: number, limit: number, skip: number, upto = Number.MAX_SAFE_INTEGER): ActivationRecord[] {
    return (this.st.listAct!.all(ns, name, name, since, upto, limit, skip) as Row[]).map(actFromRow);
  }

  // jobs: one JSON document each, kept by the daemon that coordinates the job

  putJob(j: { jobId: string; namespace: string; created: number; status: string }): void {
    this.st.putJob!.run(j.jobId, j.namespace, j.created, j.status, JSON.stringify(j));
  }
  getJob<T>(id: string): T | undefined {
    const r = this.st.getJob!.get(id) as Row | undefined;
    return r && (JSON.parse(r.doc as string) as T);
  }
  listJobs<T>(ns: NamespaceName, limit: number, skip: number): T[] {
    return (this.st.listJobs!.all(ns, limit, skip) as Row[]).map((r) => JSON.parse(r.doc as string) as T);
  }
  /** Jobs a previous run of this daemon left queued or running. */
  openJobs<T>(): T[] {
    return (this.st.openJobs!.all() as Row[]).map((r) => JSON.parse(r.doc as string) as T);
  }
  /** The latest activations of one namespace, or of all (null). */
  recentActivations(ns: NamespaceName | null, limit: number): ActivationRecord[] {
    return ((ns === null ? this.st.recentAll!.all(limit) : this.st.recentOfNs!.all(ns, limit)) as Row[]).map(actFromRow);
  }
  /** Recovery: whatever this host left running when it died will never finish. */
  failRunningActivations(host: HostId, now: number, reason: string): number {
    return Number(this.st.failRunning!.run(now, now, JSON.stringify({ error: reason }), host).changes);
  }
}

/** A record replicated from a daemon that predates limits.concurrency has none: one instance per container. */
const concurrencyOf = (l: Partial<FunctionLimits>) => (Number.isSafeInteger(l.concurrency) && l.concurrency! >= 1 ? l.concurrency! : 1);

function fnFromRow(r: Row): FunctionRecord {
  const f: Omit<FunctionRecord, 'meta'> = {
    namespace: r.namespace as NamespaceName,
    name: r.name as FunctionName,
    runtime: JSON.parse(r.runtime as string) as Runtime,
    digest: r.digest as Digest,
    binary: r.binary === 1,
    main: r.main as string,
    limits: { memoryMb: r.memory_mb as number, timeoutMs: r.timeout_ms as number, concurrency: r.concurrency as number },
    parameters: JSON.parse(r.parameters as string) as Record<string, unknown>,
    version: r.version as number,
    created: r.created as number,
    updated: r.updated as number,
  };
  return { ...f, meta: metaOf(JSON.parse((r.meta as string | undefined) ?? 'null'), f) };
}

function actFromRow(r: Row): ActivationRecord {
  return {
    activationId: r.id as ActivationId,
    namespace: r.namespace as NamespaceName,
    name: r.name as FunctionName,
    version: r.version as number,
    host: r.host as HostId,
    start: r.start as number,
    end: (r.end as number | null) ?? null,
    duration: (r.duration as number | null) ?? null,
    status: r.status as ActivationStatus,
    result: r.result == null ? null : JSON.parse(r.result as string),
    logs: JSON.parse(r.logs as string) as string[],
    annotations: JSON.parse(r.annotations as string) as ActivationRecord['annotations'],
  };
}
