// A fake HubEx API: a real HTTP server on 127.0.0.1 that behaves as ../shared/HUBEX.md says —
// tokens that expire, 401 on an expired token, 403 without X-Application-ID, Range and
// Content-Range (1-based, inclusive), the cut at 10,000 items without Range, map-shaped lists,
// ErrorModel bodies with a traceIdentifier — with fault injection (latency, 429 with
// Retry-After, 5xx, dropped connections) and a record of every call. Users test their own
// handlers against it too (docs/hubex-client.md).
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { answerApi, type FakeState, type FakeTask } from './fake-hubex-api.js';

export type { FakeTask } from './fake-hubex-api.js';

export interface Fault {
  /** Matches the path after the base (`/WORK/Tasks/5`): exact string or a RegExp. */
  readonly path: string | RegExp;
  readonly method?: string;
  /** How many matching calls it applies to. Default 1. */
  readonly times?: number;
  /** Answer with this status: an ErrorModel body for 4xx and 5xx, no body for 2xx (204: "no such record"). */
  readonly status?: number;
  /** The error body as one ErrorModel (default) or as an array of them, as WORK's 500 and ES's 409 are documented. */
  readonly errorAs?: 'object' | 'array';
  /** With a 429 or 503: the Retry-After header, in seconds. */
  readonly retryAfterSec?: number;
  /** Close the connection without an answer. */
  readonly drop?: boolean;
  /** Wait this long first (then answer normally, unless status or drop says otherwise). */
  readonly latencyMs?: number;
}

export interface RecordedCall {
  readonly method: string;
  readonly path: string;
  readonly query: Record<string, string>;
  readonly range: string | undefined;
  readonly applicationId: string | undefined;
  /** Which token authorised it ('none', 'valid', 'expired', 'unknown'), never the token itself. */
  readonly auth: 'none' | 'valid' | 'expired' | 'unknown';
  /** The JSON body as sent; a token in a token exchange (serviceToken, refreshJwt) reads [REDACTED]. */
  readonly body: unknown;
  readonly status: number;
  /** When it was answered (ms since the epoch). */
  readonly at: number;
}

export interface FakeHubexOptions {
  /** Lifetime of an access token, in seconds. Default 1800. */
  readonly accessTokenLifetimeSec?: number;
  /** Answer expires_in (default) or only jwtValidTill. */
  readonly expiryAs?: 'expires_in' | 'jwtValidTill';
  /** The most items one ranged answer holds, whatever was asked (a server-side page limit). */
  readonly pageCap?: number;
  /** Port to listen on; default a free one. The address is always 127.0.0.1. */
  readonly port?: number;
  /** The service token it accepts; default a random one. */
  readonly serviceToken?: string;
  /** Keep only the last this many calls in `calls` (a long-running fake); default all. */
  readonly maxCalls?: number;
  /** Told of each call once it is answered (the fake-hubex command prints them). */
  readonly onCall?: (call: RecordedCall) => void;
  /** Failed calls a webhook may have before it stops (isActive false), as HubEx's callsRemaining counts them. Default 10. */
  readonly webhookCallBudget?: number;
}

/** What one webhook made of a push. */
export interface PushResult {
  readonly webhookID: number;
  /** The receiver's status; 0 when it did not answer. */
  readonly status: number;
  readonly ok: boolean;
}

