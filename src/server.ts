// The Fastify app factory: builds a ready app from a config and its parts; never listens.
// src/main.ts listens and handles signals; tests call buildApp() and app.inject().
import { randomUUID } from 'node:crypto';
import http, { type IncomingMessage } from 'node:http';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, LogController } from 'fastify';
import type { Logger } from 'pino';
import adminRoutes from '../routes/admin.js';
import { installAccessControl } from './access.js';
import healthRoutes from '../routes/health.js';
import metricsRoutes from '../routes/metrics.js';
import webhookRoutes from '../routes/webhooks.js';
import { type Config, ConfigError } from './config.js';
import { installErrorHandling } from './error-handler.js';
import { HttpError } from './errors.js';
import { EventCatalogue } from './events/catalogue.js';
import { createNormalizer } from './events/normalize.js';
import { createLogger, type RequestLine, redactUrl, requestLineWriter } from './log.js';
import { LabelCap, Metrics, serviceLabel } from './metrics.js';
import { createHubexClient, type HubexClient } from './hubex/client.js';
import type { Handler } from './delivery/define-handler.js';
import { HandlerRegistry } from './delivery/registry.js';
import { startRetention } from './delivery/retention.js';
import { loadCatalogue } from './events/load-catalogue.js';
import { eventRebuilder } from './events/rebuild.js';
import { type DeliveryWorker, Dispatcher } from './delivery/dispatcher.js';
import type { DeliveryStore } from './queue/deliveries.js';
import { openStore, type Store } from './queue/open-store.js';
import { RedisDispatcher } from './queue/redis/redis-dispatcher.js';
import { RedisStore } from './queue/redis/redis-store.js';
import { adminTokenProblem, resolveWebhookTokens } from './webhook-tokens.js';

export type { Store };

export interface AppDeps {
  readonly logger?: Logger;
  /** Defaults to the store QUEUE names (SQLite in DATA_DIR, or Redis), fanning out to `handlers`, closed with the app. */
  readonly inbox?: Store;
  /** The handlers events fan out to (main.ts loads them from handlers/ and HANDLERS_DIR). Default none. */
  readonly handlers?: readonly Handler[];
  /** The HubEx client a handler run gets as ctx.hubex (one shared client; per tenant later). */
  readonly hubexFor?: (event: import('./events/event.js').HubexEvent) => unknown;
  /** The shared HubEx client; by default made from HUBEX_* when a token is configured, else none. */
  readonly hubex?: HubexClient;
  /** Load the event catalogue from HubEx at start when a client is configured. Default true. */
  readonly loadCatalogue?: boolean;
  /** False: store and fan out, but run nothing (the command line opens the store this way). Default true. */
  readonly dispatch?: boolean;
  readonly catalogue?: EventCatalogue;
  /** Defaults to WEBHOOK_TOKENS, or the generated token in DATA_DIR. */
  readonly tokens?: readonly string[];
}

declare module 'fastify' {
  interface FastifyInstance {
    readonly inbox: Store;
    readonly catalogue: EventCatalogue;
    readonly handlers: HandlerRegistry;
    readonly metrics: Metrics;
    /** Undefined when no HubEx token is configured. */
    readonly hubex: HubexClient | undefined;
    /** Undefined when the app was built with dispatch: false. */
    readonly dispatcher: DeliveryWorker | undefined;
  }
  interface FastifyRequest {
    /** Filled by the webhook route, for the request's log line. */
    ingest?: { accepted: number; duplicates: number };
    /** The error code answered, for the request's log line. */
    errorCode?: string;
  }
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,64}$/;

