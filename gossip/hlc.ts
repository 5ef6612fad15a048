// A hybrid logical clock: timestamps that follow wall time but never go
// backwards and order causally related writes across daemons, so registry
// writes can be merged last-writer-wins. Encoded so that string order is
// timestamp order: 15-digit milliseconds, 6-digit counter, node ID.

export class Hlc {
  private wall = 0;
  private logical = 0;
  readonly node: string;
  private readonly clock: () => number;

  constructor(node: string, clock: () => number = Date.now) {
    this.node = node;
    this.clock = clock;
  }

  now(): string {
    const t = this.clock();
    if (t > this.wall) {
      this.wall = t;
      this.logical = 0;
    } else this.logical++;
    return encode(this.wall, this.logical, this.node);
  }

  /** Moves this clock past a timestamp seen from another node. */
  receive(stamp: string): void {
    const r = decode(stamp);
    if (!r) return;
    const t = this.clock();
    const wall = Math.max(t, this.wall, r.wall);
    if (wall === this.wall && wall === r.wall) this.logical = Math.max(this.logical, r.logical) + 1;
    else if (wall === this.wall) this.logical++;
    else if (wall === r.wall) this.logical = r.logical + 1;
    else this.logical = 0;
    this.wall = wall;
  }
}

const encode = (wall: number, logical: number, node: string) => `${String(wall).padStart(15, '0')}:${String(logical).padStart(6, '0')}:${node}`;

export function decode(stamp: string): { wall: number; logical: number; node: string } | null {
  const m = /^(\d{15}):(\d{6}):(.+)$/.exec(stamp);
  return m ? { wall: Number(m[1]), logical: Number(m[2]), node: m[3]! } : null;
}

/** Last writer wins: does the incoming stamp beat the one we hold? */
export const newer = (incoming: string, held: string | undefined): boolean => held === undefined || incoming > held;
