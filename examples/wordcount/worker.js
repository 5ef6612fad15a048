// A word-count worker: receives one block from its master, answers with the counts.
// `crash: ID` (from the master) makes that worker die after it got its block, the
// first time only: a restarted worker (epoch > 0) does its work.
const peerless = require('peerless');

async function main(p) {
  const { data } = await peerless.recv(p.master);
  if (p.crash === peerless.instanceId() && !(await peerless.self()).entry?.epoch) process.exit(1);
  const counts = {};
  for (const w of data
    .toString()
    .toLowerCase()
    .match(/[a-z0-9']+/g) ?? [])
    counts[w] = (counts[w] ?? 0) + 1;
  await peerless.send(p.master, JSON.stringify(counts));
  return { words: Object.values(counts).reduce((a, b) => a + b, 0) };
}
