import { execFileSync } from 'node:child_process';
import { existsSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import { buildImage, imageExists, recipe } from '../../sandbox/images.ts';
import { docker, ROOT } from '../helpers/daemon.ts';

// The Redis relay the messaging and collectives benchmarks compare against.

/** A Redis server image and a Node.js runtime image with ioredis, built locally once (no registry here). */
export async function redisImages(): Promise<{ redis: string; client: string }> {
  if (!existsSync('/usr/bin/redis-server')) execFileSync('apt-get', ['install', '-y', '-qq', 'redis-server'], { stdio: 'inherit' });
  const modules = join(ROOT, '.bench', 'ioredis');
  if (!existsSync(join(modules, 'node_modules', 'ioredis'))) {
    execFileSync('npm', ['install', '--prefix', modules, '--no-save', '--no-audit', '--no-fund', '--loglevel=error', 'ioredis@5'], { stdio: 'inherit' });
  }
  const redis = 'peerless-bench/redis:1';
  if (!(await imageExists(docker, redis))) {
    await buildImage(docker, redis, {
      files: [[realpathSync('/usr/bin/redis-server'), '/usr/bin/redis-server']],
      dirs: [],
      cmd: ['/usr/bin/redis-server', '--port', '6379', '--protected-mode', 'no', '--save', '', '--appendonly', 'no', '--proto-max-bulk-len', '1gb', '--client-query-buffer-limit', '1gb'],
      env: [],
      fingerprint: 'redis',
    }, 'redis');
  }
  const node = recipe('nodejs');
  const client = 'peerless-bench/node-ioredis:2';
  if (!(await imageExists(docker, client))) await buildImage(docker, client, { ...node, dirs: [...node.dirs, [join(modules, 'node_modules'), '/node_modules']] }, 'nodejs-ioredis');
  return { redis, client };
}

