// Word count, scatter-gather (a seed thesis's workload). The master splits the
// text into blocks of about `block` bytes (cut at a space, never inside a word),
// spawns one worker instance per block (a job: placed over every daemon of the
// cluster, admitted whole or not at all), scatters the blocks straight to them
// and gathers their counts (`-p workers N` asks for N workers instead).
// `-p restart on-failure:2` has the job start a failed worker again: the
// master then sees PeerRestartedError, resends that worker its block and
// waits for its answer (`-p crash wc-w3` makes worker wc-w3 die once, to try it).
// Invoke it with an instance ID, so workers can answer:
//   peerless fn create wordcount examples/wordcount/master.js --timeout 300
//   peerless fn create wordcount-worker examples/wordcount/worker.js --memory 128 --timeout 300
// (300 s: a hundred workers started cold wait for the slowest to start before the master scatters.)
//   peerless fn invoke wordcount --instance wc -P examples/wordcount/input-50.json --result
const peerless = require('peerless');

function split(text, block) {
  const blocks = [];
  let start = 0;
  while (start < text.length) {
    let end = Math.min(start + block, text.length);
    if (end < text.length) {
      const space = text.lastIndexOf(' ', end);
      if (space > start) end = space + 1;
    }
    blocks.push(text.slice(start, end));
    start = end;
  }
  return blocks;
}

/** Exactly n blocks, splitting between words: for runs that ask for a worker count rather than a block size. */
function splitWords(text, n) {
  const words = text.split(' ');
  return Array.from({ length: n }, (_, i) => words.slice(Math.floor((i * words.length) / n), Math.floor(((i + 1) * words.length) / n)).join(' '));
}

const left = () => Math.max(1000, Number(process.env.__OW_DEADLINE) - Date.now() - 1000);

/** Sends a worker its block; if its job restarted it meanwhile, waits for the new one and sends again. */
async function hand(id, block) {
  for (;;) {
    try {
      return await peerless.send(id, block);
    } catch (e) {
      if (!(e instanceof peerless.PeerRestartedError)) throw e;
      await peerless.waitFor([id], left());
    }
  }
}

/** A worker's counts; a worker restarted before it answered lost its block: it gets it again. */
async function countsOf(id, block) {
  for (;;) {
    try {
      return JSON.parse((await peerless.recv(id)).data.toString());
    } catch (e) {
      if (!(e instanceof peerless.PeerRestartedError)) throw e;
      await peerless.waitFor([id], left());
      await hand(id, block);
    }
  }
}

async function main(p) {
  const me = peerless.instanceId();
  if (!me) return { error: 'invoke the master with --instance ID' };
  const t0 = Date.now();
  const blocks = p.workers ? splitWords(String(p.text ?? ''), Number(p.workers)) : split(String(p.text ?? ''), Number(p.block ?? 300));
  const ids = blocks.map((_, i) => `${me}-w${i}`);
  await peerless.spawn(p.worker ?? 'wordcount-worker', { instances: ids, params: { master: me, crash: p.crash ?? null }, ...(p.restart ? { restart: p.restart } : {}) });
  await peerless.waitFor(ids, left());
  await Promise.all(ids.map((id, i) => hand(id, blocks[i])));
  const counts = {};
  for (const part of await Promise.all(ids.map((id, i) => countsOf(id, blocks[i])))) {
    for (const [w, n] of Object.entries(part)) counts[w] = (counts[w] ?? 0) + n;
  }
  const words = Object.values(counts).reduce((a, b) => a + b, 0);
  const top = Object.entries(counts)
    .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
    .slice(0, 5);
  return { workers: ids.length, words, distinct: Object.keys(counts).length, top, ms: Date.now() - t0, job: peerless.spawn.lastJob };
}
