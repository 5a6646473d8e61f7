// The dashboard at /ui/, only when ADMIN_TOKEN is set (server.ts registers it then), behind the
// same ALLOWED_IPS as every route. Server-rendered pages (src/ui/pages.ts) over the store's reads
// and the operations the command line and the admin API use. Signing in takes the admin token in a
// form's body and opens a session cookie (src/ui/session.ts); every POST carries the session's
// CSRF token. docs/dashboard.md shows it.
import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { listDeliveries, NotFoundError, OperationError, replayDeliveries, showDelivery, showEvent } from '../src/delivery/operations.js';
import { HttpError, StoreUnavailableError } from '../src/errors.js';
import { TASK_MODIFIED } from '../src/events/synthesized.js';
import { DEFAULT_TENANT, type DeliveryRecord } from '../src/store/contract.js';
import type { Html } from '../src/ui/html.js';
import { type Lang, pickLang, translator } from '../src/ui/i18n.js';
import * as pages from '../src/ui/pages.js';
import { cookie, LANG_COOKIE, readCookies, SESSION_COOKIE, SESSION_MS, Sessions } from '../src/ui/session.js';
import { STYLE } from '../src/ui/style.js';
import { TokenVerifier } from '../src/webhook-tokens.js';

export interface UiRouteOptions {
  readonly adminToken: string;
  readonly reconcileIntervalMs: number;
}

type Query = Record<string, string | undefined>;
type Form = Record<string, string | undefined>;

/** Rows a page shows. */
const PAGE = 50;
/** Dead letters counted per handler at most (beyond: "1000+"). */
const DEAD_COUNT_CAP = 1000;
/** Wrong tokens a client address may send a minute before sign-in answers 429. */
const FAILED_LOGINS_PER_MINUTE = 10;

const PUBLIC = new Set(['/ui/login', '/ui/style.css', '/ui/lang']);
/** Where the store keeps the time of the last sign-out. */
const SIGNED_OUT = 'dashboard-signed-out';

const SECURITY_HEADERS = {
  'content-security-policy':
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  'x-frame-options': 'DENY',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
};

