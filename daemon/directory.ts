import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { chmodSync, linkSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type AddressMap, holder, InstanceClash, type Entry } from '../gossip/addrmap.ts';

// The daemon's side of the address map: the state machine plus everything a
// function sees of it. Each container has its own directory, mounted read-only
// at /peerless; once the container serves a namespace, that directory holds a
// hard link to the namespace's function-API socket and a copy of the
// namespace's map, replaced atomically (write, then rename) on every change.

export const MAP_FILE = 'addrmap.json';
/**
 * How long another host's older entry for a local instance's ID must last before the local instance
 * yields the ID. A partition's twin lasts until one of them ends; an instance that ended elsewhere just
 * before its ID was granted here can show up for a moment (its start and end arrive one after the other)
 * and must not stop anything.
 */
export const YIELD_AFTER_MS = 1000;
export const SOCKET_FILE = 'api.sock';
export const MESSAGE_PORT = 7700;

export interface Caller {
  namespace: string;
  activation: string;
  instance: string | null;
}

type Listener = (ns: string) => void;

/** Other daemons' entries, as the gossip layer knows them. */
export interface RemoteEntries {
  list(ns: string): Entry[];
  get(ns: string, id: string): Entry | undefined;
}

export class Directory {
  readonly map: AddressMap;
  private readonly attached = new Map<string, string>(); // slot dir → namespace
  /** slot dirs whose container is running activations now (how many: a shared container runs several): only these get every map change */
  private readonly active = new Map<string, number>();
  private readonly dirty = new Set<string>();
  private flushing: NodeJS.Immediate | null = null;
  private readonly listeners = new Set<Listener>();
  private readonly tokens = new Map<string, Caller>();
  private readonly socketOf: (ns: string) => string;
  private remote: RemoteEntries | null = null;
  private readonly remoteVersions = new Map<string, number>();
  /** local instances whose ID another host's older entry holds, by activation, until YIELD_AFTER_MS says */
  private readonly yielding = new Map<string, NodeJS.Timeout>();
  /** bytes sent per peer, by activation, as the SDKs report them: kept past the entry, for the activation's record */
  private readonly traffic = new Map<string, Record<string, number>>();
  /** `yield`: a local instance must give up its ID to an older holder elsewhere; the daemon stops it */
  readonly events = new EventEmitter<{ yield: [mine: Entry, holder: Entry] }>();

  constructor(map: AddressMap, socketOf: (ns: string) => string) {
    this.map = map;
    this.socketOf = socketOf;
  }

  // tokens: one per activation, handed to it in its environment, void when it ends

  issueToken(caller: Caller): string {
    const t = randomBytes(24).toString('base64url');
    this.tokens.set(t, caller);
    return t;
  }
  revokeToken(t: string): void {
    this.tokens.delete(t);
  }
  caller(token: string): Caller | undefined {
    return this.tokens.get(token);
  }

  // the map: this host's entries, plus other hosts' once a cluster is joined

  setRemote(r: RemoteEntries): void {
    this.remote = r;
  }

  /** The gossip layer learned of changes to other hosts' entries in these namespaces. */
  remoteChanged(namespaces: string[]): void {
    for (const ns of namespaces) {
      this.remoteVersions.set(ns, (this.remoteVersions.get(ns) ?? 0) + 1);
      this.changed(ns);
      for (const mine of this.map.list(ns)) if (this.heldElsewhere(mine)) this.yieldLater(mine);
    }
  }

  private heldElsewhere(mine: Entry): Entry | undefined {
    const theirs = this.remote?.get(mine.namespace, mine.instance);
    return theirs && holder(mine, theirs) === theirs ? theirs : undefined;
  }

  private yieldLater(mine: Entry): void {
    if (this.yielding.has(mine.activation)) return;
    const timer = setTimeout(() => {
      this.yielding.delete(mine.activation);
      const now = this.map.get(mine.namespace, mine.instance);
      const theirs = now?.activation === mine.activation ? this.heldElsewhere(now) : undefined;
      if (now && theirs) this.events.emit('yield', now, theirs);
    }, YIELD_AFTER_MS);
    timer.unref();
    this.yielding.set(mine.activation, timer);
  }

  /** The entry that holds this ID, here or on another host. */
  get(ns: string, id: string): Entry | undefined {
    const mine = this.map.get(ns, id);
    const theirs = this.remote?.get(ns, id);
    return mine && theirs ? holder(mine, theirs) : (mine ?? theirs);
  }

  reserve(entries: Omit<Entry, 'state' | 'ip' | 'status' | 'port' | 'since'>[]): Entry[] {
    // An ID alive on another host is taken too (as far as gossip has told us).
    for (const e of entries) if (this.remote?.get(e.namespace, e.instance)) throw new InstanceClash(e.instance);
    const now = Date.now();
    const out = this.map.reserve(entries.map((e) => ({ ...e, port: MESSAGE_PORT, since: now })));
    for (const e of new Set(entries.map((x) => x.namespace))) this.changed(e);
    return out;
  }
  update(ns: string, id: string, patch: Partial<Pick<Entry, 'ip' | 'port' | 'state' | 'status'>>): Entry | undefined {
    const e = this.map.update(ns, id, patch);
    if (e) this.changed(ns);
    return e;
  }

