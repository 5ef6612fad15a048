import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

// Files peerless reads at run time. In a checkout they are read where they
// live in the tree; in the single executable (scripts/build-binary.ts) the same
// names are assets embedded in it, so the binary needs no file beside it.

/** asset name → its path in the checkout, relative to the repository's root */
export const ASSET_FILES = {
  'dashboard.html': 'daemon/dashboard.html',
  'uplot.js': 'node_modules/uplot/dist/uPlot.iife.min.js',
  'uplot.css': 'node_modules/uplot/dist/uPlot.min.css',
  'peerless.service': 'systemd/peerless.service',
} as const;
export type AssetName = keyof typeof ASSET_FILES;

type Sea = { isSea(): boolean; getAsset(key: string): ArrayBuffer };
// getBuiltinModule rather than an import: `node:sea` is a module only Node itself resolves.
const sea = process.getBuiltinModule('node:sea') as Sea | undefined;

/** Whether this process is the single executable, with its assets inside it. */
export const isSingleExecutable = (): boolean => sea?.isSea() ?? false;

/** An asset embedded in the single executable, by the name the build gave it. */
export function embedded(name: string): Buffer {
  if (!sea?.isSea()) throw new Error(`asset ${name}: not a single executable`);
  return Buffer.from(sea.getAsset(name));
}

/** The repository's root, for a checkout. Evaluated only there: the bundle has no import.meta. */
const checkoutRoot = (): string => join(fileURLToPath(import.meta.url), '..', '..');

export function asset(name: AssetName): Buffer {
  return isSingleExecutable() ? embedded(name) : readFileSync(join(checkoutRoot(), ASSET_FILES[name]));
}

/** peerless's version: the package's, or the one the build stamped into the executable. */
export function version(): string {
  if (isSingleExecutable()) return embedded('version').toString('utf8');
  return (JSON.parse(readFileSync(join(checkoutRoot(), 'package.json'), 'utf8')) as { version: string }).version;
}
