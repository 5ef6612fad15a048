import { defaultMeta } from '../../daemon/kinds.ts';
import { join } from 'node:path';
import pino from 'pino';
import { BlobStore } from '../../daemon/blobs.ts';
import type { FunctionName, NamespaceName } from '../../daemon/ids.ts';
import { Registry } from '../../daemon/replication.ts';
import { Store } from '../../daemon/store.ts';
import type { FunctionRecord } from '../../daemon/types.ts';
import { AddressMap } from '../../gossip/addrmap.ts';
import { Cluster } from '../../gossip/cluster.ts';

// Daemons' registries without the rest of a daemon: a store, code blobs and a registry on a real libp2p
// node each, on loopback, as the daemon composes them (daemon/daemon.ts).

export interface RegistrySide {
  cluster: Cluster;
  registry: Registry;
  store: Store;
  blobs: BlobStore;
}

export async function startRegistries(n: number, dir: string, key: string, basePort: number, heartbeatMs: number): Promise<RegistrySide[]> {
  const sides: RegistrySide[] = [];
  const log = pino({ level: 'silent' });
  for (let i = 0; i < n; i++) {
    const store = new Store(join(dir, `${i}.db`));
    const blobs = new BlobStore(join(dir, String(i)));
    const registry = new Registry(store, blobs, `r${i}`, log, { retire: async () => undefined, forget: () => undefined }, 64 * 1024 * 1024);
    const cluster = await Cluster.start({
      key,
      identityFile: join(dir, `${i}.key`),
      listen: [`/ip4/127.0.0.1/tcp/${basePort + i}`],
      peers: i === 0 ? [] : [`/ip4/127.0.0.1/tcp/${basePort}`],
      hyperswarm: false,
      bootstrap: [],
      heartbeatMs,
      failureTimeoutMs: 5000,
      batchMs: 5,
      hostName: `r${i}`,
      local: new AddressMap(`r${i}`, 1000 + i),
      load: () => 0,
      freeMb: () => 4096,
      onChange: () => undefined,
      registryDigest: () => registry.digest(),
      log,
    });
    registry.attach(cluster);
    sides.push({ cluster, registry, store, blobs });
  }
  return sides;
}

export async function stopRegistries(sides: RegistrySide[]): Promise<void> {
  await Promise.all(sides.map((s) => s.cluster.stop()));
  for (const s of sides) s.store.close();
}

/** Runs a write whose registry message the gossip layer loses on its way out. */
export function lost(s: RegistrySide, write: () => void): void {
  const publish = s.cluster.publishRegistry;
  s.cluster.publishRegistry = () => undefined;
  try {
    write();
  } finally {
    s.cluster.publishRegistry = publish;
  }
}

export function createNamespace(s: RegistrySide, ns: NamespaceName): void {
  s.store.createNamespace(ns, Date.now());
  s.registry.namespaceWritten(ns);
}

/** A function written on this side, as the API writes one: code, record, then the registry's word. */
export function writeFunction(s: RegistrySide, ns: NamespaceName, name: string, source: string): void {
  const now = Date.now();
  const f: FunctionRecord = {
    namespace: ns,
    name: name as FunctionName,
    runtime: { kind: 'nodejs' },
    digest: s.blobs.put(Buffer.from(source)),
    binary: false,
    main: 'main',
    limits: { memoryMb: 128, timeoutMs: 1000, concurrency: 1 },
    parameters: {},
    version: 1,
    created: now,
    updated: now,
    meta: defaultMeta({ runtime: { kind: 'nodejs' }, version: 1 }),
  };
  s.store.putFunction(f);
  s.registry.functionWritten(f);
}
