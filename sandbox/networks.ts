import { createHash } from 'node:crypto';
import type Docker from 'dockerode';
import { LABEL, MANAGED_BY } from './labels.ts';

// Two kinds of network. The control bridge (one per host) lets the daemon reach
// each action proxy; inter-container traffic on it is disabled, so it is no
// path between tenants. Each namespace gets its own network for its instances
// to talk on: an attachable overlay when the engine is in swarm mode (spans
// hosts), a bridge otherwise. Separate networks cannot reach one another.

export type NetworkDriver = 'overlay' | 'bridge';

export const controlNetworkName = (hostId: string) => `peerless-ctl-${hostId}`;

export function namespaceNetworkName(ns: string): string {
  // Namespace names may hold characters Docker refuses; the hash keeps names distinct.
  const safe = ns
    .toLowerCase()
    .replace(/[^a-z0-9_.-]/g, '-')
    .slice(0, 40);
  return `peerless-ns-${safe}-${createHash('sha256').update(ns).digest('hex').slice(0, 8)}`;
}

export async function swarmActive(docker: Docker): Promise<boolean> {
  const info = (await docker.info()) as { Swarm?: { LocalNodeState?: string; ControlAvailable?: boolean } };
  return info.Swarm?.LocalNodeState === 'active';
}

async function existing(docker: Docker, name: string): Promise<{ Id: string; Driver: string } | undefined> {
  const found = (await docker.listNetworks({ filters: { name: [name] } })) as { Id: string; Name: string; Driver: string }[];
  return found.find((n) => n.Name === name);
}

async function ensure(docker: Docker, name: string, spec: Docker.NetworkCreateOptions): Promise<string> {
  const have = await existing(docker, name);
  if (have) return have.Id;
  try {
    const net = await docker.createNetwork({ ...spec, Name: name, CheckDuplicate: true });
    return net.id;
  } catch (e) {
    // Another caller created it between our look and our create: that is success.
    const raced = await existing(docker, name);
    if (raced) return raced.Id;
    throw e;
  }
}

/** Returns the network's name, which is also how containers address it. */
export async function ensureControlNetwork(docker: Docker, hostId: string): Promise<string> {
  await ensure(docker, controlNetworkName(hostId), {
    Name: controlNetworkName(hostId),
    Driver: 'bridge',
    Options: { 'com.docker.network.bridge.enable_icc': 'false' },
    Labels: { [LABEL.managedBy]: MANAGED_BY, [LABEL.host]: hostId, [LABEL.role]: 'control' },
  });
  return controlNetworkName(hostId);
}

export async function ensureNamespaceNetwork(docker: Docker, ns: string, driver?: NetworkDriver): Promise<{ name: string; driver: NetworkDriver }> {
  const name = namespaceNetworkName(ns);
  const have = await existing(docker, name);
  if (have) return { name, driver: have.Driver as NetworkDriver };
  const d = driver ?? ((await swarmActive(docker)) ? 'overlay' : 'bridge');
  await ensure(docker, name, {
    Name: name,
    Driver: d,
    Attachable: d === 'overlay',
    Labels: { [LABEL.managedBy]: MANAGED_BY, [LABEL.namespace]: ns, [LABEL.role]: 'namespace' },
  });
  return { name, driver: d };
}

export async function removeNamespaceNetwork(docker: Docker, ns: string): Promise<void> {
  const have = await existing(docker, namespaceNetworkName(ns));
  if (have)
    await docker
      .getNetwork(have.Id)
      .remove()
      .catch(() => undefined);
}
