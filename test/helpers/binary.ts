import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { buildImage, buildRootfs, type Recipe } from '../../sandbox/images.ts';
import { docker, ROOT } from './daemon.ts';

// The single executable for tests: scripts/test.sh builds it (npm run
// build:binary) before the suite; a test run alone builds it when missing.

export const BINARY = process.env.PEERLESS_BINARY ?? join(ROOT, 'dist', 'peerless');

export function singleExecutable(): string {
  if (!existsSync(BINARY)) execFileSync(process.execPath, [join(ROOT, 'scripts', 'build-binary.ts'), '--out', BINARY], { stdio: 'inherit' });
  return BINARY;
}

/** The binary's image recipe: the executable and nothing else (buildImage adds the libraries it links). */
export const binaryRecipe = (binary: string): Recipe => ({
  files: [[binary, '/usr/local/bin/peerless']],
  dirs: [],
  cmd: ['/usr/local/bin/peerless'],
  env: ['PATH=/usr/local/bin'],
  fingerprint: '',
});

/** Every file such an image holds, as buildRootfs lays it out (to show there is nothing else in it). */
export function binaryImageFiles(binary: string): string[] {
  const root = mkdtempSync(join(tmpdir(), 'pl-binfs-'));
  try {
    buildRootfs(binaryRecipe(binary), root, () => false);
    return execFileSync('find', [root, '-type', 'f'], { encoding: 'utf8' })
      .trim()
      .split('\n')
      .map((f) => `/${relative(root, f)}`)
      .sort();
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

export const buildBinaryImage = (binary: string, tag: string) => buildImage(docker, tag, binaryRecipe(binary), 'binary-test');
