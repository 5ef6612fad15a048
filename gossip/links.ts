import type { Stream } from '@libp2p/interface';
import { peerIdFromString } from '@libp2p/peer-id';
import type { Libp2p } from 'libp2p';
import type { Logger } from 'pino';
import { isRegistryDigest, parseBeat, sameAddrs, type Beat } from './liveness.ts';
import { PROTOCOLS } from './protocols.ts';

// Beat swaps over one long-lived stream per peer. A swap that opens its own stream pays for a
// multistream-select negotiation, yamux window updates and a close on both sides, several encrypted
// writes each way: measured at 50 daemons, 400 swaps a second took a whole core, and the tables
// themselves were a small part of it. On a kept stream a swap is one frame each way.

/** a table is a few hundred bytes per member: far below this for any real cluster */
const MAX_FRAME = 4 * 1024 * 1024;
/** streams a peer may keep open to this daemon for swaps: one is normal, a few cover a reconnect */
const MAX_INBOUND = 4;

/** One frame: a peer's table, and whether it wants this daemon's table back (push-pull). */
interface Frame {
  rows: unknown;
  reply: boolean;
}

const enc = new TextEncoder();
const dec = new TextDecoder();

/** A frame on the wire: a 4-byte big-endian length, then the JSON body. */
export function encodeFrame(body: unknown): Uint8Array {
  const json = enc.encode(JSON.stringify(body));
  const out = new Uint8Array(4 + json.length);
  new DataView(out.buffer).setUint32(0, json.length);
  out.set(json, 4);
  return out;
}

/** Cuts a byte stream into frames; throws on a frame larger than maxBytes (the link is then dropped). */
export class FrameReader {
  private buf: Uint8Array = new Uint8Array(0);
  private readonly maxBytes: number;

  constructor(maxBytes: number) {
    this.maxBytes = maxBytes;
  }

  push(chunk: Uint8Array): unknown[] {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    const out: unknown[] = [];
    while (this.buf.length >= 4) {
      const len = new DataView(this.buf.buffer, this.buf.byteOffset, 4).getUint32(0);
      if (len > this.maxBytes) throw new Error(`a peer sent a frame of ${len} bytes`);
      if (this.buf.length < 4 + len) break;
      out.push(JSON.parse(dec.decode(this.buf.subarray(4, 4 + len))));
      this.buf = this.buf.subarray(4 + len);
    }
    return out;
  }
}

/** rows taken from one table: far more members than a cluster has */
export const MAX_ROWS = 4096;

/**
 * One direction of a link, sending: a member's fixed facts (incarnation, host, addresses, signature)
 * go once, with an index; after that its row is [index, beat, seq, load, freeMb, reg?]. A table of 50 members
 * shrinks from 17 KB to about 1.5 KB, and tables are most of what a cluster sends while idle.
 */
export class RowEncoder {
  private readonly sent = new Map<string, { i: number; facts: Beat }>();

  encode(rows: Beat[]): unknown[] {
    return rows.map((b) => {
      const known = this.sent.get(b.origin);
      if (known && sameFacts(known.facts, b)) return b.reg === undefined ? [known.i, b.beat, b.seq, b.load, b.freeMb] : [known.i, b.beat, b.seq, b.load, b.freeMb, b.reg];
      // Indices are never reused for another member; after MAX_ROWS members the numbering starts over,
      // every member's facts going out again and overwriting what the other end holds.
      if (!known && this.sent.size >= MAX_ROWS) return this.restart(b);
      const i = known?.i ?? this.sent.size;
      this.sent.set(b.origin, { i, facts: b });
      return { ...b, i };
    });
  }

  private restart(b: Beat): unknown {
    this.sent.clear();
    return this.encode([b])[0];
  }
}

const isNum = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x);

function sameFacts(a: Beat, b: Beat): boolean {
  return a.incarnation === b.incarnation && a.host === b.host && a.intro === b.intro && sameAddrs(a.addrs, b.addrs);
}

/** The receiving end of a RowEncoder: rows back whole; facts checked as any row from the wire, numbers as numbers. */
export class RowDecoder {
  private readonly facts = new Map<number, Beat>();

