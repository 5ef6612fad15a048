// One instance at a time of an action in a container shared by several
// (limits.concurrency > 1): a worker thread of the proxy, with its own isolate,
// module state, SDK and environment. It loads the code and says it is ready;
// then runs activations one after another, as a warm container does, each
// ended on both streams by the sentinel line once its logs are written.
import { parentPort, threadId, workerData } from 'node:worker_threads';
import { call, load, SENTINEL } from './load.mjs';

let entry;
try {
  entry = await load(workerData, `/tmp/action/${threadId}`);
  if (typeof entry !== 'function') throw Object.assign(new Error(`Action entrypoint '${workerData.main || 'main'}' is not a function.`), { plain: true });
  parentPort.postMessage({ type: 'ready' });
} catch (e) {
  if (!e.plain) console.error(e && e.stack ? e.stack : String(e));
  parentPort.postMessage({ type: 'init-error', error: e.plain ? e.message : `Initialization has failed due to: ${e && e.message ? e.message : String(e)}` });
}

parentPort.on('message', async ({ value, env }) => {
  // This thread's process.env is its own copy: the activation's values are this instance's alone.
  Object.assign(process.env, env);
  let sdk = null;
  let out;
  try {
    if (env.__OW_PEERLESS_TOKEN) {
      sdk = await import('peerless');
      await sdk._start();
    }
    out = await call(entry, value);
  } catch (e) {
    console.error(e && e.stack ? e.stack : String(e));
    out = [502, { error: `An error has occurred: ${e && e.message ? e.message : String(e)}` }];
  }
  let text;
  try {
    text = JSON.stringify(out[1]) ?? 'null';
  } catch {
    [out[0], text] = [502, JSON.stringify({ error: 'The action did not return a JSON-serializable dictionary.' })];
  }
  // What its sends handed over leaves before the thread may be ended.
  await sdk?._flushTraffic();
  await sdk?._end();
  parentPort.postMessage({ type: 'done', status: out[0], text });
  process.stdout.write(`${SENTINEL}\n`);
  process.stderr.write(`${SENTINEL}\n`);
});
