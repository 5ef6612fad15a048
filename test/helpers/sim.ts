import pino from 'pino';
import { AddressMap, type Entry } from '../../gossip/addrmap.ts';
import { Cluster } from '../../gossip/cluster.ts';
import { MemoryNetwork, type Faults, type MemoryTransport } from '../../gossip/memory.ts';
import { rng } from './wirefuzz.ts';

// Simulated daemons: the real driver (gossip/cluster.ts) and core
// (gossip/membership.ts) of each, over the in-memory transport on one
// virtual clock. Used by test/unit/membership.sim.test.ts and
// test/bench/gossip-sim.ts.

export interface SimSettings {
  heartbeatMs: number;
  failureTimeoutMs: number;
  batchMs: number;
  tickMs: number;
}

/** As a daemon's defaults (daemon/config.ts). */
export const DAEMON_TIMING: SimSettings = { heartbeatMs: 250, failureTimeoutMs: 1500, batchMs: 5, tickMs: 50 };

export interface SimDaemon {
  id: string;
  incarnation: number;
  local: AddressMap;
  transport: MemoryTransport;
  cluster: Cluster;
  next: number;
}

const silent = pino({ level: 'silent' });

/** As a daemon before suspicion: its timeout report carries no reason, and drops the member at once. */
function stripReportReasons(t: MemoryTransport): void {
  const publish = t.publish.bind(t);
  t.publish = (topic, data) => {
    const m = JSON.parse(new TextDecoder().decode(data)) as { type: string; why?: string };
    if (m.type === 'down') delete m.why;
    publish(topic, new TextEncoder().encode(JSON.stringify(m)));
  };
}

export class Sim {
  readonly net: MemoryNetwork;
  readonly rand: () => number;
  readonly daemons = new Map<string, SimDaemon>();
  /** a live member dropped by a daemon that could reach it: what suspicion is there to avoid */
  falseDrops = 0;
  /** drops, by reason, over all daemons */
  readonly drops: Record<string, number> = {};
  private readonly timing: SimSettings;
  private readonly olderReports: boolean;

  /** olderReports: every daemon reports timeouts as a build before suspicion did (no reason: peers drop at once). */
  constructor(seed: number, timing: SimSettings = DAEMON_TIMING, o: { olderReports?: boolean } = {}) {
    this.rand = rng(seed);
    this.net = new MemoryNetwork(this.rand);
    this.timing = timing;
    this.olderReports = o.olderReports === true;
  }

  get now(): number {
    return this.net.now;
  }

  set faults(f: Faults) {
    this.net.faults = f;
  }

  live(): SimDaemon[] {
    return [...this.daemons.values()].filter((d) => d.transport.alive);
  }

  /** Starts a daemon (again, as a new incarnation, if it ran before). */
  async start(id: string): Promise<SimDaemon> {
    const prev = this.daemons.get(id);
    const incarnation = (prev?.incarnation ?? 0) + 1;
    const local = new AddressMap(id, incarnation);
    const transport = this.net.join(id);
    if (this.olderReports) stripReportReasons(transport);
    const cluster = await Cluster.over(
      transport,
      { ...this.timing, hostName: id, local, load: () => 0, freeMb: () => 1024, onChange: () => undefined, log: silent, random: this.rand },
      transport.clock,
    );
    const d: SimDaemon = { id, incarnation, local, transport, cluster, next: prev?.next ?? 0 };
    cluster.events.on('member-down', (origin, _host, why) => {
      this.drops[why.reason] = (this.drops[why.reason] ?? 0) + 1;
      if (why.reason === 'restart' || why.reason === 'leave') return;
      const o = this.daemons.get(origin);
      if (o?.transport.alive && o.incarnation === why.incarnation && this.net.reachable(id, origin)) this.falseDrops++;
    });
    this.daemons.set(id, d);
    return d;
  }

  crash(d: SimDaemon): void {
    d.transport.kill();
  }

  /** A change to a daemon's own map: a new instance, an update or a removal. */
  mutate(d: SimDaemon): void {
    const mine = d.local.list('ns');
    const r = this.rand();
    const any = <T>(xs: T[]) => xs[Math.floor(this.rand() * xs.length)]!;
    if (r < 0.5 || mine.length === 0) {
      const id = `i${d.next++}-${d.id}`;
      d.local.reserve([{ namespace: 'ns', instance: id, function: 'f', activation: id, host: d.id, port: 7700, since: this.now }]);
    } else if (r < 0.75) d.local.update('ns', any(mine).instance, { state: 'running', ip: `10.0.0.${Math.floor(this.rand() * 250)}` });
    else d.local.remove('ns', any(mine).instance);
  }

  run(untilMs: number): Promise<void> {
    return this.net.run(untilMs);
  }

  /** Whether every live daemon sees every other live one as a member, and no dead one. */
  membersAgree(): boolean {
    const live = this.live();
    const ids = new Set(live.map((d) => d.id));
    return live.every((d) => d.cluster.replica.memberCount === live.length - 1 && d.cluster.replica.members().every((m) => ids.has(m.origin)));
  }

  /** Whether every live daemon's view (its own map and its replica) is the union of the live daemons' own maps. */
  mapsAgree(): { agree: boolean; union: string[] } {
    const canon = (es: Entry[]) => es.map((e) => `${e.host}/${e.instance}/${e.state}/${e.ip ?? ''}`).sort();
    const live = this.live();
    const union = canon(live.flatMap((d) => d.local.list('ns')));
    const key = union.join('\n');
    return { agree: live.every((d) => canon([...d.local.list('ns'), ...d.cluster.replica.entries()]).join('\n') === key), union };
  }

  /** Runs in steps of stepMs until check() holds, or until maxMs; the virtual time it took, or null. */
  async until(check: () => boolean, maxMs: number, stepMs = 50): Promise<number | null> {
    const from = this.now;
    while (this.now - from <= maxMs) {
      if (check()) return this.now - from;
      await this.run(this.now + stepMs);
    }
    return null;
  }
}