const uiRoutes: FastifyPluginAsync<UiRouteOptions> = async (app, opts) => {
  const sessions = new Sessions(opts.adminToken);
  const verifier = new TokenVerifier([opts.adminToken]);
  const failures = new FailedLogins();
  const rate = new EventRate(app);
  // What the overview and the handlers page count (every delivery, the dead ones by handler) is
  // read at most every 10 s, however often people reload: these reads scan, and on SQLite they
  // share the store's thread with the webhooks' writes.
  const counts = cachedFor(10_000, () => app.store.counts());
  const dead = cachedFor(10_000, () => deadByHandler(app));

  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: 16 * 1024 }, (_req, body, done) => {
    done(null, Object.fromEntries(new URLSearchParams(body as string)));
  });

  // The last sign-out, kept in the store (every instance sees it): sessions opened before it are
  // over. Read at most once a second; a store that cannot be read ends no session.
  const signedOut = cachedFor(
    1000,
    async () => Number((await app.store.readCursor(DEFAULT_TENANT, SIGNED_OUT).catch(() => null)) ?? 0) || 0,
  );
  let signedOutAt = 0;
  // A request's context (its language, session, CSRF token) is read once, by the first of its
  // hooks or handler that asks, and kept with the request.
  const contexts = new WeakMap<FastifyRequest, ReturnType<typeof readContext>>();
  const context = (request: FastifyRequest) => {
    let c = contexts.get(request);
    if (!c) contexts.set(request, (c = readContext(request)));
    return c;
  };
  const readContext = (request: FastifyRequest) => {
    const cookies = readCookies(request.headers.cookie);
    const lang = pickLang(cookies.get(LANG_COOKIE)?.[0], request.headers['accept-language']);
    // Any valid one of the session cookies sent: one planted beside it (another subdomain) locks nobody out.
    const session = (cookies.get(SESSION_COOKIE) ?? []).find((v) => sessions.valid(v, signedOutAt));
    const signedIn = session !== undefined;
    return {
      lang,
      session: signedIn ? session! : undefined,
      page: { t: translator(lang), lang, csrf: signedIn ? sessions.csrf(session!) : undefined, here: request.url } as pages.PageContext,
    };
  };

  const send = (reply: FastifyReply, body: Html, status = 200) =>
    reply.code(status).headers(SECURITY_HEADERS).type('text/html; charset=utf-8').send(body.text);

  app.addHook('onRequest', async (request, reply) => {
    signedOutAt = Math.max(signedOutAt, await signedOut());
    const path = pathOf(request.url);
    if (PUBLIC.has(path)) return;
    const { session } = context(request);
    if (session) return;
    if (request.method === 'GET' || request.method === 'HEAD')
      return reply.code(303).header('cache-control', 'no-store').redirect('/ui/login');
    return reply.code(403).headers(SECURITY_HEADERS).type('text/plain; charset=utf-8').send('Sign in first.');
  });

  // Every POST but the sign-in carries the session's CSRF token, and none comes from another site.
  app.addHook('preHandler', async (request, reply) => {
    if (request.method !== 'POST') return;
    const site = request.headers['sec-fetch-site'];
    const crossSite = site !== undefined && site !== 'same-origin' && site !== 'none';
    const path = pathOf(request.url);
    const { session } = context(request);
    if (crossSite || (path !== '/ui/login' && !sessions.csrfValid(session ?? '', (request.body as Form | undefined)?._csrf))) {
      return reply
        .code(403)
        .headers(SECURITY_HEADERS)
        .type('text/plain; charset=utf-8')
        .send('This form has expired or came from another site; reload the page.');
    }
  });

  app.setErrorHandler(async (err: Error & { statusCode?: number }, request, reply) => {
    const { page } = context(request);
    let status = 500;
    let message = page.t('error.title');
    if (err instanceof NotFoundError) [status, message] = [404, err.message];
    else if (err instanceof OperationError) [status, message] = [400, err.message];
    else if (err instanceof HttpError) [status, message] = [err.statusCode, err.message];
    else if (err instanceof StoreUnavailableError) [status, message] = [503, err.message];
    else if (typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500)
      [status, message] = [err.statusCode, err.message];
    else request.log.error({ err }, 'the dashboard failed to answer');
    if (err instanceof StoreUnavailableError) message = page.t('error.storeDown');
    // What the app's own errors carry (a 429's Retry-After, a 503's), as its error handler would send them.
    const headers = (err as { headers?: Record<string, string> }).headers;
    if (headers && typeof headers === 'object') reply.headers(headers);
    return send(reply, pages.errorPage(page, message), status);
  });

  // Any other page under /ui/ (signed in): a page that says so, not the API's JSON.
  app.get('/ui/*', async (request, reply) => {
    const { page } = context(request);
    return send(reply, pages.errorPage(page, page.t('error.notFound')), 404);
  });

  app.get('/ui/style.css', async (_request, reply) =>
    reply
      .headers({ 'cache-control': 'public, max-age=3600', 'x-content-type-options': 'nosniff' })
      .type('text/css; charset=utf-8')
      .send(STYLE),
  );

  app.get<{ Querystring: Query }>('/ui/lang', async (request, reply) => {
    const to: Lang = text(request.query.to, 5) === 'ru' ? 'ru' : 'en';
    const back = sameSitePage(text(request.query.next, 2000));
    return reply
      .header('set-cookie', cookie(LANG_COOKIE, to, { maxAgeSec: 365 * 86_400, secure: request.protocol === 'https', httpOnly: false }))
      .redirect(back, 303);
  });

  app.get('/ui/login', async (request, reply) => {
    const { page, session } = context(request);
    if (session) return reply.redirect('/ui/', 303);
    return send(reply, pages.loginPage(page));
  });

  app.post<{ Body: Form }>('/ui/login', async (request, reply) => {
    const { page } = context(request);
    const client = clientKey(request.ip);
    if (failures.blocked(client)) return send(reply, pages.loginPage(page, page.t('login.tooMany')), 429);
    const token = typeof request.body?.token === 'string' ? request.body.token.trim() : '';
    if (!token || token.length > 1000 || !verifier.verify(token)) {
      failures.add(client);
      request.log.warn({ ip: request.ip }, 'dashboard sign-in refused: not the admin token');
      return send(reply, pages.loginPage(page, page.t('login.wrong')), 401);
    }
    request.log.info({ ip: request.ip }, 'dashboard sign-in');
    return reply
      .header('set-cookie', cookie(SESSION_COOKIE, sessions.open(), { maxAgeSec: SESSION_MS / 1000, secure: request.protocol === 'https' }))
      .redirect('/ui/', 303);
  });

  // Signing out ends every session (there is one admin token, not one per person), on every
  // instance: the time is kept in the store.
  app.post('/ui/logout', async (request, reply) => {
    const now = Date.now();
    await app.store.writeCursor(DEFAULT_TENANT, SIGNED_OUT, String(now));
    signedOutAt = Math.max(signedOutAt, now);
    request.log.info({ ip: request.ip }, 'dashboard sign-out: every session ends');
    return reply
      .header('set-cookie', cookie(SESSION_COOKIE, '', { maxAgeSec: 0, secure: request.protocol === 'https' }))
      .redirect('/ui/login', 303);
  });

  app.get('/ui/', async (request, reply) => {
    const { page } = context(request);
    const [health, counted, backlog, deadNow, runs, cursor] = await Promise.all([
      app.store.health(),
      counts(),
      app.store.backlog(),
      dead(),
      runsByHandler(app),
      opts.reconcileIntervalMs > 0 ? app.store.readCursor(DEFAULT_TENANT, 'tasks').catch(() => null) : Promise.resolve(null),
    ]);
    const handlers = app.handlers
      .names()
      .map((name) => ({ name, ...(runs.get(name) ?? { done: 0, retry: 0, dead: 0 }), deadNow: deadNow(name) }));
    return send(
      reply,
      pages.overviewPage(page, {
        health,
        counts: counted,
        backlog,
        eventsPerSecond: rate.perSecond(),
        handlers,
        webhooks: app.sync?.watchdog?.webhooks,
        reconcile: { intervalMs: opts.reconcileIntervalMs, cursor },
        now: Date.now(),
      }),
    );
  });

  app.get<{ Querystring: Query }>('/ui/events', async (request, reply) => {
    const { page } = context(request);
    const q = request.query;
    const task = text(q.task, 15);
    if (task && !/^\d+$/.test(task)) throw new OperationError(`The task id must be a whole number, not ${JSON.stringify(task)}.`);
    const result = await app.store.searchEvents({
      name: text(q.name, 200) || undefined,
      taskID: task ? Number(task) : undefined,
      receivedFrom: dateOf(q.from, 'from'),
      receivedBefore: dateOf(q.until, 'until'),
      beforeSeq: wholeOf(q.before, 'before'),
      limit: PAGE,
    });
    const names = [...new Set([...app.catalogue.list().map((e) => e.name), TASK_MODIFIED])].sort();
    const shown = { task, name: text(q.name, 200), from: text(q.from, 30), until: text(q.until, 30) };
    return send(reply, pages.eventsPage(page, shown, result.items, result.next, names));
  });

  app.get<{ Params: { id: string } }>('/ui/events/:id', async (request, reply) =>
    send(reply, pages.eventPage(context(request).page, await showEvent(app.store, request.params.id.slice(0, 1000)))),
  );

  app.get<{ Querystring: Query }>('/ui/deliveries', async (request, reply) => {
    const { page } = context(request);
    const q = request.query;
    const shown = {
      status: text(q.status, 20) || undefined,
      handler: text(q.handler, 200) || undefined,
      event: text(q.event, 200) || undefined,
    };
    const items = await listDeliveries(app.store, {
      status: shown.status,
      handler: shown.handler,
      eventName: shown.event,
      afterId: text(q.after, 1000) || undefined,
      limit: PAGE + 1,
      newestFirst: true,
    });
    const rows = items.slice(0, PAGE);
    const next = items.length > PAGE ? rows.at(-1)!.id : null;
    return send(reply, pages.deliveriesPage(page, shown, rows, next, app.handlers.names(), flashOf(page, q)));
  });

  app.get<{ Params: { id: string }; Querystring: Query }>('/ui/deliveries/:id', async (request, reply) => {
    const { page } = context(request);
    return send(reply, pages.deliveryPage(page, await showDelivery(app.store, request.params.id), flashOf(page, request.query)));
  });

  app.get<{ Params: { id: string } }>('/ui/deliveries/:id/replay', async (request, reply) => {
    const d: DeliveryRecord = await showDelivery(app.store, request.params.id);
    return send(reply, pages.replayPage(context(request).page, { one: d }));
  });

  app.post<{ Params: { id: string } }>('/ui/deliveries/:id/replay', async (request, reply) => {
    const r = await replayDeliveries(app.store, { ids: [request.params.id] });
    request.log.info({ replayed: r.replayed, skipped: r.skipped }, 'dashboard replay');
    const id = encodeURIComponent(request.params.id);
    return reply.redirect(`/ui/deliveries/${id}?replayed=${r.replayed.length}&skipped=${r.skipped.length}`, 303);
  });

  app.get<{ Querystring: Query }>('/ui/replay', async (request, reply) => {
    const handler = text(request.query.handler, 200) || undefined;
    const event = text(request.query.event, 200) || undefined;
    const dead = await app.store.list({ status: 'dead', handler, eventName: event, limit: DEAD_COUNT_CAP });
    const count = dead.length >= DEAD_COUNT_CAP ? `${DEAD_COUNT_CAP}+` : String(dead.length);
    return send(reply, pages.replayPage(context(request).page, { handler, event, count }));
  });

  app.post<{ Body: Form }>('/ui/replay', async (request, reply) => {
    const handler = text(request.body?.handler, 200) || undefined;
    const event = text(request.body?.event, 200) || undefined;
    const r = await replayDeliveries(app.store, { allDead: true, handler, eventName: event });
    request.log.info({ replayed: r.replayed.length, handler, event }, 'dashboard replay of dead deliveries');
    const back = new URLSearchParams({ replayed: String(r.replayed.length) });
    if (handler) back.set('handler', handler);
    if (event) back.set('event', event);
    return reply.redirect(`/ui/deliveries?${back.toString()}`, 303);
  });

  app.get('/ui/handlers', async (request, reply) => {
    const [deadNow, runs] = await Promise.all([dead(), runsByHandler(app)]);
    const rows = app.handlers.all().map((handler) => ({
      handler,
      ...(runs.get(handler.name) ?? { done: 0, retry: 0, dead: 0 }),
      deadNow: deadNow(handler.name),
    }));
    return send(reply, pages.handlersPage(context(request).page, rows));
  });

  app.addHook('onClose', async () => rate.stop());
};

