// The dashboard's pages, rendered on the server: plain links and forms (every action a button in a
// form, every page reachable from the keyboard), one stylesheet, no script. Each function takes
// what the route read from the store and gives the page.
import type { Handler } from '../delivery/define-handler.js';
import type {
  AttemptRecord,
  Backlog,
  DeliveryCounts,
  DeliveryDetail,
  DeliveryRecord,
  EventDetail,
  EventRecord,
  Health,
} from '../store/contract.js';
import { DELIVERY_STATUSES } from '../store/contract.js';
import type { WatchedWebhook } from '../sync/watchdog.js';
import { type Html, html, query, time } from './html.js';
import type { Key, Lang, Translate } from './i18n.js';

export interface PageContext {
  readonly t: Translate;
  readonly lang: Lang;
  /** The CSRF token for forms; undefined before sign-in. */
  readonly csrf?: string | undefined;
  /** This page's path and query, for the language switch to come back to. */
  readonly here: string;
}

const NAV: readonly [path: string, key: Key][] = [
  ['/ui/', 'nav.overview'],
  ['/ui/events', 'nav.events'],
  ['/ui/deliveries', 'nav.deliveries'],
  ['/ui/handlers', 'nav.handlers'],
];

export function layout(c: PageContext, title: string, body: Html, flash?: string): Html {
  const other: Lang = c.lang === 'ru' ? 'en' : 'ru';
  const current = NAV.find(([p]) => (p === '/ui/' ? c.here === '/ui/' || c.here.startsWith('/ui/?') : c.here.startsWith(p)))?.[0];
  return html`<!doctype html>
    <html lang="${c.lang}">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>${title} · ${c.t('app.title')}</title>
        <link rel="stylesheet" href="/ui/style.css" />
      </head>
      <body>
        <a class="skip" href="#main">${c.t('nav.skip')}</a>
        <header>
          <span class="brand">${c.t('app.title')}</span>
          ${
            c.csrf
              ? html`<nav aria-label="${c.t('nav.main')}">
                  <ul>
                    ${NAV.map(([p, k]) => html`<li><a href="${p}" ${current === p ? html` aria-current="page"` : ''}>${c.t(k)}</a></li>`)}
                  </ul>
                </nav>`
              : ''
          }
          <div class="tools">
            <a href="/ui/lang${query({ to: other, next: c.here })}" lang="${other}" hreflang="${other}"
              >${other === 'ru' ? 'Русский' : 'English'}</a
            >
            ${c.csrf ? html`<form method="post" action="/ui/logout">${csrfField(c)}<button type="submit">${c.t('nav.signOut')}</button></form>` : ''}
          </div>
        </header>
        <main id="main" tabindex="-1">
          <h1>${title}</h1>
          ${flash ? html`<p class="flash" role="status">${flash}</p>` : ''} ${body}
        </main>
      </body>
    </html> `;
}

const csrfField = (c: PageContext) => html`<input type="hidden" name="_csrf" value="${c.csrf ?? ''}" />`;

export function loginPage(c: PageContext, problem?: string): Html {
  return layout(
    c,
    c.t('login.title'),
    html`<form method="post" action="/ui/login" class="login">
      ${problem ? html`<p class="error" role="alert" id="login-problem">${problem}</p>` : ''}
      <label for="token">${c.t('login.token')}</label>
      <input
        id="token"
        name="token"
        type="password"
        autocomplete="current-password"
        required
        autofocus${problem ? html` aria-describedby="login-problem"` : ''}
      />
      <button type="submit">${c.t('login.submit')}</button>
      <p class="hint">${c.t('login.hint')}</p>
    </form>`,
  );
}

const statusText = (c: PageContext, s: string) => ((DELIVERY_STATUSES as readonly string[]).includes(s) ? c.t(`status.${s}` as Key) : s);
const statusBadge = (c: PageContext, s: string) => html`<span class="status status-${s}">${statusText(c, s)}</span>`;
const entityText = (e: EventRecord['entity']) => (e ? `${e.type} ${e.id}` : '');

