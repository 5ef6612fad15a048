import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, statSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { createGunzip } from 'node:zlib';
import type Docker from 'dockerode';
import { extract, pack } from 'tar-stream';
import { embedded, isSingleExecutable } from '../sea/assets.ts';

// Runtime images are built here, offline: a root filesystem holding one
// interpreter, the shared libraries it links, and our action proxy, imported
// into the engine as a single layer. No registry is needed, and the tag is a
// hash of what went in, so a changed proxy yields a new image.
// The single executable carries each image's root filesystem, built the same
// way when the executable was (scripts/build-binary.ts), and imports that: a
// machine with Docker and nothing else can run both runtimes.

export type RuntimeKind = 'nodejs' | 'python';
// Functions, not constants: the single executable has no import.meta and never reads these.
const runtimeDir = () => join(dirname(fileURLToPath(import.meta.url)), 'runtime');
const fflateDir = () => join(dirname(fileURLToPath(import.meta.url)), '..', 'node_modules', 'fflate');
const PY_SKIP = new Set(['test', 'idlelib', 'tkinter', 'turtledemo', 'ensurepip', 'lib2to3', 'pydoc_data', 'distutils', '__pycache__']);
export const RUNTIME_USER = '10001:10001';

export interface Recipe {
  /** files to copy: absolute path on this machine → path in the image */
  files: [string, string][];
  /** directories to copy as they are */
  dirs: [string, string][];
  cmd: string[];
  env: string[];
  fingerprint: string;
}

function pythonBinary(): string {
  for (const p of ['/usr/bin/python3.11', '/usr/bin/python3']) if (existsSync(p)) return realpathSync(p);
  throw new Error('a Debian python3 is needed to build the Python runtime image (apt-get install python3)');
}

export function recipe(kind: RuntimeKind): Recipe {
  const proxyDir = join(runtimeDir(), kind);
  if (kind === 'nodejs') {
    const node = realpathSync(process.execPath);
    return {
      files: [[node, '/usr/bin/node']],
      // The SDK at /node_modules/peerless resolves for CommonJS and ES modules alike.
      // fflate unpacks zip actions (pure JavaScript, no dependencies of its own).
      dirs: [
        [proxyDir, '/proxy'],
        [join(proxyDir, 'sdk'), '/node_modules/peerless'],
        [fflateDir(), '/proxy/node_modules/fflate'],
      ],
      cmd: ['/usr/bin/node', '/proxy/proxy.mjs'],
      env: ['PATH=/usr/bin', 'HOME=/tmp'],
      fingerprint: process.version,
    };
  }
  const py = pythonBinary();
  const version = execFileSync(py, ['-c', 'import sys; print("%d.%d" % sys.version_info[:2])'], { encoding: 'utf8' }).trim();
  const lib = `/usr/lib/python${version}`;
  return {
    files: [[py, `/usr/bin/python${version}`]],
    dirs: [
      [lib, lib],
      [proxyDir, '/proxy'],
    ],
    cmd: [`/usr/bin/python${version}`, '/proxy/proxy.py'],
    env: ['PATH=/usr/bin', 'PYTHONDONTWRITEBYTECODE=1', 'PYTHONUNBUFFERED=1', 'PYTHONPATH=/proxy', 'HOME=/tmp'],
    fingerprint: execFileSync(py, ['--version'], { encoding: 'utf8' }).trim(),
  };
}

function hashTree(h: ReturnType<typeof createHash>, dir: string): void {
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) hashTree(h, p);
    else h.update(name).update(readFileSync(p));
  }
}

export function imageTag(kind: RuntimeKind): string {
  const r = recipe(kind);
  const h = createHash('sha256').update(r.fingerprint).update(JSON.stringify(r.cmd)).update(JSON.stringify(r.env));
  hashTree(h, join(runtimeDir(), kind));
  return `peerless/runtime-${kind}:${h.digest('hex').slice(0, 12)}`;
}

/** Every shared object the given ELF files load, by ldd. */
function sharedLibraries(elfs: string[]): Set<string> {
  const libs = new Set<string>();
  for (const f of elfs) {
    let out = '';
    try {
      out = execFileSync('ldd', [f], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    } catch {
      continue; // not dynamic
    }
    for (const line of out.split('\n')) {
      const m = /=>\s*(\/\S+)/.exec(line) ?? /^\s*(\/\S+)\s+\(/.exec(line);
      if (m) libs.add(m[1]!);
    }
  }
  return libs;
}

function filesUnder(dir: string, pred: (p: string) => boolean, out: string[] = []): string[] {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) filesUnder(p, pred, out);
    else if (pred(p)) out.push(p);
  }
  return out;
}

export const PYTHON_SKIP = (src: string) => PY_SKIP.has(src.split('/').pop()!) || src.includes('/config-3.');

export function buildRootfs(r: Recipe, root: string, skip: (path: string) => boolean): void {
  for (const [from, to] of r.files) {
    mkdirSync(join(root, dirname(to)), { recursive: true });
    copyFileSync(from, join(root, to));
  }
  for (const [from, to] of r.dirs) cpSync(from, join(root, to), { recursive: true, dereference: true, filter: (src) => !skip(src) });
  const elfs = [...r.files.map(([f]) => f), ...r.dirs.flatMap(([d]) => filesUnder(d, (p) => p.endsWith('.so') || p.endsWith('.node')))];
  for (const lib of sharedLibraries(elfs)) {
    mkdirSync(join(root, dirname(lib)), { recursive: true });
    copyFileSync(lib, join(root, lib));
  }
  mkdirSync(join(root, 'tmp'), { recursive: true });
  chmodSync(join(root, 'tmp'), 0o1777);
}

