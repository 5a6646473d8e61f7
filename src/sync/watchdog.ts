// The webhook watchdog: every WEBHOOK_WATCH_INTERVAL_MS it reads this router's webhooks in HubEx's
// MSG (those whose uri carries one of its webhook tokens or starts with PUBLIC_URL), sets their
// metrics, logs an error when one is inactive or its callsRemaining fell (HubEx counted failed
// calls), and, with WEBHOOK_AUTO_ACTIVATE=true, activates an inactive one again. The list omits
// the uri, so each webhook's details are read once (and again every tenth round, or when new).
import type { Logger } from 'pino';
import { parseHubexTime } from '../events/synthesized.js';
import type { HubexClient } from '../hubex/client.js';
import { Every } from './every.js';
import { errorOf } from './reconciler.js';

/** Webhooks read from HubEx at most (an installation has a handful). */
export const MAX_LISTED = 1000;
/** This router's webhooks watched at most (each is a metric series). */
export const MAX_WATCHED = 20;
/** While a webhook stays inactive, the error is logged again this often. */
export const INACTIVE_REMINDER_MS = 10 * 60_000;
/** Each webhook's uri is read again every this many rounds (an administrator may edit it). */
const DETAILS_EVERY = 10;
/** Webhooks' details read at most in one round. */
const DETAILS_PER_ROUND = 20;
/** A webhook is activated again at most this often: one that HubEx keeps stopping is failing for a reason. */
export const REACTIVATE_EVERY_MS = 10 * 60_000;

export interface WatchedWebhook {
  readonly id: number;
  readonly name: string;
  readonly active: boolean;
  readonly callsRemaining: number | null;
  /** The last call HubEx made: when it ended (or started), in ms since the epoch, and its error. */
  readonly lastCall: { readonly at: number | null; readonly failed: boolean; readonly exception: string | null } | null;
  /** The uri with every webhook token hidden. */
  readonly uri: string;
  /** Its uri carries one of the router's tokens (not only PUBLIC_URL: a rotated token's webhook has not). */
  readonly current?: boolean;
}

export interface WatchdogMetrics {
  webhook(w: WatchedWebhook): void;
  /** A webhook no longer watched: its series go. */
  forget(id: number): void;
  error(): void;
}

export interface WatchdogOptions {
  readonly hubex: HubexClient;
  /** This router's webhook tokens: a webhook whose uri carries one is this router's. */
  readonly tokens: readonly string[];
  /** PUBLIC_URL: a webhook whose uri starts with it is this router's. */
  readonly publicUrl?: string | undefined;
  readonly intervalMs: number;
  readonly autoActivate: boolean;
  /** How often reconciliation runs (0: not at all), for what the log says about an inactive webhook. */
  readonly reconcileIntervalMs: number;
  readonly log: Logger;
  readonly metrics?: WatchdogMetrics;
  readonly now?: () => number;
}

/**
 * Whether a webhook calls this router: its uri is this router's webhook path with one of its
 * tokens (`.../hooks/hubex/<token>`, on any host, or the token in its query), or the webhook path
 * under PUBLIC_URL (`<PUBLIC_URL>/hooks/hubex/...`, a token since rotated away included). Other
 * services' webhooks on the same host are not this router's.
 */
export function isOwnWebhook(uri: string, tokens: readonly string[], publicUrl: string | undefined): boolean {
  if (!uri) return false;
  if (publicUrl && uri.startsWith(`${publicUrl}/hooks/hubex/`)) return true;
  return carriesToken(uri, tokens);
}

/** Whether the uri names one of the tokens: the last segment of its /hooks/hubex/ path, or a query value. */
export function carriesToken(uri: string, tokens: readonly string[]): boolean {
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    return false;
  }
  const segment = /\/hooks\/hubex\/([^/]+)\/?$/.exec(url.pathname)?.[1];
  const values = [...url.searchParams.values()];
  return tokens.some((t) => t.length > 0 && (segment === t || values.includes(t)));
}

/**
 * Text from HubEx (a uri, an exception) as the router shows it: every webhook token and any
 * /hooks/hubex/ path segment hidden, query strings left out (another service's may hold its own
 * secret), cut to a length.
 */
