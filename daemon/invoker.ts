import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import type { ActionContainer, ProxyResponse } from '../sandbox/container.ts';
import { LABEL } from '../sandbox/labels.ts';
import type { PeerSockets } from '../sandbox/peers.ts';
import { passing, type Draw, type Lease, type Pool } from '../sandbox/pool.ts';
import type { BlobStore } from './blobs.ts';
import type { Entry } from '../gossip/addrmap.ts';
import type { Limits } from './config.ts';
import { MESSAGE_PORT, type Directory } from './directory.ts';
import type { Metrics } from './metrics.ts';
import { isStorageFull } from './errors.ts';
import { newActivationId, type ActivationId, type HostId } from './ids.ts';
import type { Store } from './store.ts';
import type { ActivationAnnotations, ActivationRecord, ActivationStatus, FunctionRecord } from './types.ts';

// One activation, start to end: record it, get a container from the pool,
// /init it if cold, /run it under the time limit, classify the answer the way
// OpenWhisk does, collect its logs, and write the outcome. Every path ends in
// finishActivation: nothing is left "running".

export interface InvokerDeps {
  store: Store;
  blobs: BlobStore;
  pool: Pool;
  hostId: HostId;
  limits: Limits;
  log: Logger;
  /** image tag for each built-in runtime */
  images: { nodejs: string; python: string };
  /** the namespace's network, created on demand */
  namespaceNetwork: (ns: string) => Promise<string>;
  directory: Directory;
  /** starts the namespace's function-API socket if needed */
  ensureSocket: (ns: string) => Promise<string>;
  metrics: Metrics;
  /** the co-located fast path's directory: named instances of a namespace on this host reach each other there */
  peers: PeerSockets;
}

export interface StartOptions {
  /** an entry already reserved in the address map for this activation */
  instance?: Entry;
  /** an ID chosen by the daemon that placed this invocation */
  activationId?: ActivationId;
  /** memory the pool set aside for this activation's group (gang admission) */
  reservation?: string;
  /** the sequence activation this one is a component of */
  cause?: ActivationId;
}

type Outcome = { status: Exclude<ActivationStatus, 'running'>; result: unknown; logs: string[] };

const LOG_WAIT_MS = 2_000;
/** OpenWhisk's proxies' words for a result that is neither a dictionary nor an array. */
const NOT_A_DICTIONARY = 'The action did not return a dictionary or array.';
/** What a shared container's proxy answers for an instance that crashed, exited or ran out of memory on its own. */
const INSTANCE_FAILED = 503;

export const fnKeyPrefix = (f: Pick<FunctionRecord, 'namespace' | 'name'>) => `${f.namespace}/${f.name}@`;
export const fnKeyOf = (f: FunctionRecord) => `${fnKeyPrefix(f)}${f.version}`;

const developerError = (error: string, logs: string[] = []): Outcome => ({ status: 'action developer error', result: { error }, logs });
const internalError = (error: string, logs: string[] = []): Outcome => ({ status: 'whisk internal error', result: { error }, logs });

class Timeout extends Error {}
/** the daemon stopped the activation (see Invoker.stop); the message says why */
class Stopped extends Error {}

export class Invoker {
  private readonly inFlight = new Set<Promise<unknown>>();
  private readonly unsaved = new Map<ActivationId, () => void>();
  /** running activations the daemon may stop before they end */
  private readonly stoppers = new Map<ActivationId, AbortController>();
  private retrying: NodeJS.Timeout | null = null;
  /** 'ended' with the activation's ID once its outcome is known (jobs it spawned may then be cancelled) */
  readonly events = new EventEmitter<{ ended: [ActivationId] }>();
  private readonly d: InvokerDeps;
  constructor(deps: InvokerDeps) {
    this.d = deps;
  }

  get running(): number {
    return this.inFlight.size;
  }

