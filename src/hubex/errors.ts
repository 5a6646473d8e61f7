// One error for every failed HubEx call: what was asked, what HubEx said, whether a retry can
// help, and a message that says what a person can do about it; and how one is read from an answer.
import type { HubexResponse, Method } from './http-types.js';

export interface HubexErrorFields {
  /** HTTP status; 0 when no answer came (network error, timeout). */
  readonly status: number;
  readonly method: string;
  /** The path asked for, with the service (`/WORK/Tasks/5`), without the query. */
  readonly path: string;
  /** ErrorModel.code, when HubEx sent one. */
  readonly code?: string | undefined;
  /** ErrorModel.message, when HubEx sent one. */
  readonly hubexMessage?: string | undefined;
  /** ErrorModel.traceIdentifier: what HubEx support asks for. */
  readonly traceIdentifier?: string | undefined;
  /** A 429's Retry-After, in ms. */
  readonly retryAfterMs?: number | undefined;
  /** Replaces the advice the status would give, where the caller knows better. */
  readonly advice?: string | undefined;
  readonly cause?: unknown;
}

/** What each status means for a person, and what to check. */
const ADVICE: Record<number, string> = {
  204: 'nothing there: HubEx answered "success, no content", so the id does not exist or was deleted',
  400: 'HubEx refused the request as malformed; check the values sent',
  401: 'not authenticated: the token was refused; check HUBEX_SERVICE_TOKEN (or HUBEX_ACCESS_TOKEN)',
  403: "no access: permission or licence, or no X-Application-ID; check the API user's roles",
  404: 'not found: the id does not exist, or was deleted',
  409: 'HubEx found the data invalid or in conflict; check the values sent',
  422: 'HubEx could not process the data; check the values sent',
  429: 'too many requests: HubEx asks to slow down',
};

/**
 * A call made by a client that has no HubEx token (neither HUBEX_SERVICE_TOKEN nor
 * HUBEX_ACCESS_TOKEN): no call was sent, and none can succeed until one is set. Not retryable.
 */
export class HubexConfigError extends Error {
  override readonly name = 'HubexConfigError';
  readonly code = 'HUBEX_NOT_CONFIGURED';
  readonly retryable = false;

  constructor() {
    super('No HubEx token is configured, so no HubEx call can be made: set HUBEX_SERVICE_TOKEN (or HUBEX_ACCESS_TOKEN) and restart.');
  }
}

/** Statuses that a retry can help: HubEx is busy or briefly down. */
export const RETRYABLE_STATUSES: ReadonlySet<number> = new Set([429, 502, 503, 504]);

export class HubexApiError extends Error {
  override readonly name = 'HubexApiError';
  readonly status: number;
  readonly method: string;
  readonly path: string;
  readonly code: string | undefined;
  readonly hubexMessage: string | undefined;
  readonly traceIdentifier: string | undefined;
  readonly retryAfterMs: number | undefined;
  /** Whether the same call may succeed later (network errors, timeouts, 429, 502, 503, 504). */
  readonly retryable: boolean;

  constructor(f: HubexErrorFields) {
    super(describe(f), f.cause === undefined ? undefined : { cause: f.cause });
    this.status = f.status;
    this.method = f.method;
    this.path = f.path;
    this.code = f.code;
    this.hubexMessage = f.hubexMessage;
    this.traceIdentifier = f.traceIdentifier;
    this.retryAfterMs = f.retryAfterMs;
    this.retryable = f.status === 0 || RETRYABLE_STATUSES.has(f.status) || f.status >= 500;
  }

  /** The same error with other advice in its message. */
  withAdvice(advice: string): HubexApiError {
    const { status, method, path, code, hubexMessage, traceIdentifier, retryAfterMs, cause } = this;
    return new HubexApiError({ status, method, path, code, hubexMessage, traceIdentifier, retryAfterMs, advice, cause });
  }
}

/** Recognised by name too, so that an error from another copy of this module counts. */
export const isHubexApiError = (err: unknown): err is HubexApiError =>
  err instanceof HubexApiError ||
  (err instanceof Error && err.name === 'HubexApiError' && typeof (err as { status?: unknown }).status === 'number');

/** An error from HubEx's answer: an ErrorModel, or (the documents' 409 and 500) an array of them. */
export function errorFrom(res: Pick<HubexResponse, 'status' | 'headers'>, body: unknown, method: Method, path: string): HubexApiError {
  const models = (Array.isArray(body) ? body : [body]).filter((m): m is Record<string, unknown> => m !== null && typeof m === 'object');
  const e = models[0] ?? {};
  const str = (v: unknown) => (typeof v === 'string' && v ? v : undefined);
  const messages = models.map((m) => str(m.message)).filter((m): m is string => m !== undefined);
  return new HubexApiError({
    status: res.status,
    method,
    path,
    code: str(e.code) ?? (typeof e.code === 'number' ? String(e.code) : undefined),
    hubexMessage:
      (messages.length ? messages.join('; ').slice(0, 500) : undefined) ?? (typeof body === 'string' ? body.slice(0, 200) : undefined),
    traceIdentifier:
      models.map((m) => str(m.traceIdentifier)).find((t) => t !== undefined) ?? res.headers.get('x-trace-identifier') ?? undefined,
    retryAfterMs: retryAfter(res.headers.get('retry-after')),
  });
}

/** Retry-After as seconds or an HTTP date, in ms. */
export function retryAfter(value: string | null, now = Date.now()): number | undefined {
  if (!value) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

function describe(f: HubexErrorFields): string {
  const call = `${f.method} ${f.path}`;
  if (f.status === 0) {
    const why = f.cause instanceof Error ? f.cause.message : 'no answer';
    return `HubEx did not answer ${call} (${why}); check HUBEX_BASE_URL and the network, it will be tried again`;
  }
  const advice =
    f.advice ?? ADVICE[f.status] ?? (f.status >= 500 ? "a fault on HubEx's side; it will be tried again" : 'an unexpected answer');
  const said = f.hubexMessage ? `: "${f.hubexMessage}"` : '';
  const code = f.code ? ` [${f.code}]` : '';
  const trace = f.traceIdentifier ? `, trace ${f.traceIdentifier}` : '';
  return `HubEx answered ${f.status} to ${call} (${advice})${said}${code}${trace}`;
}
