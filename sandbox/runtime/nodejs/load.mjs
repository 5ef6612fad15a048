// Loads an action's code, for the proxy (one instance per container) and for
// each instance's worker thread (several per container) alike.
import { writeFileSync, mkdirSync } from 'node:fs';
import { Module, createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';

export const SENTINEL = 'XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX';
const IDENT = /^[A-Za-z_$][A-Za-z0-9_$]*(\.[A-Za-z_$][A-Za-z0-9_$]*)*$/;

function pick(obj, path) {
  return path.split('.').reduce((o, k) => (o == null ? undefined : o[k]), obj);
}

/** The entry point named by `value.main`, from `value.code` written under `dir`: a function, or undefined. */
export async function load(value, dir = '/tmp/action') {
  const main = value.main || 'main';
  if (!IDENT.test(main)) throw new Error(`entry point ${JSON.stringify(main)} is not an identifier`);
  if (value.binary) throw new Error('binary (zip) actions are not supported by this runtime; send the code as text');
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