export async function buildApp(config: Config, deps: AppDeps = {}): Promise<FastifyInstance> {
  const tokens = deps.tokens ?? resolveWebhookTokens(config).tokens;
  const adminProblem = adminTokenProblem(config.adminToken, tokens);
  if (adminProblem) throw new ConfigError([{ variable: 'ADMIN_TOKEN', message: adminProblem }]);
  const logger = deps.logger ?? createLogger(config.logLevel);
  const app = Fastify({
    loggerInstance: logger as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }), // one line per request, written below
    bodyLimit: config.bodyLimit,
    trustProxy: trustProxyOption(config.trustProxy),
    requestIdHeader: false,
    // A proxy's X-Request-Id is kept when it is sane, so that one id follows the call through.
    genReqId: (req: IncomingMessage) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
    },
    // A slow client (slowloris: headers or body a byte at a time) cannot hold a request open
    // longer than REQUEST_TIMEOUT_MS: Node answers 408 and closes. Node checks open requests
    // every connectionsCheckingInterval (30 s by default), too seldom for that: check often.
    serverFactory: (handler) => {
      const server = http.createServer(
        {
          requestTimeout: config.requestTimeoutMs,
          headersTimeout: config.requestTimeoutMs,
          connectionsCheckingInterval: Math.min(1000, Math.max(50, Math.floor(config.requestTimeoutMs / 4))),
        },
        handler,
      );
      server.keepAliveTimeout = 72_000; // longer than nginx's upstream keepalive_timeout (60 s)
      return server;
    },
    return503OnClosing: false, // answered below, in the router's error shape
    // Room for the longest token WEBHOOK_TOKENS allows (256) in the path.
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 512 },
    // Fastify's own answers for these echo the URL, token included: answer in our shape instead.
    frameworkErrors: (error, request, anyReply) => {
      const reply = anyReply as unknown as import('fastify').FastifyReply;
      const tooLong = error.code === 'FST_ERR_MAX_PARAM_LENGTH';
      request.errorCode = tooLong ? 'URI_TOO_LONG' : 'BAD_REQUEST';
      void reply
        .code(tooLong ? 414 : 400)
        .header('x-request-id', request.id)
        .send({
          error: request.errorCode,
          message: tooLong
            ? 'The URL is longer than any webhook URL can be; check the URL registered in HubEx.'
            : 'The URL is not valid (a broken percent-encoding); check the URL registered in HubEx.',
          requestId: request.id,
        });
    },
  });

  const catalogue = deps.catalogue ?? new EventCatalogue();
  const registry = new HandlerRegistry(deps.handlers ?? [], catalogue);
  const ownsInbox = deps.inbox === undefined;
  const inbox = deps.inbox ?? openStore(config, { route: (event) => registry.match(event), log: logger.child({ part: 'store' }) });
  // Opens the store before the first call, and logs why when it cannot (the app starts anyway: 503s).
  await inbox.health();
  const normalize = createNormalizer({ catalogue, maxBatch: config.maxBatch });
  const metrics = new Metrics(() => inbox.backlog());
  // Event names are the sender's to choose (`event.<id>` for any id): the catalogue's are kept,
  // and at most 50 others, then `other`.
  const nameLabels = new LabelCap(50, (name) => catalogue.get(catalogue.idOf(name) ?? Number.NaN)?.name === name);
  const ownsHubex = deps.hubex === undefined;
  const hubex =
    deps.hubex ??
    (config.hubex.serviceToken || config.hubex.accessToken
      ? createHubexClient({
          ...config.hubex,
          log: logger.child({ part: 'hubex' }),
          onCall: ({ service, method, status, ms }) => {
            const label = serviceLabel(service);
            metrics.hubexCalls.inc({ service: label, method, status });
            metrics.hubexCallDuration.observe({ service: label }, ms / 1000);
          },
          onRenewal: (how, ok) => metrics.tokenRenewals.inc({ how, outcome: ok ? 'ok' : 'failed' }),
        })
      : undefined);
  // Before the first webhook: routing by name ('task.created') needs the installation's names.
  if (hubex && deps.loadCatalogue !== false) await loadCatalogue(catalogue, hubex, logger.child({ part: 'catalogue' }));
  const run = {
    registry,
    rebuild: eventRebuilder(createNormalizer({ catalogue, maxBatch: Number.POSITIVE_INFINITY, strict: false })),
    hubexFor: deps.hubexFor ?? (() => hubex),
    log: logger.child({ part: 'dispatcher' }),
    timeoutMs: config.handlerTimeoutMs,
    maxAttempts: config.maxAttempts,
    retry: { baseMs: config.retryBaseMs, maxMs: config.retryMaxMs },
    observe: ({ handler, outcome, ms }: { handler: string; outcome: string; ms: number }) => {
      metrics.deliveries.inc({ handler, outcome });
      metrics.deliveryDuration.observe({ handler, outcome }, ms / 1000);
    },
    blocked: blockingWatch(metrics, logger.child({ part: 'dispatcher' })),
  };
  let dispatcher: DeliveryWorker | undefined;
  if (deps.dispatch === false) dispatcher = undefined;
  else if (inbox instanceof RedisStore) {
    dispatcher = new RedisDispatcher({ ...run, missingHandler: 'retry', store: inbox, url: inbox.url, concurrency: config.handlerConcurrency, leaseMs: config.handlerLeaseMs });
  } else if (isClaimStore(inbox)) {
    dispatcher = new Dispatcher({ ...run, store: inbox, concurrency: config.handlerConcurrency, leaseMs: config.handlerLeaseMs });
  } else throw new Error('The store given can neither be claimed from nor run by a BullMQ worker.');
  const retention =
    deps.dispatch === false ? undefined : startRetention(inbox, config.retentionDays, logger.child({ part: 'retention' }));
  // Shutdown, after the server has stopped taking calls: drain the handlers, then close the store.
  app.addHook('onClose', async () => {
    retention?.stop();
    await dispatcher?.stop(config.shutdownTimeoutMs);
    if (ownsInbox) await inbox.close();
    if (ownsHubex) hubex?.close();
  });
  app.decorate('inbox', inbox);
  app.decorate('catalogue', catalogue);
  app.decorate('handlers', registry);
  app.decorate('dispatcher', dispatcher);
  app.decorate('metrics', metrics);
  app.decorate('hubex', hubex);

  // From the first moment of close() on, new requests are refused: nothing new is acknowledged.
  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
  });
  // The hooks that run on every request take callbacks, not promises: cheaper on the hot path.
  app.addHook('onRequest', (request, reply, done) => {
    if (!closing) return done();
    reply.header('connection', 'close');
    done(
      new HttpError('SHUTTING_DOWN', 'The router is stopping, so nothing was acknowledged; HubEx will call again.', {
        headers: { 'retry-after': '5' },
      }),
    );
  });

  app.addHook('onSend', (request, reply, payload, done) => {
    reply.header('x-request-id', request.id);
    done(null, payload);
  });
  const writeRequestLine = requestLineWriter(logger);
  app.addHook('onResponse', (request, reply, done) => {
    const status = reply.statusCode;
    if (request.routeOptions.url?.startsWith('/hooks/')) metrics.webhookRequests.inc({ status });
    const level = status >= 500 ? 'error' : status >= 400 ? 'warn' : 'info';
    const line: RequestLine = {
      reqId: request.id,
      method: request.method,
      url: redactUrl(request.url, request.routeOptions.url),
      status,
      durationMs: Math.round(reply.elapsedTime * 100) / 100,
      ip: request.ip,
      accepted: request.ingest?.accepted,
      duplicates: request.ingest?.duplicates,
      error: request.errorCode,
    };
    if (writeRequestLine) writeRequestLine(level, line);
    else request.log[level]({ ...line, reqId: undefined }, 'request'); // the child logger has reqId
    done();
  });

  installErrorHandling(app, config);
  await installAccessControl(app, config);
  await app.register(healthRoutes);
  await app.register(metricsRoutes);
  if (config.adminToken) await app.register(adminRoutes, { adminToken: config.adminToken });
  await app.register(webhookRoutes, {
    tokens,
    normalize,
    bodyLimit: config.bodyLimit,
    onEvents: (events) => {
      for (const e of events) (e.duplicate ? metrics.eventsDuplicate : metrics.eventsAccepted).inc({ name: nameLabels.label(e.name) });
    },
  });
  await app.ready();
  dispatcher?.start();
  return app;
}

const isClaimStore = (store: Store): store is Store & DeliveryStore => typeof (store as Partial<DeliveryStore>).claim === 'function';

/**
 * TRUST_PROXY as Fastify takes it. A hop count becomes a function: Fastify fails closed on a
 * number on purpose (trusting hops without checking who connects lets a client that reaches the
 * router directly claim any address), which would silently turn the documented `1` into "trust
 * nothing". The count is honoured, and configWarnings() warns when the router listens where
 * clients could reach it without the proxy.
 */
function trustProxyOption(value: Config['trustProxy']): boolean | string | ((address: string, hop: number) => boolean) {
  if (typeof value !== 'number') return value;
  const hops = value;
  return (_address, hop) => hop < hops;
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
