import { expectTypeOf, it } from 'vitest';
import type * as peerless from '../../sandbox/runtime/nodejs/sdk/index.js';

// The Node.js SDK's declarations (index.d.ts), checked by the type-check step of the tests: what a function
// author's editor and compiler will be told.
type P = typeof peerless;

it('declares results of the kind passed in, and options with a signal and a timeout', () => {
  expectTypeOf<ReturnType<P['allreduce']>>().toEqualTypeOf<Promise<peerless.Widen<peerless.Value>>>();
  const f = (p: P) => ({
    n: p.allreduce(['a'], 1, 'sum'),
    v: p.allreduce(['a'], new Float64Array(2), 'max'),
    s: p.scan(['a'], 'x', (a, b) => a + b),
    r: p.reduce(['a'], 2n, 'prod', { root: 'a' }),
    parts: p.alltoall(['a'], [new Int32Array(1)]),
    m: p.recv('a', { timeout: 5, signal: AbortSignal.timeout(5) }),
    it: p.messages({ signal: AbortSignal.timeout(5) }),
  });
  type R = ReturnType<typeof f>;
  expectTypeOf<R['n']>().toEqualTypeOf<Promise<number>>();
  expectTypeOf<R['v']>().toEqualTypeOf<Promise<Float64Array<ArrayBuffer>>>();
  expectTypeOf<R['s']>().toEqualTypeOf<Promise<string>>();
  expectTypeOf<R['r']>().toEqualTypeOf<Promise<bigint | undefined>>();
  expectTypeOf<R['parts']>().toEqualTypeOf<Promise<Int32Array<ArrayBuffer>[]>>();
  expectTypeOf<R['m']>().toEqualTypeOf<Promise<peerless.Message>>();
  expectTypeOf<R['it']>().toEqualTypeOf<AsyncGenerator<peerless.Message, void, undefined>>();
  expectTypeOf<InstanceType<P['PeerRestartedError']>['epoch']>().toEqualTypeOf<number>();
});
