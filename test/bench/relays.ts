import { execFileSync } from 'node:child_process';
import { existsSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import { buildImage, imageExists, imageTag, recipe } from '../../sandbox/images.ts';
import { namespaceNetworkName } from '../../sandbox/networks.ts';
import { docker, ROOT } from '../helpers/daemon.ts';

// The relays the messaging, collectives and shuffle benchmarks compare against: a Redis server and a NATS
// server (both from Debian's packages) as images built locally once (no registry here), and a Node.js runtime
// image with their clients (ioredis, nats) beside the peerless SDK, tagged by the runtime it extends.

const apt = (pkg: string, bin: string) => {
  if (!existsSync(bin)) execFileSync('apt-get', ['install', '-y', '-qq', pkg], { stdio: 'inherit' });
  return realpathSync(bin);
};

export async function relayImages(): Promise<{ redis: string; nats: string; client: string }> {
  const modules = join(ROOT, '.bench', 'relays');
  if (!existsSync(join(modules, 'node_modules', 'nats'))) {
    execFileSync('npm', ['install', '--prefix', modules, '--no-save', '--no-audit', '--no-fund', '--loglevel=error', 'ioredis@5', 'nats@2'], { stdio: 'inherit' });
  }
  const server = async (tag: string, files: [string, string][], cmd: string[]) => {
    if (!(await imageExists(docker, tag))) await buildImage(docker, tag, { files, dirs: [], cmd, env: [], fingerprint: tag }, tag.split('/')[1]!.split(':')[0]!);
    return tag;
  };
  const redisBin = apt('redis-server', '/usr/bin/redis-server');
  const redis = await server(
    'peerless-bench/redis:1',
    [[redisBin, '/usr/bin/redis-server']],
    ['/usr/bin/redis-server', '--port', '6379', '--protected-mode', 'no', '--save', '', '--appendonly', 'no', '--proto-max-bulk-len', '1gb', '--client-query-buffer-limit', '1gb'],
  );
  const natsBin = apt('nats-server', '/usr/sbin/nats-server');
  const nats = await server('peerless-bench/nats:1', [[natsBin, '/usr/bin/nats-server']], ['/usr/bin/nats-server', '--port', '4222']);
  const node = recipe('nodejs');
  const client = `peerless-bench/node-relays:${imageTag('nodejs').split(':')[1]}`;
  if (!(await imageExists(docker, client))) await buildImage(docker, client, { ...node, dirs: [...node.dirs, [join(modules, 'node_modules'), '/node_modules']] }, 'nodejs-relays');
  return { redis, nats, client };
}

/**
 * Starts a relay server container on a namespace's network, labelled as the bench host's (so its clean-up
 * removes it), named `<host>-<name>`; returns its address there.
 */
export async function startRelay(host: string, ns: string, name: string, image: string): Promise<string> {
  const net = namespaceNetworkName(ns);
  const c = await docker.createContainer({ Image: image, name: `${host}-${name}`, Labels: { 'peerless.host': host }, HostConfig: { NetworkMode: net, CapDrop: ['ALL'] } });
  await c.start();
  return (await c.inspect()).NetworkSettings.Networks[net]!.IPAddress;
}
