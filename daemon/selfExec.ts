import { execFile } from 'node:child_process';
import { closeSync, openSync, readSync } from 'node:fs';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { isSingleExecutable } from '../sea/assets.ts';

// A daemon that starts itself again in place (`peerless upgrade`): after its
// drain it replaces its process image with whatever file it was started from
// holds now, with the same arguments and environment. The PID stays, so
// systemd (Type=simple) and any other supervisor see one process throughout.

/** The file this daemon was started from: the executable, or in a checkout the `peerless` script (or a link to it). */
export function selfExecutable(): string {
  return isSingleExecutable() ? process.execPath : resolve(process.argv[1]!);
}

/** Whether a file is an executable (ELF) rather than a script. */
export function isElf(file: string): boolean {
  const head = Buffer.alloc(4);
  const fd = openSync(file, 'r');
  try {
    readSync(fd, head, 0, 4, 0);
  } finally {
    closeSync(fd);
  }
  return head.equals(Buffer.from([0x7f, 0x45, 0x4c, 0x46]));
}

/**
 * The command that starts this daemon again from that file: run directly when it is an executable (the
 * single executable, or one that replaced the checkout's script), else the script under this Node.js.
 */
export function restartCommand(args = process.argv.slice(2)): { file: string; args: string[] } {
  const exe = selfExecutable();
  if (isSingleExecutable() || isElf(exe)) return { file: exe, args: [exe, ...args] };
  return { file: process.execPath, args: [process.execPath, ...process.execArgv, exe, ...args] };
}

/** What the file would start as, by its `--version`: checked before the daemon stops, so a broken file leaves it running. */
export async function nextVersion(): Promise<string> {
  const c = restartCommand(['--version']);
  const { stdout } = await promisify(execFile)(c.file, c.args.slice(1), { timeout: 20_000, encoding: 'utf8' });
  return versionIn(c.file, stdout);
}

/** The version in what `peerless --version` printed (the daemon before a restart, and `peerless upgrade`, both ask). */
export function versionIn(file: string, out: string): string {
  const m = /^peerless (\S+)/.exec(out);
  if (!m) throw new Error(`${file} is not a peerless executable (its --version printed ${JSON.stringify(out.slice(0, 80))})`);
  return m[1]!;
}

/** Replaces this process with the restart command. Returns only if the exec failed. */
export function reexec(): Error {
  const c = restartCommand();
  try {
    process.execve!(c.file, c.args, process.env as Record<string, string>);
  } catch (e) {
    return e as Error;
  }
  return new Error('execve returned');
}