export interface OverviewData {
  readonly health: Health;
  readonly counts: DeliveryCounts;
  readonly backlog: Backlog;
  readonly eventsPerSecond: number | null;
  /** Runs since start by handler and outcome (this instance), and dead letters now by handler. */
  readonly handlers: readonly { name: string; done: number; retry: number; dead: number; deadNow: string }[];
  readonly webhooks: readonly WatchedWebhook[] | undefined;
  readonly reconcile: { readonly intervalMs: number; readonly cursor: string | null };
  readonly now: number;
}

export function overviewPage(c: PageContext, d: OverviewData): Html {
  const { t } = c;
  const oldest = d.backlog.oldestCreatedAt === null ? t('overview.none') : `${Math.round((d.now - d.backlog.oldestCreatedAt) / 1000)} s`;
  return layout(
    c,
    t('overview.title'),
    html`<section aria-labelledby="h-state">
        <h2 id="h-state" class="visually-hidden">${t('overview.store')}</h2>
        <dl class="cards">
          <div>
            <dt>${t('overview.store')}</dt>
            <dd class="${d.health.ok ? 'ok' : 'bad'}">
              ${d.health.ok ? t('overview.storeOk') : t('overview.storeDown', { reason: d.health.reason })}
            </dd>
          </div>
          <div>
            <dt>${t('overview.eventsPerSecond')}</dt>
            <dd>${d.eventsPerSecond === null ? '…' : d.eventsPerSecond.toFixed(2)}</dd>
          </div>
          <div>
            <dt>${t('overview.dead')}</dt>
            <dd class="${d.counts.dead > 0 ? 'bad' : 'ok'}">
              ${d.counts.dead}${d.counts.dead > 0 ? html` · <a href="/ui/deliveries?status=dead">${t('overview.deadLink')}</a>` : ''}
            </dd>
          </div>
          <div>
            <dt>${t('overview.backlog')}</dt>
            <dd>${oldest}</dd>
          </div>
          <div>
            <dt>${t('overview.unrouted')}</dt>
            <dd>${d.counts.unroutedEvents}</dd>
          </div>
        </dl>
      </section>
      <section aria-labelledby="h-deliveries">
        <h2 id="h-deliveries">${t('overview.deliveries')}</h2>
        <table>
          <thead>
            <tr>
              ${DELIVERY_STATUSES.map((s) => html`<th scope="col">${statusText(c, s)}</th>`)}
            </tr>
          </thead>
          <tbody>
            <tr>
              ${DELIVERY_STATUSES.map((s) => html`<td><a href="/ui/deliveries?status=${s}">${d.counts[s]}</a></td>`)}
            </tr>
          </tbody>
        </table>
        <h3>${t('overview.byHandler')}</h3>
        ${
          d.handlers.length === 0
            ? html`<p>${t('handlers.none')}</p>`
            : html`<table>
                <thead>
                  <tr>
                    <th scope="col">${t('col.handler')}</th>
                    <th scope="col">${t('col.runs')}<br /><small>${t('overview.runsSince')}</small></th>
                    <th scope="col">${t('col.deadNow')}</th>
                  </tr>
                </thead>
                <tbody>
                  ${d.handlers.map(
                    (h) =>
                      html`<tr>
                        <th scope="row"><a href="/ui/deliveries${query({ handler: h.name })}">${h.name}</a></th>
                        <td>${h.done} / ${h.retry} / ${h.dead}</td>
                        <td>
                          ${
                            h.deadNow === '0'
                              ? '0'
                              : html`<a href="/ui/deliveries${query({ status: 'dead', handler: h.name })}">${h.deadNow}</a>`
                          }
                        </td>
                      </tr>`,
                  )}
                </tbody>
              </table>`
        }
      </section>
      <section aria-labelledby="h-webhooks">
        <h2 id="h-webhooks">${t('overview.webhooks')}</h2>
        ${webhooksTable(c, d.webhooks)}
        <p>
          ${t('overview.reconcile')}:
          ${
            d.reconcile.intervalMs === 0
              ? t('overview.reconcileOff')
              : d.reconcile.cursor === null
                ? t('overview.reconcileNotYet', { s: d.reconcile.intervalMs / 1000 })
                : t('overview.reconcileEvery', { s: d.reconcile.intervalMs / 1000, cursor: time(Date.parse(d.reconcile.cursor)) })
          }
        </p>
      </section>`,
  );
}

