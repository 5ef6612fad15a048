import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

// Shared by the benchmarks: percentiles, a printed table, and an SVG chart
// comparing each measurement with its baseline from the same run.

export const percentile = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
};
export const median = (xs: number[]) => percentile(xs, 50);

export interface Row {
  metric: string;
  unit: string;
  ours: number;
  baseline: number;
  baselineName: string;
  /** how the ratio reads: for latencies lower is better, for rates higher is */
  better: 'lower' | 'higher';
  note?: string;
}

const fmt = (n: number) => (Math.abs(n) >= 100 ? n.toFixed(0) : Math.abs(n) >= 10 ? n.toFixed(1) : n.toFixed(2));

export function table(title: string, rows: Row[]): string {
  const head = ['metric', 'peerless', 'baseline', 'baseline is', 'ratio', 'note'];
  const body = rows.map((r) => [r.metric, `${fmt(r.ours)} ${r.unit}`, `${fmt(r.baseline)} ${r.unit}`, r.baselineName, `${(r.ours / r.baseline).toFixed(2)}×`, r.note ?? '']);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  return [`### ${title}`, '', line(head), line(widths.map((w) => '-'.repeat(w))), ...body.map(line)].join('\n');
}

export function chart(title: string, rows: Row[]): string {
  const W = 860;
  const barH = 16;
  const gap = 14;
  const left = 300;
  const top = 40;
  const h = top + rows.length * (2 * barH + gap) + 30;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${h}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="10" y="22" font-size="15" font-weight="bold">${title}</text>`,
    `<rect x="${W - 250}" y="10" width="12" height="12" fill="#2b7bb9"/><text x="${W - 233}" y="21">peerless</text>`,
    `<rect x="${W - 160}" y="10" width="12" height="12" fill="#bbb"/><text x="${W - 143}" y="21">baseline</text>`,
  ];
  rows.forEach((r, i) => {
    const y = top + i * (2 * barH + gap);
    const max = Math.max(r.ours, r.baseline) || 1;
    const scale = (W - left - 120) / max;
    parts.push(`<text x="10" y="${y + barH + 4}">${r.metric} (${(r.ours / r.baseline).toFixed(2)}×)</text>`);
    parts.push(`<rect x="${left}" y="${y}" width="${Math.max(1, r.ours * scale)}" height="${barH}" fill="#2b7bb9"/>`);
    parts.push(`<text x="${left + r.ours * scale + 4}" y="${y + 12}">${fmt(r.ours)} ${r.unit}</text>`);
    parts.push(`<rect x="${left}" y="${y + barH}" width="${Math.max(1, r.baseline * scale)}" height="${barH}" fill="#bbb"/>`);
    parts.push(`<text x="${left + r.baseline * scale + 4}" y="${y + barH + 12}">${fmt(r.baseline)} ${r.unit} (${r.baselineName})</text>`);
  });
  parts.push('</svg>');
  return parts.join('\n');
}

/** Prints the table and writes table (markdown), rows (JSON) and chart (SVG) under test/bench/results/. */
export function report(name: string, title: string, rows: Row[], extra = ''): void {
  const dir = join(import.meta.dirname, 'results');
  mkdirSync(dir, { recursive: true });
  const t = table(title, rows);
  process.stdout.write(`\n${t}\n${extra ? `\n${extra}\n` : ''}`);
  writeFileSync(join(dir, `${name}.md`), `${t}\n${extra ? `\n${extra}\n` : ''}`);
  writeFileSync(join(dir, `${name}.json`), `${JSON.stringify({ when: new Date().toISOString(), rows }, null, 2)}\n`);
  writeFileSync(join(dir, `${name}.svg`), chart(title, rows));
  process.stdout.write(`\nwrote test/bench/results/${name}.{md,json,svg}\n`);
}
