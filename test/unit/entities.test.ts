import { describe, expect, it } from 'vitest';
import { parseEntity, parseFunctionRecord, parseRef, refOf, refTarget } from '../../daemon/entities.ts';

// The registry's documents as they arrive from other daemons (signed, but not trusted to be well formed),
// and OpenWhisk's ways of naming one entity from another.

const digest = `sha256:${'a'.repeat(64)}`;
const good = {
  namespace: 'ns',
  name: 'fn',
  runtime: { kind: 'nodejs' },
  digest,
  binary: false,
  main: 'main',
  limits: { memoryMb: 256, timeoutMs: 60_000, concurrency: 1 },
  parameters: { a: 1 },
  version: 3,
  created: 1,
  updated: 2,
  meta: { kind: 'nodejs:24', annotations: [{ key: 'exec', value: 'nodejs:24' }], publish: false, version: '0.0.3', init: [], logsMb: 10 },
};

describe('function records from other daemons', () => {
  it('takes a well-formed record, and one from an older daemon with what it lacks filled in', () => {
    expect(parseFunctionRecord(good, 'ns', 'fn')).toEqual(good);
    const { meta: _m, ...old } = { ...good, limits: { memoryMb: 256, timeoutMs: 60_000 } };
    const r = parseFunctionRecord(old, 'ns', 'fn')!;
    expect(r.limits.concurrency).toBe(1);
    expect(r.meta).toMatchObject({ kind: 'nodejs', version: '0.0.3', publish: false });
    expect(parseFunctionRecord({ ...good, meta: { kind: 7 } }, 'ns', 'fn')!.meta.kind).toBe('nodejs');
    expect(parseFunctionRecord({ ...good, name: 'pkg/fn' }, 'ns', 'pkg/fn')).not.toBeNull();
  });

  it('drops every malformed shape the invoker or the API would trip on', () => {
    const bad: [string, unknown][] = [
      ['null', null],
      ['a list', [good]],
      ['another name', { ...good, name: 'other' }],
      ['another namespace', { ...good, namespace: 'x' }],
      ['no runtime', { ...good, runtime: undefined }],
      ['unknown runtime', { ...good, runtime: { kind: 'cobol' } }],
      ['image without image', { ...good, runtime: { kind: 'image' } }],
      ['bad image', { ...good, runtime: { kind: 'image', image: 'A B' } }],
      ['sequence without components', { ...good, runtime: { kind: 'sequence', components: [] } }],
      ['sequence of non-names', { ...good, runtime: { kind: 'sequence', components: [null] } }],
      ['bad digest', { ...good, digest: 'md5:1' }],
      ['binary not a boolean', { ...good, binary: 'yes' }],
      ['main not an identifier', { ...good, main: 'a-b()' }],
      ['no limits', { ...good, limits: null }],
      ['memory a string', { ...good, limits: { ...good.limits, memoryMb: '256' } }],
      ['timeout negative', { ...good, limits: { ...good.limits, timeoutMs: -1 } }],
      ['concurrency 0', { ...good, limits: { ...good.limits, concurrency: 0 } }],
      ['parameters a list', { ...good, parameters: [] }],
      ['version a string', { ...good, version: '3' }],
      ['created missing', { ...good, created: undefined }],
    ];
    for (const [what, raw] of bad) expect(parseFunctionRecord(raw, 'ns', 'fn'), what).toBeNull();
    expect(parseFunctionRecord({ ...good, name: 'a/b/c' }, 'ns', 'a/b/c')).toBeNull();
  });
});

describe('triggers, rules and packages from other daemons', () => {
  const base = { namespace: 'ns', name: 'x', version: '0.0.1', publish: false, annotations: [], updated: 1 };
  it('takes each kind well formed, and drops it otherwise', () => {
    expect(parseEntity('trigger', { ...base, parameters: [], limits: {} }, 'ns', 'x')).not.toBeNull();
    expect(parseEntity('rule', { ...base, status: 'active', trigger: { path: 'ns', name: 't' }, action: { path: 'ns/p', name: 'a' } }, 'ns', 'x')).not.toBeNull();
    expect(parseEntity('package', { ...base, parameters: [], binding: {} }, 'ns', 'x')).not.toBeNull();
    expect(parseEntity('rule', { ...base, status: 'sleeping', trigger: { path: 'ns', name: 't' }, action: { path: 'ns', name: 'a' } }, 'ns', 'x')).toBeNull();
    expect(parseEntity('trigger', { ...base, parameters: null, limits: {} }, 'ns', 'x')).toBeNull();
    expect(parseEntity('package', { ...base, parameters: [], binding: {} }, 'ns', 'y')).toBeNull();
    expect(parseEntity('package', { ...base, annotations: [1], parameters: [], binding: {} }, 'ns', 'x')).toBeNull();
  });
});

describe('names, as OpenWhisk writes them', () => {
  it('reads /ns/name, /ns/pkg/name, pkg/name, name and _', () => {
    expect(parseRef('/a/b', 'me')).toEqual({ namespace: 'a', name: 'b' });
    expect(parseRef('/a/p/b', 'me')).toEqual({ namespace: 'a', name: 'p/b' });
    expect(parseRef('/_/b', 'me')).toEqual({ namespace: 'me', name: 'b' });
    expect(parseRef('p/b', 'me')).toEqual({ namespace: 'me', name: 'p/b' });
    expect(parseRef('b', 'me')).toEqual({ namespace: 'me', name: 'b' });
    for (const bad of ['/a', '/a/b/c/d', 'a/b/c', '', '/a//b', '/a/b c']) expect(parseRef(bad, 'me'), bad).toBeNull();
  });

  it("writes a rule's references with the package in the path, and reads them back", () => {
    expect(refOf({ namespace: 'ns', name: 'p/a' })).toEqual({ path: 'ns/p', name: 'a' });
    expect(refTarget(refOf({ namespace: 'ns', name: 'p/a' }))).toEqual({ namespace: 'ns', name: 'p/a' });
    expect(refTarget(refOf({ namespace: 'ns', name: 'a' }))).toEqual({ namespace: 'ns', name: 'a' });
  });
});
