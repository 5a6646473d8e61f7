// What a failed handler run means for its delivery: retry later, or dead at once.
// A handler may throw anything (a string, a cyclic null-prototype object, a revoked Proxy): this
// reads it without ever throwing itself, so that a failed run is always recorded.
import { isPermanentError } from '../errors.js';

/** HubEx answers that no retry can fix (../shared/HUBEX.md). */
export const PERMANENT_STATUSES: ReadonlySet<number> = new Set([400, 403, 404, 409, 422]);

/** The longest error message kept with a delivery (the store, the log, the admin API). */
export const MAX_ERROR_MESSAGE = 2000;

export interface Failure {
  readonly retry: boolean;
  /** A floor for the next run's delay, from a 429's Retry-After. */
  readonly notBeforeMs?: number;
  readonly errorClass: string;
  readonly message: string;
  /** HubEx's traceIdentifier, what its support asks for. */
  readonly traceId?: string;
}

/**
 * Reads an error thrown by a handler. HubEx API errors are recognised by their fields (`status`,
 * `retryable`, `retryAfterMs`, `traceIdentifier`), not their class, so that any client's error
 * of that shape works. Never throws: what cannot be read is retried, as an unknown error.
 */
export function classify(err: unknown): Failure {
  try {
    return read(err);
  } catch {
    return { retry: true, errorClass: 'unreadable', message: 'The handler threw a value that cannot be read (not an Error).' };
  }
}

function read(err: unknown): Failure {
  const isError = err instanceof Error;
  const e = (err !== null && typeof err === 'object' ? err : {}) as Record<string, unknown>;
  const errorClass = text(isError ? err.name || err.constructor?.name : typeof err, 100) || 'Error';
  const message = text(isError ? err.message : describe(err), MAX_ERROR_MESSAGE);
  const traceId = typeof e.traceIdentifier === 'string' ? text(e.traceIdentifier, 200) : undefined;
  const base = { errorClass, message, ...(traceId ? { traceId } : {}) };
  if (isPermanentError(err)) return { ...base, retry: false };
  const status = typeof e.status === 'number' ? e.status : undefined;
  if (typeof e.retryable === 'boolean' && status !== 429) return { ...base, retry: e.retryable };
  if (status !== undefined && PERMANENT_STATUSES.has(status)) return { ...base, retry: false };
  const notBeforeMs = typeof e.retryAfterMs === 'number' && e.retryAfterMs > 0 ? e.retryAfterMs : undefined;
  return { ...base, retry: true, ...(notBeforeMs ? { notBeforeMs } : {}) };
}

/** A thrown non-Error as text: a string as it is, else its JSON, else a placeholder. */
function describe(v: unknown): string {
  if (typeof v === 'string') return v;
  try {
    const json = JSON.stringify(v);
    if (json !== undefined) return json;
  } catch {
    // cyclic, a BigInt, a throwing toJSON: fall through
  }
  try {
    return String(v);
  } catch {
    return `a thrown ${v === null ? 'null' : typeof v} that cannot be shown`;
  }
}

/** A string of at most `max` characters (a getter may have returned anything). */
function text(v: unknown, max: number): string {
  const s = typeof v === 'string' ? v : '';
  return s.length > max ? `${s.slice(0, max)}…` : s;
}
