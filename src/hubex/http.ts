// The HTTP core of the HubEx client, on node-fetch with a keep-alive agent: base URL,
// X-Application-ID and the bearer token on every call, JSON in and out, a timeout per call, a
// cap on calls in flight, and retries with backoff and full jitter for network errors, 429
// (not before its Retry-After), 502, 503 and 504: for idempotent methods, and for POST only
// when the caller says it is safe. A 401 renews the token once and retries once. A 500 is not
// retried here (HubEx failed on this request; the delivery's own retry comes later).
import { setMaxListeners } from 'node:events';
import http from 'node:http';
import https from 'node:https';
import { performance } from 'node:perf_hooks';
import fetch, { type Response } from 'node-fetch';
import type { Logger } from 'pino';
import { retryDelay } from '../delivery/backoff.js';
import { HubexApiError, RETRYABLE_STATUSES } from './errors.js';
import { type JwtResult, TokenManager } from './token-manager.js';

export type Method = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
const IDEMPOTENT: ReadonlySet<Method> = new Set(['GET', 'HEAD', 'PUT', 'DELETE']);

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

export class HubexHttp {
  readonly tokens: TokenManager;
  readonly #o: Required<Omit<HubexHttpOptions, 'serviceToken' | 'accessToken' | 'log' | 'onCall' | 'onRenewal'>> &
    Pick<HubexHttpOptions, 'log' | 'onCall'>;
  readonly #base: string;
  readonly #appId: string;
  #bucket: { readonly startedAt: number; readonly signal: AbortSignal } | undefined;
  readonly #agent: http.Agent;
  #inFlight = 0;
  readonly #queue: (() => void)[] = [];

