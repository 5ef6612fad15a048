import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import type Docker from 'dockerode';
import type { Logger } from 'pino';
import { ActionContainer, type ContainerSpec } from './container.ts';
import { LABEL, MANAGED_BY } from './labels.ts';
import type { KeepAlive } from './keepAlive.ts';
import { decide, prewarmDeficit, usedMemory, type Demand, type Slot, type SlotState } from './poolPolicy.ts';

// The container pool: carries out poolPolicy's decisions on the engine, and
// runs the timers (pause after a grace, remove after idling) and the prewarm
// top-up. A container serves up to its function's concurrency of instances at
// once, each in a seat of its own (seat k listens for peers on port base + k);
// with concurrency 1 (the default) it serves one at a time.

export interface PrewarmSpec {
  image: string;
  memoryMb: number;
  count: number;
}

export interface PoolOptions {
  docker: Docker;
  hostId: string;
  controlNetwork: string;
  memoryBudgetMb: number;
  pauseGraceMs: number;
  /** how long an idle container is kept, for functions whose pattern keepAlive has not learned */
  idleTimeoutMs: number;
  /** learns per function how long its idle containers are worth keeping (see keepAlive.ts) */
  keepAlive?: KeepAlive;
  prewarm: PrewarmSpec[];
  logLimitBytes: number;
  /** each container gets a directory under here, mounted at /peerless */
  slotRoot: string;
  /** mounted in every container for the co-located fast path (see peers.ts) */
  peersRoot?: string;
  /** told when a container's directory goes away */
  onRemove?: (slotDir: string) => void;
  log: Logger;
  /** containers being created and started at once (default 8); the others wait their turn */
  startConcurrency?: number;
}

/** Overlay attaches that time out under load (Docker's, past about a hundred at once) are tried this often. */
const ATTACH_TRIES = 3;
const RETRY_MS = 500;

/**
 * Why creating a container failed, when the reason passes: the engine unreachable (its socket gone or
 * refusing during a restart), or the swarm's overlay attach timing out. Anything else is for the caller.
 */
export function passing(err: unknown): 'engine' | 'attach' | null {
  const e = err as { code?: string; message?: string };
  if (e.code === 'ENOENT' || e.code === 'ECONNREFUSED' || e.code === 'ECONNRESET' || e.code === 'EPIPE' || /socket hang up/.test(e.message ?? '')) return 'engine';
  if (/attach(ing)? to network|context deadline exceeded|invalid cluster node/i.test(e.message ?? '')) return 'attach';
  return null;
}

export interface Request extends Omit<Demand, 'runtimeKey' | 'seats'> {
  /** the function's concurrency: instances one container of it may hold at once */
  seats: number;
  image: string;
  namespaceNetwork: string;
  labels: Record<string, string>;
  /** memory set aside for this request's group (see reserve): it draws on that, not on what others may use */
  reservation?: Draw;
}

/** A member's claim on its group's reservation; `drawn` once the pool has counted it against it. */
export interface Draw {
  id: string;
  drawn: boolean;
}

export interface Lease {
  container: ActionContainer;
  slotId: string;
  slotDir: string;
  cold: boolean;
  prewarmed: boolean;
  /** this instance's seat in the container, from 0 to its concurrency - 1 */
  seat: number;
  /** other instances may share the container: a timeout or a stop ends this one alone, inside the proxy */
  shared: boolean;
  /** the container's one /init, run by whichever of its instances gets there first and awaited by the rest */
  init: { promise: Promise<unknown> | null };
}

interface Entry {
  slot: Slot;
  dir: string;
  /** its image: a function's container removed for its pre-warm window is made again of it */
  image: string;
  container: ActionContainer | null;
  /** settles when the container can take instances (created, unpaused, on its namespace's network) */
  ready: Promise<void> | null;
  seatsTaken: Set<number>;
  init: { promise: Promise<unknown> | null };
  pausing: Promise<void> | null;
  pauseTimer: NodeJS.Timeout | null;
  idleTimer: NodeJS.Timeout | null;
}

export class PoolClosedError extends Error {}

const runtimeKey = (image: string, memoryMb: number) => `${image}#${memoryMb}`;
/** Shorter pre-warm windows are not worth a container's removal and creation: it is kept through them. */
const MIN_PREWARM_MS = 60_000;
/** A function across its versions (`ns/name@`): a new version keeps the idle times learned of the old. */
const fnOf = (fnKey: string) => fnKey.slice(0, fnKey.lastIndexOf('@') + 1);

