// One member of a collectives benchmark: `reps` allreduces (sum of Float32Array) or barriers over `ids`,
// timed one by one, through the peerless SDK (mode "peerless") or relayed through Redis (mode "redis":
// every member pushes its value, rank 0 pops them all, sums and pushes the result back to each: the
// centralized baseline FMI compares with). Rank 0's times are the collective's: every round waits for all.
const peerless = require('peerless');

async function main(p) {
  const { ids, reps, what, mode } = p;
  const n = ids.length;
  const r = ids.indexOf(peerless.instanceId());
  const value = new Float32Array(Math.max(1, p.size / 4)).fill(r);
  await peerless.waitFor(ids, 120000);
  let op;
  let redis = null;
  if (mode === 'raw') {
    // The floor: a 4-byte round trip between rank 0 and rank 1 over plain TCP, no SDK on the data path.
    const net = require('net');
    if (r === 1) {
      const server = net.createServer((s) => s.on('data', (c) => s.write(c)));
      await new Promise((res) => server.listen(7802, res));
      await peerless.recv(ids[0]); // rank 0 is done
      server.close();
      return { rank: r, times: [] };
    }
    const peer = (await peerless.lookup(ids[1])).ip;
    let s;
    for (;;) {
      s = net.connect(7802, peer);
      s.setNoDelay(true);
      const ok = await new Promise((res) => {
        s.once('connect', () => res(true));
        s.once('error', () => res(false));
      });
      if (ok) break;
      await new Promise((res) => setTimeout(res, 20));
    }
    const four = Buffer.alloc(4);
    const rtt = () =>
      new Promise((res) => {
        s.once('data', res);
        s.write(four);
      });
    op = rtt;
    const times = [];
    await op();
    for (let i = 0; i < reps; i++) {
      const t0 = process.hrtime.bigint();
      await op();
      times.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    s.destroy();
    await peerless.send(ids[1], 'done');
    return { rank: r, times };
  }
  if (mode === 'peerless') {
    op = what === 'barrier' ? () => peerless.barrier(ids) : () => peerless.allreduce(ids, value, 'sum');
  } else {
    const Redis = require('ioredis');
    redis = new Redis({ host: p.redis, port: 6379, maxRetriesPerRequest: 1, enableAutoPipelining: false });
    await redis.ping();
    const bytes = what === 'barrier' ? Buffer.alloc(0) : Buffer.from(value.buffer);
    const f32 = (b) => new Float32Array(Uint8Array.from(b).buffer); // its own aligned copy
    let it = 0;
    op = async () => {
      const k = `${p.run}:${it++}`;
      if (r !== 0) {
        await redis.lpush(`in:${k}`, bytes);
        const [, got] = await redis.brpopBuffer(`out:${k}:${r}`, 0);
        return what === 'barrier' ? null : f32(got);
      }
      const acc = what === 'barrier' ? null : Float32Array.from(value);
      for (let i = 1; i < n; i++) {
        const [, got] = await redis.brpopBuffer(`in:${k}`, 0);
        if (acc) {
          const v = f32(got);
          for (let j = 0; j < acc.length; j++) acc[j] += v[j];
        }
      }
      const out = acc ? Buffer.from(acc.buffer) : Buffer.alloc(0);
      const pipe = redis.pipeline();
      for (let i = 1; i < n; i++) pipe.lpush(`out:${k}:${i}`, out);
      await pipe.exec();
      return acc;
    };
  }
  try {
    const first = await op(); // warm: connections open, every member in step
    if (what !== 'barrier' && first[0] !== (n * (n - 1)) / 2) throw new Error(`wrong sum ${first[0]}`);
    const times = [];
    for (let i = 0; i < reps; i++) {
      const t0 = process.hrtime.bigint();
      await op();
      times.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    return { rank: r, times };
  } finally {
    redis?.disconnect();
  }
}
