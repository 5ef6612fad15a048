// A conformance member in Node.js: the real SDK, outside a container, told what to do by a JSON
// argument (see wire.test.ts); prints one JSON line with what it saw. member.py is its Python twin.
import { createHash } from 'node:crypto';
import * as peerless from '../../sandbox/runtime/nodejs/sdk/index.js';

const task = JSON.parse(process.argv[2]);
// A member that hangs says where, instead of holding the test to its time-out.
let step = 'start';
setTimeout(
  () => {
    console.error(`hung at ${step}`);
    process.exit(4);
  },
  (task.limit ?? 50) * 1000,
).unref();
/** The test pattern for a message of `size` bytes: both languages build the same bytes. */
export function pattern(size) {
  const block = Buffer.alloc(256);
  for (let j = 0; j < 256; j++) block[j] = (j + size) % 256;
  const out = Buffer.allocUnsafe(size);
  for (let o = 0; o < size; o += 256) block.copy(out, o, 0, Math.min(256, size - o));
  return out;
}
const sha = (b) => createHash('sha256').update(b).digest('hex').slice(0, 16);
const cat = (a, b) => a + b;

await peerless._start();
process.stdout.write('ready\n');
let out;
if (task.do === 'send') {
  await peerless.waitFor([task.to], 10000);
  // All at once: frames of concurrent sends to one peer must arrive whole.
  await Promise.all(task.sizes.map((s) => peerless.send(task.to, pattern(s))));
  out = { sent: task.sizes.length };
} else if (task.do === 'recv') {
  const got = [];
  for await (const { from, data } of peerless.messages({ signal: AbortSignal.timeout(60000) })) {
    got.push({ from, size: data.length, ok: data.equals(pattern(data.length)), sha: sha(data) });
    if (got.length === task.count) break;
  }
  out = { got: got.sort((a, b) => a.size - b.size), refused: peerless.refused };
} else if (task.do === 'collectives') {
  const ids = task.ids;
  const me = peerless.instanceId();
  const r = ids.indexOf(me);
  const n = ids.length;
  const at = async (name, p) => ((step = name), await p);
  out = {
    sum: await at('sum', peerless.allreduce(ids, r + 1, 'sum')),
    vec: [...(await at('vec', peerless.allreduce(ids, new Float64Array([r, 10 - r]), 'min')))],
    big: [...(await at('big', peerless.allreduce(ids, new Float64Array(20_000).fill(r), 'sum'))).slice(0, 3)],
    order: await at('order', peerless.allreduce(ids, `${r},`, cat)),
    reduced: (await at('reduce', peerless.reduce(ids, `${r}|`, cat, { root: ids[n - 1] }))) ?? null,
    scan: await at('scan', peerless.scan(ids, r + 0.5, 'sum')),
    bcast: (await at('bcast', peerless.broadcast(ids, me === ids[1 % n] ? 'from the root' : '', { root: ids[1 % n] }))).toString(),
    aio: await at('aio', peerless.allreduce(ids, 2, 'sum')),
    shuffle: (
      await at(
        'alltoall',
        peerless.alltoall(
          ids,
          ids.map((_, j) => `${r}->${j}`),
        ),
      )
    ).map(String),
  };
  step = 'barrier';
  await peerless.barrier(ids);
  if (task.dieAt === me) process.exit(3);
  try {
    out.after = await peerless.allreduce(ids, 1, 'sum', {});
  } catch (e) {
    out.after = { error: e.name, instance: e.instance };
  }
}
process.stdout.write(JSON.stringify(out) + '\n');
process.exit(0);
