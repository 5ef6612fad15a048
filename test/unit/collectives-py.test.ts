import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { expect, it } from 'vitest';

// The Python SDK's collective schedules, tested in Python (test/unit/py/test_collectives.py) over the same
// in-memory twin as the Node.js ones: 1, 2, 3, 8 and 33 members, rank order, a dead member, bad calls.
it('runs the Python SDK collective unit tests', () => {
  const out = execFileSync('python3', [join(import.meta.dirname, 'py', 'test_collectives.py')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  expect(out).toBe('');
}, 60_000);