  /** Records the activation, then runs it in the background. */
  start(fn: FunctionRecord, params: Record<string, unknown>, opts: StartOptions = {}): { activationId: ActivationId; done: Promise<ActivationRecord> } {
    const activationId = (opts.instance?.activation as ActivationId | undefined) ?? opts.activationId ?? newActivationId();
    const start = Date.now();
    const annotations: Partial<ActivationAnnotations> = {
      kind: fn.runtime.kind === 'image' ? `image:${fn.runtime.image}` : fn.runtime.kind,
      limits: { memory: fn.limits.memoryMb, timeout: fn.limits.timeoutMs },
      path: `${fn.namespace}/${fn.name}`,
      ...(opts.instance ? { instance: opts.instance.instance } : {}),
      ...(opts.cause ? { causedBy: 'sequence' as const, cause: opts.cause } : {}),
    };
    this.d.store.startActivation({ activationId, namespace: fn.namespace, name: fn.name, version: fn.version, host: this.d.hostId, start, annotations });
    const done = this.execute(fn, params, activationId, start, annotations, opts.instance?.instance ?? null, opts.reservation)
      .catch((err: unknown): Outcome => {
        this.d.log.error({ err, activationId }, 'activation failed inside the platform');
        return internalError('The platform failed to run the action.');
      })
      .then((o) => {
        if (opts.instance) {
          const traffic = this.d.directory.takeTraffic(activationId);
          if (traffic) annotations.traffic = traffic;
          this.d.directory.remove(fn.namespace, opts.instance.instance);
          this.d.peers.release(fn.namespace, opts.instance.instance);
        }
        const end = Date.now();
        const record = () => this.d.store.finishActivation(activationId, end, start, o.status, o.result, o.logs, annotations);
        this.d.metrics.activation(o.status, annotations.coldStart ?? true, end - start);
        queueMicrotask(() => this.events.emit('ended', activationId));
        if (this.save(activationId, record)) return this.d.store.getActivation(activationId)!;
        // Not on disk yet (the disk is full): the caller still gets the outcome, and the retry writes it later.
        return { ...this.d.store.getActivation(activationId)!, end, duration: end - start, status: o.status, result: o.result, logs: o.logs, annotations: annotations as ActivationAnnotations };
      });
    this.inFlight.add(done);
    void done.finally(() => this.inFlight.delete(done));
    return { activationId, done };
  }

  /**
   * Ends a running activation from outside: its container is destroyed and it fails as a platform error
   * that says why. False when it is not running here (any more).
   */
  stop(id: ActivationId, why: string): boolean {
    const s = this.stoppers.get(id);
    s?.abort(new Stopped(why));
    return s !== undefined;
  }

  /**
   * Writes an activation's outcome. With the data disk full it keeps the write and retries every second,
   * so the record ends finished once there is room, instead of staying "running" for ever.
   */
  private save(id: ActivationId, write: () => void): boolean {
    try {
      write();
      return true;
    } catch (err) {
      if (!isStorageFull(err)) throw err;
      this.d.log.error({ err, activationId: id }, 'data disk full: the outcome is kept in memory and written when there is room');
      this.unsaved.set(id, write);
      this.retrying ??= setInterval(() => this.retryUnsaved(), 1000);
      this.retrying.unref();
      return false;
    }
  }

  private retryUnsaved(): void {
    for (const [id, write] of this.unsaved) {
      try {
        write();
        this.unsaved.delete(id);
      } catch (err) {
        if (!isStorageFull(err)) this.unsaved.delete(id);
        break;
      }
    }
    if (this.unsaved.size === 0 && this.retrying) {
      clearInterval(this.retrying);
      this.retrying = null;
      this.d.log.info('data disk has room again: every kept outcome is written');
    }
  }

  /** Outcomes not yet on disk. */
  get unsavedCount(): number {
    return this.unsaved.size;
  }

