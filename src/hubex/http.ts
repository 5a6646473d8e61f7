// The HTTP core of the HubEx client, on node-fetch with a keep-alive agent: base URL,
// X-Application-ID and the bearer token on every call, JSON in and out, a timeout per try
// (./timeout.ts), a cap on calls in flight (./limiter.ts), and retries (./retry-policy.ts). A 401
// renews the token once and retries once.
import http from 'node:http';
import https from 'node:https';
import fetch, { type Response } from 'node-fetch';
import { errorFrom, HubexApiError } from './errors.js';
import type { CallOptions, HubexHttpOptions, HubexResponse, Method } from './http-types.js';
import { Limiter } from './limiter.js';
import type { RateGate } from './rate-gate.js';
import { mayRetry, retryWait, sleep } from './retry-policy.js';
import { sharedTimeout } from './timeout.js';
import { type JwtResult, TokenManager } from './token-manager.js';

export class HubexHttp {
  readonly tokens: TokenManager;
  readonly #o: Required<Omit<HubexHttpOptions, 'serviceToken' | 'accessToken' | 'log' | 'onCall' | 'onRenewal' | 'rateGate'>> &
    Pick<HubexHttpOptions, 'log' | 'onCall'>;
  readonly #base: string;
  readonly #appId: string;
  readonly #timeoutSignal: () => AbortSignal;
  readonly #agent: http.Agent;
  readonly #limiter: Limiter;
  readonly #gate: RateGate | undefined;

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
    this.#timeoutSignal = sharedTimeout(this.#o.timeoutMs);
    this.#limiter = new Limiter(this.#o.maxInFlight);
    this.#gate = options.rateGate;
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
        throw err.withAdvice(
          'HUBEX_ACCESS_TOKEN has expired or was refused, and a ready access token cannot be renewed; set HUBEX_SERVICE_TOKEN instead',
        );
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
    const repeatable = mayRetry(method, options.retrySafe);
    const url = this.#url(path, options.query);
    const service = path.split('/')[1] ?? '';
    for (let attempt = 1; ; attempt++) {
      options.signal?.throwIfAborted();
      const started = this.#o.now();
      let res: Response | undefined;
      let failure: HubexApiError;
      // HubEx's rate limit first (a turn, however long the wait), then a slot among those in flight.
      await this.#gate?.take(options.signal);
      if (!this.#limiter.tryAcquire()) await this.#limiter.acquire(options.signal);
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
        // Too many requests: every call of this client waits, not only this one.
        if (failure.status === 429 && failure.retryAfterMs) this.#gate?.pause(failure.retryAfterMs);
      } catch (err) {
        if (options.signal?.aborted) throw options.signal.reason;
        this.#o.onCall?.({ service, method, status: 0, ms: this.#o.now() - started });
        failure = new HubexApiError({ status: 0, method, path, cause: signal.aborted ? signal.reason : err });
      } finally {
        this.#limiter.release();
      }
      const delay = repeatable ? retryWait(failure, attempt, this.#o) : undefined;
      if (delay === undefined) throw failure;
      this.#o.log?.warn(
        { method, path, status: failure.status, attempt, retryInMs: delay, traceId: failure.traceIdentifier },
        'HubEx call failed; retrying',
      );
      await sleep(delay, options.signal);
    }
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