/** The fake: its address, the records it holds (which tests fill in and read), and its controls. */
export interface FakeHubex extends Omit<FakeState, 'nextWebhookID' | 'touch'> {
  /** The base URL to give the client: http://127.0.0.1:PORT/fsm */
  readonly url: string;
  readonly serviceToken: string;
  readonly applicationId: number;
  /** `{ baseUrl, applicationId, serviceToken }`: spread into createHubexClient's options. */
  readonly clientOptions: { readonly baseUrl: string; readonly applicationId: number; readonly serviceToken: string };
  readonly calls: RecordedCall[];
  /** Counts of tokens issued: through the service token, through a refresh token, refresh tokens taken. */
  readonly issued: { service: number; refresh: number; refreshTokens: number };
  /** Requests being answered now, and the most at once so far (to check a client's in-flight cap). */
  readonly concurrency: { now: number; peak: number };
  /** Queues a fault for the next matching calls. */
  fail(fault: Fault): void;
  /** Forgets the faults still queued (HubEx is back). */
  clearFaults(): void;
  /**
   * Changes a task as someone in HubEx would (made when missing): sets the fields and its
   * lastModified to now. Pushes nothing: call `push` for the webhook call HubEx would make.
   */
  modifyTask(taskID: number, fields?: FakeTask): FakeTask;
  /**
   * Calls each active webhook subscribed to the body's event id (every active one when it has no
   * events listed) once, as HubEx does: a failed call (no 2xx) costs one of its callsRemaining,
   * and a webhook with none left becomes inactive and gets no more calls; a call that went
   * through gives it its budget back. Each call is recorded in its lastCall.
   */
  push(body: Record<string, unknown> | readonly Record<string, unknown>[]): Promise<PushResult[]>;
  /**
   * A webhook as an administrator would register it (active, its full budget of calls, never
   * called), with any field given otherwise (`isActive: false`, `callsRemaining: 0`, `lastCall`).
   * Answers its id.
   */
  addWebhook(webhook: { uri: string; events?: number[] } & Record<string, unknown>): number;
  /** Makes every access token issued so far expired (calls with them answer 401). */
  expireAccessTokens(): void;
  /** Makes refresh tokens useless (renewal falls back to the service token). */
  revokeRefreshTokens(): void;
  /** An access token as an administrator would paste it (HUBEX_ACCESS_TOKEN). */
  issueAccessToken(lifetimeSec?: number): string;
  close(): Promise<void>;
}

/** The largest request body it reads: HubEx's own calls are far smaller. */
const MAX_BODY = 1024 * 1024;

