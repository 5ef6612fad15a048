import type { FastifyInstance } from 'fastify';
import { version } from '../../sea/assets.ts';
import { requireAdmin } from '../auth.ts';
import { conflict, PeerlessError } from '../errors.ts';
import { nextVersion, selfExecutable } from '../selfExec.ts';
import { principalOf, type ApiContext } from './context.ts';

/** what these routes use of the daemon */
type Ctx = Pick<ApiContext, 'store' | 'invoker' | 'restart'>;

// This daemon as a process, for `peerless upgrade` (admin key): what it runs
// from, and a restart in place. The restart first asks the file it would
// start from for its version, so a broken replacement leaves the daemon as it
// was; then it answers, drains as on SIGTERM and re-executes (selfExec.ts).

const STARTED = Date.now();

export function restartRoutes(app: FastifyInstance, ctx: Ctx): void {
  const processInfo = () => ({
    pid: process.pid,
    version: version(),
    executable: selfExecutable(),
    node: process.version,
    startedAt: STARTED,
    runningActivations: ctx.invoker.running,
  });
  app.get('/api/v1/daemon', { schema: { tags: ['meta'], summary: 'This daemon as a process: pid, version, the file it runs from (admin)' } }, async (req) => {
    requireAdmin(principalOf(ctx, req));
    return processInfo();
  });

  let restarting = false;
  app.post('/api/v1/daemon/restart', { schema: { tags: ['meta'], summary: 'Drain, then start again in place from the file it runs from (admin)' } }, async (req, reply) => {
    requireAdmin(principalOf(ctx, req));
    if (restarting) throw conflict('a restart is under way');
    let next: string;
    try {
      next = await nextVersion();
    } catch (e) {
      throw new PeerlessError('unavailable', `not restarting: ${selfExecutable()} does not start (${(e as Error).message.split('\n')[0]})`);
    }
    restarting = true;
    // Answered before the drain starts, which closes this server.
    reply.raw.once('finish', () => ctx.restart());
    return reply.code(202).send({ ...processInfo(), next });
  });
}
