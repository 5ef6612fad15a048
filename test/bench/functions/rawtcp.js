// The floor for message passing: plain TCP between two instances, no framing,
// no SDK on the data path (the SDK only finds the peer's address).
const net = require('net');
const peerless = require('peerless');
const PORT = 7801;

async function main(p) {
  const n = Number(p.n);
  const size = Number(p.size);
  const me = peerless.instanceId();
  if (me === 'pong') {
    const server = net.createServer();
    const done = new Promise((resolve) =>
      server.on('connection', (s) => {
        let got = 0;
        s.on('data', (c) => {
          got += c.length;
          if (got >= n * size) {
            s.end('k');
            resolve(got);
          }
        });
      }),
    );
    await new Promise((r) => server.listen(PORT, r));
    await peerless.setStatus('listening');
    const bytes = await done;
    server.close();
    return { role: 'pong', bytes };
  }
  const peer = await waitListening();
  const msg = Buffer.alloc(size, 7);
  const s = net.connect(PORT, peer.ip);
  s.setNoDelay(true);
  await new Promise((r) => s.once('connect', r));
  const t0 = process.hrtime.bigint();
  const ack = new Promise((r) => s.once('data', r));
  for (let i = 0; i < n; i++) if (!s.write(msg)) await new Promise((r) => s.once('drain', r));
  await ack;
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  s.destroy();
  return { role: 'ping', ms };
}

async function waitListening() {
  for (;;) {
    const [e] = await peerless.waitFor(['pong'], 30000);
    if (e.status === 'listening') return e;
    await new Promise((r) => setTimeout(r, 5));
  }
}
