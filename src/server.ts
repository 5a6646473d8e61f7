// The Fastify app factory: builds a ready app from a config and its parts; never listens.
// src/main.ts listens and handles signals; tests call buildApp() and app.inject().
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, LogController } from 'fastify';
import type { Logger } from 'pino';
import healthRoutes from '../routes/health.js';
import webhookRoutes from '../routes/webhooks.js';
import type { Config } from './config.js';
import { installErrorHandling } from './error-handler.js';
import { HttpError } from './errors.js';
import { EventCatalogue } from './events/catalogue.js';
import { createNormalizer } from './events/normalize.js';
import { createLogger, redactUrl } from './log.js';
import type { Inbox } from './queue/inbox.js';
import { SqliteInbox } from './queue/sqlite/sqlite-inbox.js';
import { resolveWebhookTokens } from './webhook-tokens.js';

export interface AppDeps {
  readonly logger?: Logger;
  /** Defaults to a SqliteInbox in config.dataDir, closed with the app. */
  readonly inbox?: Inbox;
  readonly catalogue?: EventCatalogue;
  /** Defaults to WEBHOOK_TOKENS, or the generated token in DATA_DIR. */
  readonly tokens?: readonly string[];
}

declare module 'fastify' {
  interface FastifyInstance {
    readonly inbox: Inbox;
    readonly catalogue: EventCatalogue;
  }
  interface FastifyRequest {
    /** Filled by the webhook route, for the request's log line. */
    ingest?: { accepted: number; duplicates: number };
  }
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,64}$/;

export async function buildApp(config: Config, deps: AppDeps = {}): Promise<FastifyInstance> {
  const logger = deps.logger ?? createLogger(config.logLevel);
  const app = Fastify({
    loggerInstance: logger as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }), // one line per request, written below
    bodyLimit: config.bodyLimit,
    // Fastify takes a hop count too; its types only lack it.
    trustProxy: config.trustProxy as boolean | string,
    requestIdHeader: false,
    // A proxy's X-Request-Id is kept when it is sane, so that one id follows the call through.
    genReqId: (req: IncomingMessage) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
    },
    requestTimeout: 30_000, // a slow client cannot hold a request open for ever
    keepAliveTimeout: 72_000, // longer than nginx's upstream keepalive_timeout (60 s)
    return503OnClosing: false, // answered below, in the router's error shape
    routerOptions: { ignoreTrailingSlash: true },
  });

  const ownsInbox = deps.inbox === undefined;
  const inbox =
    deps.inbox ??
    new SqliteInbox({ dataDir: config.dataDir, dedupWindowMs: config.dedupWindowMs, log: logger.child({ part: 'inbox' }) });
  if (ownsInbox) app.addHook('onClose', async () => inbox.close());
  // Opens the store before the first call, and logs why when it cannot (the app starts anyway: 503s).
  await inbox.health();
  const catalogue = deps.catalogue ?? new EventCatalogue();
  app.decorate('inbox', inbox);
  app.decorate('catalogue', catalogue);

  // From the first moment of close() on, new requests are refused: nothing new is acknowledged.
  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
  });
  app.addHook('onRequest', async (request, reply) => {
    if (!closing) return;
    reply.header('connection', 'close');
    throw new HttpError('SHUTTING_DOWN', 'The router is stopping, so nothing was acknowledged; HubEx will call again.', {
      headers: { 'retry-after': '5' },
    });
  });

  app.addHook('onSend', async (request, reply) => {
    reply.header('x-request-id', request.id);
  });
  app.addHook('onResponse', async (request, reply) => {
    const status = reply.statusCode;
    const line = {
      method: request.method,
      url: redactUrl(request.url),
      status,
      durationMs: Math.round(reply.elapsedTime * 100) / 100,
      ip: request.ip,
      ...request.ingest,
    };
    if (status >= 500) request.log.error(line, 'request');
    else if (status >= 400) request.log.warn(line, 'request');
    else request.log.info(line, 'request');
  });

  installErrorHandling(app, config);
  await app.register(healthRoutes);
  await app.register(webhookRoutes, {
    tokens: deps.tokens ?? resolveWebhookTokens(config).tokens,
    normalize: createNormalizer({ catalogue, maxBatch: config.maxBatch }),
    bodyLimit: config.bodyLimit,
  });
  await app.ready();
  return app;
}
