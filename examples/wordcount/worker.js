// A word-count worker: receives one block from its master, answers with the counts.
const peerless = require('peerless');

async function main(p) {
  const { data } = await peerless.recv(p.master);
  const counts = {};
  for (const w of data.toString().toLowerCase().match(/[a-z0-9']+/g) ?? []) counts[w] = (counts[w] ?? 0) + 1;
  await peerless.send(p.master, JSON.stringify(counts));
  return { words: Object.values(counts).reduce((a, b) => a + b, 0) };
}
