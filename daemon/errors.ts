// Typed errors with stable codes. The HTTP layer turns every one of these into
// an RFC 9457 problem+json body that OpenWhisk's clients can read too; anything
// else becomes a 500 with no details.

export type ErrorCode =
  | 'bad_request'
  | 'validation'
  | 'unauthorized'
  | 'forbidden'
  | 'not_found'
  | 'conflict'
  | 'payload_too_large'
  | 'unsupported_media_type'
  | 'too_many_requests'
  | 'unavailable'
  | 'insufficient_storage';

const STATUS: Record<ErrorCode, number> = {
  bad_request: 400,
  validation: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  payload_too_large: 413,
  unsupported_media_type: 415,
  too_many_requests: 429,
  unavailable: 503,
  insufficient_storage: 507,
};

export class PeerlessError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  /** The request field at fault, as a JSON pointer-ish path ("/body/exec/code"). */
  readonly field: string | undefined;
  readonly headers: Record<string, string>;

  constructor(code: ErrorCode, message: string, opts: { field?: string; headers?: Record<string, string> } = {}) {
    super(message);
    this.name = 'PeerlessError';
    this.code = code;
    this.status = STATUS[code];
    this.field = opts.field;
    this.headers = opts.headers ?? {};
  }
}

export const notFound = (what: string, field?: string) => new PeerlessError('not_found', `${what} does not exist`, field === undefined ? {} : { field });
export const conflict = (message: string, field?: string) => new PeerlessError('conflict', message, field === undefined ? {} : { field });
export const invalid = (field: string, message: string) => new PeerlessError('validation', message, { field });
export const tooLarge = (field: string, message: string) => new PeerlessError('payload_too_large', message, { field });

/**
 * RFC 9457 problem details, with OpenWhisk's two members besides: `error` (the message, which its
 * clients print) and `code` (the request ID, also sent as X-Request-ID). The stable error code is the
 * last segment of `type`, as RFC 9457 means `type` to be the problem's identifier.
 */
export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  error: string;
  code: string;
  field?: string;
  instance?: string;
}

export const problemType = (code: ErrorCode | 'internal') => `https://peerless.dev/problems/${code}`;

export function toProblem(err: PeerlessError, requestId: string, instance?: string): Problem {
  const p: Problem = {
    type: problemType(err.code),
    title: err.code.replace(/_/g, ' '),
    status: err.status,
    detail: err.message,
    error: err.field === undefined ? err.message : `${err.message} (${err.field})`,
    code: requestId,
  };
  if (err.field !== undefined) p.field = err.field;
  if (instance !== undefined) p.instance = instance;
  return p;
}

/** The data disk is full: SQLite says so in its own words, the file system as ENOSPC or EDQUOT. */
export function isStorageFull(err: unknown): boolean {
  const e = err as { code?: string; errcode?: number; errstr?: string } | null;
  if (!e || typeof e !== 'object') return false;
  if (e.code === 'ENOSPC' || e.code === 'EDQUOT') return true;
  // SQLITE_FULL is 13; a full disk while the WAL grows can also surface as an I/O error (10).
  return e.code === 'ERR_SQLITE_ERROR' && (e.errcode === 13 || (e.errcode !== undefined && (e.errcode & 0xff) === 10) || /full/i.test(e.errstr ?? ''));
}

export const storageFull = () => new PeerlessError('insufficient_storage', "the daemon's data disk is full: nothing was changed; free space and retry");
