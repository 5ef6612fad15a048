// The Node.js action proxy: OpenWhisk's action protocol on port 8080.
// POST /init loads the code once; POST /run calls its entry point with the
// parameters. After every activation both stdout and stderr end with the
// sentinel line, so the platform can cut the log stream per activation.
import http from 'node:http';
import { writeFileSync, mkdirSync } from 'node:fs';
import { Module, createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';

const SENTINEL = 'XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX';
const IDENT = /^[A-Za-z_$][A-Za-z0-9_$]*(\.[A-Za-z_$][A-Za-z0-9_$]*)*$/;
let entry = null;

function reply(res, status, body) {
  let text = JSON.stringify(body);
  if (text === undefined) text = 'null';
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function pick(obj, path) {
  return path.split('.').reduce((o, k) => (o == null ? undefined : o[k]), obj);
}

async function load(value) {
  const main = value.main || 'main';
  if (!IDENT.test(main)) throw new Error(`entry point ${JSON.stringify(main)} is not an identifier`);
  if (value.binary) throw new Error('binary (zip) actions are not supported by this runtime; send the code as text');
  const code = typeof value.code === 'string' ? value.code : '';
  if (code.trim() === '') throw new Error('no code to initialize');
  mkdirSync('/tmp/action', { recursive: true });
  if (/^\s*(export|import)\s/m.test(code)) {
    const file = '/tmp/action/index.mjs';
    writeFileSync(file, code);
    const ns = await import(pathToFileURL(file).href);
    return pick(ns, main) ?? pick(ns.default, main);
  }
  const file = '/tmp/action/index.js';
  writeFileSync(file, code);
  const m = new Module(file);
  m.filename = file;
  m.paths = Module._nodeModulePaths('/tmp/action');
  m.require = createRequire(file);
  // Like OpenWhisk, a plain top-level `function main` works without exports.
  const hook = main.includes('.') ? '' : `\n;try{if(typeof module.exports.${main}!=='function'&&typeof ${main}==='function')module.exports.${main}=${main}}catch(_){}`;
  m._compile(code + hook, file);
  return pick(m.exports, main) ?? (main === 'main' && typeof m.exports === 'function' ? m.exports : undefined);
}

function endOfActivation() {
  process.stdout.write(`${SENTINEL}\n`);
  process.stderr.write(`${SENTINEL}\n`);
}

async function run(body) {
  for (const [k, v] of Object.entries(body)) {
    if (k !== 'value') process.env[`__OW_${k.toUpperCase()}`] = typeof v === 'string' ? v : JSON.stringify(v);
  }
  let sdk = null;
  try {
    if (body.peerless_token) {
      sdk = await import('peerless');
      await sdk._start();
    }
    const result = await entry(body.value ?? {});
    // A non-dictionary goes back as it is: the platform calls that a developer error.
    if (result === null || typeof result !== 'object' || Array.isArray(result)) return [200, result ?? null];
    if ('error' in result) return [502, { error: result.error }];
    return [200, result];
  } catch (e) {
    console.error(e && e.stack ? e.stack : String(e));
    return [502, { error: `An error has occurred: ${e && e.message ? e.message : String(e)}` }];
  } finally {
    sdk?._end();
    endOfActivation();
  }
}

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', async () => {
    let body;
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}');
    } catch {
      return reply(res, 400, { error: 'the request body is not JSON' });
    }
    if (req.method === 'POST' && req.url === '/init') {
      if (entry) return reply(res, 403, { error: 'Cannot initialize the action more than once.' });
      try {
        const fn = await load(body.value || {});
        if (typeof fn !== 'function') {
          endOfActivation();
          return reply(res, 502, { error: `Action entrypoint '${body.value?.main || 'main'}' is not a function.` });
        }
        entry = fn;
        return reply(res, 200, { ok: true });
      } catch (e) {
        console.error(e && e.stack ? e.stack : String(e));
        endOfActivation();
        return reply(res, 502, { error: `Initialization has failed due to: ${e && e.message ? e.message : String(e)}` });
      }
    }
    if (req.method === 'POST' && req.url === '/run') {
      if (!entry) return reply(res, 403, { error: 'The action has not been initialized.' });
      const [status, result] = await run(body);
      return reply(res, status, result);
    }
    reply(res, 404, { error: 'no such route' });
  });
});
server.keepAliveTimeout = 600_000;
server.listen(8080, '0.0.0.0');
// 128 + 15, as a shell reports it: the daemon tells a stop from outside apart from code that exits by itself.
process.on('SIGTERM', () => process.exit(143));