  constructor(options: HubexHttpOptions) {
    this.#o = {
      timeoutMs: 15_000,
      maxInFlight: 8,
      retries: 4,
      retryBaseMs: 250,
      retryMaxMs: 10_000,
      maxRetryAfterMs: 30_000,
      renewMarginMs: 120_000,
      now: Date.now,
      random: Math.random,
      ...options,
    };
    this.#base = options.baseUrl.replace(/\/+$/, '');
    this.#appId = String(options.applicationId);
    const url = new URL(this.#base);
    const agentOptions = { keepAlive: true, maxSockets: this.#o.maxInFlight, keepAliveMsecs: 30_000 };
    this.#agent = url.protocol === 'https:' ? new https.Agent(agentOptions) : new http.Agent(agentOptions);
    this.tokens = new TokenManager({
      serviceToken: options.serviceToken,
      accessToken: options.accessToken,
      marginMs: this.#o.renewMarginMs,
      now: this.#o.now,
      log: options.log,
      onRenewal: options.onRenewal,
      // Asking for a token twice does no harm, so these POSTs are retried like a GET.
      call: async (path, body, bearer) => (await this.#send('POST', path, { body, retrySafe: true }, bearer ?? null)).body as JwtResult,
    });
  }

  /** One call with the token, retries, timeout and the in-flight cap. Throws HubexApiError. */
  async call<T = unknown>(method: Method, path: string, options: CallOptions = {}): Promise<HubexResponse<T>> {
    let token = this.tokens.current() ?? (await this.tokens.get());
    try {
      return await this.#send<T>(method, path, options, token);
    } catch (err) {
      if (!(err instanceof HubexApiError) || err.status !== 401) throw err;
      if (!this.tokens.canRenew) {
        throw err.withAdvice('HUBEX_ACCESS_TOKEN has expired or was refused, and a ready access token cannot be renewed; set HUBEX_SERVICE_TOKEN instead');
      }
      // One renewal, one retry: a token HubEx stopped accepting before its time.
      this.#o.log?.info({ method, path }, 'HubEx answered 401; renewing the token and trying once more');
      token = await this.tokens.renew(token);
      return this.#send<T>(method, path, options, token);
    }
  }

  close(): void {
    this.#agent.destroy();
  }

  /** `bearer` null: an anonymous call (AccessTokens). */
  async #send<T>(method: Method, path: string, options: CallOptions, bearer: string | null): Promise<HubexResponse<T>> {
    const mayRetry = IDEMPOTENT.has(method) || options.retrySafe === true;
    const url = this.#url(path, options.query);
    const service = path.split('/')[1] ?? '';
    for (let attempt = 1; ; attempt++) {
      options.signal?.throwIfAborted();
      const started = this.#o.now();
      let res: Response | undefined;
      let failure: HubexApiError;
      if (this.#inFlight < this.#o.maxInFlight) this.#inFlight++;
      else await this.#slot(options.signal);
      const signal = options.signal ? AbortSignal.any([options.signal, this.#timeoutSignal()]) : this.#timeoutSignal();
      try {
        res = await fetch(url, {
          method,
          agent: this.#agent,
          headers: this.#headers(bearer, options),
          ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
          signal,
        });
        const body = await readBody(res);
        this.#o.onCall?.({ service, method, status: res.status, ms: this.#o.now() - started });
        if (res.ok) return { status: res.status, headers: res.headers, body: body as T };
        failure = errorFrom(res, body, method, path);
      } catch (err) {
        if (options.signal?.aborted) throw options.signal.reason;
        this.#o.onCall?.({ service, method, status: 0, ms: this.#o.now() - started });
        failure = new HubexApiError({ status: 0, method, path, cause: signal.aborted ? signal.reason : err });
      } finally {
        this.#release();
      }
      const retryHere = failure.status === 0 || RETRYABLE_STATUSES.has(failure.status);
      if (!retryHere || !mayRetry || attempt > this.#o.retries) throw failure;
      if ((failure.retryAfterMs ?? 0) > this.#o.maxRetryAfterMs) throw failure;
      // Never sooner than HubEx's Retry-After (at most maxRetryAfterMs, checked above).
      const delay = Math.max(retryDelay(attempt, { baseMs: this.#o.retryBaseMs, maxMs: this.#o.retryMaxMs }, this.#o.random), failure.retryAfterMs ?? 0);
      this.#o.log?.warn({ method, path, status: failure.status, attempt, retryInMs: delay, traceId: failure.traceIdentifier }, 'HubEx call failed; retrying');
      await sleep(delay, options.signal);
    }
  }

  /**
   * The timeout, shared by the calls that start within the same 100 ms: it aborts them all
   * `timeoutMs` (plus up to 100 ms) after they began. A controller and a timer per call cost
   * 7% of the client's throughput (bench/client.ts); this costs one per 100 ms.
   */
  #timeoutSignal(): AbortSignal {
    const now = performance.now();
    if (!this.#bucket || now - this.#bucket.startedAt >= 100) {
      const controller = new AbortController();
      setMaxListeners(0, controller.signal); // many calls listen to one signal, by design
      const timeoutMs = this.#o.timeoutMs;
      setTimeout(() => controller.abort(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs + 100).unref();
      this.#bucket = { startedAt: now, signal: controller.signal };
    }
    return this.#bucket.signal;
  }

  #headers(bearer: string | null, options: CallOptions): Record<string, string> {
    const h: Record<string, string> = { accept: 'application/json', 'x-application-id': this.#appId };
    if (bearer) h.authorization = `Bearer ${bearer}`;
    if (options.body !== undefined) h['content-type'] = 'application/json';
    return options.headers ? Object.assign(h, options.headers) : h;
  }

  #url(path: string, query: CallOptions['query']): string {
    const full = this.#base + (path.startsWith('/') ? path : `/${path}`);
    if (!query || Object.keys(query).length === 0) return full;
    const u = new URL(full);
    for (const [k, v] of Object.entries(query ?? {})) {
      if (v === undefined || v === null) continue;
      if (Array.isArray(v)) for (const item of v) u.searchParams.append(k, String(item));
      else u.searchParams.set(k, String(v));
    }
    return u.href;
  }

  /** Waits for a free place among the calls in flight. */
  async #slot(signal: AbortSignal | undefined): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      const go = () => {
        signal?.removeEventListener('abort', abort);
        this.#inFlight++;
        resolve();
      };
      const abort = () => {
        const i = this.#queue.indexOf(go);
        if (i >= 0) this.#queue.splice(i, 1);
        reject(signal!.reason);
      };
      signal?.addEventListener('abort', abort, { once: true });
      this.#queue.push(go);
    });
  }

  #release(): void {
    this.#inFlight--;
    this.#queue.shift()?.();
  }
}

async function readBody(res: Response): Promise<unknown> {
  const text = await res.text();
  if (!text) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** An error from HubEx's answer: an ErrorModel, or (the documents' 409 and 500) an array of them. */
function errorFrom(res: Response, body: unknown, method: Method, path: string): HubexApiError {
  const models = (Array.isArray(body) ? body : [body]).filter((m): m is Record<string, unknown> => m !== null && typeof m === 'object');
  const e = models[0] ?? {};
  const str = (v: unknown) => (typeof v === 'string' && v ? v : undefined);
  const messages = models.map((m) => str(m.message)).filter((m): m is string => m !== undefined);
  return new HubexApiError({
    status: res.status,
    method,
    path,
    code: str(e.code) ?? (typeof e.code === 'number' ? String(e.code) : undefined),
    hubexMessage: (messages.length ? messages.join('; ').slice(0, 500) : undefined) ?? (typeof body === 'string' ? body.slice(0, 200) : undefined),
    traceIdentifier: models.map((m) => str(m.traceIdentifier)).find((t) => t !== undefined) ?? res.headers.get('x-trace-identifier') ?? undefined,
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

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
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
