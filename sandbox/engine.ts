import type Docker from 'dockerode';
import type { Logger } from 'pino';
import { LABEL, MANAGED_BY } from './labels.ts';

// Watches the Docker engine for what happens behind the daemon's back: a
// container of ours that dies (killed from outside, or by the kernel), and the
// engine itself going away and coming back (a restart or an upgrade). The
// engine's event stream is the signal: it carries the deaths, and it ends when
// the engine stops.

export type EngineEvent = { type: 'died'; containerId: string; exitCode: number } | { type: 'lost' } | { type: 'back' };

const RETRY_MS = 500;

export class EngineWatch {
  private stopped = false;
  private lost = false;
  private stream: NodeJS.ReadableStream | null = null;
  private readonly docker: Docker;
  private readonly hostId: string;
  private readonly log: Logger;
  private readonly onEvent: (e: EngineEvent) => void;
  private readonly running: Promise<void>;

  constructor(docker: Docker, hostId: string, log: Logger, onEvent: (e: EngineEvent) => void) {
    this.docker = docker;
    this.hostId = hostId;
    this.log = log;
    this.onEvent = onEvent;
    this.running = this.loop();
  }

  /** Whether the engine is known to be unreachable right now. */
  get isLost(): boolean {
    return this.lost;
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      let stream: NodeJS.ReadableStream;
      try {
        stream = (await this.docker.getEvents({
          filters: { type: ['container'], event: ['die'], label: [`${LABEL.managedBy}=${MANAGED_BY}`, `${LABEL.host}=${this.hostId}`] },
        })) as NodeJS.ReadableStream;
      } catch {
        this.setLost();
        await new Promise((r) => setTimeout(r, RETRY_MS));
        continue;
      }
      if (this.stopped) {
        (stream as unknown as { destroy(): void }).destroy();
        break;
      }
      this.stream = stream;
      if (this.lost) {
        this.lost = false;
        this.log.warn('the Docker engine is back');
        this.onEvent({ type: 'back' });
      }
      await this.consume(stream);
      this.stream = null;
      // The stream only ends when the engine went away (or restarted in between): either way,
      // whatever we believed about our containers may be false now.
      if (!this.stopped) this.setLost();
    }
  }

  private setLost(): void {
    if (this.lost) return;
    this.lost = true;
    this.log.error('lost the Docker engine: failing what ran on it and waiting for it to come back');
    this.onEvent({ type: 'lost' });
  }

  private consume(stream: NodeJS.ReadableStream): Promise<void> {
    return new Promise((resolve) => {
      let buf = '';
      stream.on('data', (chunk: Buffer) => {
        buf += chunk.toString('utf8');
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl).trim();
          buf = buf.slice(nl + 1);
          if (!line) continue;
          try {
            const ev = JSON.parse(line) as { id?: string; Actor?: { Attributes?: Record<string, string> } };
            if (ev.id) this.onEvent({ type: 'died', containerId: ev.id, exitCode: Number(ev.Actor?.Attributes?.exitCode ?? -1) });
          } catch {
            /* a line we do not understand is not worth losing the watch over */
          }
        }
      });
      stream.once('end', () => resolve());
      stream.once('close', () => resolve());
      stream.once('error', () => resolve());
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    (this.stream as unknown as { destroy(): void } | null)?.destroy();
    await this.running;
  }
}
