import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { imageExists } from '../../sandbox/images.ts';
import { docker } from './daemon.ts';

// A machine with systemd as PID 1, for `peerless install`: this machine's
// own init is not systemd, but a container of Debian 12 with systemd runs
// here (with CAP_SYS_ADMIN; --privileged is refused). The image is made once
// per engine by debootstrap from Debian's packages and kept.

export const SYSTEMD_IMAGE = 'peerless-test/systemd:bookworm';

export async function ensureSystemdImage(): Promise<void> {
  if (await imageExists(docker, SYSTEMD_IMAGE)) return;
  const root = mkdtempSync(join(tmpdir(), 'pl-systemd-root-'));
  try {
    execFileSync('debootstrap', ['--variant=minbase', '--include=systemd,systemd-sysv', 'bookworm', root, 'http://deb.debian.org/debian'], { stdio: 'ignore' });
    const tar = spawn('tar', ['-C', root, '--numeric-owner', '-c', '.'], { stdio: ['ignore', 'pipe', 'inherit'] });
    const [repo, tag] = SYSTEMD_IMAGE.split(':') as [string, string];
    const stream = await docker.importImage(tar.stdout as unknown as string, { repo, tag, changes: ['CMD ["/lib/systemd/systemd"]'] } as object);
    await new Promise<void>((resolve, reject) => docker.modem.followProgress(stream, (err: Error | null) => (err ? reject(err) : resolve())));
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

/** Runs a command in the container; its output, or throws with it. */
export async function execIn(c: { exec: (o: object) => Promise<unknown> }, cmd: string[]): Promise<{ code: number; out: string }> {
  const ex = (await c.exec({ Cmd: cmd, AttachStdout: true, AttachStderr: true })) as {
    start: (o: object) => Promise<NodeJS.ReadableStream>;
    inspect: () => Promise<{ ExitCode: number | null }>;
  };
  const stream = await ex.start({ hijack: true, stdin: false });
  const chunks: Buffer[] = [];
  stream.on('data', (d: Buffer) => chunks.push(d));
  await new Promise((r) => stream.on('end', r));
  // The stream is multiplexed (an 8-byte header per frame): keep the payloads.
  const all = Buffer.concat(chunks);
  let out = '';
  for (let i = 0; i + 8 <= all.length; ) {
    const n = all.readUInt32BE(i + 4);
    out += all.subarray(i + 8, i + 8 + n).toString('utf8');
    i += 8 + n;
  }
  return { code: (await ex.inspect()).ExitCode ?? -1, out };
}
