// The container pool's decisions, apart from any I/O: given what the host runs
// and what a request needs, say which container serves it, or what to create
// or evict. Tested on its own, without Docker. A container holds up to `seats`
// instances of one function at once (its limits.concurrency): a request takes
// a free seat of a container of its function, running or still starting,
// before it makes a new container.

export type SlotState = 'starting' | 'prewarm' | 'idle' | 'paused' | 'busy' | 'removing';

export interface Slot {
  id: string;
  /** function key (namespace/name@version) once initialized; null while prewarmed */
  fnKey: string | null;
  /** image + memory: which prewarmed containers can serve which requests */
  runtimeKey: string;
  memoryMb: number;
  state: SlotState;
  lastUsed: number;
  /** instances it may hold at once (the function's concurrency; 1 while prewarmed) */
  seats: number;
  /** instances it holds now */
  used: number;
}

export interface Demand {
  fnKey: string;
  runtimeKey: string;
  memoryMb: number;
  /** the function's concurrency: how many instances one container of it may hold (default 1) */
  seats?: number;
}

export type Decision = { kind: 'share'; id: string } | { kind: 'warm'; id: string; paused: boolean } | { kind: 'prewarmed'; id: string } | { kind: 'create'; evict: string[] } | { kind: 'wait' };

export function usedMemory(slots: Iterable<Slot>): number {
  let used = 0;
  for (const s of slots) if (s.state !== 'removing') used += s.memoryMb;
  return used;
}

export function decide(slots: readonly Slot[], d: Demand, budgetMb: number): Decision {
  // A free seat in a container of this function that runs or starts: the fullest first, so that the
  // others empty, idle and go, and a burst fills as few containers as it can.
  let share: Slot | undefined;
  for (const s of slots) {
    if (s.fnKey !== d.fnKey || (s.state !== 'busy' && s.state !== 'starting') || s.used >= s.seats) continue;
    if (!share || s.used > share.used) share = s;
  }
  if (share) return { kind: 'share', id: share.id };
  // Warm next: an idle container of this function, then a paused one (unpause costs a few ms).
  const idle = slots.find((s) => s.fnKey === d.fnKey && s.state === 'idle');
  if (idle) return { kind: 'warm', id: idle.id, paused: false };
  const paused = slots.find((s) => s.fnKey === d.fnKey && s.state === 'paused');
  if (paused) return { kind: 'warm', id: paused.id, paused: true };
  const pre = slots.find((s) => s.state === 'prewarm' && s.runtimeKey === d.runtimeKey);
  if (pre) return { kind: 'prewarmed', id: pre.id };

  const free = budgetMb - usedMemory(slots);
  if (d.memoryMb <= free) return { kind: 'create', evict: [] };
  if (d.memoryMb > budgetMb) return { kind: 'wait' };
  // Make room by evicting what nobody is using, least recently used first;
  // prewarmed containers go before warm ones since they hold no one's state.
  const victims = slots
    .filter((s) => s.state === 'idle' || s.state === 'paused' || s.state === 'prewarm')
    .sort((a, b) => Number(b.state === 'prewarm') - Number(a.state === 'prewarm') || a.lastUsed - b.lastUsed);
  const evict: string[] = [];
  let freed = free;
  for (const v of victims) {
    if (freed >= d.memoryMb) break;
    evict.push(v.id);
    freed += v.memoryMb;
  }
  return freed >= d.memoryMb ? { kind: 'create', evict } : { kind: 'wait' };
}

/** How many prewarmed containers of a runtime to add, within the budget. */
export function prewarmDeficit(slots: readonly Slot[], runtimeKey: string, memoryMb: number, want: number, budgetMb: number): number {
  const have = slots.filter((s) => s.runtimeKey === runtimeKey && s.fnKey === null && (s.state === 'prewarm' || s.state === 'starting')).length;
  const room = Math.floor((budgetMb - usedMemory(slots)) / memoryMb);
  return Math.max(0, Math.min(want - have, room));
}
