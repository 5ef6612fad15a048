import { connect } from 'node:net';

// Whether a member's process is gone while its host is up: its host then refuses a connection to the
// port the process listened on (a RST, ECONNREFUSED). A host that is down, unreachable or filtered
// answers nothing, and the caller learns nothing: only a refusal is evidence.

/** host and port of a TCP multiaddr (/ip4/…/tcp/… or /ip6/…/tcp/…), or null for any other kind */
export function tcpTarget(addr: string): { host: string; port: number } | null {
  const m = /^\/ip[46]\/([^/]+)\/tcp\/(\d+)(?:\/|$)/.exec(addr);
  return m ? { host: m[1]!, port: Number(m[2]) } : null;
}

/** Resolves true when the host refuses a connection to the address; false when it accepts one, or says nothing in time. */
export function refuses(addr: string, timeoutMs: number): Promise<boolean> {
  const t = tcpTarget(addr);
  if (!t) return Promise.resolve(false);
  return new Promise((resolve) => {
    const socket = connect({ host: t.host, port: t.port });
    const done = (refused: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(refused);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    socket.once('connect', () => done(false));
    socket.once('error', (err: NodeJS.ErrnoException) => done(err.code === 'ECONNREFUSED'));
  });
}
