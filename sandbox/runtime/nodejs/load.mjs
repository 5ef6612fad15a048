// Loads an action's code, for the proxy (one instance per container) and for
// each instance's worker thread (several per container) alike.
import { existsSync, writeFileSync, mkdirSync } from 'node:fs';
import { Module, createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { unzipSync } from 'fflate';

export const SENTINEL = 'XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX';
const IDENT = /^[A-Za-z_$][A-Za-z0-9_$]*(\.[A-Za-z_$][A-Za-z0-9_$]*)*$/;

function pick(obj, path) {
  return path.split('.').reduce((o, k) => (o == null ? undefined : o[k]), obj);
}

/**
 * Unpacks a zip action (base64) into `dir`, once per container, inside its writable /tmp: a bad archive
 * is an init error that says what is wrong. Returns `dir`.
 */
export function unpack(base64, dir = '/tmp/action-zip') {
  const bytes = Buffer.from(base64, 'base64');
  if (!(bytes[0] === 0x50 && bytes[1] === 0x4b && bytes[2] === 0x03 && bytes[3] === 0x04)) {
    throw new Error('There was an error uncompressing the action archive. The file type is unsupported: send a zip archive');
  }
  let files;
  try {
    files = unzipSync(bytes);
  } catch (e) {
    throw new Error(`There was an error uncompressing the action archive: ${e.message}`);
  }
  const root = resolve(dir);
  for (const [name, data] of Object.entries(files)) {
    const to = resolve(root, name);
    // An entry may not write outside the action's directory (a zip slip).
    if (to !== root && !to.startsWith(`${root}/`)) throw new Error(`the action archive has an entry outside its root: ${name}`);
    if (name.endsWith('/')) mkdirSync(to, { recursive: true });
    else {
      mkdirSync(dirname(to), { recursive: true });
      writeFileSync(to, data);
    }
  }
  return root;
}

/** A zip action's entry point, as OpenWhisk's Node.js runtime finds it: package.json's main or index.js, or file.func. */
function loadUnpacked(root, main) {
  const req = createRequire(join(root, 'index.js'));
  const dot = main.indexOf('.');
  if (dot > 0) return pick(req(join(root, main.slice(0, dot))), main.slice(dot + 1));
  if (!existsSync(join(root, 'package.json')) && !existsSync(join(root, 'index.js'))) {
    throw new Error('Zipped actions must contain either package.json or index.js at the root.');
  }
  const m = req(root);
  return pick(m, main) ?? (main === 'main' && typeof m === 'function' ? m : undefined);
}

/** The entry point named by `value.main`, from `value.code` written under `dir` (or an unpacked archive at `value.root`): a function, or undefined. */
export async function load(value, dir = '/tmp/action') {
  const main = value.main || 'main';
  if (!IDENT.test(main)) throw new Error(`entry point ${JSON.stringify(main)} is not an identifier`);
  if (value.root) return loadUnpacked(value.root, main);
  const code = typeof value.code === 'string' ? value.code : '';
  if (code.trim() === '') throw new Error('no code to initialize');
  mkdirSync(dir, { recursive: true });
  if (/^\s*(export|import)\s/m.test(code)) {
    const file = `${dir}/index.mjs`;
    writeFileSync(file, code);
    const ns = await import(pathToFileURL(file).href);
    return pick(ns, main) ?? pick(ns.default, main);
  }
  const file = `${dir}/index.js`;
  writeFileSync(file, code);
  const m = new Module(file);
  m.filename = file;
  m.paths = Module._nodeModulePaths(dir);
  m.require = createRequire(file);
  // Like OpenWhisk, a plain top-level `function main` works without exports.
  const hook = main.includes('.') ? '' : `\n;try{if(typeof module.exports.${main}!=='function'&&typeof ${main}==='function')module.exports.${main}=${main}}catch(_){}`;
  m._compile(code + hook, file);
  return pick(m.exports, main) ?? (main === 'main' && typeof m.exports === 'function' ? m.exports : undefined);
}

/** Runs the entry point on an activation's parameters: [HTTP status, body] as the action protocol has it. */
export async function call(entry, value) {
  try {
    const result = await entry(value ?? {});
    // OpenWhisk's proxies answer a result that is neither a dictionary nor an array with a 502 of their own.
    if (result === undefined) return [200, {}];
    if (Array.isArray(result)) return [200, result];
    if (result === null || typeof result !== 'object') return [502, { error: 'The action did not return a dictionary or array.' }];
    if ('error' in result) return [502, { error: result.error }];
    return [200, result];
  } catch (e) {
    console.error(e && e.stack ? e.stack : String(e));
    return [502, { error: `An error has occurred: ${e && e.message ? e.message : String(e)}` }];
  }
}