export function hideTokens(text: string, tokens: readonly string[], max = 300): string {
  let out = text;
  for (const t of tokens) if (t) out = out.split(t).join('[REDACTED]');
  return out
    .replace(/(\/hooks\/hubex\/)[^/?#\s"']+/g, '$1[REDACTED]')
    .replace(/\?[^\s"'#]*/g, '?[...]')
    .slice(0, max);
}

export class WebhookWatchdog {
  readonly #o: WatchdogOptions;
  readonly #now: () => number;
  /** By webhook id: whether it is this router's, and its uri (hidden), from its details. */
  readonly #details = new Map<number, { own: boolean; current: boolean; uri: string; round: number }>();
  /** When each webhook was last activated again (WEBHOOK_AUTO_ACTIVATE). */
  readonly #activatedAt = new Map<number, number>();
  /** By webhook id: what the last round saw of this router's, and when an inactive one was last logged. */
  readonly #last = new Map<number, WatchedWebhook & { warnedAt?: number }>();
  #round = 0;
  readonly #every: Every;
  #saidNone = false;

  constructor(options: WatchdogOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
    this.#every = new Every(options.intervalMs, () => this.check());
  }

  start(): void {
    this.#every.start();
  }

  stop(): Promise<void> {
    return this.#every.stop();
  }

  /** What the last round saw of this router's webhooks. */
  get webhooks(): WatchedWebhook[] {
    return [...this.#last.values()].map(({ warnedAt: _, ...w }) => w);
  }

  /** One round: reads this router's webhooks, logs and counts what is wrong, activates as told. Rejects when HubEx could not be read (logged). */
  async check(): Promise<WatchedWebhook[]> {
    try {
      return await this.#check();
    } catch (err) {
      if (!this.#every.stopped) {
        this.#o.metrics?.error();
        this.#o.log.error(
          { error: errorOf(err) },
          "could not read this router's webhooks from HubEx (MSG); tried again at the next interval",
        );
      }
      throw err;
    }
  }

  async #check(): Promise<WatchedWebhook[]> {
    const { hubex, tokens, publicUrl, log } = this.#o;
    const signal = this.#every.signal;
    const round = this.#round++;
    const listed: Record<string, unknown>[] = [];
    for await (const w of hubex.msg.webhooks.list({ signal })) {
      listed.push(w as Record<string, unknown>);
      if (listed.length >= MAX_LISTED) break;
    }
    const ids = new Set(listed.map((w) => Number(w?.id)));
    for (const id of this.#details.keys()) if (!ids.has(id)) this.#details.delete(id);
    const own: WatchedWebhook[] = [];
    let reads = 0;
    for (const w of listed) {
      if (w === null || typeof w !== 'object') continue;
      const id = Number(w.id);
      if (!Number.isSafeInteger(id)) continue;
      let d = this.#details.get(id);
      // Details (the uri) of a webhook not known yet, or due to be read again; a few a round, so
      // that an installation with many webhooks does not spend HubEx's rate limit in one go.
      if ((!d || (round - d.round) % DETAILS_EVERY === DETAILS_EVERY - 1) && reads < DETAILS_PER_ROUND) {
        reads++;
        try {
          const details = (await hubex.msg.webhooks.get(id, { signal })) as Record<string, unknown> | null;
          const uri = typeof details?.uri === 'string' ? details.uri : '';
          d = {
            own: isOwnWebhook(uri, tokens, publicUrl),
            current: carriesToken(uri, tokens),
            uri: hideTokens(uri, tokens),
            round: d?.round ?? round,
          };
          this.#details.set(id, d);
        } catch (err) {
          // One webhook that cannot be read (deleted since the list, say) spoils no other.
          if (signal.aborted) throw err;
          log.debug({ webhook: id, error: errorOf(err) }, 'could not read a webhook from HubEx; tried again at the next round');
        }
      }
      if (d?.own && own.length < MAX_WATCHED) own.push({ ...this.#view(id, w, d.uri), current: d.current });
    }
    const now = this.#now();
    const seen = new Set(own.map((w) => w.id));
    for (const id of this.#activatedAt.keys()) if (!seen.has(id)) this.#activatedAt.delete(id);
    for (const id of this.#last.keys()) {
      if (seen.has(id)) continue;
      this.#last.delete(id);
      this.#o.metrics?.forget(id);
    }
    if (own.length === 0 && !this.#saidNone) {
      this.#saidNone = true;
      log.warn(
        this.#o.reconcileIntervalMs > 0
          ? `no HubEx webhook calls this router: changes reach handlers only by reconciliation (task.modified, every ${this.#o.reconcileIntervalMs} ms); register one with hubex-router webhooks register`
          : 'no HubEx webhook calls this router, and reconciliation is off: no event reaches it; register one with hubex-router webhooks register',
      );
    }
    if (own.length > 0) this.#saidNone = false;
    for (const w of own) {
      const before = this.#last.get(w.id);
      let warnedAt = before?.warnedAt;
      const detail = {
        webhook: w.id,
        name: w.name,
        uri: w.uri,
        callsRemaining: w.callsRemaining,
        lastError: w.lastCall?.exception ?? null,
      };
      if (before && w.callsRemaining !== null && before.callsRemaining !== null && w.callsRemaining < before.callsRemaining) {
        log.error(
          { ...detail, callsRemainingBefore: before.callsRemaining },
          `HubEx's calls to webhook ${w.id} are failing: its callsRemaining fell from ${before.callsRemaining} to ${w.callsRemaining}; at 0 HubEx stops calling it`,
        );
      }
      if (!w.active) {
        // Activated again only when its uri carries a current token (a rotated one's would fail
        // again at once), and at most every 10 minutes (HubEx stopping it again means its calls fail).
        const lastActivated = this.#activatedAt.get(w.id) ?? Number.NEGATIVE_INFINITY;
        const activate = this.#o.autoActivate && w.current === true && now - lastActivated >= REACTIVATE_EVERY_MS;
        if (warnedAt === undefined || !before || before.active || now - warnedAt >= INACTIVE_REMINDER_MS) {
          warnedAt = now;
          const what = activate
            ? 'activating it again'
            : this.#o.autoActivate && w.current !== true
              ? 'its uri carries none of WEBHOOK_TOKENS (a rotated token?), so it is not activated again: register the current URL'
              : this.#o.autoActivate
                ? `HubEx stopped it again within ${REACTIVATE_EVERY_MS / 60_000} minutes of its activation: look at its last error; it is activated again later`
                : `hubex-router webhooks activate ${w.id} (or WEBHOOK_AUTO_ACTIVATE=true) turns it back on`;
          log.error(
            detail,
            `webhook ${w.id} is inactive: HubEx sends it nothing${this.#o.reconcileIntervalMs > 0 ? ', and changes arrive only by reconciliation' : ''}; ${what}`,
          );
        }
        if (activate) {
          this.#activatedAt.set(w.id, now);
          try {
            await hubex.msg.webhooks.activate(w.id, { signal });
            log.warn({ webhook: w.id, name: w.name }, `activated webhook ${w.id} again (WEBHOOK_AUTO_ACTIVATE=true)`);
          } catch (err) {
            log.error({ webhook: w.id, error: errorOf(err) }, `could not activate webhook ${w.id} again`);
          }
        }
      } else warnedAt = undefined;
      this.#last.set(w.id, { ...w, ...(warnedAt === undefined ? {} : { warnedAt }) });
      this.#o.metrics?.webhook(w);
    }
    return own;
  }

  #view(id: number, w: Record<string, unknown>, uri: string): WatchedWebhook {
    const last = w.lastCall as Record<string, unknown> | null | undefined;
    const time = (v: unknown) => (typeof v === 'string' ? parseHubexTime(v) : Number.NaN);
    const at = last ? [time(last.completed), time(last.started)].find((t) => !Number.isNaN(t)) : undefined;
    const exception = typeof last?.exception === 'string' && last.exception ? hideTokens(last.exception, this.#o.tokens) : null;
    return {
      id,
      name: typeof w.name === 'string' ? w.name.slice(0, 200) : '',
      active: w.isActive === true,
      callsRemaining: typeof w.callsRemaining === 'number' ? w.callsRemaining : null,
      lastCall: last ? { at: at ?? null, failed: exception !== null, exception } : null,
      uri,
    };
  }
}
