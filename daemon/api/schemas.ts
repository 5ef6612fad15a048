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

export const problem = {
  type: 'object',
  properties: {
    type: { type: 'string' },
    title: { type: 'string' },
    status: { type: 'integer' },
    detail: { type: 'string' },
    code: { type: 'string' },
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
    properties: { key: { type: 'string', minLength: 1, maxLength: 256 }, value: {} },
  },
} as const;
