import type { Readable } from 'node:stream';

// Cuts a container's stdout and stderr into per-activation pieces. The action
// proxy ends every activation with the sentinel line on both streams; the
// lines before it, from both streams in arrival order, are that activation's logs.

export const SENTINEL = 'XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX';
const START_MARKER = 'XXX_THE_START_OF_A_WHISK_ACTIVATION_XXX';

type Line = { t: number; seq: number; text: string };
type StreamName = 'stdout' | 'stderr';

class StreamCuts {
  private partial = '';
  private current: Line[] = [];
  readonly done: Line[][] = [];
  /** Sentinels still to come for pieces already taken early (after a wait timed out). */
  skip = 0;
  private readonly name: StreamName;
  private readonly onCut: () => void;
  private readonly nextSeq: () => number;
  constructor(name: StreamName, onCut: () => void, nextSeq: () => number) {
    this.name = name;
    this.onCut = onCut;
    this.nextSeq = nextSeq;
  }

  push(chunk: Buffer): void {
    const lines = (this.partial + chunk.toString('utf8')).split('\n');
    this.partial = lines.pop() ?? '';
    for (const text of lines) this.line(text);
  }

  private line(text: string): void {
    if (text === SENTINEL) {
      if (this.skip > 0) this.skip--;
      else this.done.push(this.current);
      this.current = [];
      this.onCut();
    } else if (!text.startsWith(START_MARKER)) {
      this.current.push({ t: Date.now(), seq: this.nextSeq(), text: `${this.name}: ${text}` });
    }
  }

  /** Whatever arrived since the last cut, for when no sentinel is coming. */
  takeCurrent(): Line[] {
    const out = this.current;
    if (this.partial) out.push({ t: Date.now(), seq: this.nextSeq(), text: `${this.name}: ${this.partial}` });
    this.current = [];
    this.partial = '';
    return out;
  }
}

export class LogCollector {
  private seq = 0;
  private waiters: (() => void)[] = [];
  private readonly out: StreamCuts;
  private readonly err: StreamCuts;

  private readonly maxBytes: number;
  constructor(stdout: Readable, stderr: Readable, maxBytes: number) {
    this.maxBytes = maxBytes;
    const notify = () => {
      const ws = this.waiters;
      this.waiters = [];
      for (const w of ws) w();
    };
    const next = () => this.seq++;
    this.out = new StreamCuts('stdout', notify, next);
    this.err = new StreamCuts('stderr', notify, next);
    stdout.on('data', (c: Buffer) => this.out.push(c));
    stderr.on('data', (c: Buffer) => this.err.push(c));
  }

  private format(lines: Line[]): string[] {
    lines.sort((a, b) => a.seq - b.seq);
    const logs: string[] = [];
    let bytes = 0;
    for (const l of lines) {
      const s = `${new Date(l.t).toISOString()} ${l.text}`;
      bytes += Buffer.byteLength(s);
      if (bytes > this.maxBytes) {
        logs.push(`Logs were truncated because the total bytes size exceeds the limit of ${this.maxBytes} bytes.`);
        break;
      }
      logs.push(s);
    }
    return logs;
  }

  /**
   * The logs of the activation that just ended. Waits up to `waitMs` for both
   * sentinels; if they do not come (the container died), takes what is there.
   */
  async take(waitMs: number): Promise<string[]> {
    const deadline = Date.now() + waitMs;
    while (this.out.done.length === 0 || this.err.done.length === 0) {
      const left = deadline - Date.now();
      if (left <= 0) {
        const lines: Line[] = [];
        for (const s of [this.out, this.err]) {
          if (s.done.length > 0) lines.push(...s.done.shift()!);
          else {
            lines.push(...s.takeCurrent());
            s.skip++;
          }
        }
        return this.format(lines);
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    return this.format([...this.out.done.shift()!, ...this.err.done.shift()!]);
  }
}
