import { ApiError } from '../errors/index.js';
import { parseDuration } from '../util/duration.js';

/**
 * Reading a JSON body and a query string: every bad field is a 400 with one
 * line that names it.
 */
const bad = (message: string) => new ApiError('ERR_API_BODY', message);

export function objectBody(body: unknown, required: boolean): Record<string, unknown> {
  if (body === undefined && !required) return {};
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw bad('the request body must be a JSON object');
  return body as Record<string, unknown>;
}

/** Refuses fields the route does not know (a typo must not be silently ignored). */
export function onlyFields(body: Record<string, unknown>, known: readonly string[]): void {
  for (const k of Object.keys(body)) if (!known.includes(k)) throw bad(`unknown field "${k.slice(0, 40)}" (${known.join(', ') || 'none'})`);
}

export function stringField(body: Record<string, unknown>, name: string, opts: { required: true; max?: number }): string;
export function stringField(body: Record<string, unknown>, name: string, opts?: { required?: false; max?: number }): string | undefined;
export function stringField(body: Record<string, unknown>, name: string, opts: { required?: boolean; max?: number } = {}): string | undefined {
  const v = body[name];
  if (v === undefined || v === null) {
    if (opts.required) throw bad(`"${name}" is required`);
    return undefined;
  }
  if (typeof v !== 'string') throw bad(`"${name}" must be a string`);
  if (v.length > (opts.max ?? 1000)) throw bad(`"${name}" is longer than ${opts.max ?? 1000} characters`);
  return v;
}

export function stringsField(body: Record<string, unknown>, name: string, max = 100): string[] | undefined {
  const v = body[name];
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v) || v.length > max || !v.every((s) => typeof s === 'string' && s.length <= 256)) {
    throw bad(`"${name}" must be an array of at most ${max} strings`);
  }
  return v as string[];
}

export function intField(body: Record<string, unknown>, name: string): number | undefined {
  const v = body[name];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isSafeInteger(v)) throw bad(`"${name}" must be a whole number`);
  return v;
}

export function boolField(body: Record<string, unknown>, name: string): boolean | undefined {
  const v = body[name];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean') throw bad(`"${name}" must be true or false`);
  return v;
}

/** A duration field (`"30m"`, `"90d"`), in ms. */
export function durationField(body: Record<string, unknown>, name: string): number | undefined {
  const v = stringField(body, name, { max: 20 });
  return v === undefined ? undefined : parseDuration(v, `"${name}"`);
}

/** Refuses query parameters the route does not take. */
export function onlyParams(query: URLSearchParams, known: readonly string[]): void {
  for (const k of query.keys()) if (!known.includes(k)) throw bad(`unknown parameter "${k.slice(0, 40)}" (${known.join(', ') || 'none'})`);
}

/** `limit`: 1 to `max`, `fallback` when absent. */
export function limitParam(query: URLSearchParams, fallback: number, max: number): number {
  const raw = query.get('limit');
  if (raw === null || raw === '') return fallback;
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || n < 1 || n > max) throw bad(`limit must be a whole number from 1 to ${max}`);
  return n;
}

/** A query parameter given non-empty, else undefined. */
export function param(query: URLSearchParams, name: string): string | undefined {
  const v = query.get(name);
  return v === null || v === '' ? undefined : v;
}