export default uiRoutes;

/** A query or form value, trimmed and cut to a length (what a sender types is bounded before it is used); of a repeated one, the first. */
const text = (v: unknown, max: number): string => {
  const first = Array.isArray(v) ? (v[0] as unknown) : v;
  return typeof first === 'string' ? first.trim().slice(0, max) : '';
};

/** A page of the dashboard to go back to, from a `next` parameter: a path under /ui/ on this site, else the overview. */
function sameSitePage(next: string): string {
  if (!next.startsWith('/ui/')) return '/ui/';
  let url: URL;
  try {
    url = new URL(next, 'http://dashboard.invalid');
  } catch {
    return '/ui/';
  }
  // Re-serialised: CR, LF and characters a header cannot hold come out percent-encoded.
  return url.origin === 'http://dashboard.invalid' && url.pathname.startsWith('/ui/') ? `${url.pathname}${url.search}` : '/ui/';
}

function wholeOf(v: string | undefined, name: string): number | undefined {
  const s = text(v, 20);
  if (!s) return undefined;
  if (!/^\d{1,15}$/.test(s)) throw new OperationError(`The ${name} parameter must be a whole number.`);
  return Number(s);
}

/** A datetime-local value (`2026-12-03T06:00` or with seconds), read as UTC. */
function dateOf(v: string | undefined, name: string): number | undefined {
  const s = text(v, 30);
  if (!s) return undefined;
  const at = /^\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d{1,3})?)?$/.test(s) ? Date.parse(`${s}Z`) : Number.NaN;
  if (Number.isNaN(at)) throw new OperationError(`The ${name} time must look like 2026-12-03T06:00 (UTC).`);
  return at;
}

