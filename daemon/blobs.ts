import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Digest } from './ids.ts';

// Content-addressed code blobs: the file name is the sha256 of the bytes, so a
// blob fetched from anywhere can be checked, and identical code is stored once.

export const digestOf = (bytes: Buffer): Digest => `sha256:${createHash('sha256').update(bytes).digest('hex')}` as Digest;

export class BlobStore {
  private readonly dir: string;
  constructor(dataDir: string) {
    this.dir = join(dataDir, 'blobs', 'sha256');
    mkdirSync(this.dir, { recursive: true });
  }

  private path(d: Digest): string {
    return join(this.dir, d.slice('sha256:'.length));
  }

  put(bytes: Buffer): Digest {
    const d = digestOf(bytes);
    // Written under a temporary name, then renamed: a crash never leaves half a blob under its digest.
    const tmp = join(this.dir, `.tmp-${randomBytes(6).toString('hex')}`);
    writeFileSync(tmp, bytes, { mode: 0o600 });
    renameSync(tmp, this.path(d));
    return d;
  }

  has(d: Digest): boolean {
    return existsSync(this.path(d));
  }

  /** bytes of a blob, or Infinity when it is not here */
  size(d: Digest): number {
    try {
      return statSync(this.path(d)).size;
    } catch {
      return Infinity;
    }
  }

  get(d: Digest): Buffer {
    return readFileSync(this.path(d));
  }

  delete(d: Digest): void {
    rmSync(this.path(d), { force: true });
  }
}