  decode(rows: unknown): Beat[] {
    if (!Array.isArray(rows)) return [];
    const out: Beat[] = [];
    for (const r of rows.slice(0, MAX_ROWS) as unknown[]) {
      if (Array.isArray(r)) {
        // The facts were checked when they came; only the numbers are new. Rows of one member share its
        // addresses array, which lets the cluster see at a glance they have not changed.
        const base = this.facts.get(r[0] as number);
        // A build before registry digests sends five numbers.
        const [, beat, seq, load, freeMb, reg] = r as unknown[];
        if (base && isNum(beat) && isNum(seq) && isNum(load) && isNum(freeMb))
          out.push({ origin: base.origin, incarnation: base.incarnation, beat, seq, load, freeMb, host: base.host, addrs: base.addrs, intro: base.intro, ...(isRegistryDigest(reg) ? { reg } : {}) });
        continue;
      }
      const b = parseBeat(r);
      const i = (r as { i?: unknown } | null)?.i;
      if (!b || typeof i !== 'number' || !Number.isInteger(i) || i < 0 || i >= MAX_ROWS) continue;
      this.facts.set(i, b);
      out.push(b);
    }
    return out;
  }
}

/** A peer's table arrived; `answer` sends this daemon's table back when the peer asked for it. */
export type TableHandler = (rows: Beat[], peer: string, answer: ((rows: Beat[]) => void) | null) => void;

/** A stream to a peer, with what each direction already told the other. */
interface Link {
  stream: Stream;
  out: RowEncoder;
}

export class BeatLinks {
  private readonly out = new Map<string, Link>();
  private readonly opening = new Set<string>();
  private readonly node: Libp2p;
  private readonly onTable: TableHandler;
  private readonly log: Logger;

  constructor(node: Libp2p, onTable: TableHandler, log: Logger) {
    this.node = node;
    this.onTable = onTable;
    this.log = log;
  }

  async start(): Promise<void> {
    await this.node.handle(PROTOCOLS.beat, (stream, connection) => void this.attach(stream, connection.remotePeer.toString()), { maxInboundStreams: MAX_INBOUND });
  }

  /**
   * Pushes this daemon's table to a peer, asking for its table back. A peer with no link yet gets one
   * opened, and this round's table once it is; a peer not keeping up (its stream wants draining) skips
   * a round rather than piling up tables.
   */
  swap(peer: string, rows: Beat[]): void {
    const link = this.out.get(peer);
    if (link) return void send(link, rows, true);
    if (this.opening.has(peer)) return;
    this.opening.add(peer);
    this.node
      .dialProtocol(peerIdFromString(peer), PROTOCOLS.beat, { signal: AbortSignal.timeout(3000) })
      .then((stream) => {
        const link = this.attach(stream, peer);
        this.out.set(peer, link);
        stream.addEventListener('close', () => {
          if (this.out.get(peer) === link) this.out.delete(peer);
        });
        send(link, rows, true);
      })
      .catch((err: Error) => this.log.debug({ peer, err: err.message }, 'no beat link'))
      .finally(() => this.opening.delete(peer));
  }

  /** Reads frames off a link, either end: takes each table, and answers one that asks. */
  private attach(stream: Stream, peer: string): Link {
    const link: Link = { stream, out: new RowEncoder() };
    const rowsIn = new RowDecoder();
    const reader = new FrameReader(MAX_FRAME);
    stream.addEventListener('message', (ev) => {
      let frames: unknown[];
      try {
        frames = reader.push(ev.data instanceof Uint8Array ? ev.data : ev.data.subarray());
      } catch (err) {
        this.log.warn({ peer, err: (err as Error).message }, 'dropped a beat link');
        stream.abort(err as Error);
        return;
      }
      // Tables may be taken out of order: only a newer beat is news (BeatTable.merge), so an older one loses nothing.
      for (const f of frames as (Partial<Frame> | null)[]) this.onTable(rowsIn.decode(f?.rows), peer, f?.reply === true ? (rows) => send(link, rows, false) : null);
    });
    return link;
  }

  stop(): void {
    for (const l of this.out.values()) l.stream.abort(new Error('stopping'));
    this.out.clear();
  }
}

/**
 * Sends a table on a link. A stream can be open and yet closed for writing (the peer's daemon was killed
 * and its side is gone): yamux then throws from send(), and a throw here would leave the beat round's
 * timer and end the daemon (CI's chaos soak saw exactly that). Such a link is aborted instead, which
 * drops it from `out`, and the next round dials a new one.
 */
function send(link: Link, rows: Beat[], reply: boolean): void {
  const s = link.stream;
  if (s.status !== 'open' || s.writeStatus !== 'writable' || s.writableNeedsDrain) return;
  try {
    s.send(encodeFrame({ rows: link.out.encode(rows), reply } satisfies Frame));
  } catch (err) {
    s.abort(err as Error);
  }
}
