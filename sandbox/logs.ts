import type { Readable } from 'node:stream';

// Cuts a container's stdout and stderr into per-activation pieces. The action
// proxy ends every activation with the sentinel line on both streams; the
// lines before it, from both streams in arrival order, are that activation's logs.
// A container shared by several instances at once cannot cut by position: its
// proxy starts each of an instance's lines, sentinel included, with TAG, the
// activation ID and a space, and the lines are sorted out by that ID.

export const SENTINEL = 'XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX';
export const TAG = '\u001e';
/** Tagged pieces nobody took (their activation's end was lost) are dropped past this many. */
const MAX_TAGGED = 1000;
const START_MARKER = 'XXX_THE_START_OF_A_WHISK_ACTIVATION_XXX';

type Line = { t: number; seq: number; text: string };
type StreamName = 'stdout' | 'stderr';

class StreamCuts {
  private partial = '';
  private current: Line[] = [];
  readonly done: Line[][] = [];
  /** a shared container's lines, by activation; `end` once its sentinel came */
  readonly tagged = new Map<string, { lines: Line[]; end: boolean }>();
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
    if (text.startsWith(TAG)) {
      const sp = text.indexOf(' ');
      const id = sp < 0 ? text.slice(1) : text.slice(1, sp);
      const rest = sp < 0 ? '' : text.slice(sp + 1);
      let t = this.tagged.get(id);
      if (!t) {
        if (this.tagged.size >= MAX_TAGGED) this.tagged.delete(this.tagged.keys().next().value!);
        this.tagged.set(id, (t = { lines: [], end: false }));
      }
      if (rest === SENTINEL) {
        t.end = true;
        this.onCut();
      } else t.lines.push({ t: Date.now(), seq: this.nextSeq(), text: `${this.name}: ${rest}` });
      return;
    }
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

  private wait(deadline: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const t = setTimeout(resolve, deadline - Date.now());
      this.waiters.push(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  /**
   * The logs of the activation that just ended. Waits up to `waitMs` for both
   * sentinels; if they do not come (the container died), takes what is there.
   * With an activation ID: that instance's tagged lines in a shared container,
   * and the container's own untagged lines since the last take (a crash's words).
   */
  async take(waitMs: number, activationId?: string): Promise<string[]> {
    const deadline = Date.now() + waitMs;
    if (activationId !== undefined) {
      const ended = () => [this.out, this.err].every((s) => s.tagged.get(activationId)?.end);
      while (!ended() && Date.now() < deadline) await this.wait(deadline);
      const lines: Line[] = [];
      for (const s of [this.out, this.err]) {
        lines.push(...(s.tagged.get(activationId)?.lines ?? []), ...s.takeCurrent());
        s.tagged.delete(activationId);
      }
      return this.format(lines);
    }
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
      await this.wait(deadline);
    }
    return this.format([...this.out.done.shift()!, ...this.err.done.shift()!]);
  }
}
