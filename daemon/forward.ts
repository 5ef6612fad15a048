import type { Logger } from 'pino';
import type { Cluster } from '../gossip/cluster.ts';
import { rendezvous, spread } from '../gossip/placement.ts';
import type { Pool } from '../sandbox/pool.ts';
import { activationView, BLOCKING_WAIT_MS, withinBlockingWait } from './api/activations.ts';
import { isName, newActivationId, type ActivationId, type FunctionName, type HostId, type NamespaceName } from './ids.ts';
import { conflict, PeerlessError } from './errors.ts';
import { InstanceClash } from '../gossip/addrmap.ts';
import { startInstances, type Starter } from './instances.ts';
import { fnKeyOf, type Invoker } from './invoker.ts';
import type { Store } from './store.ts';
import type { FunctionRecord } from './types.ts';

// Invocations and activation reads that cross daemons. A daemon runs an
// invocation itself when its pool has room; otherwise it forwards it to the
// peer that rendezvous hashing picks among those with room (so a function
// keeps landing where it is warm). The forwarder chooses the activation ID;
// if the executing daemon dies before answering, the forwarder records that
// activation as failed, so it is never left "running". Activations are kept
// where they ran; any daemon finds one by asking its peers.

export const INVOKE_PROTOCOL = '/peerless/invoke/1.0.0';
export const ACTIVATION_PROTOCOL = '/peerless/activation/1.0.0';

type View = ReturnType<typeof activationView>;
interface InvokeRequest { namespace: string; name: string; params: Record<string, unknown>; blocking: boolean; activationId: string; instances?: string[]; claimedBy?: string }
type Member = View | { instance: string | null; activationId: string } | { instance: string; error: string };
type InvokeReply = { activation: View } | { activationId: string } | { error: string } | { activations: Member[] };

export interface ForwardDeps {
  cluster: Cluster;
  store: Store;
  invoker: Invoker;
  pool: Pool;
  hostId: HostId;
  image: (fn: FunctionRecord) => string;
  starter: Starter;
  log: Logger;
}

export class Forwarder {
  private readonly d: ForwardDeps;
  constructor(d: ForwardDeps) {
    this.d = d;
  }

  async listen(): Promise<void> {
    await this.d.cluster.handle(INVOKE_PROTOCOL, async (raw): Promise<InvokeReply> => {
      const r = raw as InvokeRequest;
      if (Array.isArray(r.instances)) return this.runShare(r);
      if (!isName(r.namespace) || !isName(r.name) || !/^[0-9a-f]{32}$/.test(r.activationId)) return { error: 'malformed request' };
      const fn = this.d.store.getFunction(r.namespace as NamespaceName, r.name as FunctionName);
      if (!fn) return { error: `function ${r.name} does not exist on ${this.d.hostId}` };
      const { activationId, done } = this.d.invoker.start(fn, r.params ?? {}, { activationId: r.activationId as ActivationId });
      if (!r.blocking) return { activationId };
      const a = await withinBlockingWait(done);
      return a === 'late' ? { activationId } : { activation: activationView(a) };
    });
    await this.d.cluster.handle(ACTIVATION_PROTOCOL, async (raw) => {
      const r = raw as { namespace: string; id: string };
      const a = typeof r.id === 'string' ? this.d.store.getActivation(r.id as ActivationId) : undefined;
      return a && a.namespace === r.namespace ? activationView(a) : null;
    });
  }

  /** This daemon's share of a group another daemon spread. */
  private async runShare(r: InvokeRequest): Promise<InvokeReply> {
    if (!isName(r.namespace) || !isName(r.name) || !r.instances!.every((i) => typeof i === 'string' && isName(i))) return { error: 'malformed request' };
    try {
      const claimedBy = typeof r.claimedBy === 'string' ? r.claimedBy : undefined;
      const started = await startInstances(this.d.starter, r.namespace as NamespaceName, r.name as FunctionName, r.params ?? {}, r.instances!, '/query/instances', claimedBy);
      if (!r.blocking) return { activations: started.map(({ instance, activationId }) => ({ instance, activationId })) };
      return { activations: (await Promise.all(started.map((x) => x.done))).map(activationView) };
    } catch (e) {
      return { error: e instanceof PeerlessError ? e.message : 'the group could not start here' };
    }
  }

