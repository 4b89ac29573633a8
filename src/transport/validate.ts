// Request validation with JSON Schema (Ajv, draft 2020-12: the dialect OpenAPI 3.1 documents), so
// one schema both checks a request and describes it in /api/openapi.json. Errors name the field.

import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';
import { ValidationError } from '../errors.js';

export type Schema = Record<string, unknown>;

const bodyAjv = new Ajv2020({ allErrors: false, strict: true });
const queryAjv = new Ajv2020({ allErrors: false, strict: true, coerceTypes: true, useDefaults: true });
bodyAjv.addKeyword({ keyword: 'example' });
queryAjv.addKeyword({ keyword: 'example' });

const cache = new WeakMap<Schema, ValidateFunction>();

function compiled(schema: Schema, ajv: Ajv2020): ValidateFunction {
  let fn = cache.get(schema);
  if (!fn) {
    fn = ajv.compile(schema);
    cache.set(schema, fn);
  }
  return fn;
}

function describe(e: ErrorObject): ValidationError {
  const base = e.instancePath.replace(/^\//, '').replaceAll('/', '.');
  const join = (k: string) => (base ? `${base}.${k}` : k);
  switch (e.keyword) {
    case 'required':
      return new ValidationError(join(String(e.params.missingProperty)), 'is required');
    case 'additionalProperties':
      return new ValidationError(join(String(e.params.additionalProperty)), 'is not a known field');
    case 'type':
      return new ValidationError(base || '(body)', `must be ${e.params.type}`);
    default:
      return new ValidationError(base || '(body)', e.message ?? 'is invalid');
  }
}

/** Rejects strings PostgreSQL cannot store (NUL) or that are not well-formed UTF-16 (lone surrogates). */
function checkStrings(value: unknown, at: string): void {
  if (typeof value === 'string') {
    if (value.includes('\u0000')) throw new ValidationError(at || '(body)', 'must not contain NUL characters');
    if (!value.isWellFormed()) throw new ValidationError(at || '(body)', 'must be well-formed Unicode (no lone surrogates)');
  } else if (Array.isArray(value)) {
    for (const [i, v] of value.entries()) checkStrings(v, `${at}[${i}]`);
  } else if (value !== null && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) checkStrings(v, at ? `${at}.${k}` : k);
  }
}

export function validateBody<T>(schema: Schema, body: unknown): T {
  const fn = compiled(schema, bodyAjv);
  if (!fn(body)) throw describe((fn.errors as ErrorObject[])[0] as ErrorObject);
  checkStrings(body, '');
  return body as T;
}

/** How a URL writes a number the query schemas take: plain decimal digits (no hex, exponent, blanks or Infinity). */
const NUMERIC: Record<string, RegExp> = { integer: /^-?\d+$/, number: /^-?\d+(\.\d+)?$/ };

/** Validates (and coerces, and fills defaults into) a query object built from the URL. */
export function validateQuery<T>(schema: Schema, query: Record<string, unknown>): T {
  // Ajv coerces as JavaScript does ("0x10" is 16, " " is 0, "Infinity" a number): numbers are
  // taken only as decimal digits.
  const props = (schema.properties ?? {}) as Record<string, { type?: string }>;
  for (const [key, value] of Object.entries(query)) {
    const pattern = NUMERIC[props[key]?.type ?? ''];
    if (pattern && typeof value === 'string' && !pattern.test(value)) throw new ValidationError(key, `must be ${props[key]?.type}`);
  }
  const fn = compiled(schema, queryAjv);
  if (!fn(query)) throw describe((fn.errors as ErrorObject[])[0] as ErrorObject);
  checkStrings(query, '');
  return query as T;
}
