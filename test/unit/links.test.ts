import { describe, expect, it } from 'vitest';
import { encodeFrame, FrameReader, MAX_ROWS, RowDecoder, RowEncoder } from '../../gossip/links.ts';
import type { Beat } from '../../gossip/liveness.ts';

const row = (origin: string, beat: number, addrs = ['/ip4/10.0.0.1/tcp/4001']): Beat => ({
  origin,
  incarnation: 1,
  beat,
  seq: beat * 2,
  load: 3,
  freeMb: 512,
  host: `host-${origin}`,
  addrs,
  intro: 'c2lnbmF0dXJl',
});

/** what the wire does to a table: JSON both ways */
const wire = (x: unknown): unknown => JSON.parse(JSON.stringify(x));

describe('beat link frames', () => {
  it('cuts a byte stream into frames wherever the chunks split', () => {
    const bytes = Buffer.concat([encodeFrame({ rows: [1], reply: true }), encodeFrame({ rows: [], reply: false }), encodeFrame('x'.repeat(300))]);
    for (const cut of [1, 3, 4, 5, 17, bytes.length - 1]) {
      const r = new FrameReader(1024);
      const got = [...r.push(bytes.subarray(0, cut)), ...r.push(bytes.subarray(cut))];
      expect(got).toEqual([{ rows: [1], reply: true }, { rows: [], reply: false }, 'x'.repeat(300)]);
    }
  });

  it('refuses a frame larger than the limit from its header, before buffering it', () => {
    const r = new FrameReader(100);
    expect(() => r.push(encodeFrame('y'.repeat(200)).subarray(0, 4))).toThrow(/frame of 202 bytes/);
  });
});

describe('compact beat rows', () => {
  it('sends a member’s fixed facts once, then rows of numbers that decode to the same beats', () => {
    const e = new RowEncoder();
    const d = new RowDecoder();
    const first = [row('a', 1), row('b', 1)];
    expect(d.decode(wire(e.encode(first)))).toEqual(first);
    const second = [row('a', 2), row('b', 5)];
    const sent = wire(e.encode(second)) as unknown[];
    expect(sent.every(Array.isArray)).toBe(true);
    expect(JSON.stringify(sent).length).toBeLessThan(JSON.stringify(second).length / 5);
    expect(d.decode(sent)).toEqual(second);
  });

  it('sends the facts again when they change, so a restarted or moved member is never decoded stale', () => {
    const e = new RowEncoder();
    const d = new RowDecoder();
    d.decode(wire(e.encode([row('a', 1)])));
    const moved = { ...row('a', 2, ['/ip4/10.0.0.9/tcp/4001']), incarnation: 2 };
    const sent = wire(e.encode([moved])) as unknown[];
    expect(Array.isArray(sent[0])).toBe(false);
    expect(d.decode(sent)).toEqual([moved]);
    expect(d.decode(wire(e.encode([{ ...moved, beat: 3 }])))).toEqual([{ ...moved, beat: 3 }]);
  });

  it('drops rows it cannot make whole or that fail the row checks, and keeps the rest', () => {
    const d = new RowDecoder();
    d.decode([{ ...row('a', 1), i: 0 }]);
    const got = d.decode([[7, 1, 1, 0, 0], [0, 'two', 1, 0, 0], { ...row('b', 1), i: -1 }, { ...row('c', 1), i: MAX_ROWS }, { ...row('d', 1), host: 5, i: 1 }, [0, 4, 8, 1, 2], 'junk', null]);
    expect(got).toEqual([{ ...row('a', 4), seq: 8, load: 1, freeMb: 2 }]);
    expect(d.decode({ rows: 'not a list' })).toEqual([]);
  });

  it('carries each member’s registry digest as a sixth number, and takes a five-number row from an older build without one', () => {
    const e = new RowEncoder();
    const d = new RowDecoder();
    const withReg = (beat: number, reg: number) => ({ ...row('a', beat), reg });
    expect(d.decode(wire(e.encode([withReg(1, 2 ** 47 + 5)])))).toEqual([withReg(1, 2 ** 47 + 5)]);
    const sent = wire(e.encode([withReg(2, 9)])) as unknown[][];
    expect(sent[0]).toHaveLength(6);
    expect(d.decode(sent)).toEqual([withReg(2, 9)]);
    expect(d.decode([[0, 3, 6, 3, 512]])).toEqual([row('a', 3)]);
    // Not a 48-bit digest: the row stands, the digest is ignored.
    expect(
      d.decode([
        [0, 4, 8, 3, 512, -1],
        [0, 5, 10, 3, 512, 1.5],
      ]),
    ).toEqual([row('a', 4), row('a', 5)]);
  });

  it('numbers members afresh after MAX_ROWS of them, and the other end follows', () => {
    const e = new RowEncoder();
    const d = new RowDecoder();
    const many = Array.from({ length: MAX_ROWS }, (_, k) => row(`m${k}`, 1));
    expect(d.decode(wire(e.encode(many)))).toHaveLength(MAX_ROWS);
    const late = [row('late', 1), row('m0', 2)];
    expect(d.decode(wire(e.encode(late)))).toEqual(late);
    expect(d.decode(wire(e.encode([row('late', 2), row('m0', 3)])))).toEqual([row('late', 2), row('m0', 3)]);
  });
});
