import { ACTIVATION_ID_PATTERN, NAME_PATTERN } from '../ids.ts';

// Shared JSON schemas: every route validates its input against these before
// any handler code runs, and the OpenAPI document is generated from them.

export const name = { type: 'string', pattern: NAME_PATTERN, maxLength: 256 } as const;

export const nsParams = {
  type: 'object',
  required: ['namespace'],
  additionalProperties: false,
  properties: { namespace: name },
} as const;

export const fnParams = {
  type: 'object',
  required: ['namespace', 'name'],
  additionalProperties: false,
  properties: { namespace: name, name },
} as const;

export const activationParams = {
  type: 'object',
  required: ['namespace', 'id'],
  additionalProperties: false,
  properties: { namespace: name, id: { type: 'string', pattern: ACTIVATION_ID_PATTERN } },
} as const;

export const paging = {
  limit: { type: 'integer', minimum: 0, maximum: 200, default: 30 },
  skip: { type: 'integer', minimum: 0, maximum: 1_000_000, default: 0 },
} as const;

/** What OpenWhisk's clients send on entity lists and its server ignores. */
export const ignoredListParams = {
  docs: { type: 'boolean' },
  public: { type: 'boolean' },
  since: { type: 'integer' },
} as const;

export const problem = {
  type: 'object',
  properties: {
    type: { type: 'string' },
    title: { type: 'string' },
    status: { type: 'integer' },
    detail: { type: 'string' },
    error: { type: 'string', description: "OpenWhisk's member: the message, with the field at fault" },
    code: { type: 'string', description: "OpenWhisk's member: the request ID, as in X-Request-ID" },
    field: { type: 'string' },
    instance: { type: 'string' },
  },
} as const;

export const keyValueList = {
  type: 'array',
  maxItems: 10_000,
  items: {
    type: 'object',
    required: ['key', 'value'],
    additionalProperties: false,
    properties: { key: { type: 'string', minLength: 1, maxLength: 256 }, value: {}, init: { type: 'boolean' } },
  },
} as const;
