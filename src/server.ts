// The Fastify app factory: builds a ready app from a config and its parts; never listens.
// src/main.ts listens and handles signals; tests call buildApp() and app.inject().
import Fastify, { type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import adminRoutes from '../routes/admin.js';
import healthRoutes from '../routes/health.js';
import metricsRoutes from '../routes/metrics.js';
import uiRoutes from '../routes/ui.js';
import webhookRoutes from '../routes/webhooks.js';
import { type Config, ConfigError } from './config.js';
import type { Handler } from './delivery/define-handler.js';
import { HandlerRegistry } from './delivery/registry.js';
import { flowProblemLog, flowsOf } from './delivery/flows.js';
import { startRetention } from './delivery/retention.js';
import { runDelivery, type RunnerOptions } from './delivery/runner.js';
import { EventCatalogue } from './events/catalogue.js';
import type { HubexEvent } from './events/event.js';
import { loadCatalogue } from './events/load-catalogue.js';
import { createNormalizer } from './events/normalize.js';
import { eventRebuilder } from './events/rebuild.js';
import { installAccessControl } from './http/access.js';
import { appOptions } from './http/app-options.js';
import { installErrorHandling } from './http/error-handler.js';
import { installRequestLog } from './http/request-log.js';
import { refuseWhileClosing } from './http/shutdown.js';
import { createHubexClient, type HubexClient } from './hubex/client.js';
import { LocalRateGate, type RateGate } from './hubex/rate-gate.js';
import { RedisRateGate } from './store/redis/rate-gate.js';
import { DEFAULT_PREFIX } from './store/redis/store.js';
import { createLogger } from './observability/log.js';
import { LabelCap, Metrics, serviceLabel } from './observability/metrics.js';
import { type AcceptedEvent, type Backend, DEFAULT_TENANT, type DeliveryWorker, type IncomingEvent, type Store } from './store/contract.js';
import { createSync, type Sync } from './sync/index.js';
import { openBackend } from './store/open.js';
import { adminTokenProblem, resolveWebhookTokens } from './webhook-tokens.js';

export interface AppDeps {
  readonly logger?: Logger;
  /** Defaults to the back end QUEUE names (SQLite in DATA_DIR, or Redis), closed with the app. */
  readonly backend?: Backend;
  /** The handlers events fan out to (main.ts loads them from handlers/ and HANDLERS_DIR). Default none. */
  readonly handlers?: readonly Handler[];
  /** The HubEx client a handler run gets as ctx.hubex (one shared client; per tenant later). */
  readonly hubexFor?: (event: HubexEvent) => unknown;
  /** The shared HubEx client; by default made from HUBEX_* when a token is configured, else none. */
  readonly hubex?: HubexClient;
  /** Load the event catalogue from HubEx at start when a client is configured. Default true. */
  readonly loadCatalogue?: boolean;
  /** False: store and fan out, but run nothing. Default true. */
  readonly dispatch?: boolean;
  /** False: neither reconciliation nor the webhook watchdog, whatever the configuration says. Default true. */
  readonly sync?: boolean;
  readonly catalogue?: EventCatalogue;
  /** Defaults to WEBHOOK_TOKENS, or the generated token in DATA_DIR. */
  readonly tokens?: readonly string[];
}

declare module 'fastify' {
  interface FastifyInstance {
    readonly store: Store;
    readonly catalogue: EventCatalogue;
    readonly handlers: HandlerRegistry;
    readonly metrics: Metrics;
    /** Undefined when no HubEx token is configured. */
    readonly hubex: HubexClient | undefined;
    /** Undefined when the app was built with dispatch: false. */
    readonly dispatcher: DeliveryWorker | undefined;
    /** Reconciliation and the webhook watchdog; undefined without a HubEx client. */
    readonly sync: Sync | undefined;
  }
}

export async function buildApp(config: Config, deps: AppDeps = {}): Promise<FastifyInstance> {
  const tokens = deps.tokens ?? resolveWebhookTokens(config).tokens;
  const adminProblem = adminTokenProblem(config.adminToken, tokens);
  if (adminProblem) throw new ConfigError([{ variable: 'ADMIN_TOKEN', message: adminProblem }]);
  const logger = deps.logger ?? createLogger(config.logLevel);
  const app = Fastify(appOptions(config, logger));

  const catalogue = deps.catalogue ?? new EventCatalogue();
  const registry = new HandlerRegistry(deps.handlers ?? [], catalogue);
  const ownsBackend = deps.backend === undefined;
  const { store, worker } =
    deps.backend ?? openBackend(config, { log: logger.child({ part: 'store' }), workerLog: logger.child({ part: 'dispatcher' }) });
  // Opens the store before the first call, and logs why when it cannot (the app starts anyway: 503s).
  await store.health();
  const metrics = new Metrics(() => store.backlog());
  const ownsHubex = deps.hubex === undefined;
  // HUBEX_RATE_LIMIT: counted in Redis when instances share it, else in this process.
  const rateGate = config.hubexRateLimit && deps.hubex === undefined ? openRateGate(config, logger.child({ part: 'hubex' })) : undefined;
  const hubex = deps.hubex ?? hubexClient(config, logger, metrics, rateGate);
  // Before the first webhook: routing by name ('task.created') needs the installation's names.
  if (hubex && deps.loadCatalogue !== false) await loadCatalogue(catalogue, hubex, logger.child({ part: 'catalogue' }));
  for (const { handler, name } of registry.unknownSubscriptions()) {
    logger.warn(
      { handler, name },
      `handler ${handler} subscribes to "${name}", which no event is named: it gets no such event until the name is known (check the spelling; \`hubex-router events\` lists the names, numeric ids always work)`,
    );
  }

  // Without a HubEx token handlers still get a client: its calls fail with HubexConfigError (dead, not retried).
  const handlersHubex = hubex ?? createHubexClient({ ...config.hubex, serviceToken: undefined, accessToken: undefined });

  const dispatcher = deps.dispatch === false ? undefined : worker;
  const retention = dispatcher && startRetention(store, config.retentionDays, logger.child({ part: 'retention' }));
  // Shutdown, after the server has stopped taking calls: drain the handlers, then close the store.
  // Reconciliation and the watchdog, made below (they need the fan-out), stopped first.
  const syncing: { sync?: Sync } = {};
  app.addHook('onClose', async () => {
    await syncing.sync?.stop();
    retention?.stop();
    await dispatcher?.stop(config.shutdownTimeoutMs);
    if (ownsBackend) await store.close();
    if (ownsHubex) hubex?.close();
    if (handlersHubex !== hubex) handlersHubex.close();
    if (rateGate instanceof RedisRateGate) await rateGate.close();
  });
  app.decorate('store', store);
  app.decorate('catalogue', catalogue);
  app.decorate('handlers', registry);
  app.decorate('dispatcher', dispatcher);
  app.decorate('metrics', metrics);
  app.decorate('hubex', hubex);

  refuseWhileClosing(app);
  installRequestLog(app, logger, metrics);
  installErrorHandling(app, config);
  await installAccessControl(app, config);
  await app.register(healthRoutes);
  await app.register(metricsRoutes);
  if (config.adminToken) {
    await app.register(adminRoutes, { adminToken: config.adminToken });
    await app.register(uiRoutes, { adminToken: config.adminToken, reconcileIntervalMs: hubex ? config.reconcileIntervalMs : 0 });
  }
  // Event names are the sender's to choose (`event.<id>` for any id): the catalogue's are kept,
  // and at most 50 others, then `other`.
  const nameLabels = new LabelCap(50, (name) => catalogue.get(catalogue.idOf(name) ?? Number.NaN)?.name === name);
  const flowProblem = flowProblemLog(logger.child({ part: 'fan-out' }));
  // Fan-out is decided here, before the store: it is told which handlers each event goes to.
  const fanOut = (event: HubexEvent): IncomingEvent => {
    const matched = registry.matching(event);
    const flows = flowsOf(matched, event, flowProblem);
    return { event, tenant: DEFAULT_TENANT, handlers: matched.map((h) => h.name), ...(flows ? { flows } : {}) };
  };
  const countEvents = (events: readonly Pick<AcceptedEvent, 'name' | 'duplicate'>[]) => {
    for (const e of events) (e.duplicate ? metrics.eventsDuplicate : metrics.eventsAccepted).inc({ name: nameLabels.label(e.name) });
  };
  const sync =
    hubex && deps.sync !== false
      ? createSync({ config, store, hubex, tokens, fanOut, metrics, log: logger.child({ part: 'sync' }), onAccepted: countEvents })
      : undefined;
  app.decorate('sync', sync);
  if (sync) syncing.sync = sync;
  await app.register(webhookRoutes, {
    tokens,
    normalize: createNormalizer({ catalogue, maxBatch: config.maxBatch }),
    fanOut,
    bodyLimit: config.bodyLimit,
    onEvents: countEvents,
  });
  await app.ready();
  const runner: RunnerOptions = {
    registry,
    rebuild: eventRebuilder(createNormalizer({ catalogue, maxBatch: Number.POSITIVE_INFINITY, strict: false })),
    hubexFor: deps.hubexFor ?? (() => handlersHubex),
    log: logger.child({ part: 'dispatcher' }),
    timeoutMs: config.handlerTimeoutMs,
    maxAttempts: config.maxAttempts,
    retry: { baseMs: config.retryBaseMs, maxMs: config.retryMaxMs },
    // On a shared store another instance (one that has the handler, during a rolling deploy) may run it.
    missingHandler: store.shared ? 'retry' : 'dead',
    observe: ({ handler, outcome, ms }) => {
      metrics.deliveries.inc({ handler, outcome });
      metrics.deliveryDuration.observe({ handler, outcome }, ms / 1000);
    },
    blocked: blockingWatch(metrics, logger.child({ part: 'dispatcher' })),
  };
  const limits = new Map(registry.all().flatMap((h) => (h.concurrency === undefined ? [] : [[h.name, h.concurrency] as const])));
  dispatcher?.start((delivery, controller) => runDelivery(runner, delivery, controller), { concurrency: limits });
  // Catching up with HubEx: polling for changes no webhook brought, and watching the webhooks.
  sync?.start();
  return app;
}

/** The shared HubEx client, when a HubEx token is configured. */
function hubexClient(config: Config, logger: Logger, metrics: Metrics, rateGate: RateGate | undefined): HubexClient | undefined {
  if (!config.hubex.serviceToken && !config.hubex.accessToken) return undefined;
  return createHubexClient({
    ...config.hubex,
    rateGate,
    log: logger.child({ part: 'hubex' }),
    onCall: ({ service, method, status, ms }) => {
      const label = serviceLabel(service);
      metrics.hubexCalls.inc({ service: label, method, status });
      metrics.hubexCallDuration.observe({ service: label }, ms / 1000);
    },
    onRenewal: (how, ok) => metrics.tokenRenewals.inc({ how, outcome: ok ? 'ok' : 'failed' }),
  });
}

function openRateGate(config: Config, log: Logger): RateGate {
  const limit = config.hubexRateLimit!;
  if (config.queue === 'redis')
    return new RedisRateGate({ url: config.redisUrl!, prefix: DEFAULT_PREFIX, name: DEFAULT_TENANT, limit, log });
  return new LocalRateGate(limit);
}

/** A handler call that holds the event loop this long is logged (at most once a minute per handler). */
const BLOCKING_WARN_MS = 100;

/** Counts the time handlers hold the event loop, and says so when one holds it long. */
function blockingWatch(metrics: Metrics, log: Logger): (handler: string, ms: number) => void {
  const warned = new Map<string, number>(); // by handler: the loaded handlers, a bounded set
  return (handler, ms) => {
    metrics.handlerBlocking.inc({ handler }, ms / 1000);
    if (ms < BLOCKING_WARN_MS) return;
    const now = performance.now();
    if (now - (warned.get(handler) ?? Number.NEGATIVE_INFINITY) < 60_000) return;
    warned.set(handler, now);
    log.warn(
      { handler, blockedMs: Math.round(ms) },
      'a handler computed without yielding and held up webhooks meanwhile; move CPU-heavy work to a worker thread (docs/handlers.md)',
    );
  };
}
