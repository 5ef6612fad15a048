import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';

// How the CLI reaches a daemon: the target and key come from flags, then the
// environment (PEERLESS_APIHOST, PEERLESS_AUTH), then ~/.config/peerless/config.json.

export interface Target {
  apihost: string;
  auth: string | undefined;
}

export class ApiError extends Error {
  readonly status: number;
  readonly body: unknown;
  constructor(status: number, message: string, body: unknown) {
    super(message);
    this.status = status;
    this.body = body;
  }
}

export const configFile = (): string => process.env.PEERLESS_CONFIG_FILE ?? join(process.env.XDG_CONFIG_HOME ?? join(homedir(), '.config'), 'peerless', 'config.json');

export function readCliConfig(): Record<string, string> {
  const f = configFile();
  if (!existsSync(f)) return {};
  try {
    return JSON.parse(readFileSync(f, 'utf8')) as Record<string, string>;
  } catch (e) {
    throw new Error(`cannot read ${f}: ${(e as Error).message}`);
  }
}

export function writeCliConfig(c: Record<string, string>): void {
  const f = configFile();
  mkdirSync(dirname(f), { recursive: true, mode: 0o700 });
  writeFileSync(f, `${JSON.stringify(c, null, 2)}\n`, { mode: 0o600 });
}

export function resolveTarget(flags: { apihost?: string; auth?: string }): Target {
  const file = readCliConfig();
  const apihost = flags.apihost ?? process.env.PEERLESS_APIHOST ?? file.apihost ?? 'http://127.0.0.1:3233';
  return {
    apihost: /^https?:\/\//.test(apihost) ? apihost.replace(/\/$/, '') : `http://${apihost}`,
    auth: flags.auth ?? process.env.PEERLESS_AUTH ?? file.auth,
  };
}

export async function call(t: Target, method: string, path: string, body?: unknown): Promise<{ status: number; body: unknown; headers: Headers }> {
  const headers: Record<string, string> = {};
  if (t.auth) headers.authorization = `Basic ${Buffer.from(t.auth).toString('base64')}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  let res: Response;
  try {
    res = await fetch(`${t.apihost}${path}`, { method, headers, body: body === undefined ? null : JSON.stringify(body) });
  } catch (e) {
    throw new ApiError(0, `cannot reach the daemon at ${t.apihost}: ${(e as Error & { cause?: Error }).cause?.message ?? (e as Error).message}`, null);
  }
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = text === '' ? null : JSON.parse(text);
  } catch {
    /* not JSON: keep the text */
  }
  if (res.status >= 400 && (res.headers.get('content-type') ?? '').includes('problem+json')) {
    const p = parsed as { detail?: string; field?: string; status?: number };
    throw new ApiError(res.status, `${p.detail ?? res.statusText}${p.field ? ` (${p.field})` : ''}`, parsed);
  }
  return { status: res.status, body: parsed, headers: res.headers };
}
