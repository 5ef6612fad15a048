import { Claimant, ClaimTable, type ClaimRequest, type ClaimVerdict } from '../gossip/claims.ts';
import type { Cluster } from '../gossip/cluster.ts';
import type { Codec } from '../gossip/protocols.ts';
import type { Directory } from './directory.ts';
import { isName } from './ids.ts';
import { MAX_GROUP } from './fnapi.ts';

// Instance IDs granted by their arbiters over a stream of their own (see
// gossip/claims.ts): a claim is one round trip to one peer per arbiter.

const ASK_TIMEOUT_MS = 1000;

function isClaimRequest(r: unknown): r is ClaimRequest {
  const c = r as Partial<ClaimRequest> | null;
  return (
    !!c &&
    (c.op === 'claim' || c.op === 'release') &&
    typeof c.namespace === 'string' &&
    isName(c.namespace) &&
    Array.isArray(c.ids) &&
    c.ids.length <= MAX_GROUP &&
    c.ids.every(isName) &&
    (c.holder === undefined || typeof c.holder === 'string')
  );
}

function parseVerdict(v: unknown): ClaimVerdict | undefined {
  const c = v as Partial<{ ok: boolean; taken: unknown }> | null;
  if (c?.ok === true) return { ok: true };
  return c?.ok === false && typeof c.taken === 'string' ? { ok: false, taken: c.taken.slice(0, 1024) } : undefined;
}

export const CLAIM: Codec<ClaimRequest, ClaimVerdict> = {
  kind: 'claim',
  maxRequestBytes: 1024 * 1024,
  request: (x) => (isClaimRequest(x) ? x : undefined),
  reply: parseVerdict,
};

export async function serveClaims(cluster: Cluster, directory: Directory, failureTimeoutMs: number): Promise<Claimant> {
  const claims = new Claimant({
    self: cluster.peerId,
    members: () => cluster.candidates().map((c) => c.origin),
    // A live claimant's entry reaches the arbiter well within the failure timeout, or the claimant is dead.
    table: new ClaimTable(2 * failureTimeoutMs, (ns, id) => directory.get(ns, id) !== undefined),
    ask: (peer, r) => cluster.request(peer, CLAIM, r, ASK_TIMEOUT_MS),
  });
  await cluster.handle(CLAIM, async (r, signer) => claims.answer(signer, r));
  return claims;
}