  async drain(timeoutMs: number): Promise<boolean> {
    const all = Promise.allSettled([...this.inFlight]);
    const t = new Promise<'late'>((r) => setTimeout(() => r('late'), timeoutMs).unref());
    const drained = (await Promise.race([all, t])) !== 'late';
    // Last chance for outcomes kept in memory; what still does not fit is failed at the next start.
    if (this.unsaved.size > 0) this.retryUnsaved();
    return drained;
  }

  /** How many members will draw on a reservation of this host's pool. */
  expect(reservation: string, members: number): void {
    this.d.pool.expect(reservation, members);
  }

  image(fn: FunctionRecord): string {
    // A sequence never reaches the invoker: the invocation service runs its components instead.
    if (fn.runtime.kind === 'sequence') throw new Error(`${fn.name} is a sequence: it runs no container of its own`);
    return fn.runtime.kind === 'image' ? fn.runtime.image : this.d.images[fn.runtime.kind];
  }

  private async execute(
    fn: FunctionRecord,
    params: Record<string, unknown>,
    id: ActivationId,
    start: number,
    ann: Partial<ActivationAnnotations>,
    instance: string | null,
    reservation: string | undefined,
  ): Promise<Outcome> {
    const stopper = new AbortController();
    this.stoppers.set(id, stopper);
    try {
      return await this.executeStoppable(fn, params, id, start, ann, instance, reservation, stopper.signal);
    } finally {
      this.stoppers.delete(id);
    }
  }

