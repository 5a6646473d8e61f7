// Keeps the client under HubEx's rate limit (HUBEX_RATE_LIMIT, e.g. 60/min): every HTTP request
// waits for its turn at a gate. Turns are spaced evenly (a generic cell rate algorithm: one
// request per window/limit), so that a window as long as the limit's holds at most the limit
// plus one (the one at its very edge; in any second at 120/min: 3). A 429 with Retry-After closes the gate for every request of the client until then, not
// only for the call that got it. Waiting honours the caller's signal: calls wait, they do not fail.
// The gate here counts one process; the router gives the client one kept in Redis when
// instances share a store (src/store/redis/rate-gate.ts), with the same contract.
import { sleep } from './retry-policy.js';

export interface RateGate {
  /** Resolves when one request may go (its turn is taken); rejects only when `signal` aborts. */
  take(signal?: AbortSignal): Promise<void>;
  /** HubEx answered 429 with Retry-After: no request goes for `ms`. */
  pause(ms: number): void;
}

export interface RateLimit {
  /** Requests per window. */
  readonly limit: number;
  readonly windowMs: number;
}

const UNITS: Readonly<Record<string, number>> = { s: 1000, sec: 1000, m: 60_000, min: 60_000, h: 3_600_000, hour: 3_600_000 };

/** `60/min`, `5/s`, `1000/h`; undefined for anything else. */
export function parseRateLimit(text: string): RateLimit | undefined {
  const m = /^\s*(\d{1,7})\s*\/\s*([a-z]+)\s*$/i.exec(text);
  if (!m) return undefined;
  const limit = Number(m[1]);
  const windowMs = UNITS[m[2]!.toLowerCase()];
  if (!windowMs || limit < 1) return undefined;
  return { limit, windowMs };
}

/** The time between two requests' turns. */
export const spacing = (r: RateLimit): number => r.windowMs / r.limit;

/** A gate for one process. */
export class LocalRateGate implements RateGate {
  readonly #spacingMs: number;
  readonly #now: () => number;
  /** When the next turn may be: the theoretical arrival time. */
  #next = 0;
  #pausedUntil = 0;

  constructor(limit: RateLimit, now: () => number = Date.now) {
    this.#spacingMs = spacing(limit);
    this.#now = now;
  }

  async take(signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    const now = this.#now();
    const turn = Math.max(this.#next, now, this.#pausedUntil);
    this.#next = turn + this.#spacingMs;
    if (turn > now) await sleep(turn - now, signal); // the turn is kept even if the caller gives up: never over the limit
    // A 429 that came while it waited closes the gate for it too.
    for (let left = this.#pausedUntil - this.#now(); left > 0; left = this.#pausedUntil - this.#now()) await sleep(left, signal);
  }

  pause(ms: number): void {
    if (!(ms > 0)) return;
    this.#pausedUntil = Math.max(this.#pausedUntil, this.#now() + Math.min(ms, 24 * 3600 * 1000));
  }
}
