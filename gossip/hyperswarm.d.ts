// hyperswarm and hyperdht ship no types; these are the parts peerless uses.
declare module 'hyperswarm' {
  import type { Duplex } from 'node:stream';
  export default class Hyperswarm {
    constructor(opts?: { bootstrap?: { host: string; port: number }[] });
    on(event: 'connection', fn: (conn: Duplex) => void): this;
    join(topic: Buffer, opts: { server: boolean; client: boolean }): { flushed(): Promise<void> };
    flush(): Promise<void>;
    destroy(): Promise<void>;
  }
}
declare module 'hyperdht/testnet.js' {
  export default function createTestnet(size: number, opts?: { host?: string }): Promise<{ bootstrap: { host: string; port: number }[]; destroy(): Promise<void> }>;
}
