import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { Series } from './series.ts';

// Prometheus metrics through prom-client, in a registry of the daemon's own
// (several daemons may share a process, in tests and benchmarks), with the
// library's process and event-loop metrics. Activations are counted as they
// end; the rest is read from the daemon's parts when Prometheus scrapes.

/** What the daemon's parts report at a scrape. */
export interface Readings {
  containers: Record<string, number>;
  mapEntries: number;
  remoteEntries: number;
  peers: number;
  running: number;
  /** messages from other daemons dropped unread, by kind and reason (gossip/protocols.ts) */
  rejected: { kind: string; reason: string; n: number }[];
  oldestHeartbeatMs: number;
  engineUp: boolean;
  unsaved: number;
  dropped: Record<string, number>;
  suspicions: Record<string, number>;
  registryPulls: Record<string, number>;
}

const BUCKETS_S = [0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

/**
 * A counter kept elsewhere as a running total (the cluster's drop and reject counts): at each scrape it
 * takes the growth since the last one, so Prometheus sees a counter and the totals stay where they are.
 */
function mirrored(registry: Registry, name: string, help: string, labelNames: string[], read: () => { labels: Record<string, string>; n: number }[]): void {
  const seen = new Map<string, number>();
  new Counter({
    name,
    help,
    labelNames,
    registers: [registry],
    collect() {
      for (const { labels, n } of read()) {
        const k = JSON.stringify(labels);
        const grown = n - (seen.get(k) ?? 0);
        // A series at 0 is shown too: a rate over it starts from its first scrape, not from its first event.
        if (grown > 0 || !seen.has(k)) this.inc(labels, Math.max(0, grown));
        seen.set(k, Math.max(n, seen.get(k) ?? 0));
      }
    },
  });
}

export class Metrics {
  readonly registry = new Registry();
  /** the last hour in 10-second buckets, for the dashboard's charts */
  readonly series = new Series();
  private readings: () => Readings | null = () => null;
  private readonly invocations: Counter<'status' | 'start'>;
  private readonly duration: Histogram;

  constructor() {
    const r = this.registry;
    collectDefaultMetrics({ register: r });
    this.invocations = new Counter({ name: 'peerless_invocations_total', help: 'Finished activations by status and cold or warm start.', labelNames: ['status', 'start'], registers: [r] });
    this.duration = new Histogram({ name: 'peerless_activation_duration_seconds', help: 'End-to-end activation time, including waiting for a container.', buckets: BUCKETS_S, registers: [r] });
    const now = () => this.readings();
    const gauge = (name: string, help: string, labelNames: string[], set: (g: Gauge, x: Readings) => void) =>
      new Gauge({
        name,
        help,
        labelNames,
        registers: [r],
        collect() {
          const x = now();
          if (x) set(this, x);
        },
      });
    gauge('peerless_activations_running', 'Activations in flight on this daemon.', [], (g, x) => g.set(x.running));
    gauge('peerless_containers', 'Action containers by pool state.', ['state'], (g, x) => {
      g.reset();
      for (const [state, n] of Object.entries(x.containers)) g.set({ state }, n);
    });
    gauge('peerless_addrmap_entries', "Address-map entries: this host's own and those gossiped by peers.", ['origin'], (g, x) => {
      g.set({ origin: 'local' }, x.mapEntries);
      g.set({ origin: 'remote' }, x.remoteEntries);
    });
    gauge('peerless_cluster_peers', 'Cluster members this daemon hears from.', [], (g, x) => g.set(x.peers));
    gauge('peerless_gossip_heartbeat_age_seconds', 'Gossip lag: age of the stalest heartbeat among the peers heard from (0 alone).', [], (g, x) => g.set(x.oldestHeartbeatMs / 1000));
    gauge('peerless_engine_up', 'Whether the Docker engine answers (1) or is lost (0).', [], (g, x) => g.set(x.engineUp ? 1 : 0));
    gauge('peerless_activations_unsaved', 'Finished activations whose outcome waits for room on the data disk.', [], (g, x) => g.set(x.unsaved));
    mirrored(r, 'peerless_cluster_peers_dropped_total', 'Members dropped: silent for the failure timeout, gone with a goodbye, reported gone by a peer, or restarted.', ['reason'], () =>
      Object.entries(now()?.dropped ?? {}).map(([reason, n]) => ({ labels: { reason }, n })),
    );
    mirrored(
      r,
      'peerless_cluster_suspicions_total',
      'Members another member timed out (suspected; kept while their beats may still refute it) and those whose beats went on (refuted: a drop avoided).',
      ['result'],
      () => Object.entries(now()?.suspicions ?? {}).map(([result, n]) => ({ labels: { result }, n })),
    );
    mirrored(
      r,
      'peerless_registry_pulls_total',
      'Registries pulled from a member whose registry digest differed: repaired (a lost registry message), unchanged (the member was behind), failed.',
      ['result'],
      () => Object.entries(now()?.registryPulls ?? {}).map(([result, n]) => ({ labels: { result }, n })),
    );
    mirrored(
      r,
      'peerless_gossip_rejected_total',
      'Messages from other daemons dropped unread, by protocol or topic (a "-reply" kind: a reply to this daemon) and reason: not-json, too-large, malformed, forged (origin not the signer), listener-error.',
      ['kind', 'reason'],
      () => (now()?.rejected ?? []).map(({ kind, reason, n }) => ({ labels: { kind, reason }, n })),
    );
  }

  /** Where the scrape-time readings come from; set once the daemon's parts exist. */
  readFrom(readings: () => Readings): void {
    this.readings = readings;
  }

  /** One finished activation: its outcome, whether it started cold, how long it took end to end. */
  activation(status: string, cold: boolean, ms: number): void {
    this.invocations.inc({ status, start: cold ? 'cold' : 'warm' });
    this.duration.observe(ms / 1000);
    this.series.add(Date.now(), { cold, ok: status === 'success', ms });
  }

  render(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
