import { describe, expect, it } from 'vitest';
import { screen, spark } from '../../cli/top.ts';

describe('peerless top', () => {
  it('draws a sparkline scaled to its largest value, blank where nothing ran', () => {
    expect(spark([0, 1, 2, 4, 8])).toBe(' ▁▂▄█');
    expect(spark([0, 0])).toBe('  ');
  });

  it('sums the last minute and the hour from the snapshot', () => {
    const series = Array.from({ length: 360 }, (_, i) => ({ t: i * 10_000, count: i >= 354 ? 10 : 1, cold: i >= 354 ? 2 : 0, errors: 0, p50: 5, p99: i === 359 ? 90 : 20 }));
    const text = screen({
      host: 'h1',
      scope: 'admin',
      hosts: [{ host: 'h1', self: true, state: 'up', load: 3, freeMb: 900, instances: 2, lastSeenMs: 0 }],
      containers: { warm: 2 },
      series,
      namespaces: [],
      activations: [],
    });
    expect(text).toContain('last minute: 60 invocations (1.0/s), 20% cold, 0 failed, p50 ≤ 5 ms, p99 ≤ 90 ms');
    expect(text).toContain('last hour:   414 invocations');
    expect(text).toMatch(/^h1 \*\s+up\s+3\s+900\s+2\s+now$/m);
  });
});
