import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { LogCollector, SENTINEL, TAG } from '../../sandbox/logs.ts';

const setup = (max = 1 << 20) => {
  const out = new PassThrough();
  const err = new PassThrough();
  return { out, err, logs: new LogCollector(out, err, max) };
};
const text = (lines: string[]) => lines.map((l) => l.replace(/^\S+ /, ''));

describe('log collector', () => {
  it('cuts both streams at the sentinels, one activation at a time, in arrival order', async () => {
    const { out, err, logs } = setup();
    out.write('one\n');
    err.write('oops\n');
    out.write(`two\n${SENTINEL}\nthree\n`);
    err.write(`${SENTINEL}\n`);
    expect(text(await logs.take(1000))).toEqual(['stdout: one', 'stderr: oops', 'stdout: two']);
    out.write(`${SENTINEL}\n`);
    err.write(`${SENTINEL}\n`);
    expect(text(await logs.take(1000))).toEqual(['stdout: three']);
  });

  it('joins lines split across chunks and waits for a late sentinel', async () => {
    const { out, err, logs } = setup();
    const p = logs.take(1000);
    out.write('hel');
    setTimeout(() => {
      out.write(`lo\n${SENTINEL}\n`);
      err.write(`${SENTINEL}\n`);
    }, 20);
    expect(text(await p)).toEqual(['stdout: hello']);
  });

  it('takes what is there when no sentinel comes, and drops that sentinel if it comes later', async () => {
    const { out, err, logs } = setup();
    out.write('partial\n');
    expect(text(await logs.take(20))).toEqual(['stdout: partial']);
    out.write(`late\n${SENTINEL}\n`);
    err.write(`${SENTINEL}\n`);
    out.write(`next\n${SENTINEL}\n`);
    err.write(`${SENTINEL}\n`);
    // "late" belonged to the activation already reported; the next activation gets only its own line.
    expect(text(await logs.take(1000))).toEqual(['stdout: next']);
  });

  it('truncates an activation past the byte limit and says so', async () => {
    const { out, err, logs } = setup(200);
    for (let i = 0; i < 20; i++) out.write(`line ${i} ${'x'.repeat(20)}\n`);
    out.write(`${SENTINEL}\n`);
    err.write(`${SENTINEL}\n`);
    const got = await logs.take(1000);
    expect(got.length).toBeLessThan(20);
    expect(got.at(-1)).toMatch(/truncated .* 200 bytes/);
  });

  it("sorts a shared container's overlapping activations out by their tags, each ending on its own sentinel", async () => {
    const { out, err, logs } = setup();
    const a = `${TAG}act-a `;
    const b = `${TAG}act-b `;
    out.write(`${a}a one\n${b}b one\n`);
    err.write(`${b}b oops\n${a}a two\n`);
    const pb = logs.take(1000, 'act-b');
    out.write(`${b}${SENTINEL}\n`);
    err.write(`${b}${SENTINEL}\n${a}a three\n`);
    expect(text(await pb)).toEqual(['stdout: b one', 'stderr: b oops']);
    out.write(`${a}${SENTINEL}\n`);
    err.write(`${a}${SENTINEL}\n`);
    expect(text(await logs.take(1000, 'act-a'))).toEqual(['stdout: a one', 'stderr: a two', 'stderr: a three']);
  });

  it("gives a shared container's instance what it logged so far, and the proxy's untagged words, when its end never comes", async () => {
    const { out, err, logs } = setup();
    out.write(`${TAG}act-c started\n`);
    err.write('FATAL ERROR: heap out of memory\n');
    expect(text(await logs.take(50, 'act-c'))).toEqual(['stdout: started', 'stderr: FATAL ERROR: heap out of memory']);
  });
});
