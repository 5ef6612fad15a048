import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { embedded } from './assets.ts';

// Native addons in the single executable. A shared object cannot be loaded
// from memory, so the build embeds each dependency's prebuilt addon and the
// bundle's loader for it (scripts/build-binary.ts swaps the package's own)
// writes it once to the runtime directory, named by its content hash, then
// dlopens it. In a checkout the packages load their addons themselves.

/** Where addons are extracted: the daemon's run directory when set, else a per-user directory under /tmp. */
function addonDir(): string {
  const base = process.env.PEERLESS_RUN_DIR ?? join(tmpdir(), `peerless-${process.getuid?.() ?? 0}`);
  const dir = join(base, 'addons');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  return dir;
}

export function loadAddon(name: string): unknown {
  const bytes = embedded(`addons/${name}.node`);
  const file = join(addonDir(), `${name}-${createHash('sha256').update(bytes).digest('hex').slice(0, 16)}.node`);
  if (!existsSync(file)) {
    // Written aside and renamed, so a process racing this one never loads half a file.
    const part = `${file}.${process.pid}`;
    writeFileSync(part, bytes, { mode: 0o500 });
    renameSync(part, file);
  }
  const m = { exports: {} };
  process.dlopen(m, file);
  return m.exports;
}
