// Builds the single executable `peerless` for linux-x64 (npm run build:binary):
// Node.js 24 (this one) with the project bundled into it as a single-executable
// application. Usage: node scripts/build-binary.ts [--out dist/peerless]
//
//  1. esbuild bundles cli/ (with the daemon) into one CommonJS file; the
//     native addons' loaders are swapped for sea/addons.ts.
//  2. Each runtime image's root filesystem is built as `peerless images build`
//     builds it (the interpreter, the libraries it links, proxy and SDK) and
//     packed as a reproducible tar.gz; the Node.js one without `node`, which
//     the executable supplies at import (sandbox/images.ts).
//  3. Node makes the blob (code, assets) and postject injects it into a copy
//     of this `node`.
// Reproducible: fixed mtimes, owners and order in the tars, gzip without a
// name or time, the main script named relative to the work directory, and no
// code cache: the same commit gives the same bytes. V8's code cache would
// start it faster (`--version` 237 ms instead of 391, medians of 20 on this
// machine) but differs from build to build. Minifying gained nothing measurable.

import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import * as esbuild from 'esbuild';
import { buildRootfs, EMBEDDED_MANIFEST, type EmbeddedRuntime, embeddedRootfsName, NODE_IN_IMAGE, PYTHON_SKIP, type RuntimeKind, recipe } from '../sandbox/images.ts';
import { ASSET_FILES } from '../sea/assets.ts';

const ROOT = resolve(import.meta.dirname, '..');
const ADDONS = ['sodium-native', 'udx-native'] as const;
const FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';

const { values } = parseArgs({ options: { out: { type: 'string', default: join(ROOT, 'dist', 'peerless') } } });
const out = resolve(values.out);
const work = mkdtempSync(join(tmpdir(), 'peerless-build-'));
const git = (...args: string[]) => execFileSync('git', ['-C', ROOT, ...args], { encoding: 'utf8' }).trim();

/** The package's version, with the commit it was built from (and `.dirty` for uncommitted changes). */
function buildVersion(): string {
  const base = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
  try {
    return `${base}+${git('rev-parse', '--short=12', 'HEAD')}${git('status', '--porcelain', '--untracked-files=no') ? '.dirty' : ''}`;
  } catch {
    return base; // not a git checkout
  }
}

