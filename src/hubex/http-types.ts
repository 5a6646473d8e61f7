// What the HTTP core of the client takes and gives: its options, a call's options, an answer.
import type { Logger } from 'pino';
import type { RateGate } from './rate-gate.js';

export type Method = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

export interface HubexHttpOptions {
  /** https://api.hubex.ru/fsm (the services follow: /WORK/Tasks/5). */
  readonly baseUrl: string;
  /** X-Application-ID: 5 (Api) for an integration. */
  readonly applicationId: number;
  readonly serviceToken?: string | undefined;
  readonly accessToken?: string | undefined;
  readonly log?: Logger | undefined;
  /** Per call (each try). Default 15 s. */
  readonly timeoutMs?: number;
  /** Calls in flight at most; the rest wait their turn. Default 8. */
  readonly maxInFlight?: number;
  /** Retries after the first try. Default 4. */
  readonly retries?: number;
  readonly retryBaseMs?: number;
  readonly retryMaxMs?: number;
  /**
   * A Retry-After longer than this is not waited for inside the call: the call fails at once with
   * `retryAfterMs`, and the caller (the delivery's backoff) comes back later. Default 30 s.
   */
  readonly maxRetryAfterMs?: number;
  /** Renew the access token this long before it expires. Default 2 min. */
  readonly renewMarginMs?: number;
  readonly now?: () => number;
  readonly random?: () => number;
  /** HubEx's rate limit: every request waits for its turn here (./rate-gate.ts). None by default. */
  readonly rateGate?: RateGate | undefined;
  /** Told of each call's end (for the metrics). */
  readonly onCall?: (call: { service: string; method: Method; status: number; ms: number }) => void;
  readonly onRenewal?: (how: 'service' | 'refresh', ok: boolean) => void;
}

export interface CallOptions {
  readonly query?: Readonly<Record<string, string | number | boolean | null | undefined | readonly (string | number)[]>> | undefined;
  readonly body?: unknown;
  readonly headers?: Readonly<Record<string, string>> | undefined;
  /** Aborts the call (ctx.signal: a handler's timeout or the shutdown). */
  readonly signal?: AbortSignal | undefined;
  /** A POST that may be sent twice without harm (HubEx's retries are then allowed). */
  readonly retrySafe?: boolean | undefined;
}

export interface HubexResponse<T = unknown> {
  readonly status: number;
  readonly headers: { get(name: string): string | null };
  /** The parsed JSON body; undefined when there was none. */
  readonly body: T;
}