function webhooksTable(c: PageContext, hooks: readonly WatchedWebhook[] | undefined): Html {
  const { t } = c;
  if (hooks === undefined) return html`<p>${t('overview.watchOff')}</p>`;
  if (hooks.length === 0) return html`<p>${t('overview.watchNone')}</p>`;
  return html`<table>
    <thead>
      <tr>
        <th scope="col">${t('col.webhook')}</th>
        <th scope="col">${t('col.active')}</th>
        <th scope="col">${t('col.callsLeft')}</th>
        <th scope="col">${t('col.lastCall')}</th>
        <th scope="col">${t('col.error')}</th>
      </tr>
    </thead>
    <tbody>
      ${hooks.map(
        (w) =>
          html`<tr>
            <th scope="row">#${w.id} ${w.name}<br /><small>${w.uri}</small></th>
            <td class="${w.active ? 'ok' : 'bad'}">${w.active ? t('yes') : t('no')}</td>
            <td>${w.callsRemaining ?? ''}</td>
            <td>${time(w.lastCall?.at)}</td>
            <td>${w.lastCall?.exception ?? ''}</td>
          </tr>`,
      )}
    </tbody>
  </table>`;
}

export interface EventsQuery {
  readonly task?: string | undefined;
  readonly name?: string | undefined;
  readonly from?: string | undefined;
  readonly until?: string | undefined;
}

export function eventsPage(
  c: PageContext,
  q: EventsQuery,
  items: readonly EventRecord[],
  next: number | null,
  names: readonly string[],
): Html {
  const { t } = c;
  return layout(
    c,
    t('events.title'),
    html`<form method="get" action="/ui/events" class="filters">
        <label>${t('events.task')} <input name="task" inputmode="numeric" pattern="[0-9]*" value="${q.task ?? ''}" size="10" /></label>
        <label>${t('events.name')} <input name="name" list="event-names" value="${q.name ?? ''}" size="20" /></label>
        <datalist id="event-names">${names.map((n) => html`<option value="${n}"></option>`)}</datalist>
        <label>${t('events.from')} <input name="from" type="datetime-local" step="1" value="${q.from ?? ''}" /></label>
        <label>${t('events.until')} <input name="until" type="datetime-local" step="1" value="${q.until ?? ''}" /></label>
        <button type="submit">${t('events.search')}</button>
      </form>
      ${
        items.length === 0
          ? html`<p>${t('events.none')}</p>`
          : html`<table>
              <thead>
                <tr>
                  <th scope="col">${t('col.received')}</th>
                  <th scope="col">${t('col.event')}</th>
                  <th scope="col">${t('col.entity')}</th>
                  <th scope="col">${t('col.deliveries')}</th>
                  <th scope="col">${t('col.duplicates')}</th>
                  <th scope="col">${t('col.id')}</th>
                </tr>
              </thead>
              <tbody>
                ${items.map(
                  (e) =>
                    html`<tr>
                      <td>${time(e.receivedAt)}</td>
                      <td>${e.name}</td>
                      <td>${entityText(e.entity)}</td>
                      <td>${e.routed}</td>
                      <td>${e.duplicates}</td>
                      <td><a href="/ui/events/${encodeURIComponent(e.id)}">${short(e.id)}</a></td>
                    </tr>`,
                )}
              </tbody>
            </table>`
      }
      ${next === null ? '' : html`<p><a href="/ui/events${query({ ...q, before: next })}" rel="next">${t('events.older')} →</a></p>`}`,
  );
}

