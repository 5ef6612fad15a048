import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';

// The co-located fast path's directory: instances of one namespace on this host reach each other over
// Unix sockets instead of TCP through the namespace network. Every container has the root mounted at
// /peerless-peers. The walls are the directory modes, and a name nobody else knows:
//   root       0711  no one but the daemon can list it or create in it;
//   <secret>/  0733  a namespace's own: its instances create and reach sockets in it but cannot list it.
// The secret (128 random bits, new at every daemon start) is given only to that namespace's activations,
// so another tenant's container can neither find nor guess the path of a socket it may not reach.

export const PEERS_MOUNT = '/peerless-peers';

export class PeerSockets {
  private readonly secrets = new Map<string, string>();
  readonly root: string;

  constructor(root: string) {
    this.root = root;
    mkdirSync(root, { recursive: true });
    chmodSync(root, 0o711);
  }

  /** The namespace's directory name under the root, made on first use. */
  secretOf(ns: string): string {
    let s = this.secrets.get(ns);
    if (!s) {
      s = randomBytes(16).toString('hex');
      const dir = join(this.root, s);
      mkdirSync(dir);
      chmodSync(dir, 0o733); // mkdir's mode is cut by the umask
      this.secrets.set(ns, s);
    }
    return s;
  }

  /** An instance has ended: its socket goes, so no peer dials what nothing listens on any more. */
  release(ns: string, instance: string): void {
    const s = this.secrets.get(ns);
    if (s) rmSync(join(this.root, s, `${instance}.sock`), { force: true });
  }
}