  private async executeStoppable(
    fn: FunctionRecord,
    params: Record<string, unknown>,
    id: ActivationId,
    start: number,
    ann: Partial<ActivationAnnotations>,
    instance: string | null,
    reservation: string | undefined,
    stop: AbortSignal,
  ): Promise<Outcome> {
    const stopped = (logs: string[] = []) => internalError((stop.reason as Stopped).message, logs);
    const draw: Draw | undefined = reservation ? { id: reservation, drawn: false } : undefined;
    // Waiting for a container is bounded too: past the function's own time limit the caller gets an error, not a
    // hang. A member of an admitted group has its memory already: it only waits for the engine to create it,
    // which a hundred containers at once on one engine make slow, so it is given longer.
    const waitMs = Math.max(fn.limits.timeoutMs, draw ? 300_000 : 30_000);
    const waitTimeout = AbortSignal.timeout(waitMs);
    const waitLimit = AbortSignal.any([waitTimeout, stop]);
    let lease: Lease;
    try {
      const [network] = await Promise.all([this.d.namespaceNetwork(fn.namespace), this.d.ensureSocket(fn.namespace)]);
      lease = await this.d.pool.acquire(
        {
          fnKey: fnKeyOf(fn),
          memoryMb: fn.limits.memoryMb,
          seats: fn.limits.concurrency,
          image: this.image(fn),
          namespaceNetwork: network,
          labels: { [LABEL.namespace]: fn.namespace, [LABEL.function]: fn.name, [LABEL.activation]: id },
          ...(draw ? { reservation: draw } : {}),
        },
        waitLimit,
      );
    } catch (err) {
      this.d.pool.draw(draw, fn.limits.memoryMb); // ended without a container: its share of the reservation goes back
      if (stop.aborted) return stopped();
      // The engine did not give a container in time (overloaded, or the host full): the platform's failure, said as such.
      if (waitTimeout.aborted) return internalError(`No container for the action could be started on host ${this.d.hostId} within ${Math.round(waitMs / 1000)} s.`);
      if (passing(err) === 'engine') return internalError(`The Docker engine on host ${this.d.hostId} could not be reached: ${(err as Error).message}`);
      // A user image this engine does not have is the function's fault, not the platform's.
      if ((err as { statusCode?: number }).statusCode === 404 && fn.runtime.kind === 'image') return developerError(`The image ${fn.runtime.image} does not exist on host ${this.d.hostId}.`);
      throw err;
    }
    ann.coldStart = lease.cold;
    if (lease.prewarmed) ann.prewarmed = true;
    ann.waitTime = Date.now() - start;
    const c = lease.container;
    // In a shared container an instance's logs are the lines the proxy tagged with its activation ID.
    const logsOf = (waitMs: number) => c.logs.take(waitMs, lease.shared ? id : undefined);
    let healthy = false;
    const token = this.d.directory.issueToken({ namespace: fn.namespace, activation: id, instance });
    try {
      this.d.directory.attach(lease.slotDir, fn.namespace);
      // The container's code is loaded once, by the first of its instances; the others wait for that.
      if (lease.init.promise === null) {
        const t0 = Date.now();
        const code = this.d.blobs.get(fn.digest).toString(fn.binary ? 'base64' : 'utf8');
        // Parameters marked init go to /init as the code's environment, and not to /run (OpenWhisk's rule).
        const env = Object.fromEntries(fn.meta.init.filter((k) => k in fn.parameters).map((k) => [k, fn.parameters[k]]));
        lease.init.promise = this.call(
          c,
          '/init',
          { value: { name: fn.name, main: fn.main, code, binary: fn.binary, concurrency: fn.limits.concurrency, env } },
          fn.limits.timeoutMs,
          lease.shared ? AbortSignal.any([]) : stop,
        );
        await lease.init.promise;
        ann.initTime = Date.now() - t0;
      }
      const init = (await lease.init.promise) as Awaited<ReturnType<Invoker['call']>>;
      if (init instanceof Stopped) return stopped(await c.logs.take(0));
      if (init instanceof Timeout) return developerError(`The action exceeded its time limits of ${fn.limits.timeoutMs} milliseconds during initialization.`, await c.logs.take(0));
      if ('failure' in init) return this.crashed(c, init.failure, lease.shared, logsOf);
      if (init.status !== 200) {
        const why = errorField(init.body) ?? 'The action failed to initialize.';
        return developerError(String(why), await c.logs.take(lease.shared ? 0 : LOG_WAIT_MS));
      }
      const deadline = Date.now() + fn.limits.timeoutMs;
      const port = MESSAGE_PORT + lease.seat;
      // In the map from just before user code runs: a peer that looks it up now can reach it.
      if (instance) {
        this.d.directory.update(fn.namespace, instance, { ip: c.nsIp, port, state: 'running' });
        // Its own file now; the other running instances' files follow on the next tick, in one batch.
        this.d.directory.refresh(lease.slotDir);
      }
      const run = await this.call(
        c,
        '/run',
        {
          value: params,
          namespace: fn.namespace,
          action_name: `/${fn.namespace}/${fn.name}`,
          activation_id: id,
          deadline: String(deadline),
          // The proxy puts these in the environment as __OW_PEERLESS_*; the SDKs read them.
          peerless_token: token,
          peerless_instance: instance ?? '',
          peerless_ip: c.nsIp ?? '',
          peerless_port: String(port),
          // A peer's frame longer than the function's memory could never be held: the SDK refuses it.
          peerless_max_frame: String(fn.limits.memoryMb * 1024 * 1024),
          // Peers on this host are dialled over a Unix socket in the namespace's own directory (sandbox/peers.ts).
          peerless_host: this.d.hostId,
          peerless_peers: this.d.peers.secretOf(fn.namespace),
        },
        fn.limits.timeoutMs,
        stop,
      );
      // ...and out of it as soon as it has returned, crashed or timed out.
      if (instance) {
        this.d.directory.remove(fn.namespace, instance);
        this.d.peers.release(fn.namespace, instance);
      }
      // Alone in its container, an instance that overran or was stopped takes the container with it. Sharing
      // one, it was ended inside it by the proxy when this call gave up: the others run on.
      if (run instanceof Stopped || run instanceof Timeout) {
        healthy = lease.shared;
        const logs = await logsOf(lease.shared ? LOG_WAIT_MS : 0);
        return run instanceof Stopped ? stopped(logs) : developerError(`The action exceeded its time limits of ${fn.limits.timeoutMs} milliseconds.`, logs);
      }
      if ('failure' in run) return this.crashed(c, run.failure, lease.shared, logsOf);
      const out = this.classify(run);
      out.logs = await logsOf(LOG_WAIT_MS);
      healthy = true;
      return out;
    } finally {
      this.d.directory.revokeToken(token);
      this.d.directory.idle(lease.slotDir);
      if (healthy) this.d.pool.release(lease);
      else await this.d.pool.destroy(lease);
    }
  }

