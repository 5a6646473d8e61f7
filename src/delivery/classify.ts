// What a failed handler run means for its delivery: retry later, or dead at once.
import { isPermanentError } from '../errors.js';

/** HubEx answers that no retry can fix (../shared/HUBEX.md). */
export const PERMANENT_STATUSES: ReadonlySet<number> = new Set([400, 403, 404, 409, 422]);

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
 * of that shape works.
 */
export function classify(err: unknown): Failure {
  const e = (err ?? {}) as Record<string, unknown>;
  const errorClass = err instanceof Error ? err.name || err.constructor.name : typeof err;
  const message = err instanceof Error ? err.message : safeString(err);
  const traceId = typeof e.traceIdentifier === 'string' ? e.traceIdentifier : undefined;
  const base = { errorClass, message, ...(traceId ? { traceId } : {}) };
  if (isPermanentError(err)) return { ...base, retry: false };
  const status = typeof e.status === 'number' ? e.status : undefined;
  if (typeof e.retryable === 'boolean' && status !== 429) return { ...base, retry: e.retryable };
  if (status !== undefined && PERMANENT_STATUSES.has(status)) return { ...base, retry: false };
  const notBeforeMs = typeof e.retryAfterMs === 'number' && e.retryAfterMs > 0 ? e.retryAfterMs : undefined;
  return { ...base, retry: true, ...(notBeforeMs ? { notBeforeMs } : {}) };
}

function safeString(v: unknown): string {
  try {
    return typeof v === 'string' ? v : JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
}