function flashOf(page: pages.PageContext, q: Query): string | undefined {
  const count = (v: unknown) => (/^\d{1,9}$/.test(text(v, 10)) ? Number(text(v, 10)) : undefined);
  const replayed = count(q.replayed);
  if (replayed === undefined) return undefined; // a message from a link someone made up is simply not shown
  const skipped = count(q.skipped) ?? 0;
  return [page.t('flash.replayed', { n: replayed }), skipped > 0 ? page.t('flash.skipped', { n: skipped }) : ''].filter(Boolean).join(' ');
}

/** Dead letters by handler, counted up to a cap in one read of the store. */
async function deadByHandler(app: FastifyInstance): Promise<(handler: string) => string> {
  const dead = await app.store.list({ status: 'dead', limit: DEAD_COUNT_CAP });
  const by = new Map<string, number>();
  for (const d of dead) by.set(d.handler, (by.get(d.handler) ?? 0) + 1);
  const capped = dead.length >= DEAD_COUNT_CAP;
  return (handler) => {
    const n = by.get(handler) ?? 0;
    return capped && n > 0 ? `${n}+` : String(n);
  };
}

/** Runs since this instance started, by handler and outcome (its metrics). */
async function runsByHandler(app: FastifyInstance): Promise<Map<string, { done: number; retry: number; dead: number }>> {
  const out = new Map<string, { done: number; retry: number; dead: number }>();
  for (const v of (await app.metrics.deliveries.get()).values) {
    const handler = String(v.labels.handler);
    const row = out.get(handler) ?? { done: 0, retry: 0, dead: 0 };
    const outcome = String(v.labels.outcome);
    if (outcome === 'done' || outcome === 'skipped') row.done += v.value;
    else if (outcome === 'retry') row.retry += v.value;
    else if (outcome === 'dead') row.dead += v.value;
    out.set(handler, row);
  }
  return out;
}

