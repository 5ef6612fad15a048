import { createHash } from 'node:crypto';
import Hyperswarm from 'hyperswarm';
import type { Logger } from 'pino';

// Discovery through hyperswarm: every daemon joins a DHT topic derived from
// the cluster key (only key holders can compute it), and over each connection
// the two sides swap their libp2p addresses, which the cluster then dials.
// The DHT bootstrap nodes are configurable, so a private cluster needs no
// internet. Knowing an address is not enough to join: libp2p still wants the key.

export interface Discovery {
  stop(): Promise<void>;
}

export function parseBootstrap(list: string[]): { host: string; port: number }[] {
  return list.map((s) => {
    const i = s.lastIndexOf(':');
    return { host: s.slice(0, i), port: Number(s.slice(i + 1)) };
  });
}

export function startHyperswarm(o: { key: string; bootstrap: string[]; addresses: () => string[]; found: (addrs: string[]) => void; log: Logger }): Discovery {
  const swarm = new Hyperswarm(o.bootstrap.length > 0 ? { bootstrap: parseBootstrap(o.bootstrap) } : {});
  const topic = createHash('sha256').update('peerless/cluster/1\u0000').update(o.key).digest();
  swarm.on('connection', (conn) => {
    let buf = '';
    conn.on('error', () => undefined);
    conn.on('data', (d: Buffer) => {
      buf += d.toString('utf8');
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      try {
        const { addrs } = JSON.parse(buf.slice(0, nl)) as { addrs?: unknown };
        if (Array.isArray(addrs)) o.found(addrs.filter((a): a is string => typeof a === 'string').slice(0, 16));
      } catch {
        /* not a peer of ours */
      }
      conn.end();
    });
    conn.write(`${JSON.stringify({ addrs: o.addresses() })}\n`);
  });
  swarm.join(topic, { server: true, client: true });
  void swarm.flush().then(
    () => o.log.info('hyperswarm topic joined'),
    (err: Error) => o.log.warn({ err: err.message }, 'hyperswarm join failed'),
  );
  return { stop: () => swarm.destroy() };
}
