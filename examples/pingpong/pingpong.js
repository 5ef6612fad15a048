// The seed paper's message-passing test: instance `ping` sends N messages of
// S bytes straight to instance `pong`, which answers once it has them all.
//   peerless fn create pingpong examples/pingpong/pingpong.js
//   peerless fn invoke pingpong --instances ping,pong -p n 1000 -p size 1024 --result
const peerless = require('peerless');

async function main(p) {
  const n = Number(p.n ?? 100);
  const size = Number(p.size ?? 1024);
  const me = peerless.instanceId();
  await peerless.waitFor(['ping', 'pong'], 30000);
  // Connections are opened before the clock starts, as a Redis client's would be.
  await peerless.connect(me === 'ping' ? 'pong' : 'ping');
  await peerless.barrier(['ping', 'pong']);
  if (me === 'ping') {
    const msg = Buffer.alloc(size, 7);
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) await peerless.send('pong', msg);
    const { data } = await peerless.recv('pong');
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    return { role: 'ping', sent: n, size, ms, MBps: (n * size) / ms / 1000, reply: data.toString() };
  }
  let bytes = 0;
  for (let i = 0; i < n; i++) bytes += (await peerless.recv('ping')).data.length;
  await peerless.send('ping', `got ${n} messages, ${bytes} bytes`);
  return { role: 'pong', received: n, bytes };
}