export function eventPage(c: PageContext, e: EventDetail): Html {
  const { t } = c;
  let pretty = e.raw;
  try {
    pretty = JSON.stringify(JSON.parse(e.raw), null, 2);
  } catch {
    // shown as stored
  }
  return layout(
    c,
    t('event.title', { id: short(e.id) }),
    html`<dl class="fields">
        <dt>${t('col.id')}</dt>
        <dd><code>${e.id}</code></dd>
        <dt>${t('col.event')}</dt>
        <dd>${e.name}${e.eventID === null ? '' : ` (${e.eventID})`}</dd>
        <dt>${t('col.entity')}</dt>
        <dd>${entityText(e.entity)}</dd>
        <dt>${t('col.received')}</dt>
        <dd>${time(e.receivedAt)}</dd>
        <dt>${t('col.duplicates')}</dt>
        <dd>${e.duplicates}</dd>
      </dl>
      <h2>${t('col.deliveries')}</h2>
      ${deliveriesTable(c, e.deliveries)}
      <h2>${t('events.raw')}</h2>
      <pre tabindex="0"><code>${pretty}</code></pre>`,
  );
}

export interface DeliveriesQuery {
  readonly status?: string | undefined;
  readonly handler?: string | undefined;
  readonly event?: string | undefined;
}

export function deliveriesPage(
  c: PageContext,
  q: DeliveriesQuery,
  items: readonly DeliveryRecord[],
  next: string | number | null,
  handlers: readonly string[],
  flash?: string,
): Html {
  const { t } = c;
  return layout(
    c,
    t('deliveries.title'),
    html`<form method="get" action="/ui/deliveries" class="filters">
        <label
          >${t('col.status')}
          <select name="status">
            <option value="">${t('deliveries.any')}</option>
            ${DELIVERY_STATUSES.map((s) => html`<option value="${s}" ${q.status === s ? ' selected' : ''}>${statusText(c, s)}</option>`)}
          </select></label
        >
        <label
          >${t('col.handler')}
          <select name="handler">
            <option value="">${t('deliveries.any')}</option>
            ${handlers.map((h) => html`<option value="${h}" ${q.handler === h ? ' selected' : ''}>${h}</option>`)}
          </select></label
        >
        <label>${t('events.name')} <input name="event" value="${q.event ?? ''}" size="20" /></label>
        <button type="submit">${t('deliveries.filter')}</button>
      </form>
      ${q.status === 'dead' && items.length > 0 ? html`<p><a href="/ui/replay${query({ handler: q.handler, event: q.event })}">${t('deliveries.replayAll')}</a></p>` : ''}
      ${items.length === 0 ? html`<p>${t('deliveries.none')}</p>` : deliveriesTable(c, items)}
      ${next === null ? '' : html`<p><a href="/ui/deliveries${query({ ...q, after: next })}" rel="next">${t('deliveries.more')} →</a></p>`}`,
    flash,
  );
}

function deliveriesTable(c: PageContext, items: readonly DeliveryRecord[]): Html {
  const { t } = c;
  return html`<table>
    <thead>
      <tr>
        <th scope="col">${t('col.id')}</th>
        <th scope="col">${t('col.handler')}</th>
        <th scope="col">${t('col.event')}</th>
        <th scope="col">${t('col.status')}</th>
        <th scope="col">${t('col.attempts')}</th>
        <th scope="col">${t('col.updated')}</th>
        <th scope="col">${t('col.lastError')}</th>
      </tr>
    </thead>
    <tbody>
      ${items.map(
        (d) =>
          html`<tr>
            <td><a href="/ui/deliveries/${encodeURIComponent(String(d.id))}">${short(String(d.id))}</a></td>
            <td>${d.handler}</td>
            <td>${d.eventName}</td>
            <td>${statusBadge(c, d.status)}</td>
            <td>${d.attempts}</td>
            <td>${time(d.updatedAt)}</td>
            <td>${d.lastError ? d.lastError.message.slice(0, 140) : ''}</td>
          </tr>`,
      )}
    </tbody>
  </table>`;
}