async function bundle(file: string): Promise<void> {
  const addonLoader: esbuild.Plugin = {
    name: 'peerless-addons',
    setup(b) {
      // Each addon package's binding.js asks require-addon for its prebuild next to itself; in the
      // executable there is no "next to itself", so the binding comes from the embedded copy instead.
      const re = new RegExp(`node_modules/(${ADDONS.join('|')})/binding\\.js$`);
      b.onLoad({ filter: re }, (a) => ({
        contents: `module.exports = require(${JSON.stringify(join(ROOT, 'sea', 'addons.ts'))}).loadAddon(${JSON.stringify(re.exec(a.path)![1])});`,
        loader: 'js',
        resolveDir: ROOT,
      }));
    },
  };
  await esbuild.build({
    entryPoints: [join(ROOT, 'sea', 'main.ts')],
    // Paths in the bundle's comments are relative to this: the same bytes from any clone's location.
    absWorkingDir: ROOT,
    outfile: file,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node24',
    // ssh2 (dockerode's, for ssh:// engines, unused) tries these optional addons and does without.
    external: ['cpu-features', '*/sshcrypto.node'],
    plugins: [addonLoader],
    logLevel: 'warning',
    // import.meta is read only in a checkout (sea/assets.ts, sandbox/images.ts).
    logOverride: { 'empty-import-meta': 'silent' },
    legalComments: 'none',
  });
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** One runtime image's root filesystem as a reproducible tar.gz, and what the manifest records of it. */
function rootfs(kind: RuntimeKind, file: string): EmbeddedRuntime {
  const r = recipe(kind);
  const root = join(work, `rootfs-${kind}`);
  buildRootfs(r, root, kind === 'python' ? PYTHON_SKIP : () => false);
  if (kind === 'nodejs') rmSync(join(root, NODE_IN_IMAGE));
  const tar = execFileSync('tar', ['-C', root, '--sort=name', '--mtime=@0', '--numeric-owner', '--owner=0', '--group=0', '--format=gnu', '-c', '.'], { maxBuffer: 1 << 30 });
  writeFileSync(file, execFileSync('gzip', ['-n', '-9'], { input: tar, maxBuffer: 1 << 30 }));
  // The tag names what is in the image: the root filesystem and, for Node.js, the Node.js version it gets.
  const tag = `peerless/runtime-${kind}:${sha(Buffer.concat([readFileSync(file), Buffer.from(JSON.stringify([r.cmd, r.env, kind === 'nodejs' ? process.version : '']))])).slice(0, 12)}`;
  return { tag, cmd: r.cmd, env: r.env };
}

try {
  const started = performance.now();
  const version = buildVersion();
  const assets: Record<string, string> = {};
  for (const [name, path] of Object.entries(ASSET_FILES)) assets[name] = join(ROOT, path);
  writeFileSync(join(work, 'version'), version);
  assets.version = join(work, 'version');
  for (const a of ADDONS) assets[`addons/${a}.node`] = join(ROOT, 'node_modules', a, 'prebuilds', 'linux-x64', `${a}.node`);
  const manifest: Record<string, EmbeddedRuntime> = {};
  for (const kind of ['nodejs', 'python'] as const) {
    const file = join(work, `${kind}.tar.gz`);
    manifest[kind] = rootfs(kind, file);
    assets[embeddedRootfsName(kind)] = file;
  }
  writeFileSync(join(work, 'manifest.json'), JSON.stringify(manifest));
  assets[EMBEDDED_MANIFEST] = join(work, 'manifest.json');

  const main = join(work, 'peerless.cjs');
  await bundle(main);
  const blob = join(work, 'sea.blob');
  // The blob records the main script's path as given: relative to the work directory, so that the
  // temporary directory's random name does not end up in the executable.
  const config = { main: 'peerless.cjs', output: blob, disableExperimentalSEAWarning: true, useSnapshot: false, useCodeCache: false, assets };
  writeFileSync(join(work, 'sea-config.json'), JSON.stringify(config));
  execFileSync(process.execPath, ['--experimental-sea-config', 'sea-config.json'], { stdio: 'ignore', cwd: work });

  mkdirSync(dirname(out), { recursive: true });
  rmSync(out, { force: true });
  copyFileSync(process.execPath, out);
  chmodSync(out, 0o755);
  // postject's LIEF warns about note sections it cannot name; harmless and well known, so only failures are shown.
  const injected = spawnSync(process.execPath, [join(ROOT, 'node_modules', 'postject', 'dist', 'cli.js'), out, 'NODE_SEA_BLOB', blob, '--sentinel-fuse', FUSE], { encoding: 'utf8' });
  if (injected.status !== 0) throw new Error(`postject failed: ${injected.stderr}`);
  const bytes = readFileSync(out);
  const mb = (p: string) => (statSync(p).size / 1e6).toFixed(1);
  process.stdout.write(
    [
      `${out}: peerless ${version}, Node.js ${process.version}`,
      `  size ${mb(out)} MB (node ${mb(process.execPath)} MB, bundle ${mb(main)} MB, nodejs rootfs ${mb(assets[embeddedRootfsName('nodejs')]!)} MB, python rootfs ${mb(assets[embeddedRootfsName('python')]!)} MB gzipped)`,
      `  sha256 ${sha(bytes)}`,
      `  built in ${((performance.now() - started) / 1000).toFixed(1)} s`,
      '',
    ].join('\n'),
  );
} finally {
  rmSync(work, { recursive: true, force: true });
}
