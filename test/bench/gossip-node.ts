// Daemons' gossip layers in one process, driven by test/bench/gossip.ts over IPC. Each has its own
// libp2p identity, TCP port and connections; a process holds one or several of them (argv: key, then
// a JSON list of {index, port, peers, identity}).
// {expect: id} announces an instance about to be added somewhere; {reserve: id, node: i} adds it as a
// local entry on node i; the process reports {arrived: id, node, at} when it first shows up on each of
// its other nodes, and each node's member count as {peers, node}. Only expected IDs are looked up on a
// change: scanning the whole map each time made the harness a good part of what it measured.
import pino from 'pino';
import { AddressMap } from '../../gossip/addrmap.ts';
import { Cluster } from '../../gossip/cluster.ts';

type Spec = { index: number; port: number; peers: string[]; identity: string };
const [key, specs] = [process.argv[2]!, JSON.parse(process.argv[3]!) as Spec[]];
const now = () => performance.timeOrigin + performance.now();
/** to the bench, while it listens: a daemon can still see changes after the bench has gone */
const report = (m: object) => void (process.connected && process.send!(m));
const nodes = new Map<number, { local: AddressMap; cluster: Cluster; pending: Set<string> }>();

for (const s of specs) {
  const local = new AddressMap(`h${s.index}`, Date.now());
  const pending = new Set<string>();
  const cluster: Cluster = await Cluster.start({
    key,
    identityFile: s.identity,
    listen: [`/ip4/127.0.0.1/tcp/${s.port}`],
    peers: s.peers,
    hyperswarm: false,
    bootstrap: [],
    heartbeatMs: 250,
    failureTimeoutMs: 1500,
    batchMs: 5,
    hostName: `h${s.index}`,
    local,
    load: () => 0,
    freeMb: () => 4096,
    log: pino({ level: 'silent' }),
    onChange: () => {
      const at = now();
      for (const id of pending) {
        if (!cluster.replica.get('bench', id)) continue;
        pending.delete(id);
        report({ arrived: id, node: s.index, at });
      }
    },
  });
  nodes.set(s.index, { local, cluster, pending });
}
// Member counts as they change (checked each 20 ms), so failure detection is timed to within a tick.
const counts = new Map<number, number>();
setInterval(() => {
  for (const [i, n] of nodes) {
    const peers = n.cluster.replica.memberCount;
    if (counts.get(i) !== peers) report({ peers, node: i });
    counts.set(i, peers);
  }
}, 20);
process.on('message', (m: { expect?: string; reserve?: string; node?: number; crash?: boolean; stop?: boolean }) => {
  if (m.expect) for (const x of nodes.values()) x.pending.add(m.expect);
  const n = m.node === undefined ? undefined : nodes.get(m.node);
  if (m.reserve) n?.pending.delete(m.reserve);
  if (m.reserve && n) n.local.reserve([{ namespace: 'bench', instance: m.reserve, function: 'f', activation: m.reserve, host: `h${m.node}`, port: 7700, since: Date.now() }]);
  if (m.crash) process.exit(0); // no goodbye: peers must notice by themselves
  if (m.stop) void Promise.all([...nodes.values()].map((x) => x.cluster.stop())).then(() => process.exit(0));
});
report({ ready: true });

// The bench died or was stopped: nobody reads these daemons any more.
process.on('disconnect', () => process.exit(0));
