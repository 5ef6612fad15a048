// Registry repair, as pure logic. Registry writes travel as gossipsub messages, and gossipsub may lose one
// (a peer joined the mesh a moment too late, a connection dropped mid-send); the anti-entropy round when a
// peer joins would repair it only at the next join. So each beat carries a hash of its origin's registry,
// and a daemon whose hash differs from a member's for longer than a message takes to spread asks that
// member for its whole registry. Merging is last-writer-wins, so a pull can only move the puller forward;
// a member that holds the older registry finds out the same way and pulls in turn.

/** longer than a registry write takes to reach every daemon (tens of ms) plus a beat's relay delay (< 1 s) */
export const DIFFER_FOR_MS = 2000;
/** a member is asked again for the same registry only after this long: a pull that did not mend the difference is not retried hot */
export const REPULL_MS = 10_000;
/**
 * pulls, from any members, at least this far apart: under a steady stream of registry writes digests keep
 * differing for a moment everywhere, and each pull moves a whole registry
 */
export const PULL_GAP_MS = 5000;

export class DigestWatch {
  /** when each member's digest was first seen to differ from ours, in the current run of differences */
  private readonly since = new Map<string, number>();
  /** the last pull from each member: when, and the member's digest then */
  private readonly lastPull = new Map<string, { at: number; theirs: number }>();
  private pulling = false;
  private lastAny = -Infinity;
  private readonly differForMs: number;
  private readonly repullMs: number;
  private readonly gapMs: number;

  constructor(differForMs = DIFFER_FOR_MS, repullMs = REPULL_MS, gapMs = PULL_GAP_MS) {
    this.differForMs = differForMs;
    this.repullMs = repullMs;
    this.gapMs = gapMs;
  }

  /**
   * A member's digest, as its latest beat gave it, against this daemon's own now. True: pull that member's
   * registry now (and call done when the pull ends). One pull at a time, PULL_GAP_MS apart: after one,
   * this daemon's digest likely matches every member's again, and the others need no pull.
   */
  observe(member: string, theirs: number, ours: number, now: number): boolean {
    if (theirs === ours) {
      this.since.delete(member);
      return false;
    }
    const since = this.since.get(member) ?? now;
    this.since.set(member, since);
    if (this.pulling || now - since < this.differForMs || now - this.lastAny < this.gapMs) return false;
    // A member whose registry changed since the last pull has something new to give; the same one, not yet.
    const last = this.lastPull.get(member);
    if (last && last.theirs === theirs && now - last.at < this.repullMs) return false;
    this.pulling = true;
    this.lastAny = now;
    this.lastPull.set(member, { at: now, theirs });
    return true;
  }

  done(): void {
    this.pulling = false;
  }

  /** a member that left: nothing more to compare with it */
  forget(member: string): void {
    this.since.delete(member);
    this.lastPull.delete(member);
  }
}