export function deliveryPage(c: PageContext, d: DeliveryDetail, flash?: string): Html {
  const { t } = c;
  const replayable = d.status === 'dead' || d.status === 'done';
  return layout(
    c,
    t('delivery.title', { id: short(String(d.id)) }),
    html`<dl class="fields">
        <dt>${t('col.id')}</dt>
        <dd><code>${String(d.id)}</code></dd>
        <dt>${t('col.status')}</dt>
        <dd>${statusBadge(c, d.status)}</dd>
        <dt>${t('col.handler')}</dt>
        <dd>${d.handler}</dd>
        <dt>${t('col.event')}</dt>
        <dd><a href="/ui/events/${encodeURIComponent(d.eventId)}">${d.eventName} · ${short(d.eventId)}</a></dd>
        <dt>${t('col.attempts')}</dt>
        <dd>${d.attempts}</dd>
        ${
          d.dueAt === null
            ? ''
            : html`<dt>${t('delivery.due')}</dt>
                <dd>${time(d.dueAt)}</dd>`
        }
        ${
          d.lastError
            ? html`<dt>${t('col.lastError')}</dt>
                <dd class="bad">
                  ${d.lastError.message}
                  <small
                    >(${d.lastError.errorClass}${d.lastError.traceId ? html`, ${t('col.trace')} <code>${d.lastError.traceId}</code>` : ''})</small
                  >
                </dd>`
            : ''
        }
        ${
          d.collapsedInto === undefined
            ? ''
            : html`<dt>debounce</dt>
                <dd>
                  <a href="/ui/deliveries/${encodeURIComponent(String(d.collapsedInto))}"
                    >${t('delivery.collapsedInto', { id: String(d.collapsedInto) })}</a
                  >
                </dd>`
        }
      </dl>
      ${replayable ? html`<p><a class="button" href="/ui/deliveries/${encodeURIComponent(String(d.id))}/replay">${t('delivery.replay')}</a></p>` : ''}
      <h2>${t('delivery.history')}</h2>
      ${d.history.length === 0 ? html`<p>${t('delivery.noHistory')}</p>` : historyTable(c, d.history)}`,
    flash,
  );
}

function historyTable(c: PageContext, history: readonly AttemptRecord[]): Html {
  const { t } = c;
  return html`<table class="history">
    <thead>
      <tr>
        <th scope="col">${t('col.cycle')}</th>
        <th scope="col">${t('col.attempt')}</th>
        <th scope="col">${t('col.started')}</th>
        <th scope="col">${t('col.finished')}</th>
        <th scope="col">${t('col.outcome')}</th>
        <th scope="col">${t('col.error')}</th>
        <th scope="col">${t('col.trace')}</th>
      </tr>
    </thead>
    <tbody>
      ${history.map(
        (a) =>
          html`<tr>
            <td>${a.cycle}</td>
            <td>${a.attempt}</td>
            <td>${time(a.startedAt)}</td>
            <td>${time(a.finishedAt)}</td>
            <td>${statusBadge(c, a.outcome)}</td>
            <td>${a.error ? html`${a.error.message} <small>(${a.error.errorClass})</small>` : ''}</td>
            <td>${a.error?.traceId ? html`<code>${a.error.traceId}</code>` : ''}</td>
          </tr>`,
      )}
    </tbody>
  </table>`;
}

