import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

// Server-sent events, the one way the daemon writes them (the dashboard's
// stream, the function API's map events): a stream ends when its client goes
// or when the server closes, which would otherwise wait on open streams.

export interface EventStream {
  /** one event; data is one line (JSON has no raw newlines) */
  send(event: string, data: string): void;
}

/** Registers the close hook on the server; returns how a route opens a stream, with what to undo when it ends. */
export function eventStreams(app: FastifyInstance): (req: FastifyRequest, reply: FastifyReply, cleanup: () => void) => EventStream {
  const open = new Set<() => void>();
  app.addHook('preClose', async () => {
    for (const end of open) end();
  });
  return (req, reply, cleanup) => {
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
    const end = () => {
      if (!open.delete(end)) return;
      cleanup();
      res.end();
    };
    open.add(end);
    req.raw.once('close', end);
    return { send: (event, data) => void res.write(`event: ${event}\ndata: ${data}\n\n`) };
  };
}
