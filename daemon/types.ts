import type { ActivationId, Digest, FunctionName, HostId, NamespaceName } from './ids.ts';

/** Where a function's code runs: one of our runtime images, or a user image that speaks the action protocol. */
export type Runtime = { kind: 'nodejs' } | { kind: 'python' } | { kind: 'image'; image: string };

export interface FunctionLimits {
  memoryMb: number;
  timeoutMs: number;
  /**
   * How many instances of the function may share one container at once (OpenWhisk's limits.concurrency).
   * 1 isolates each in its own container; more run each in its own isolate (Node.js) or forked process
   * (Python) of a shared container whose memory limit they share.
   */
  concurrency: number;
}

export interface FunctionRecord {
  namespace: NamespaceName;
  name: FunctionName;
  runtime: Runtime;
  digest: Digest;
  /** Code is base64 (e.g. a zip) rather than text. */
  binary: boolean;
  main: string;
  limits: FunctionLimits;
  parameters: Record<string, unknown>;
  version: number;
  created: number;
  updated: number;
}

/** OpenWhisk's four outcomes, plus the state of an activation still in flight. */
export type ActivationStatus =
  | 'running'
  | 'success'
  | 'application error'
  | 'action developer error'
  | 'whisk internal error';

export const STATUS_CODE: Record<ActivationStatus, number> = {
  running: -1,
  success: 0,
  'application error': 1,
  'action developer error': 2,
  'whisk internal error': 3,
};

export interface ActivationAnnotations {
  kind: string;
  limits: { memory: number; timeout: number };
  coldStart: boolean;
  prewarmed?: boolean;
  waitTime: number;
  initTime?: number;
  path: string;
  instance: string;
  forwardedTo: string;
}

export interface ActivationRecord {
  activationId: ActivationId;
  namespace: NamespaceName;
  name: FunctionName;
  version: number;
  host: HostId;
  start: number;
  end: number | null;
  duration: number | null;
  status: ActivationStatus;
  result: unknown;
  logs: string[];
  annotations: Partial<ActivationAnnotations>;
}
