import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { refuses, tcpTarget } from '../../gossip/probe.ts';

// Evidence that a member's process is gone: its host refuses the port it listened on.

describe('port probe', () => {
  it('reads host and port from TCP multiaddrs only', () => {
    expect(tcpTarget('/ip4/10.0.0.2/tcp/7948')).toEqual({ host: '10.0.0.2', port: 7948 });
    expect(tcpTarget('/ip4/10.0.0.2/tcp/7948/p2p/12D3KooW')).toEqual({ host: '10.0.0.2', port: 7948 });
    expect(tcpTarget('/ip6/::1/tcp/1')).toEqual({ host: '::1', port: 1 });
    expect(tcpTarget('/ip4/10.0.0.2/udp/7948/quic-v1')).toBeNull();
    expect(tcpTarget('/dns4/example.org/tcp/1')).toBeNull();
  });

  it('says refused only when nothing listens there any more', async () => {
    const server = createServer((s) => s.destroy());
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const addr = `/ip4/127.0.0.1/tcp/${(server.address() as { port: number }).port}`;
    expect(await refuses(addr, 1000)).toBe(false);
    await new Promise((r) => server.close(r));
    expect(await refuses(addr, 1000)).toBe(true);
    expect(await refuses('/ip4/127.0.0.1/udp/9', 1000)).toBe(false); // not a TCP address: no evidence
  });
});
