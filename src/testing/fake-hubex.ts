// A fake HubEx API: a real HTTP server on 127.0.0.1 that behaves as ../shared/HUBEX.md says —
// tokens that expire, 401 on an expired token, 403 without X-Application-ID, Range and
// Content-Range (1-based, inclusive), the cut at 10,000 items without Range, map-shaped lists,
// ErrorModel bodies with a traceIdentifier — with fault injection (latency, 429 with
// Retry-After, 5xx, dropped connections) and a record of every call. Users test their own
// handlers against it too (docs/hubex-client.md).
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FakeTask {
  title?: string;
  taskStageID?: number;
  assetID?: number;
  companyID?: number;
  description?: string;
  [field: string]: unknown;
}

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
}

const LIST_CUT = 10_000;

export interface FakeHubex {
  /** The base URL to give the client: http://127.0.0.1:PORT/fsm */
  readonly url: string;
  readonly serviceToken: string;
  readonly applicationId: number;
  /** `{ baseUrl, applicationId, serviceToken }`: spread into createHubexClient's options. */
  readonly clientOptions: { readonly baseUrl: string; readonly applicationId: number; readonly serviceToken: string };
  readonly tasks: Map<number, FakeTask>;
  readonly conversations: Map<number, { message: string; isExternal: boolean }[]>;
  readonly assets: Map<number, Record<string, unknown>>;
  readonly companies: Map<number, Record<string, unknown>>;
  readonly webhooks: Map<number, Record<string, unknown>>;
  readonly events: { id: number; code: string; name: string }[];
  readonly calls: RecordedCall[];
  /** Counts of tokens issued: through the service token, through a refresh token, refresh tokens taken. */
  readonly issued: { service: number; refresh: number; refreshTokens: number };
  /** Requests being answered now, and the most at once so far (to check a client's in-flight cap). */
  readonly concurrency: { now: number; peak: number };
  /** Queues a fault for the next matching calls. */
  fail(fault: Fault): void;
  /** Makes every access token issued so far expired (calls with them answer 401). */
  expireAccessTokens(): void;
  /** Makes refresh tokens useless (renewal falls back to the service token). */
  revokeRefreshTokens(): void;
  /** An access token as an administrator would paste it (HUBEX_ACCESS_TOKEN). */
  issueAccessToken(lifetimeSec?: number): string;
  close(): Promise<void>;
}

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
  ];
  const calls: RecordedCall[] = [];
  const issued = { service: 0, refresh: 0, refreshTokens: 0 };
  const concurrency = { now: 0, peak: 0 };
  let nextWebhookID = 1;

  const issueAccess = (sec = lifetimeSec) => {
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
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => void handle(req, res, Buffer.concat(chunks).toString('utf8')));
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

    let m: RegExpExecArray | null;
    if (path === '/WORK/Tasks' && (method === 'GET' || method === 'HEAD')) {
      // A map keyed by id; the values carry no id.
      return list(
        [...tasks.entries()].sort((a, b) => a[0] - b[0]),
        (page) => Object.fromEntries(page.map(([id, t]) => [String(id), t])),
      );
    }
    if ((m = /^\/WORK\/Tasks\/(\d+)$/.exec(path))) {
      const id = Number(m[1]);
      const task = tasks.get(id);
      if (!task) return error(404, 'NotFound', `Task ${id} not found`);
      if (method === 'GET') return send(200, { taskID: id, ...task });
      if (method === 'PATCH') {
        if (!Array.isArray(body)) return error(409, 'InvalidData', 'Expected an array of {field, value}');
        for (const p of body as { field: string; value: unknown }[]) task[p.field] = p.value;
        return send(202); // Accepted, no body (WORK document)
      }
    }
    if ((m = /^\/WORK\/Tasks\/(\d+)\/conversation$/.exec(path)) && method === 'POST') {
      const id = Number(m[1]);
      if (!tasks.has(id)) return error(404, 'NotFound', `Task ${id} not found`);
      const b = (body ?? {}) as { message?: unknown; isExternal?: unknown };
      if (typeof b.message !== 'string' || !b.message) return error(409, 'InvalidData', 'message is required');
      const list = conversations.get(id) ?? [];
      list.push({ message: b.message, isExternal: b.isExternal === true });
      conversations.set(id, list);
      return send(201, [{ id: list.length, taskID: id }]); // AddResult[]
    }
    if ((m = /^\/WORK\/Tasks\/(\d+)\/conversations$/.exec(path)) && (method === 'GET' || method === 'HEAD')) {
      const id = Number(m[1]);
      if (!tasks.has(id)) return error(404, 'NotFound', `Task ${id} not found`);
      const messages = (conversations.get(id) ?? []).map((c, i) => [i + 1, c] as const);
      return list(messages, (page) => page.map(([n, c]) => ({ id: n, ...c })));
    }
    if ((m = /^\/WORK\/Tasks\/(\d+)\/stages\/next$/.exec(path)) && method === 'GET') {
      const id = Number(m[1]);
      const stage = tasks.get(id)?.taskStageID ?? 1;
      return list(
        [stage + 1, stage + 2].map((s) => [s, { name: `Stage ${s}` }] as const),
        (page) => Object.fromEntries(page.map(([s, v]) => [String(s), v])),
      );
    }
    if (path === '/WORK/TaskStagingHistory' && method === 'POST') {
      const b = (body ?? {}) as { taskID?: number; taskStageID?: number };
      const task = b.taskID === undefined ? undefined : tasks.get(b.taskID);
      if (!task || typeof b.taskStageID !== 'number') return error(409, 'InvalidData', 'taskID and taskStageID are required');
      task.taskStageID = b.taskStageID;
      return send(201); // Created, no body (WORK document)
    }
    if (path === '/ES/Assets' && (method === 'GET' || method === 'HEAD')) {
      // An array whose items carry their id.
      return list(
        [...assets.entries()].sort((a, b) => a[0] - b[0]),
        (page) => page.map(([id, a]) => ({ id, ...a })),
      );
    }
    if ((m = /^\/ES\/Assets\/(\d+)$/.exec(path)) && method === 'GET') {
      const a = assets.get(Number(m[1]));
      return a ? send(200, { id: Number(m[1]), ...a }) : error(404, 'NotFound', 'Asset not found');
    }
    if ((m = /^\/ES\/Companies\/(\d+)$/.exec(path)) && method === 'GET') {
      const c = companies.get(Number(m[1]));
      return c ? send(200, { id: Number(m[1]), ...c }) : error(404, 'NotFound', 'Company not found');
    }
    // GetResult: events and taskStages as {id, name}, as HubEx answers them.
    const asResult = (w: Record<string, unknown>) => ({
      ...w,
      events: ((w.events as number[] | undefined) ?? []).map((id) => ({
        id,
        name: events.find((e) => e.id === id)?.code ?? `Event ${id}`,
      })),
      taskStages: ((w.taskStages as number[] | undefined) ?? []).map((id) => ({ id, name: `Stage ${id}` })),
    });
    if (path === '/MSG/Webhooks' && (method === 'GET' || method === 'HEAD')) {
      // A map keyed by id, as the MSG document says, of ListResult: id, name, isActive,
      // callsRemaining and lastCall (completed, exception) only; the uri, events and stages come
      // from GET /MSG/Webhooks/{id}.
      const all = [...webhooks.values()].map((w) => [w.id as number, w] as const).sort((a, b) => a[0] - b[0]);
      const listResult = (w: Record<string, unknown>) => {
        const last = w.lastCall as Record<string, unknown> | null | undefined;
        return {
          id: w.id,
          name: w.name,
          isActive: w.isActive,
          callsRemaining: w.callsRemaining,
          lastCall: last ? { completed: last.completed ?? null, exception: last.exception ?? null } : null,
        };
      };
      return list(all, (page) => Object.fromEntries(page.map(([id, w]) => [String(id), listResult(w)])));
    }
    if (path === '/MSG/Webhooks' && method === 'POST') {
      if (!Array.isArray(body)) return error(409, 'InvalidData', 'Expected an array of webhooks');
      const saved = (body as Record<string, unknown>[]).map((w) => {
        const id = typeof w.id === 'number' ? w.id : nextWebhookID++;
        const merged = { ...webhooks.get(id), ...w, id, callsRemaining: 10, lastCall: null };
        webhooks.set(id, merged);
        return id;
      });
      return send(201, saved); // the ids, as HubEx answers (MSG document: 201, number[])
    }
    if ((m = /^\/MSG\/Webhooks\/(\d+)$/.exec(path))) {
      const id = Number(m[1]);
      if (!webhooks.has(id)) return error(404, 'NotFound', 'Webhook not found');
      if (method === 'GET') return send(200, asResult(webhooks.get(id)!));
      if (method === 'DELETE') {
        webhooks.delete(id);
        return send(202);
      }
    }
    if ((m = /^\/MSG\/Webhooks\/(activate|deactivate)\/(\d+)$/.exec(path)) && method === 'PUT') {
      const w = webhooks.get(Number(m[2]));
      if (!w) return error(404, 'NotFound', 'Webhook not found');
      w.isActive = m[1] === 'activate';
      return send(202);
    }
    if (path === '/COMMON/Events' && (method === 'GET' || method === 'HEAD'))
      return list(
        events.map((e) => [e.id, e] as const),
        (page) => page.map(([, e]) => e),
      );
    return error(404, 'NotFound', `No such endpoint: ${method} ${path}`);

    /** Range / Content-Range as HubEx does it; `shape` turns a page of [id, item] into the answer. */
    function list<V>(all: readonly (readonly [number, V])[], shape: (page: (readonly [number, V])[]) => unknown): void {
      const total = all.length;
      const range = /^items=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
      if (method === 'HEAD') return send(200, undefined, { 'content-range': `items=${total ? 1 : 0}-${total}/${total}` });
      if (!range) return send(200, shape(all.slice(0, LIST_CUT))); // silently cut, no Content-Range
      const from = Math.max(1, Number(range[1])); // items=0-49 is clamped to 1
      const till = Math.min(total, Number(range[2]), options.pageCap ? from + options.pageCap - 1 : Number.POSITIVE_INFINITY);
      const page = from > till ? [] : all.slice(from - 1, till);
      return send(206, shape([...page]), { 'content-range': page.length ? `items=${from}-${till}/${total}` : `items */${total}` });
    }
  }

  /** A recorded body keeps the shape of a token exchange, not the token. */
  function hideTokens(body: unknown): unknown {
    if (body === null || typeof body !== 'object' || Array.isArray(body)) return body;
    const copy: Record<string, unknown> = { ...(body as Record<string, unknown>) };
    for (const key of ['serviceToken', 'refreshJwt', 'accessJwt', 'jwt']) if (typeof copy[key] === 'string') copy[key] = '[REDACTED]';
    return copy;
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
    fail: (f) => faults.push({ ...f, left: f.times ?? 1 }),
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
