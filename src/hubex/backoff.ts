// Retry delays: exponential backoff with full jitter (AWS's "Exponential Backoff And Jitter").
// The client's retries use it, and so do the router's deliveries (src/delivery/backoff.ts).

export interface BackoffOptions {
  /** The ceiling of the first retry's delay. */
  readonly baseMs: number;
  /** No delay is longer than this. */
  readonly maxMs: number;
}

/**
 * The delay before retry number `attempt` (1 = after the first failed run): a random value in
 * [0, min(maxMs, baseMs * 2^(attempt-1))]. `notBeforeMs` (a 429's Retry-After) is a floor, itself
 * no higher than maxMs: a Retry-After of a day (or a handler's error saying 1e308) must not park
 * a delivery for ever.
 */
export function retryDelay(attempt: number, opts: BackoffOptions, random: () => number = Math.random, notBeforeMs = 0): number {
  const ceiling = Math.min(opts.maxMs, opts.baseMs * 2 ** Math.min(Math.max(attempt - 1, 0), 52));
  const floor = Number.isFinite(notBeforeMs) ? Math.min(Math.max(notBeforeMs, 0), opts.maxMs) : opts.maxMs;
  return Math.max(Math.round(random() * ceiling), floor);
}