  private async call(c: ActionContainer, path: '/init' | '/run', body: unknown, timeoutMs: number, stop: AbortSignal): Promise<ProxyResponse | Timeout | Stopped | { failure: Error }> {
    const timeout = AbortSignal.timeout(timeoutMs);
    try {
      return await c.post(path, body, this.d.limits.payloadBytes, AbortSignal.any([timeout, stop]));
    } catch (e) {
      if (stop.aborted) return stop.reason as Stopped;
      if (timeout.aborted) return new Timeout();
      return { failure: e as Error };
    }
  }

  /**
   * The proxy's connection broke: find out who ended it. The kernel's OOM killer or the code itself is
   * the function's fault; a kill from outside the container (an operator, an engine restart) is not.
   */
  private async crashed(c: ActionContainer, failure: Error, shared: boolean, logsOf: (waitMs: number) => Promise<string[]>): Promise<Outcome> {
    let st = await c.state();
    for (let i = 0; i < 20 && st.running; i++) {
      await new Promise((r) => setTimeout(r, 25));
      st = await c.state();
    }
    const logs = await logsOf(200);
    const heap = logs.some((l) => l.includes('heap out of memory') || l.includes('MemoryError'));
    this.d.log.info({ err: failure.message, state: st }, 'action container failed');
    // Sharing a container, an instance the runtime could not isolate takes every instance in it along.
    const all = shared ? ' Every instance of the function in its container ended with it: they share its memory and its process.' : '';
    if (!st.engine) return internalError('The Docker engine became unavailable while the action was running.', logs);
    if (st.oomKilled || heap) return developerError(`The action exhausted its memory and was aborted.${all}`, logs);
    if (st.exitCode === -1 || st.exitCode === 137 || st.exitCode === 143)
      return internalError(`The action's container was stopped from outside the action${st.exitCode > 0 ? ` (exit code ${st.exitCode})` : ' (removed)'}.`, logs);
    return developerError(`The action did not produce a valid response and exited unexpectedly.${all}`, logs);
  }

  private classify(r: ProxyResponse): Outcome {
    if (r.truncated) {
      return developerError(`The action produced a response that exceeded the allowed length: more than ${this.d.limits.payloadBytes} bytes.`);
    }
    let body: unknown;
    try {
      body = JSON.parse(r.body.toString('utf8'));
    } catch {
      return developerError('The action did not produce a valid JSON response.');
    }
    const isObject = body !== null && typeof body === 'object' && !Array.isArray(body);
    const error = isObject ? (body as { error?: unknown }).error : undefined;
    // A shared container's proxy ended one instance that crashed or ran out of memory, and says so.
    if (r.status === INSTANCE_FAILED && typeof error === 'string') return developerError(error);
    // Arrays are results too, as in OpenWhisk since apache/openwhisk#5290.
    if (r.status === 200) return isObject || Array.isArray(body) ? { status: 'success', result: body, logs: [] } : developerError(NOT_A_DICTIONARY);
    // What the proxy says of a result it could not send is the developer's fault, not the application's answer.
    if (typeof error === 'string' && (error === NOT_A_DICTIONARY || error.startsWith('The action did not return a JSON-serializable'))) return developerError(error);
    if (isObject && 'error' in (body as object)) return { status: 'application error', result: body, logs: [] };
    return developerError(`The action proxy answered ${r.status} without an error.`);
  }
}

function errorField(body: Buffer): unknown {
  try {
    const j = JSON.parse(body.toString('utf8')) as { error?: unknown };
    return j && typeof j === 'object' ? j.error : undefined;
  } catch {
    return undefined;
  }
}
