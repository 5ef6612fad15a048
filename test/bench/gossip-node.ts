// One daemon's gossip layer in its own process, driven by test/bench/gossip.ts over IPC:
// {reserve: id} adds a local entry; it reports {arrived: id, at} when a remote entry first shows up.
import pino from 'pino';
import { AddressMap } from '../../gossip/addrmap.ts';
import { Cluster } from '../../gossip/cluster.ts';

const [key, index, port, peers, identity] = process.argv.slice(2) as [string, string, string, string, string];
const now = () => performance.timeOrigin + performance.now();
const local = new AddressMap(`h${index}`, Date.now());
local.replicating = true;
const seen = new Set<string>();
const cluster: Cluster = await Cluster.start({
  key, identityFile: identity, listen: [`/ip4/127.0.0.1/tcp/${port}`], peers: peers ? peers.split(',') : [], hyperswarm: false, bootstrap: [],
  heartbeatMs: 500, failureTimeoutMs: 1500, batchMs: 5, hostName: `h${index}`, local, load: () => 0, freeMb: () => 4096, log: pino({ level: 'silent' }),
  onChange: () => {
    const at = now();
    for (const e of cluster.replica.entries()) {
      if (seen.has(e.instance)) continue;
      seen.add(e.instance);
      process.send!({ arrived: e.instance, at });
    }
  },
});
setInterval(() => process.send!({ peers: cluster.peers().length }), 500);
process.on('message', (m: { reserve?: string; crash?: boolean; stop?: boolean }) => {
  if (m.reserve) local.reserve([{ namespace: 'bench', instance: m.reserve, function: 'f', activation: m.reserve, host: `h${index}`, port: 7700, since: Date.now() }]);
  if (m.crash) process.exit(0); // no goodbye: peers must notice by themselves
  if (m.stop) void cluster.stop().then(() => process.exit(0));
});
process.send!({ ready: cluster.peerId });
