import type { ActivationId, Digest, FunctionName, HostId, NamespaceName } from './ids.ts';

/**
 * Where a function's code runs: one of our runtime images, or a user image that speaks the action protocol.
 * A sequence runs nothing itself: its components run one after another (fully qualified names, /ns/name).
 */
export type Runtime = { kind: 'nodejs' } | { kind: 'python' } | { kind: 'image'; image: string } | { kind: 'sequence'; components: string[] };

/** A runtime that runs code in a container of its own. */
export type CodeRuntime = Exclude<Runtime, { kind: 'sequence' }>;

export interface KeyValue {
  key: string;
  value: unknown;
}

/** What an OpenWhisk document says of a function besides what runs it; kept and returned as given. */
export interface FunctionMeta {
  /** exec.kind as OpenWhisk names it, `:default` resolved (nodejs:24, python:3, blackbox, sequence) */
  kind: string;
  annotations: KeyValue[];
  publish: boolean;
  /** semver, patch-bumped on every update that names none */
  version: string;
  /** keys of the parameters marked `init`: given to the code at /init as environment, not as arguments */
  init: string[];
  /** limits.logs in MB (0: no logs kept) */
  logsMb: number;
}

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
  meta: FunctionMeta;
}

/** OpenWhisk's four outcomes, plus the state of an activation still in flight. */
export type ActivationStatus = 'running' | 'success' | 'application error' | 'action developer error' | 'whisk internal error';

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
  /** a component of a sequence: causedBy 'sequence', and the sequence's activation (OpenWhisk's top-level `cause`) */
  causedBy: 'sequence';
  cause: string;
  /** a sequence's own activation: whether it is the outermost */
  topmost: boolean;
  /** a named instance's bytes sent to each peer instance, as its SDK reported them */
  traffic: Record<string, number>;
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

/** Entities besides functions that OpenWhisk keeps: replicated as functions are, by the registry. */
export type EntityKind = 'trigger' | 'rule' | 'package';

interface EntityBase {
  namespace: NamespaceName;
  name: string;
  version: string;
  publish: boolean;
  annotations: KeyValue[];
  updated: number;
}
/** An entity's path and name, as OpenWhisk writes a rule's trigger and action. */
export interface EntityRef {
  path: string;
  name: string;
}
export interface TriggerDoc extends EntityBase {
  parameters: KeyValue[];
  limits: Record<string, never>;
}
export interface RuleDoc extends EntityBase {
  status: 'active' | 'inactive';
  trigger: EntityRef;
  action: EntityRef;
}
export interface PackageDoc extends EntityBase {
  parameters: KeyValue[];
  /** {} for a package; the package it binds to for a binding */
  binding: Record<string, never> | { namespace: string; name: string };
}
export interface EntityDocs {
  trigger: TriggerDoc;
  rule: RuleDoc;
  package: PackageDoc;
}