/** The confirmation before a replay: of one delivery, or of every dead one of a filter. */
export function replayPage(c: PageContext, what: { one: DeliveryRecord } | { handler?: string; event?: string; count: string }): Html {
  const { t } = c;
  if ('one' in what) {
    const d = what.one;
    const id = encodeURIComponent(String(d.id));
    return layout(
      c,
      t('replay.title'),
      html`<form method="post" action="/ui/deliveries/${id}/replay" class="confirm">
        ${csrfField(c)}
        <p>${t('replay.one', { id: String(d.id), handler: d.handler, event: d.eventName })}</p>
        <button type="submit" autofocus>${t('replay.confirm')}</button> <a href="/ui/deliveries/${id}">${t('replay.cancel')}</a>
      </form>`,
    );
  }
  const of =
    (what.handler ? t('replay.ofHandler', { handler: what.handler }) : '') + (what.event ? t('replay.ofEvent', { event: what.event }) : '');
  const back = `/ui/deliveries${query({ status: 'dead', handler: what.handler, event: what.event })}`;
  if (what.count === '0')
    return layout(
      c,
      t('replay.title'),
      html`<p>${t('replay.nothing')}</p>
        <p><a href="${back}">${t('replay.cancel')}</a></p>`,
    );
  return layout(
    c,
    t('replay.title'),
    html`<form method="post" action="/ui/replay" class="confirm">
      ${csrfField(c)} <input type="hidden" name="handler" value="${what.handler ?? ''}" /><input
        type="hidden"
        name="event"
        value="${what.event ?? ''}"
      />
      <p>${t('replay.all', { of, n: what.count })}</p>
      <button type="submit" autofocus>${t('replay.confirm')}</button> <a href="${back}">${t('replay.cancel')}</a>
    </form>`,
  );
}

export interface HandlerRow {
  readonly handler: Handler;
  readonly done: number;
  readonly retry: number;
  readonly dead: number;
  readonly deadNow: string;
}

export function handlersPage(c: PageContext, rows: readonly HandlerRow[]): Html {
  const { t } = c;
  return layout(
    c,
    t('handlers.title'),
    rows.length === 0
      ? html`<p>${t('handlers.none')}</p>`
      : html`<table>
          <thead>
            <tr>
              <th scope="col">${t('col.handler')}</th>
              <th scope="col">${t('col.on')}</th>
              <th scope="col">${t('col.policy')}</th>
              <th scope="col">${t('col.flow')}</th>
              <th scope="col">${t('col.runs')}<br /><small>${t('overview.runsSince')}</small></th>
              <th scope="col">${t('col.deadNow')}</th>
            </tr>
          </thead>
          <tbody>
            ${rows.map(({ handler: h, done, retry, dead, deadNow }) => {
              const policy = [
                h.timeoutMs === undefined ? '' : t('handlers.timeout', { ms: h.timeoutMs }),
                h.maxAttempts === undefined ? '' : t('handlers.attempts', { n: h.maxAttempts }),
                h.retry ? t('handlers.retry', { base: h.retry.baseMs ?? '…', max: h.retry.maxMs ?? '…' }) : '',
                h.concurrency === undefined ? '' : t('handlers.concurrency', { n: h.concurrency }),
                h.where ? t('handlers.where') : '',
                h.onDead ? t('handlers.onDead') : '',
              ].filter(Boolean);
              const flow = h.orderBy
                ? t('handlers.orderBy')
                : h.debounce
                  ? t('handlers.debounce', { period: h.debounce.periodMs, max: h.debounce.maxWaitMs })
                  : '';
              return html`<tr>
                <th scope="row">
                  <a href="/ui/deliveries${query({ handler: h.name })}">${h.name}</a
                  >${h.enabled === false ? html` <small>(${t('handlers.disabled')})</small>` : ''}
                </th>
                <td>${h.on.map((s) => html`<code>${String(s)}</code> `)}</td>
                <td>${policy.length ? policy.join('; ') : t('handlers.default')}</td>
                <td>${flow}</td>
                <td>${done} / ${retry} / ${dead}</td>
                <td>
                  ${deadNow === '0' ? '0' : html`<a href="/ui/deliveries${query({ status: 'dead', handler: h.name })}">${deadNow}</a>`}
                </td>
              </tr>`;
            })}
          </tbody>
        </table>`,
  );
}

export function errorPage(c: PageContext, message: string): Html {
  return layout(
    c,
    c.t('error.title'),
    html`<p class="error" role="alert">${message}</p>
      <p><a href="/ui/">${c.t('error.back')}</a></p>`,
  );
}

/** A long id shortened for a table; the page of the record shows it whole. */
function short(id: string): string {
  return id.length > 24 ? `${id.slice(0, 21)}…` : id;
}