/** Imports a root filesystem as a tar stream (gzip or not) into the engine as the image `tag`. */
async function importTar(docker: Docker, tar: Readable, tag: string, r: Pick<Recipe, 'cmd' | 'env'>, label: string): Promise<void> {
  const [repo, version] = tag.split(':') as [string, string];
  const changes = [`CMD ${JSON.stringify(r.cmd)}`, ...r.env.map((e) => `ENV ${e}`), `USER ${RUNTIME_USER}`, 'WORKDIR /tmp', 'EXPOSE 8080', `LABEL peerless.runtime=${label}`];
  const stream = await docker.importImage(tar as unknown as string, { repo, tag: version, changes } as object);
  await new Promise<void>((resolve, reject) =>
    docker.modem.followProgress(stream, (err: Error | null, out: { error?: string }[]) => {
      const failed = err ?? out.find((o) => o.error);
      if (failed) reject(err ?? new Error(String((failed as { error?: string }).error)));
      else resolve();
    }),
  );
}

/** Builds an image from a recipe: the files, the directories, and every shared library they link. */
export async function buildImage(docker: Docker, tag: string, r: Recipe, label: string, skip: (path: string) => boolean = () => false): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), 'peerless-rootfs-'));
  try {
    buildRootfs(r, root, skip);
    const tar = spawn('tar', ['-C', root, '--numeric-owner', '--owner=0', '--group=0', '-c', '.'], { stdio: ['ignore', 'pipe', 'inherit'] });
    await importTar(docker, tar.stdout, tag, r, label);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

export async function imageExists(docker: Docker, tag: string): Promise<boolean> {
  try {
    await docker.getImage(tag).inspect();
    return true;
  } catch {
    return false;
  }
}

/** Builds the runtime image unless the engine already has this exact one. Returns its tag. */
export async function ensureRuntimeImage(docker: Docker, kind: RuntimeKind): Promise<{ tag: string; built: boolean }> {
  const sea = isSingleExecutable() ? embeddedRuntime(kind) : undefined;
  const tag = sea?.tag ?? imageTag(kind);
  if (await imageExists(docker, tag)) return { tag, built: false };
  if (sea) await importTar(docker, embeddedRootfs(kind), tag, sea, kind);
  else await buildImage(docker, tag, recipe(kind), kind, kind === 'python' ? PYTHON_SKIP : undefined);
  // Also tag it :latest, so `docker run peerless/runtime-nodejs` works for people.
  await docker.getImage(tag).tag({ repo: tag.split(':')[0]!, tag: 'latest' });
  return { tag, built: true };
}

/** What the build records of each embedded image (scripts/build-binary.ts writes it). */
export interface EmbeddedRuntime {
  tag: string;
  cmd: string[];
  env: string[];
}
export const EMBEDDED_MANIFEST = 'runtime/manifest.json';
export const embeddedRootfsName = (kind: RuntimeKind) => `runtime/${kind}.tar.gz`;
/** Where the Node.js image's interpreter goes; the build leaves it out of the embedded root filesystem. */
export const NODE_IN_IMAGE = 'usr/bin/node';

const embeddedRuntime = (kind: RuntimeKind): EmbeddedRuntime => (JSON.parse(embedded(EMBEDDED_MANIFEST).toString('utf8')) as Record<RuntimeKind, EmbeddedRuntime>)[kind];

/**
 * The single executable is Node.js with a blob injected and its "fuse" set to
 * run that blob (postject's sentinel). The same file with the fuse reset is a
 * plain `node`, so the Node.js image gets its interpreter from the executable
 * itself instead of a second copy of Node.js inside it. The sentinel is built
 * from parts so that the bundle, which holds this code, does not contain it.
 */
export function plainNode(executable: Buffer): Buffer {
  const fuse = Buffer.from(`${['NODE', 'SEA', 'FUSE', 'fce680ab2cc467b6e072b8b5df1996b2'].join('_')}:1`);
  const at = executable.indexOf(fuse);
  if (at < 0 || executable.indexOf(fuse, at + 1) >= 0) throw new Error('the executable does not hold exactly one set single-executable fuse');
  const node = Buffer.from(executable);
  node[at + fuse.length - 1] = '0'.charCodeAt(0);
  return node;
}

/** The embedded root filesystem as a tar stream; the Node.js one with `node` added. */
function embeddedRootfs(kind: RuntimeKind): Readable {
  const gz = embedded(embeddedRootfsName(kind));
  if (kind === 'python') return Readable.from([gz]);
  const node = plainNode(readFileSync(process.execPath));
  const out = pack();
  const entries = extract();
  entries.on('entry', (header, body, next) => body.pipe(out.entry(header, next)));
  entries.on('finish', () => {
    out.entry({ name: NODE_IN_IMAGE, mode: 0o755, uid: 0, gid: 0, mtime: new Date(0) }, node);
    out.finalize();
  });
  entries.on('error', (e) => out.destroy(e));
  Readable.from([gz])
    .pipe(createGunzip())
    .on('error', (e) => out.destroy(e))
    .pipe(entries);
  return out as unknown as Readable;
}
