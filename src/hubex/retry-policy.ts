// Which failed HubEx calls are tried again inside the call, and when: network errors, timeouts,
// 429 (not before its Retry-After), 502, 503 and 504, for idempotent methods, and for POST only
// when the caller says it is safe (a POST whose answer was lost would otherwise happen twice).
// A 500 is not retried here: HubEx failed on this request, and the delivery's own retry comes later.
import { retryDelay } from './backoff.js';
import { type HubexApiError, RETRYABLE_STATUSES } from './errors.js';
import type { Method } from './http-types.js';

const IDEMPOTENT: ReadonlySet<Method> = new Set(['GET', 'HEAD', 'PUT', 'DELETE']);

export interface RetryPolicy {
  readonly retries: number;
  readonly retryBaseMs: number;
  readonly retryMaxMs: number;
  readonly maxRetryAfterMs: number;
  readonly random: () => number;
}

/** Whether a call may be sent more than once. */
export function mayRetry(method: Method, retrySafe: boolean | undefined): boolean {
  return IDEMPOTENT.has(method) || retrySafe === true;
}

/** The wait before try `attempt + 1`, or undefined when this failure ends the call. */
export function retryWait(failure: HubexApiError, attempt: number, policy: RetryPolicy): number | undefined {
  const retryHere = failure.status === 0 || RETRYABLE_STATUSES.has(failure.status);
  if (!retryHere || attempt > policy.retries) return undefined;
  // A long Retry-After is left to the caller's own backoff rather than slept through here.
  if ((failure.retryAfterMs ?? 0) > policy.maxRetryAfterMs) return undefined;
  // Never sooner than HubEx's Retry-After (at most maxRetryAfterMs, checked above).
  return Math.max(retryDelay(attempt, { baseMs: policy.retryBaseMs, maxMs: policy.retryMaxMs }, policy.random), failure.retryAfterMs ?? 0);
}

/** Waits `ms`; an abort ends the wait and rejects with the signal's reason. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', abort);
      resolve();
    }, ms);
    const abort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    signal?.addEventListener('abort', abort, { once: true });
  });
}