/** Failed sign-ins by client address over the last minute; at most 10,000 addresses are kept. */
class FailedLogins {
  readonly #by = new Map<string, number[]>();

  blocked(ip: string): boolean {
    return this.#recent(ip).length >= FAILED_LOGINS_PER_MINUTE;
  }

  add(ip: string): void {
    if (this.#by.size >= 10_000 && !this.#by.has(ip)) this.#by.delete(this.#by.keys().next().value!);
    this.#by.set(ip, [...this.#recent(ip), Date.now()].slice(-FAILED_LOGINS_PER_MINUTE));
  }

  #recent(ip: string): number[] {
    const since = Date.now() - 60_000;
    return (this.#by.get(ip) ?? []).filter((t) => t > since);
  }
}

/** Events stored per second over the last minute on this instance, from its events counter sampled every 5 s. */
class EventRate {
  readonly #samples: { at: number; total: number }[] = [];
  readonly #timer: NodeJS.Timeout;

  constructor(private readonly app: FastifyInstance) {
    void this.#sample();
    this.#timer = setInterval(() => void this.#sample(), 5000).unref();
  }

  perSecond(): number | null {
    const first = this.#samples[0];
    const last = this.#samples.at(-1);
    if (!first || !last || last.at - first.at < 4000) return null;
    return (last.total - first.total) / ((last.at - first.at) / 1000);
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  async #sample(): Promise<void> {
    const total = (await this.app.metrics.eventsAccepted.get()).values.reduce((a, v) => a + v.value, 0);
    const at = Date.now();
    this.#samples.push({ at, total });
    while (this.#samples.length > 0 && at - this.#samples[0]!.at > 60_000) this.#samples.shift();
  }
}

/** `read`, its answer kept for `ms` (a failed read is not kept). */
function cachedFor<T>(ms: number, read: () => Promise<T>): () => Promise<T> {
  let last: { at: number; value: Promise<T> } | undefined;
  return () => {
    if (last && Date.now() - last.at < ms) return last.value;
    const value = read();
    last = { at: Date.now(), value };
    value.catch(() => {
      last = undefined;
    });
    return value;
  };
}

/** A request's path without its query, and without a trailing slash but the root's (/ui/login/ is /ui/login). */
const pathOf = (url: string): string => url.split('?')[0]!.replace(/(.)\/+$/, '$1');

/**
 * Whom a sign-in failure counts against: an IPv4 address, or an IPv6 address's /64 (one client
 * usually holds a whole /64, and would otherwise get ten more tries with each new address).
 */
export function clientKey(ip: string): string {
  const v4 = /^(?:::ffff:)?(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(ip);
  if (v4) return v4[1]!;
  if (!ip.includes(':')) return ip;
  const [head = '', tail = ''] = ip.toLowerCase().split('%')[0]!.split('::');
  const left = head ? head.split(':') : [];
  const right = ip.includes('::') && tail ? tail.split(':') : [];
  const groups = ip.includes('::') ? [...left, ...Array(Math.max(0, 8 - left.length - right.length)).fill('0'), ...right] : left;
  return `${groups
    .slice(0, 4)
    .map((g) => g.replace(/^0+(?=.)/, ''))
    .join(':')}::/64`;
}
