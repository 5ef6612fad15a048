import { createServer, type ServerResponse, type Server } from 'node:http';

// A stand-in for the daemon's function API, for SDK processes running outside containers: only the
// directory calls the SDKs make (self, lookup, list, wait, the change stream), over a Unix socket, from a table the test fills.
// What is under test is the SDKs' wire between each other; the daemon's side is tested on the real engine.

export interface Entry {
  instance: string;
  ip: string;
  port: number;
  state: 'running';
  epoch: number;
}

export class FakeDirectory {
  readonly entries = new Map<string, Entry>();
  private server: Server | null = null;
  private streams = new Set<ServerResponse>();

  add(instance: string, port: number): void {
    this.entries.set(instance, { instance, ip: '127.0.0.1', port, state: 'running', epoch: 0 });
    this.changed();
  }
  remove(instance: string): void {
    this.entries.delete(instance);
    this.changed();
  }
  private event(res: ServerResponse): void {
    res.write(`event: map\ndata: ${JSON.stringify({ version: 0, instances: [...this.entries.values()] })}\n\n`);
  }
  private changed(): void {
    for (const res of this.streams) this.event(res);
  }

  async listen(path: string): Promise<void> {
    this.server = createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://x');
      const json = (status: number, body: unknown) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
      const one = /^\/v1\/instances\/(.+)$/.exec(url.pathname);
      if (one) {
        const e = this.entries.get(decodeURIComponent(one[1]));
        return e ? json(200, e) : json(404, { detail: 'not found' });
      }
      if (url.pathname === '/v1/instances') return json(200, { instances: [...this.entries.values()] });
      if (url.pathname === '/v1/self') return json(200, {});
      if (url.pathname === '/v1/events') {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        this.streams.add(res);
        req.once('close', () => this.streams.delete(res));
        return this.event(res);
      }
      if (url.pathname === '/v1/wait') {
        const ids = url.searchParams.getAll('ids');
        const until = Date.now() + Number(url.searchParams.get('timeout') ?? 30000);
        const check = () => {
          if (ids.every((id) => this.entries.has(id))) return json(200, { instances: ids.map((id) => this.entries.get(id)) });
          if (Date.now() > until) return json(408, { detail: 'timeout' });
          setTimeout(check, 50);
        };
        return check();
      }
      json(404, { detail: 'no such route' });
    });
    await new Promise<void>((r) => this.server!.listen(path, r));
  }

  async close(): Promise<void> {
    for (const res of this.streams) res.destroy();
    await new Promise((r) => this.server?.close(r));
  }
}
