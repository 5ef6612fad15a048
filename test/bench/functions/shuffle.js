// One worker of a shuffle benchmark: every worker holds `total / n` bytes in n parts and part j must reach
// worker j. Three ways: the peerless SDK's alltoall (direct), relayed through Redis (each part pushed to a
// list of its receiver's, popped there), or through NATS (each part published, in 512 KiB chunks, to its
// receiver's subject). Each worker returns when it started (after a barrier) and when it had all it was due,
// in epoch milliseconds: the shuffle took the last end minus the first start.
const peerless = require('peerless');
const now = () => performance.timeOrigin + performance.now();

async function main(p) {
  const { ids, mode, run } = p;
  const n = ids.length;
  const r = ids.indexOf(peerless.instanceId());
  const per = Math.floor(p.total / n / n);
  const parts = ids.map((_, j) => Buffer.alloc(per, (r * 31 + j) & 255));
  const due = per * (n - 1);
  await peerless.waitFor(ids, 120000);
  let client = null;
  try {
    let go;
    if (mode === 'peerless') {
      // Connections opened ahead, as the relays' clients connect ahead: only moving the bytes is timed.
      await Promise.all(ids.filter((_, j) => j !== r).map((id) => peerless.connect(id)));
      go = async () => {
        const got = await peerless.alltoall(ids, parts);
        return got.reduce((s, b, i) => s + (i === r ? 0 : b.length), 0);
      };
    } else if (mode === 'redis') {
      const Redis = require('ioredis');
      client = new Redis({ host: p.host, port: 6379, maxRetriesPerRequest: 1 });
      await client.ping();
      go = async () => {
        await Promise.all(ids.map((_, j) => (j === r ? null : client.lpush(`s:${run}:${j}`, parts[j]))));
        const pop = new Redis({ host: p.host, port: 6379, maxRetriesPerRequest: 1 });
        let bytes = 0;
        for (let i = 0; i < n - 1; i++) bytes += (await pop.brpopBuffer(`s:${run}:${r}`, 0))[1].length;
        pop.disconnect();
        return bytes;
      };
    } else {
      const { connect } = require('nats');
      client = await connect({ servers: `${p.host}:4222`, maxReconnectAttempts: 0 });
      let bytes = 0;
      let done;
      const all = new Promise((res) => (done = res));
      const sub = client.subscribe(`s.${run}.${r}`, {
        callback: (_, m) => {
          bytes += m.data.length;
          if (bytes >= due) done();
        },
      });
      await client.flush();
      go = async () => {
        const CHUNK = 512 * 1024;
        for (let j = 0; j < n; j++) {
          if (j === r) continue;
          for (let o = 0; o < per; o += CHUNK) client.publish(`s.${run}.${j}`, parts[j].subarray(o, Math.min(per, o + CHUNK)));
        }
        await client.flush();
        if (due > 0) await all;
        sub.unsubscribe();
        return bytes;
      };
    }
    await peerless.barrier(ids);
    const start = now();
    const bytes = await go();
    const end = now();
    if (bytes !== due) throw new Error(`got ${bytes} bytes, due ${due}`);
    return { rank: r, start, end };
  } finally {
    if (client) mode === 'redis' ? client.disconnect() : await client.close();
  }
}