export async function startFakeHubex(options: FakeHubexOptions = {}): Promise<FakeHubex> {
  const lifetimeSec = options.accessTokenLifetimeSec ?? 1800;
  const serviceToken = options.serviceToken ?? `svc-${randomBytes(16).toString('hex')}`;
  const access = new Map<string, number>(); // token -> expiresAt (ms)
  const refresh = new Set<string>();
  const faults: (Fault & { left: number })[] = [];
  const tasks = new Map<number, FakeTask>();
  const conversations = new Map<number, { message: string; isExternal: boolean }[]>();
  const assets = new Map<number, Record<string, unknown>>();
  const companies = new Map<number, Record<string, unknown>>();
  const webhooks = new Map<number, Record<string, unknown>>();
  const events = [
    { id: 40, code: 'AssetCreated', name: 'Объект создан' },
    { id: 41, code: 'AssetUpdated', name: 'Объект изменён' },
    { id: 12, code: 'TaskCreated', name: 'Заявка создана' },
    { id: 13, code: 'TaskUpdated', name: 'Заявка изменена' },
  ];
  const calls: RecordedCall[] = [];
  const issued = { service: 0, refresh: 0, refreshTokens: 0 };
  const concurrency = { now: 0, peak: 0 };
  let nextWebhookID = 1;
  const webhookCallBudget = options.webhookCallBudget ?? 10;
  /** Now, in ISO 8601 with milliseconds; later than the task's last change (two changes of a task in one ms stay apart). */
  const touch = (task: FakeTask) => {
    const last = typeof task.lastModified === 'string' ? Date.parse(task.lastModified) : Number.NaN;
    task.lastModified = new Date(Number.isNaN(last) ? Date.now() : Math.max(Date.now(), last + 1)).toISOString();
  };
  const state: FakeState = {
    tasks,
    conversations,
    assets,
    companies,
    webhooks,
    events,
    nextWebhookID: () => nextWebhookID++,
    webhookCallBudget,
    touch,
  };

  const issueAccess = (sec = lifetimeSec) => {
    if (access.size > 10_000) for (const [t, until] of access) if (until < Date.now()) access.delete(t); // expired ones
    const token = `acc-${randomBytes(16).toString('hex')}`;
    access.set(token, Date.now() + sec * 1000);
    return token;
  };
  const jwtResult = (token: string, sec = lifetimeSec) =>
    options.expiryAs === 'jwtValidTill'
      ? { access_token: token, jwtValidTill: new Date(Date.now() + sec * 1000).toISOString() }
      : { access_token: token, expires_in: sec, jwtValidTill: new Date(Date.now() + sec * 1000).toISOString() };

  const server = http.createServer((req, res) => {
    concurrency.now++;
    concurrency.peak = Math.max(concurrency.peak, concurrency.now);
    res.on('close', () => concurrency.now--);
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= MAX_BODY) chunks.push(c);
    });
    req.on('end', () => {
      // A fake running for days (hubex-router fake-hubex) keeps no more than this of a body.
      if (size > MAX_BODY) {
        res.writeHead(413).end();
        return;
      }
      void handle(req, res, Buffer.concat(chunks).toString('utf8'));
    });
  });

  async function handle(req: http.IncomingMessage, res: http.ServerResponse, text: string): Promise<void> {
    const u = new URL(req.url ?? '/', 'http://fake');
    const method = req.method ?? 'GET';
    const path = u.pathname.replace(/^\/fsm/, '');
    let body: unknown;
    try {
      body = text ? JSON.parse(text) : undefined;
    } catch {
      body = text;
    }
    const auth = authOf(req.headers.authorization);
    const record = (status: number) => {
      const call: RecordedCall = {
        method,
        path,
        query: Object.fromEntries(u.searchParams),
        range: req.headers.range,
        applicationId: req.headers['x-application-id'] as string | undefined,
        auth,
        body: hideTokens(body),
        status,
        at: Date.now(),
      };
      calls.push(call);
      if (options.maxCalls !== undefined && calls.length > options.maxCalls) calls.splice(0, calls.length - options.maxCalls);
      options.onCall?.(call);
    };
    const send = (status: number, payload?: unknown, headers: Record<string, string> = {}) => {
      record(status);
      const data = payload === undefined || method === 'HEAD' ? '' : JSON.stringify(payload);
      res.writeHead(status, { ...(data ? { 'content-type': 'application/json; charset=utf-8' } : {}), ...headers });
      res.end(data);
    };
    const error = (status: number, code: string, message: string, headers: Record<string, string> = {}, asArray = false) => {
      const model = { code, message, arguments: {}, traceIdentifier: `0HN${randomBytes(5).toString('hex').toUpperCase()}:00000001` };
      send(status, asArray ? [model] : model, headers);
    };

    const fault = faults.find(
      (f) => f.left > 0 && (!f.method || f.method === method) && (typeof f.path === 'string' ? f.path === path : f.path.test(path)),
    );
    if (fault) {
      fault.left--;
      if (fault.latencyMs) await new Promise((r) => setTimeout(r, fault.latencyMs));
      if (fault.drop) {
        record(0);
        req.socket.destroy();
        return;
      }
      if (fault.status && fault.status < 300) return send(fault.status);
      if (fault.status) {
        const headers: Record<string, string> = fault.retryAfterSec === undefined ? {} : { 'retry-after': String(fault.retryAfterSec) };
        return error(fault.status, 'Injected', `injected ${fault.status}`, headers, fault.errorAs === 'array');
      }
    }

    // 1 EngineerMobile ... 5 Api, 6 PlateWeb; anything else, or none, is refused everywhere.
    if (!/^[1-6]$/.test(String(req.headers['x-application-id'] ?? ''))) return error(403, 'Forbidden', 'X-Application-ID is required');

    // AUTHZ: anonymous token exchange.
    if (method === 'POST' && path === '/AUTHZ/AccessTokens') {
      const b = (body ?? {}) as Record<string, unknown>;
      if (b.serviceToken === serviceToken) {
        issued.service++;
        return send(200, jwtResult(issueAccess()));
      }
      if (typeof b.refreshJwt === 'string' && refresh.has(b.refreshJwt)) {
        issued.refresh++;
        return send(200, jwtResult(issueAccess()));
      }
      return error(401, 'InvalidToken', 'The token is not valid');
    }
    if (auth !== 'valid') return error(401, 'Unauthorized', auth === 'expired' ? 'The access token has expired' : 'Not authenticated');
    if (method === 'POST' && path === '/AUTHZ/RefreshTokens') {
      const token = `ref-${randomBytes(16).toString('hex')}`;
      refresh.add(token);
      issued.refreshTokens++;
      return send(200, { refresh_token: token });
    }

    return answerApi({ method, path, body, range: req.headers.range, query: u.searchParams, send, error }, state, options.pageCap);
  }

  /** A recorded body keeps the shape of a token exchange, not the token. */
  function hideTokens(body: unknown): unknown {
    if (body === null || typeof body !== 'object' || Array.isArray(body)) return body;
    const copy: Record<string, unknown> = { ...(body as Record<string, unknown>) };
    for (const key of ['serviceToken', 'refreshJwt', 'accessJwt', 'jwt']) if (typeof copy[key] === 'string') copy[key] = '[REDACTED]';
    return copy;
  }

  async function push(body: Record<string, unknown> | readonly Record<string, unknown>[]): Promise<PushResult[]> {
    const first = (Array.isArray(body) ? body[0] : body) as Record<string, unknown> | undefined;
    const eventID = Number(first?.eventID ?? first?.EventID);
    const results: PushResult[] = [];
    for (const w of [...webhooks.values()]) {
      const listed = (w.events as number[] | undefined) ?? [];
      if (w.isActive !== true || (listed.length > 0 && !listed.includes(eventID))) continue;
      const started = new Date().toISOString();
      let status = 0;
      let exception: string | null = null;
      try {
        const res = await fetch(String(w.uri), {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(body),
          signal: AbortSignal.timeout(10_000),
        });
        await res.arrayBuffer();
        status = res.status;
        if (!res.ok) exception = `The remote server returned an error: (${res.status}).`;
      } catch (err) {
        exception = (err as Error).message;
      }
      w.lastCall = { started, completed: new Date().toISOString(), exception };
      if (exception === null) w.callsRemaining = webhookCallBudget;
      else {
        w.callsRemaining = Math.max(0, Number(w.callsRemaining ?? webhookCallBudget) - 1);
        if (w.callsRemaining === 0) w.isActive = false;
      }
      results.push({ webhookID: Number(w.id), status, ok: exception === null });
    }
    return results;
  }

  function authOf(header: string | undefined): RecordedCall['auth'] {
    if (!header) return 'none';
    const token = header.replace(/^Bearer\s+/i, '');
    const until = access.get(token);
    if (until === undefined) return 'unknown';
    return Date.now() < until ? 'valid' : 'expired';
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const url = `http://127.0.0.1:${port}/fsm`;
  return {
    url,
    serviceToken,
    applicationId: 5,
    clientOptions: Object.freeze({ baseUrl: url, applicationId: 5, serviceToken }),
    tasks,
    conversations,
    assets,
    companies,
    webhooks,
    events,
    calls,
    issued,
    concurrency,
    webhookCallBudget,
    fail: (f) => faults.push({ ...f, left: f.times ?? 1 }),
    clearFaults: () => faults.splice(0),
    modifyTask: (taskID, fields = {}) => {
      const task = tasks.get(taskID) ?? {};
      Object.assign(task, fields);
      touch(task);
      tasks.set(taskID, task);
      return task;
    },
    push,
    addWebhook: (w) => {
      const id = nextWebhookID++;
      webhooks.set(id, {
        name: `webhook ${id}`,
        events: [],
        taskStages: [],
        isActive: true,
        callsRemaining: webhookCallBudget,
        lastCall: null,
        ...w,
        id,
      });
      return id;
    },
    expireAccessTokens: () => {
      for (const t of access.keys()) access.set(t, 0);
    },
    revokeRefreshTokens: () => refresh.clear(),
    issueAccessToken: (sec) => issueAccess(sec),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
