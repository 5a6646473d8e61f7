// Catching up with HubEx, started by the app when it has a HubEx client: reconciliation (polling
// for task changes no webhook brought: ./reconciler.ts) and the webhook watchdog (./watchdog.ts),
// each at its interval from the configuration (0: off), counted in the app's metrics.
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import type { HubexEvent } from '../events/event.js';
import type { HubexClient } from '../hubex/client.js';
import type { Metrics } from '../observability/metrics.js';
import { type AcceptedEvent, DEFAULT_TENANT, type IncomingEvent, type Store } from '../store/contract.js';
import { Reconciler } from './reconciler.js';
import { WebhookWatchdog } from './watchdog.js';

export { Reconciler } from './reconciler.js';
export { WebhookWatchdog, isOwnWebhook, hideTokens } from './watchdog.js';

export interface SyncOptions {
  readonly config: Pick<Config, 'reconcileIntervalMs' | 'webhookWatchIntervalMs' | 'webhookAutoActivate' | 'publicUrl'>;
  readonly store: Store;
  readonly hubex: HubexClient;
  /** This router's webhook tokens. */
  readonly tokens: readonly string[];
  readonly fanOut: (event: HubexEvent) => IncomingEvent;
  readonly metrics: Metrics;
  readonly log: Logger;
  readonly onAccepted?: (events: readonly AcceptedEvent[]) => void;
}

export interface Sync {
  readonly reconciler: Reconciler | undefined;
  readonly watchdog: WebhookWatchdog | undefined;
  /** Polls and watches now, then at their intervals. */
  start(): void;
  stop(): Promise<void>;
}

export function createSync(o: SyncOptions): Sync {
  const { config, metrics } = o;
  const reconciler =
    config.reconcileIntervalMs > 0
      ? new Reconciler({
          store: o.store,
          hubex: o.hubex,
          tenant: DEFAULT_TENANT,
          intervalMs: config.reconcileIntervalMs,
          fanOut: o.fanOut,
          onAccepted: (r) => o.onAccepted?.(r.events),
          log: o.log,
          metrics: {
            poll: (outcome, seconds) => {
              metrics.reconcilePolls.inc({ outcome });
              if (outcome === 'skipped') return;
              metrics.reconcilePollDuration.observe(seconds);
              if (outcome === 'ok') metrics.reconcileLastSuccess.set(Date.now() / 1000);
            },
            tasks: (result, n) => metrics.reconcileTasks.inc({ result }, n),
            cursor: (ms) => metrics.reconcileCursor.set(ms / 1000),
          },
        })
      : undefined;
  const watchdog =
    config.webhookWatchIntervalMs > 0
      ? new WebhookWatchdog({
          hubex: o.hubex,
          tokens: o.tokens,
          publicUrl: config.publicUrl,
          intervalMs: config.webhookWatchIntervalMs,
          autoActivate: config.webhookAutoActivate,
          reconcileIntervalMs: config.reconcileIntervalMs,
          log: o.log,
          metrics: {
            webhook: (w) => {
              const labels = { webhook: String(w.id) };
              metrics.webhookActive.set(labels, w.active ? 1 : 0);
              if (w.callsRemaining === null) metrics.webhookCallsRemaining.remove(labels);
              else metrics.webhookCallsRemaining.set(labels, w.callsRemaining);
              if (w.lastCall?.at == null) metrics.webhookLastCall.remove(labels);
              else metrics.webhookLastCall.set(labels, w.lastCall.at / 1000);
              metrics.webhookLastCallFailed.set(labels, w.lastCall?.failed ? 1 : 0);
            },
            forget: (id) => {
              const labels = { webhook: String(id) };
              for (const g of [
                metrics.webhookActive,
                metrics.webhookCallsRemaining,
                metrics.webhookLastCall,
                metrics.webhookLastCallFailed,
              ])
                g.remove(labels);
            },
            error: () => metrics.webhookWatchErrors.inc(),
          },
        })
      : undefined;
  return {
    reconciler,
    watchdog,
    start: () => {
      reconciler?.start();
      watchdog?.start();
    },
    stop: async () => {
      await Promise.all([reconciler?.stop(), watchdog?.stop()]);
    },
  };
}