  /**
   * A group spread over the cluster in proportion to free memory (this daemon included). The group's
   * IDs are claimed whole here first, so a clash anywhere starts none of it; members whose daemon
   * failed come back with an error.
   */
  async group(fn: FunctionRecord, ids: string[], params: Record<string, unknown>, blocking: boolean): Promise<Member[]> {
    const claimed = await this.d.starter.claims!.claim(fn.namespace, ids);
    if (!claimed.ok) throw conflict(new InstanceClash(claimed.taken).message, '/query/instances');
    const claimedBy = this.d.starter.claims!.self;
    const shares = spread(ids.length, [{ origin: 'self', freeMb: this.d.pool.freeMb() }, ...this.d.cluster.candidates()], fn.limits.memoryMb);
    const parts: { origin: string; ids: string[] }[] = [];
    let next = 0;
    for (const [origin, n] of shares) {
      parts.push({ origin, ids: ids.slice(next, next + n) });
      next += n;
    }
    const mine = parts.find((p) => p.origin === 'self') ?? (parts.unshift({ origin: 'self', ids: [] }), parts[0]!);
    mine.ids.push(...ids.slice(next)); // what fits nowhere waits here for room
    // No share here: startInstances with no IDs would start one unnamed activation.
    const local = mine.ids.length > 0 ? await startInstances(this.d.starter, fn.namespace, fn.name, params, mine.ids, '/query/instances', claimedBy) : [];
    const remote = parts.filter((p) => p !== mine && p.ids.length > 0).map(async (p): Promise<Member[]> => {
      const req: InvokeRequest = { namespace: fn.namespace, name: fn.name, params, blocking, activationId: '', instances: p.ids, claimedBy };
      try {
        const r = (await this.d.cluster.request(p.origin, INVOKE_PROTOCOL, req, blocking ? BLOCKING_WAIT_MS + 5000 : 10_000)) as InvokeReply;
        if ('activations' in r) return r.activations;
        const why = 'error' in r ? r.error : 'unexpected answer';
        return p.ids.map((instance) => ({ instance, error: why }));
      } catch {
        return p.ids.map((instance) => ({ instance, error: 'The host running these instances is gone.' }));
      }
    });
    const localMembers: Promise<Member[]> = blocking
      ? Promise.all(local.map((x) => x.done)).then((as) => as.map(activationView))
      : Promise.resolve(local.map(({ instance, activationId }) => ({ instance, activationId })));
    return (await Promise.all([localMembers, ...remote])).flat();
  }

  /** The peer to run this invocation on, or null to run it here. */
  target(fn: FunctionRecord): string | null {
    if (this.d.pool.hasRoom(fnKeyOf(fn), this.d.image(fn), fn.limits.memoryMb)) return null;
    return rendezvous(fnKeyOf(fn), this.d.cluster.candidates(), fn.limits.memoryMb);
  }

  async invoke(peer: string, fn: FunctionRecord, params: Record<string, unknown>, blocking: boolean): Promise<InvokeReply & { forwardedTo: string }> {
    const activationId = newActivationId();
    const req: InvokeRequest = { namespace: fn.namespace, name: fn.name, params, blocking, activationId };
    try {
      const reply = (await this.d.cluster.request(peer, INVOKE_PROTOCOL, req, blocking ? BLOCKING_WAIT_MS + 5000 : 10_000)) as InvokeReply;
      return { ...reply, forwardedTo: peer };
    } catch (err) {
      // The executing daemon is gone (or unreachable) mid-invocation: the activation ends here, failed.
      this.d.log.warn({ err, peer, activationId }, 'forwarded invocation lost its host');
      const now = Date.now();
      this.d.store.startActivation({ activationId, namespace: fn.namespace, name: fn.name, version: fn.version, host: this.d.hostId, start: now, annotations: { forwardedTo: peer } });
      this.d.store.finishActivation(activationId, Date.now(), now, 'whisk internal error', { error: 'The host running the activation is gone.' }, [], { forwardedTo: peer });
      return { activation: activationView(this.d.store.getActivation(activationId)!), forwardedTo: peer };
    }
  }

  /** An activation this daemon does not hold: ask every peer, take the first that has it. */
  async findActivation(namespace: string, id: string): Promise<View | null> {
    const asks = this.d.cluster.candidates().map((c) =>
      this.d.cluster.request(c.origin, ACTIVATION_PROTOCOL, { namespace, id }, 3000).then((v) => (v ? (v as View) : Promise.reject(new Error('not there')))),
    );
    if (asks.length === 0) return null;
    return Promise.any(asks).catch(() => null);
  }
}
