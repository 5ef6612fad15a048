import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { isStorageFull, PeerlessError, problemType, storageFull, toProblem, type ErrorCode } from '../errors.ts';

// Every error leaves as RFC 9457 problem+json naming the field at fault, with
// OpenWhisk's `error` and `code` members so that its clients print the reason.
// A fault of ours is logged in full and answered with a 500 that reveals nothing.

const byStatus: Record<number, ErrorCode> = {
  400: 'bad_request',
  401: 'unauthorized',
  403: 'forbidden',
  404: 'not_found',
  405: 'bad_request',
  409: 'conflict',
  413: 'payload_too_large',
  415: 'unsupported_media_type',
  429: 'too_many_requests',
  503: 'unavailable',
};

/** the most of a refused body read and dropped so that its sender hears the refusal */
const DRAIN_BYTES = 128 * 1024 * 1024;

function fromFastify(err: FastifyError): PeerlessError | undefined {
  if (err.validation && err.validation.length > 0) {
    const v = err.validation[0]!;
    const ctx = err.validationContext ?? 'body';
    const where = ctx === 'querystring' ? 'query' : ctx;
    const missing = (v.params as { missingProperty?: string }).missingProperty;
    const extra = (v.params as { additionalProperty?: string }).additionalProperty;
    const path = `/${where}${v.instancePath}${missing ? `/${missing}` : extra ? `/${extra}` : ''}`;
    const what = extra ? `is not a known field` : (v.message ?? 'is not valid');
    return new PeerlessError('validation', `${path} ${what}`, { field: path });
  }
  if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return new PeerlessError('payload_too_large', 'the request body is too large', { field: '/body' });
  if (err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') return new PeerlessError('unsupported_media_type', 'send the body as application/json', { field: '/headers/content-type' });
  if (err.code === 'FST_ERR_CTP_EMPTY_JSON_BODY') return new PeerlessError('bad_request', 'the JSON body is empty', { field: '/body' });
  if (err instanceof SyntaxError || err.code === 'FST_ERR_CTP_INVALID_JSON_BODY') return new PeerlessError('bad_request', `the body is not valid JSON: ${err.message}`, { field: '/body' });
  const status = err.statusCode ?? 500;
  if (status >= 400 && status < 500) return new PeerlessError(byStatus[status] ?? 'bad_request', err.message);
  return undefined;
}

/**
 * problem+json, unless the caller asked for plain JSON and not for problems: OpenWhisk's clients send
 * `Accept: application/json` and parse nothing else, so they get the same body as application/json.
 */
const contentType = (accept: string | undefined) => (accept && /application\/json/.test(accept) && !/problem\+json/.test(accept) ? 'application/json' : 'application/problem+json');

export function sendProblem(reply: FastifyReply, err: PeerlessError): FastifyReply {
  for (const [k, v] of Object.entries(err.headers)) reply.header(k, v);
  return reply
    .code(err.status)
    .type(contentType(reply.request.headers.accept))
    .send(toProblem(err, reply.request.id, reply.request.url));
}

export function problems(app: FastifyInstance): void {
  app.setErrorHandler((error: FastifyError, req: FastifyRequest, reply: FastifyReply) => {
    const known = error instanceof PeerlessError ? error : isStorageFull(error) ? storageFull() : fromFastify(error);
    if (known) {
      if (known.code === 'insufficient_storage') req.log.error({ err: error }, 'data disk full');
      // Refused on its length before it was read: the client may still be writing it, and an answer that
      // ends the connection under its write reaches it as a broken pipe, not as this 413. The rest of the
      // body is read and dropped first, up to a bound (past it, the connection goes).
      const raw = req.raw;
      if (error.code === 'FST_ERR_CTP_BODY_TOO_LARGE' && !raw.readableEnded && Number(req.headers['content-length'] ?? 0) <= DRAIN_BYTES) {
        raw.resume();
        return new Promise<void>((resolve) => {
          const done = () => resolve(void sendProblem(reply, known));
          raw.once('end', done);
          raw.once('error', done);
          raw.once('close', done);
        });
      }
      return sendProblem(reply, known);
    }
    req.log.error({ err: error }, 'unhandled error');
    return reply
      .code(500)
      .type(contentType(req.headers.accept))
      .send({
        type: problemType('internal'),
        title: 'internal error',
        status: 500,
        detail: 'the daemon failed to handle this request; the log has the details',
        error: 'There was an internal server error.',
        code: req.id,
        instance: req.url,
      });
  });
  app.setNotFoundHandler((req, reply) => sendProblem(reply, new PeerlessError('not_found', `no route ${req.method} ${req.url.split('?')[0]}`)));
}
