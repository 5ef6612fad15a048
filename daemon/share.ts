import { InstanceClash } from '../gossip/addrmap.ts';
import type { Claimant } from '../gossip/claims.ts';
import { activationView, type ActivationView } from './activationView.ts';
import type { Directory } from './directory.ts';
import { conflict, notFound } from './errors.ts';
import type { ActivationId, FunctionName, HostId, NamespaceName } from './ids.ts';
import type { Invoker } from './invoker.ts';
import type { Store } from './store.ts';

// A share: the members of one invocation that placement put on one host. The
// daemon that admitted the invocation has already checked its parameters,
// charged the namespace's quota, claimed its IDs and reserved the memory, so
// running a share checks none of that again: it only starts the activations.
// The same code runs a share placed here and one sent by another daemon.

export interface ShareMember {
  /** null: an unnamed activation */
  instance: string | null;
  activationId: ActivationId;
  /** how many times the job restarted this ID */
  epoch: number;
  /** the job restarts this member if it fails */
  restart: boolean;
}

export interface Share {
  namespace: string;
  function: string;
  /** the function's defaults merged with the caller's, size-checked by the admitting daemon */
  params: Record<string, unknown>;
  members: ShareMember[];
  /** memory the pool set aside for these members */
  reservation: string | null;
  /** the daemon that claimed the IDs from their arbiters, which they are released for at the end */
  claimedBy: string | null;
  /** the sequence activation these members are components of */
  cause?: string;
}

export interface ShareRunnerDeps {
  store: Store;
  invoker: Invoker;
  directory: Directory;
  hostId: HostId;
  claims: () => Claimant | undefined;
}

export class ShareRunner {
  private readonly d: ShareRunnerDeps;
  constructor(d: ShareRunnerDeps) {
    this.d = d;
  }

  /** Starts every member, or none (the function is missing here, or an ID is taken). */
  run(s: Share): Promise<ActivationView>[] {
    const ns = s.namespace as NamespaceName;
    const fn = this.d.store.getFunction(ns, s.function as FunctionName);
    if (!fn) throw notFound(`function ${s.function} on host ${this.d.hostId}`, '/params/name');
    const named = s.members.filter((m) => m.instance !== null);
    let entries;
    try {
      entries = this.d.directory.reserve(
        named.map((m) => ({
          namespace: ns,
          instance: m.instance!,
          function: fn.name,
          activation: m.activationId,
          host: this.d.hostId,
          ...(m.epoch > 0 ? { epoch: m.epoch } : {}),
          ...(m.restart ? { restart: true } : {}),
        })),
      );
    } catch (e) {
      if (e instanceof InstanceClash) throw conflict(e.message, '/query/instances');
      throw e;
    }
    const entryOf = new Map(entries.map((e) => [e.instance, e]));
    // Members that share containers draw less than their count of containers: the reservation knows how many
    // will draw on it, and is given back once each has (not only when it expires).
    if (s.reservation) this.d.invoker.expect(s.reservation, s.members.length);
    return s.members.map((m) => {
      const entry = m.instance === null ? undefined : entryOf.get(m.instance);
      const { done } = this.d.invoker.start(fn, s.params, {
        activationId: m.activationId,
        ...(entry ? { instance: entry } : {}),
        ...(s.reservation ? { reservation: s.reservation } : {}),
        ...(s.cause ? { cause: s.cause as ActivationId } : {}),
      });
      if (m.instance !== null) void done.finally(() => this.d.claims()?.release(ns, [m.instance!], s.claimedBy ?? undefined));
      return done.then(activationView);
    });
  }

  stop(ids: ActivationId[], why: string): number {
    return ids.filter((id) => this.d.invoker.stop(id, why)).length;
  }
}
