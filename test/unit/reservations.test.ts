import pino from 'pino';
import { describe, expect, it, vi } from 'vitest';
import type Docker from 'dockerode';
import { Pool } from '../../sandbox/pool.ts';

// Gang admission's memory reservations in the pool: what they take from the
// free memory a host reports and plans with, and that they end on their own.
// No container is created here, so no engine is needed.

const pool = (budget: number) =>
  new Pool({
    docker: {} as Docker,
    hostId: 'h',
    controlNetwork: 'c',
    memoryBudgetMb: budget,
    pauseGraceMs: 500,
    idleTimeoutMs: 60_000,
    prewarm: [],
    logLimitBytes: 1024,
    slotRoot: '/nonexistent',
    log: pino({ level: 'silent' }),
  });

describe('pool reservations', () => {
  it('take from the free memory, all or nothing, until given back', () => {
    const p = pool(1024);
    const a = p.reserve(768, 10_000);
    expect(a).not.toBeNull();
    expect(p.freeMb()).toBe(256);
    expect(p.reserve(512, 10_000)).toBeNull(); // not half of it
    expect(p.hasRoom('ns/f@1', 'img', 512)).toBe(false);
    expect(p.hasRoom('ns/f@1', 'img', 256)).toBe(true);
    p.unreserve(a!);
    expect(p.freeMb()).toBe(1024);
    expect(p.hasRoom('ns/f@1', 'img', 512)).toBe(true);
  });

  it('are given back when their time is up (a coordinator that died never starts its members)', () => {
    vi.useFakeTimers();
    try {
      const p = pool(1024);
      expect(p.reserve(1024, 15_000)).not.toBeNull();
      expect(p.freeMb()).toBe(0);
      vi.advanceTimersByTime(15_001);
      expect(p.freeMb()).toBe(1024);
    } finally {
      vi.useRealTimers();
    }
  });
});
