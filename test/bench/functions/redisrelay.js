// The baseline the seed paper compared against: every message relayed through
// Redis (push, then blocking pop), one command at a time, with ioredis.
const Redis = require('ioredis');
const peerless = require('peerless');

async function main(p) {
  const n = Number(p.n);
  const size = Number(p.size);
  const me = peerless.instanceId();
  const q = `q-${p.run}`;
  const ack = `ack-${p.run}`;
  const redis = new Redis({ host: p.redis, port: 6379, maxRetriesPerRequest: 1, enableAutoPipelining: false });
  try {
    await peerless.waitFor(['ping', 'pong'], 30000);
    await redis.ping(); // connected before the clock starts
    if (me === 'pong') {
      let bytes = 0;
      for (let i = 0; i < n; i++) bytes += (await redis.brpopBuffer(q, 0))[1].length;
      await redis.lpush(ack, 'ok');
      return { role: 'pong', bytes };
    }
    const msg = Buffer.alloc(size, 7);
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) await redis.lpush(q, msg);
    await redis.brpop(ack, 0);
    return { role: 'ping', ms: Number(process.hrtime.bigint() - t0) / 1e6 };
  } finally {
    redis.disconnect();
  }
}
