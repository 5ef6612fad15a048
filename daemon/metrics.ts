// Prometheus metrics in the text exposition format, kept by hand: a few
// counters and one histogram do not need a client library.

const BUCKETS_MS = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 30_000, 60_000];

export class Metrics {
  private readonly invocations = new Map<string, number>();
  private readonly buckets = new Array<number>(BUCKETS_MS.length).fill(0);
  private count = 0;
  private sum = 0;

  /** One finished activation: its outcome, whether it started cold, how long it took end to end. */
  activation(status: string, cold: boolean, ms: number): void {
    const k = `status="${status}",start="${cold ? 'cold' : 'warm'}"`;
    this.invocations.set(k, (this.invocations.get(k) ?? 0) + 1);
    this.count++;
    this.sum += ms / 1000;
    for (let i = 0; i < BUCKETS_MS.length; i++) if (ms <= BUCKETS_MS[i]!) this.buckets[i]!++;
  }

  render(gauges: { containers: Record<string, number>; mapEntries: number; remoteEntries: number; peers: number; running: number; rejected: { kind: string; reason: string; n: number }[];
    oldestHeartbeatMs: number; engineUp: boolean; unsaved: number; dropped: Record<string, number>;
    registryPulls: Record<string, number> }): string {
    const out: string[] = [];
    const metric = (name: string, type: string, help: string, lines: string[]) => out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`, ...lines);
    metric('peerless_invocations_total', 'counter', 'Finished activations by status and cold or warm start.',
      [...this.invocations].map(([k, v]) => `peerless_invocations_total{${k}} ${v}`));
    metric('peerless_activation_duration_seconds', 'histogram', 'End-to-end activation time, including waiting for a container.', [
      ...BUCKETS_MS.map((b, i) => `peerless_activation_duration_seconds_bucket{le="${b / 1000}"} ${this.buckets[i]}`),
      `peerless_activation_duration_seconds_bucket{le="+Inf"} ${this.count}`,
      `peerless_activation_duration_seconds_sum ${this.sum}`,
      `peerless_activation_duration_seconds_count ${this.count}`,
    ]);
    metric('peerless_activations_running', 'gauge', 'Activations in flight on this daemon.', [`peerless_activations_running ${gauges.running}`]);
    metric('peerless_containers', 'gauge', 'Action containers by pool state.',
      Object.entries(gauges.containers).map(([s, n]) => `peerless_containers{state="${s}"} ${n}`));
    metric('peerless_addrmap_entries', 'gauge', "Address-map entries: this host's own and those gossiped by peers.",
      [`peerless_addrmap_entries{origin="local"} ${gauges.mapEntries}`, `peerless_addrmap_entries{origin="remote"} ${gauges.remoteEntries}`]);
    metric('peerless_cluster_peers', 'gauge', 'Cluster members this daemon hears from.', [`peerless_cluster_peers ${gauges.peers}`]);
    metric('peerless_cluster_peers_dropped_total', 'counter', 'Members dropped: silent for the failure timeout, gone with a goodbye, reported gone by a peer, or restarted.',
      Object.entries(gauges.dropped).map(([why, n]) => `peerless_cluster_peers_dropped_total{reason="${why}"} ${n}`));
    metric('peerless_registry_pulls_total', 'counter', "Registries pulled from a member whose registry digest differed: repaired (a lost registry message), unchanged (the member was behind), failed.",
      Object.entries(gauges.registryPulls).map(([r, n]) => `peerless_registry_pulls_total{result="${r}"} ${n}`));
    metric('peerless_gossip_heartbeat_age_seconds', 'gauge', 'Gossip lag: age of the stalest heartbeat among the peers heard from (0 alone).',
      [`peerless_gossip_heartbeat_age_seconds ${gauges.oldestHeartbeatMs / 1000}`]);
    metric('peerless_engine_up', 'gauge', 'Whether the Docker engine answers (1) or is lost (0).', [`peerless_engine_up ${gauges.engineUp ? 1 : 0}`]);
    metric('peerless_activations_unsaved', 'gauge', 'Finished activations whose outcome waits for room on the data disk.', [`peerless_activations_unsaved ${gauges.unsaved}`]);
    metric('peerless_gossip_rejected_total', 'counter', 'Messages from other daemons dropped unread, by protocol or topic (a "-reply" kind: a reply to this daemon) and reason: not-json, too-large, malformed, forged (origin not the signer), listener-error.',
      gauges.rejected.map((r) => `peerless_gossip_rejected_total{kind="${r.kind}",reason="${r.reason}"} ${r.n}`));
    return `${out.join('\n')}\n`;
  }
}
