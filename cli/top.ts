import { ApiError, call, type Target } from './client.ts';

// `peerless top`: the dashboard's live numbers in a terminal, for an operator
// on a server without a browser. It reads the same snapshot the dashboard
// does (GET /api/v1/dashboard, every --interval ms) and draws one screen:
// the cluster's daemons, this daemon's last minute and hour, its containers,
// live instances per namespace and the newest activations. --once prints one
// screen and exits (scripts, tests).

interface Snapshot {
  host: string;
  scope: string;
  hosts: { host: string; self: boolean; state: string; load: number; freeMb: number; instances: number; lastSeenMs: number }[];
  containers: Record<string, number>;
  series: { t: number; count: number; cold: number; errors: number; p50: number | null; p99: number | null }[];
  namespaces: { namespace: string; instances: { state: string }[] }[];
  activations: { activationId: string; namespace: string; name: string; host: string; status: string; duration: number | null; start: number }[];
}

const pad = (s: unknown, n: number) =>
  String(s ?? '–')
    .padEnd(n)
    .slice(0, n);
const num = (s: unknown, n: number) => String(s ?? '–').padStart(n);

/** A sparkline of counts, one character per bucket. */
export function spark(xs: number[]): string {
  const bars = '▁▂▃▄▅▆▇█';
  const max = Math.max(...xs, 0);
  return xs.map((x) => (max === 0 || x === 0 ? ' ' : bars[Math.min(bars.length - 1, Math.floor((x / max) * (bars.length - 1)))])).join('');
}

/** Sums and latencies over the newest n buckets. */
function window(s: Snapshot['series'], n: number) {
  const w = s.slice(-n);
  const count = w.reduce((a, p) => a + p.count, 0);
  const cold = w.reduce((a, p) => a + p.cold, 0);
  const errors = w.reduce((a, p) => a + p.errors, 0);
  const p50 = Math.max(...w.map((p) => p.p50 ?? 0));
  const p99 = Math.max(...w.map((p) => p.p99 ?? 0));
  return { count, cold, errors, p50, p99 };
}

export function screen(s: Snapshot, width = 100): string {
  const minute = window(s.series, 6);
  const hour = window(s.series, s.series.length);
  const lines = [
    `peerless top · ${s.host} · ${s.scope === 'admin' ? 'all namespaces' : `namespace ${s.scope}`} · ${new Date().toLocaleTimeString()}`,
    '',
    `last minute: ${minute.count} invocations (${(minute.count / 60).toFixed(1)}/s), ${minute.count ? Math.round((100 * minute.cold) / minute.count) : 0}% cold, ${minute.errors} failed, p50 ≤ ${minute.p50} ms, p99 ≤ ${minute.p99} ms`,
    `last hour:   ${hour.count} invocations, ${hour.count ? Math.round((100 * hour.cold) / hour.count) : 0}% cold, ${hour.errors} failed`,
    `per minute:  ${spark(Array.from({ length: 60 }, (_, i) => s.series.slice(i * 6, i * 6 + 6).reduce((a, p) => a + p.count, 0)))}`,
    '',
    `${pad('DAEMON', 24)} ${pad('STATE', 12)} ${num('LOAD', 5)} ${num('FREE MB', 8)} ${num('INSTANCES', 9)}  HEARTBEAT`,
    ...s.hosts.map((h) => `${pad(h.host + (h.self ? ' *' : ''), 24)} ${pad(h.state, 12)} ${num(h.load, 5)} ${num(h.freeMb, 8)} ${num(h.instances, 9)}  ${h.self ? 'now' : `${h.lastSeenMs} ms ago`}`),
    '',
    `containers here: ${
      Object.entries(s.containers)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ') || 'none'
    }`,
    `instances: ${s.namespaces.map((n) => `${n.namespace} ${n.instances.length} (${n.instances.filter((i) => i.state === 'running').length} running)`).join(', ') || 'none'}`,
    '',
    `${pad('STARTED', 10)} ${pad('ACTIVATION', 34)} ${pad('FUNCTION', 26)} ${pad('HOST', 16)} ${pad('STATUS', 22)} ${num('MS', 7)}`,
    ...s.activations
      .slice(0, 12)
      .map((a) => `${pad(new Date(a.start).toLocaleTimeString(), 10)} ${pad(a.activationId, 34)} ${pad(`${a.namespace}/${a.name}`, 26)} ${pad(a.host, 16)} ${pad(a.status, 22)} ${num(a.duration, 7)}`),
  ];
  return lines.map((l) => l.slice(0, Math.max(width, 40))).join('\n');
}

export async function top(t: Target, o: { once: boolean; intervalMs: number; json: boolean }): Promise<number> {
  for (;;) {
    let s: Snapshot;
    try {
      s = (await call(t, 'GET', '/api/v1/dashboard')).body as Snapshot;
    } catch (e) {
      if (o.once || (e instanceof ApiError && e.status === 401)) throw e;
      process.stdout.write(`\x1b[2J\x1b[H${(e as Error).message}; trying again\n`);
      await new Promise((r) => setTimeout(r, o.intervalMs));
      continue;
    }
    if (o.once) {
      process.stdout.write(`${o.json ? JSON.stringify(s) : screen(s, process.stdout.columns ?? 120)}\n`);
      return 0;
    }
    // Clear and redraw in place, as top does.
    process.stdout.write(`\x1b[2J\x1b[H${screen(s, process.stdout.columns ?? 120)}\n`);
    await new Promise((r) => setTimeout(r, o.intervalMs));
  }
}