  /**
   * What an activation's SDK reports it sent each peer. Kept here, not in the address map: it changes every
   * second on every sending instance, and in the map each report would wake every instance's map stream and
   * go to every daemon. Other daemons learn it from the activation's record when it ends.
   */
  reportTraffic(activation: string, sent: Record<string, number>): void {
    this.traffic.set(activation, sent);
  }

  trafficOf(activation: string): Record<string, number> | undefined {
    return this.traffic.get(activation);
  }

  /** An activation's last traffic, forgotten once taken (when the activation ends). */
  takeTraffic(activation: string): Record<string, number> | undefined {
    const t = this.traffic.get(activation);
    this.traffic.delete(activation);
    return t;
  }
  remove(ns: string, id: string): void {
    if (this.map.remove(ns, id)) this.changed(ns);
  }

  onChange(l: Listener): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }

  /** Resolves with the entries once every ID is running, or with null at the deadline. */
  waitFor(ns: string, ids: string[], timeoutMs: number, signal?: AbortSignal): Promise<Entry[] | null> {
    const ready = () => {
      const es = ids.map((id) => this.get(ns, id));
      return es.every((e) => e?.state === 'running') ? (es as Entry[]) : null;
    };
    const now = ready();
    if (now || timeoutMs <= 0) return Promise.resolve(now);
    return new Promise((resolve) => {
      const done = (v: Entry[] | null) => {
        clearTimeout(timer);
        off();
        signal?.removeEventListener('abort', abort);
        resolve(v);
      };
      const abort = () => done(null);
      const off = this.onChange((changed) => {
        if (changed !== ns) return;
        const r = ready();
        if (r) done(r);
      });
      const timer = setTimeout(() => done(null), timeoutMs);
      signal?.addEventListener('abort', abort, { once: true });
    });
  }

  // what containers see

  /**
   * Makes a container's /peerless directory show this namespace, up to date, for the activation it is
   * about to run. Idle containers are left alone by later changes: they are brought up to date here.
   */
  attach(slotDir: string, ns: string): void {
    if (this.attached.get(slotDir) !== ns) {
      mkdirSync(slotDir, { recursive: true });
      rmSync(join(slotDir, SOCKET_FILE), { force: true });
      linkSync(this.socketOf(ns), join(slotDir, SOCKET_FILE));
      this.attached.set(slotDir, ns);
    }
    this.active.set(slotDir, (this.active.get(slotDir) ?? 0) + 1);
    this.writeMap(slotDir, ns, this.render(ns));
  }

  /** An activation of the container ended: once none runs there, it stops receiving map changes until it is attached again. */
  idle(slotDir: string): void {
    const n = (this.active.get(slotDir) ?? 0) - 1;
    if (n > 0) this.active.set(slotDir, n);
    else this.active.delete(slotDir);
  }

  detach(slotDir: string): void {
    this.attached.delete(slotDir);
    this.active.delete(slotDir);
  }

  view(ns: string): { version: number; instances: Entry[] } {
    const remote = this.remote?.list(ns) ?? [];
    const version = this.map.version(ns) + (this.remoteVersions.get(ns) ?? 0);
    if (remote.length === 0) return { version, instances: this.map.list(ns) };
    // One entry per ID, the one that holds it: every reader of the map names the same instance by it.
    const byId = new Map<string, Entry>();
    for (const e of [...this.map.list(ns), ...remote]) {
      const other = byId.get(e.instance);
      byId.set(e.instance, other ? holder(other, e) : e);
    }
    return { version, instances: [...byId.values()].sort((a, b) => (a.instance < b.instance ? -1 : 1)) };
  }

  private render(ns: string): string {
    return `${JSON.stringify({ namespace: ns, ...this.view(ns) })}\n`;
  }

  private writeMap(slotDir: string, ns: string, content: string): void {
    const tmp = join(slotDir, `.${MAP_FILE}.${randomBytes(4).toString('hex')}`);
    try {
      writeFileSync(tmp, content, { mode: 0o644 });
      chmodSync(tmp, 0o644);
      renameSync(tmp, join(slotDir, MAP_FILE));
    } catch {
      rmSync(tmp, { force: true }); // the container went away meanwhile
      if (this.attached.get(slotDir) === ns) this.detach(slotDir);
    }
  }

  private changed(ns: string): void {
    for (const l of this.listeners) l(ns);
    // Files are rewritten once per turn of the event loop, however many changes a group start makes.
    this.dirty.add(ns);
    this.flushing ??= setImmediate(() => {
      this.flushing = null;
      for (const n of [...this.dirty]) this.flush(n);
    });
  }

  /** Rewrites one container's map file now: before an instance's code runs, it must find itself there. */
  refresh(slotDir: string): void {
    const ns = this.attached.get(slotDir);
    if (ns !== undefined) this.writeMap(slotDir, ns, this.render(ns));
  }

  private flush(ns: string): void {
    if (!this.dirty.delete(ns)) return;
    const content = this.render(ns);
    for (const dir of this.active.keys()) if (this.attached.get(dir) === ns) this.writeMap(dir, ns, content);
  }
}
