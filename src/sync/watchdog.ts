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

export interface WatchedWebhook {
  readonly id: number;
  readonly name: string;
  readonly active: boolean;
  readonly callsRemaining: number | null;
  /** The last call HubEx made: when it ended (or started), in ms since the epoch, and its error. */
  readonly lastCall: { readonly at: number | null; readonly failed: boolean; readonly exception: string | null } | null;
  /** The uri with every webhook token hidden. */
  readonly uri: string;
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

/** Whether a webhook calls this router: its uri carries one of the tokens, or starts with PUBLIC_URL. */
export function isOwnWebhook(uri: string, tokens: readonly string[], publicUrl: string | undefined): boolean {
  if (!uri) return false;
  if (publicUrl && (uri === publicUrl || uri.startsWith(`${publicUrl}/`))) return true;
  return tokens.some((t) => t.length > 0 && uri.includes(t));
}

/** Text from HubEx (a uri, an exception) with every webhook token, and any /hooks/hubex/ path segment, hidden. */
export function hideTokens(text: string, tokens: readonly string[], max = 300): string {
  let out = text;
  for (const t of tokens) if (t) out = out.split(t).join('[REDACTED]');
  return out.replace(/(\/hooks\/hubex\/)[^/?#\s"']+/g, '$1[REDACTED]').slice(0, max);
}

export class WebhookWatchdog {
  readonly #o: WatchdogOptions;
  readonly #now: () => number;
  /** By webhook id: whether it is this router's, and its uri (hidden), from its details. */
  readonly #details = new Map<number, { own: boolean; uri: string; round: number }>();
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
    const ids = new Set(listed.map((w) => Number(w.id)));
    for (const id of this.#details.keys()) if (!ids.has(id)) this.#details.delete(id);
    const own: WatchedWebhook[] = [];
    for (const w of listed) {
      const id = Number(w.id);
      if (!Number.isSafeInteger(id)) continue;
      let d = this.#details.get(id);
      if (!d || (round - d.round) % DETAILS_EVERY === DETAILS_EVERY - 1) {
        const details = (await hubex.msg.webhooks.get(id, { signal })) as Record<string, unknown>;
        const uri = typeof details.uri === 'string' ? details.uri : '';
        d = { own: isOwnWebhook(uri, tokens, publicUrl), uri: hideTokens(uri, tokens), round: d?.round ?? round };
        this.#details.set(id, d);
      }
      if (d.own && own.length < MAX_WATCHED) own.push(this.#view(id, w, d.uri));
    }
    const now = this.#now();
    const seen = new Set(own.map((w) => w.id));
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
        if (warnedAt === undefined || !before || before.active || now - warnedAt >= INACTIVE_REMINDER_MS) {
          warnedAt = now;
          log.error(
            detail,
            `webhook ${w.id} is inactive: HubEx sends it nothing${this.#o.reconcileIntervalMs > 0 ? ', and changes arrive only by reconciliation' : ''}; ${
              this.#o.autoActivate
                ? 'activating it again'
                : `hubex-router webhooks activate ${w.id} (or WEBHOOK_AUTO_ACTIVATE=true) turns it back on`
            }`,
          );
        }
        if (this.#o.autoActivate) {
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