export class Pool {
  private readonly entries = new Map<string, Entry>();
  /** memory promised to admitted groups whose members have not taken their containers yet */
  private readonly reservations = new Map<string, { mb: number; timer: NodeJS.Timeout; members?: number }>();
  private nextReservation = 0;
  private waiters: (() => void)[] = [];
  private nextId = 0;
  private closed = false;
  /** the engine is unreachable: nothing can be created until it is back */
  private lost = false;
  private readonly o: PoolOptions;
  /** container starts under way, and those waiting for a turn (see create) */
  private starting = 0;
  /** pre-warms due for functions whose containers were removed for their pre-warm window */
  private readonly prewarmTimers = new Set<NodeJS.Timeout>();
  private startQueue: (() => void)[] = [];
  constructor(options: PoolOptions) {
    this.o = options;
  }

  /**
   * Creates and starts a container, a few at a time. Two hundred interpreters starting at once on two cores
   * each take minutes and miss their start deadline; in turns each starts in about a second, and the whole
   * group is up no later.
   */
  private async create(spec: ContainerSpec, signal?: AbortSignal): Promise<ActionContainer> {
    if (this.starting >= (this.o.startConcurrency ?? 8)) {
      await new Promise<void>((resolve, reject) => {
        const turn = () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        };
        const onAbort = () => {
          this.startQueue = this.startQueue.filter((t) => t !== turn);
          reject(signal!.reason);
        };
        signal?.addEventListener('abort', onAbort, { once: true });
        this.startQueue.push(turn);
      });
    } else this.starting++;
    try {
      return await ActionContainer.create(this.o.docker, spec, signal);
    } finally {
      // The turn passes to the next in line, or back to the pool.
      const next = this.startQueue.shift();
      if (next) next();
      else this.starting--;
    }
  }

  private slots(): Slot[] {
    return [...this.entries.values()].map((e) => e.slot);
  }

  /** Memory not held by running (or starting) activations nor promised to a group: idle containers can be evicted for it. */
  freeMb(): number {
    let held = this.reservedMb();
    for (const e of this.entries.values()) if (e.slot.state === 'busy' || e.slot.state === 'starting') held += e.slot.memoryMb;
    return this.o.memoryBudgetMb - held;
  }

  private reservedMb(): number {
    let mb = 0;
    for (const r of this.reservations.values()) mb += r.mb;
    return mb;
  }

  /**
   * Sets memory aside for a group's members on this host (gang admission), or null when it is not free.
   * Members draw on it as they take containers; what is left when ttlMs passes is given back, so a
   * reservation whose group never starts (its coordinator died) does not hold the host for ever.
   */
  reserve(mb: number, ttlMs: number): string | null {
    if (this.closed || this.lost || mb > this.freeMb()) return null;
    const id = `r${this.nextReservation++}`;
    const timer = setTimeout(() => this.unreserve(id), ttlMs);
    timer.unref();
    this.reservations.set(id, { mb, timer });
    return id;
  }

  unreserve(id: string): void {
    const r = this.reservations.get(id);
    if (!r) return;
    clearTimeout(r.timer);
    this.reservations.delete(id);
    this.wake();
  }

  /** The reservation's group has this many members here: once each has drawn on it, what is left goes back. */
  expect(id: string, members: number): void {
    const r = this.reservations.get(id);
    if (r) r.members = members;
  }

  /** The budget a request may plan within: all of it but what is promised to others. */
  private budgetFor(reservation?: Draw): number {
    return this.o.memoryBudgetMb - this.reservedMb() + (reservation ? (this.reservations.get(reservation.id)?.mb ?? 0) : 0);
  }

  /**
   * Counts a member's memory against its reservation: when it takes its container (nothing when it shares
   * one), or when it ended without one (stopped, failed before), so the rest of the reservation is not held
   * until it expires.
   */
  draw(d: Draw | undefined, mb: number): void {
    if (!d || d.drawn) return;
    d.drawn = true;
    const r = this.reservations.get(d.id);
    if (!r) return;
    r.mb -= mb;
    if (r.members !== undefined) r.members--;
    if (r.mb <= 0 || r.members === 0) this.unreserve(d.id);
  }

  /** Could this host serve the request now, warm or by creating a container, without waiting? */
  hasRoom(fnKey: string, image: string, memoryMb: number, seats = 1): boolean {
    return decide(this.slots(), { fnKey, runtimeKey: runtimeKey(image, memoryMb), memoryMb, seats }, this.budgetFor()).kind !== 'wait';
  }

  stats(): Record<SlotState, number> {
    const out: Record<SlotState, number> = { starting: 0, prewarm: 0, idle: 0, paused: 0, busy: 0, removing: 0 };
    for (const e of this.entries.values()) out[e.slot.state]++;
    return out;
  }

  private wake(): void {
    const ws = this.waiters;
    this.waiters = [];
    for (const w of ws) w();
  }

  private clearTimers(e: Entry): void {
    if (e.pauseTimer) clearTimeout(e.pauseTimer);
    if (e.idleTimer) clearTimeout(e.idleTimer);
    e.pauseTimer = e.idleTimer = null;
  }

  private spec(e: Entry, image: string, memoryMb: number, network: string | null, labels: Record<string, string>): ContainerSpec {
    mkdirSync(e.dir, { recursive: true, mode: 0o755 });
    return {
      slotDir: e.dir,
      image,
      memoryMb,
      hostId: this.o.hostId,
      controlNetwork: this.o.controlNetwork,
      namespaceNetwork: network,
      labels,
      logLimitBytes: this.o.logLimitBytes,
      ...(this.o.peersRoot ? { peersRoot: this.o.peersRoot } : {}),
    };
  }

  /** The lowest free seat of a container, taken. */
  private takeSeat(e: Entry, seats: number): number {
    e.slot.seats = seats;
    e.slot.used++;
    let k = 0;
    while (e.seatsTaken.has(k)) k++;
    e.seatsTaken.add(k);
    return k;
  }

  private lease(e: Entry, seat: number, cold: boolean, prewarmed: boolean): Lease {
    return { container: e.container!, slotId: e.slot.id, slotDir: e.dir, cold, prewarmed, seat, shared: e.slot.seats > 1, init: e.init };
  }

  private add(fnKey: string | null, image: string, memoryMb: number): Entry {
    const id = `s${this.nextId++}`;
    const rk = runtimeKey(image, memoryMb);
    const e: Entry = {
      image,
      dir: join(this.o.slotRoot, `${process.pid}-${id}`),
      slot: { id, fnKey, runtimeKey: rk, memoryMb, state: 'starting', lastUsed: Date.now(), seats: 1, used: 0 },
      container: null,
      ready: null,
      seatsTaken: new Set(),
      init: { promise: null },
      pausing: null,
      pauseTimer: null,
      idleTimer: null,
    };
    this.entries.set(id, e);
    return e;
  }

  private async drop(e: Entry): Promise<void> {
    this.clearTimers(e);
    e.slot.state = 'removing';
    await e.pausing?.catch(() => undefined);
    await e.container?.remove();
    rmSync(e.dir, { recursive: true, force: true });
    this.o.onRemove?.(e.dir);
    this.entries.delete(e.slot.id);
    this.wake();
  }

  async acquire(req: Request, signal: AbortSignal): Promise<Lease> {
    this.o.keepAlive?.arrived(fnOf(req.fnKey), Date.now());
    let attachTries = 0;
    for (;;) {
      if (this.closed) throw new PoolClosedError('the pool is shutting down');
      signal.throwIfAborted();
      if (this.lost) {
        await this.nextWake(signal);
        continue;
      }
      const d = decide(this.slots(), { fnKey: req.fnKey, runtimeKey: runtimeKey(req.image, req.memoryMb), memoryMb: req.memoryMb, seats: req.seats }, this.budgetFor(req.reservation));
      if (d.kind !== 'wait') this.draw(req.reservation, d.kind === 'share' ? 0 : req.memoryMb);
      if (d.kind === 'share') {
        const e = this.entries.get(d.id)!;
        const cold = e.ready !== null;
        const seat = this.takeSeat(e, req.seats);
        try {
          await e.ready;
        } catch {
          // The container did not come up: whoever made it has dropped it; this instance looks again.
          continue;
        }
        if (e.slot.state === 'removing' || !e.container) continue;
        return this.lease(e, seat, cold, false);
      }
      if (d.kind === 'warm' || d.kind === 'prewarmed') {
        const e = this.entries.get(d.id)!;
        const wasPaused = e.slot.state === 'paused';
        this.clearTimers(e);
        e.slot.state = 'busy';
        e.slot.fnKey = req.fnKey;
        const seat = this.takeSeat(e, req.seats);
        // Instances that share it meanwhile wait for it to be unpaused and on its namespace's network.
        const ready = (async () => {
          if (wasPaused) {
            await e.pausing;
            await e.container!.unpause();
          }
          if (d.kind === 'prewarmed') {
            await e.container!.joinNetwork(req.namespaceNetwork);
            void this.topUp();
          }
        })();
        e.ready = ready;
        try {
          await ready;
          e.ready = null;
          return this.lease(e, seat, d.kind === 'prewarmed', d.kind === 'prewarmed');
        } catch (err) {
          this.o.log.warn({ err, container: e.container?.id }, 'pooled container unusable, removing it');
          await this.drop(e);
          continue;
        }
      }
      if (d.kind === 'create') {
        for (const id of d.evict) {
          const v = this.entries.get(id);
          if (v) void this.drop(v);
        }
        const e = this.add(req.fnKey, req.image, req.memoryMb);
        const seat = this.takeSeat(e, req.seats);
        const created = this.create(this.spec(e, req.image, req.memoryMb, req.namespaceNetwork, req.labels), signal);
        e.ready = created.then(() => undefined);
        e.ready.catch(() => undefined); // those sharing it hear of a failure; this one throws it below
        try {
          e.container = await created;
        } catch (err) {
          this.entries.delete(e.slot.id);
          rmSync(e.dir, { recursive: true, force: true });
          this.wake();
          // The engine going away (a restart) or an overlay attach that timed out is passing: the request
          // waits and tries again, within its own wait limit, instead of failing the activation.
          const why = signal.aborted || this.closed ? null : passing(err);
          if (why === 'engine' || (why === 'attach' && ++attachTries <= ATTACH_TRIES)) {
            this.o.log.warn({ err: (err as Error).message, why }, 'creating a container failed for a passing reason: trying again');
            await delay(RETRY_MS, undefined, { signal });
            continue;
          }
          throw err;
        }
        e.ready = null;
        e.slot.state = 'busy';
        if (this.closed) {
          await this.drop(e);
          throw new PoolClosedError('the pool is shutting down');
        }
        return this.lease(e, seat, true, false);
      }
      await this.nextWake(signal);
    }
  }

  private nextWake(signal: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const onAbort = () => reject(signal.reason);
      signal.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(() => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      });
    });
  }

  /** A container died behind our back. One serving an activation is left to it: it sees the broken connection. */
  containerDied(containerId: string): void {
    for (const e of this.entries.values()) {
      if (e.container?.id !== containerId) continue;
      if (e.slot.state === 'idle' || e.slot.state === 'paused' || e.slot.state === 'prewarm') {
        this.o.log.warn({ container: containerId }, 'an idle container died outside the platform; dropping it');
        void this.drop(e);
      }
    }
  }

  /** The engine went away: its containers are gone or will be killed when it restarts. */
  engineLost(): void {
    this.lost = true;
    for (const e of [...this.entries.values()]) if (e.slot.state !== 'busy' && e.slot.state !== 'starting') void this.drop(e);
  }

  /** The engine is back: remove what it restored of ours that we no longer track, then serve again. */
  async engineBack(): Promise<void> {
    const known = new Set([...this.entries.values()].map((e) => e.container?.id).filter((id) => id !== undefined));
    const removed = await removeLeftovers(this.o.docker, this.o.hostId, known);
    if (removed > 0) this.o.log.info({ removed }, 'removed containers the engine kept from before it restarted');
    this.lost = false;
    this.wake();
    void this.topUp();
  }

  /** Gives the lease's seat back; true when no instance is left in the container. */
  private leave(e: Entry, lease: Lease): boolean {
    if (e.seatsTaken.delete(lease.seat)) e.slot.used--;
    this.wake();
    return e.slot.used === 0;
  }

  /** Back to the pool after a clean run; a container in doubt must go through destroy instead. */
  release(lease: Lease): void {
    const e = this.entries.get(lease.slotId);
    if (!e || !this.leave(e, lease)) return;
    if (this.closed || e.slot.seats === 0) {
      void this.drop(e);
      return;
    }
    e.slot.state = 'idle';
    e.slot.lastUsed = Date.now();
    // Kept as long as the function's own idle times say is worth it (the fixed window until they are known).
    const fn = e.slot.fnKey === null ? null : fnOf(e.slot.fnKey);
    if (fn !== null) this.o.keepAlive?.ended(fn, e.slot.lastUsed);
    const w = fn === null ? undefined : this.o.keepAlive?.windows(fn);
    if (w?.learned && w.prewarmMs >= MIN_PREWARM_MS) {
      // Its next call is not due for a while: the container goes now, and one of its runtime is ready (created,
      // not yet the function's) when the call is due, kept as long as the function's idle times say.
      void this.drop(e);
      const t = setTimeout(() => {
        this.prewarmTimers.delete(t);
        void this.prewarmOne(e.image, e.slot.memoryMb, w.keepAliveMs);
      }, w.prewarmMs);
      t.unref();
      this.prewarmTimers.add(t);
      return;
    }
    const keepMs = w?.learned ? w.prewarmMs + w.keepAliveMs : this.o.idleTimeoutMs;
    e.pauseTimer = setTimeout(() => {
      if (e.slot.state !== 'idle') return;
      e.slot.state = 'paused';
      e.pausing = e.container!.pause().catch((err) => {
        this.o.log.warn({ err, container: e.container!.id }, 'pause failed, removing container');
        void this.drop(e);
      });
    }, this.o.pauseGraceMs);
    e.idleTimer = setTimeout(() => {
      if (e.slot.state === 'idle' || e.slot.state === 'paused') void this.drop(e);
    }, keepMs);
    e.pauseTimer.unref();
    e.idleTimer.unref();
    this.wake();
  }

  /**
   * The container is in doubt (it crashed, or an instance of its own could not be ended inside it): it takes
   * no one new, and goes once the last instance in it has ended, so each of them reports its own outcome.
   */
  async destroy(lease: Lease): Promise<void> {
    const e = this.entries.get(lease.slotId);
    if (!e) return;
    e.slot.seats = 0;
    if (this.leave(e, lease)) await this.drop(e);
  }

  /** A function changed or went away: its unused containers hold old code. */
  /** A function was deleted: what the keep-alive policy learned of it goes too (an update keeps it). */
  forget(fnKeyPrefix: string): void {
    this.o.keepAlive?.forget(fnKeyPrefix);
  }

  async retire(fnKeyPrefix: string): Promise<void> {
    const old = [...this.entries.values()].filter((e) => e.slot.fnKey?.startsWith(fnKeyPrefix) && (e.slot.state === 'idle' || e.slot.state === 'paused'));
    await Promise.all(old.map((e) => this.drop(e)));
  }

  /** Keeps the configured number of prewarmed containers per runtime, within the memory budget. */
  async topUp(): Promise<void> {
    if (this.lost || this.closed) return;
    const jobs: Promise<void>[] = [];
    for (const p of this.o.prewarm) {
      const n = prewarmDeficit(this.slots(), runtimeKey(p.image, p.memoryMb), p.memoryMb, p.count, this.budgetFor());
      for (let i = 0; i < n; i++) jobs.push(this.prewarmOne(p.image, p.memoryMb));
    }
    await Promise.all(jobs);
  }

  /** One prewarmed container of a runtime; with keepMs, removed if nobody took it by then. */
  private async prewarmOne(image: string, memoryMb: number, keepMs?: number): Promise<void> {
    if (this.lost || this.closed || memoryMb > this.budgetFor() - usedMemory(this.slots())) return;
    const e = this.add(null, image, memoryMb);
    try {
      e.container = await this.create(this.spec(e, image, memoryMb, null, { [LABEL.role]: 'prewarm' }));
    } catch (err) {
      this.o.log.warn({ err, image }, 'prewarm failed');
      this.entries.delete(e.slot.id);
      rmSync(e.dir, { recursive: true, force: true });
      this.wake();
      return;
    }
    if (this.closed) return this.drop(e);
    e.slot.state = 'prewarm';
    if (keepMs !== undefined) {
      e.idleTimer = setTimeout(() => e.slot.state === 'prewarm' && void this.drop(e), keepMs);
      e.idleTimer.unref();
    }
    this.wake();
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const t of this.prewarmTimers) clearTimeout(t);
    this.prewarmTimers.clear();
    for (const id of [...this.reservations.keys()]) this.unreserve(id);
    this.wake();
    await Promise.all([...this.entries.values()].filter((e) => e.slot.state !== 'busy').map((e) => this.drop(e)));
    // A container the engine made though its answer was lost (a create cut off by an engine restart) is
    // ours but tracked by nothing: it goes too, so a stopped daemon leaves nothing running.
    const busy = new Set([...this.entries.values()].map((e) => e.container?.id).filter((id) => id !== undefined));
    const removed = await removeLeftovers(this.o.docker, this.o.hostId, busy).catch(() => 0);
    if (removed > 0) this.o.log.warn({ removed }, 'removed containers of ours that nothing tracked');
  }

  /** Busy containers are removed by their activations as they finish; this waits for that. */
  async drained(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.entries.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  }
}

/** Recovery: a daemon that starts removes every container a previous run of it left on this engine (but those in `keep`). */
export async function removeLeftovers(docker: Docker, hostId: string, keep: ReadonlySet<string> = new Set()): Promise<number> {
  const list = (
    await docker.listContainers({
      all: true,
      filters: { label: [`${LABEL.managedBy}=${MANAGED_BY}`, `${LABEL.host}=${hostId}`] },
    })
  ).filter((c) => !keep.has(c.Id));
  await Promise.all(
    list.map((c) =>
      docker
        .getContainer(c.Id)
        .remove({ force: true })
        .catch(() => undefined),
    ),
  );
  return list.length;
}
