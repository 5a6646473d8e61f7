// Fastify's options for the router: the request id, the slow-client bounds, the trusted proxies,
// and answers in the router's own shape where Fastify would echo the URL (and its token).
import { randomUUID } from 'node:crypto';
import http, { type IncomingMessage } from 'node:http';
import { type FastifyBaseLogger, type FastifyHttpOptions, type FastifyReply, LogController } from 'fastify';
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import { errorBody } from '../errors.js';

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,64}$/;

export function appOptions(config: Config, logger: Logger): FastifyHttpOptions<http.Server> & { loggerInstance: FastifyBaseLogger } {
  return {
    loggerInstance: logger as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }), // one line per request (./request-log.ts)
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
    return503OnClosing: false, // answered in the router's error shape (./shutdown.ts)
    // Room for the longest token WEBHOOK_TOKENS allows (256) in the path.
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 512 },
    // Fastify's own answers for these echo the URL, token included: answer in our shape instead.
    frameworkErrors: (error, request, anyReply) => {
      const reply = anyReply as unknown as FastifyReply;
      const tooLong = error.code === 'FST_ERR_MAX_PARAM_LENGTH';
      const code = tooLong ? 'URI_TOO_LONG' : 'BAD_REQUEST';
      request.errorCode = code;
      void reply
        .code(tooLong ? 414 : 400)
        .header('x-request-id', request.id)
        .send(
          errorBody(
            code,
            tooLong
              ? 'The URL is longer than any webhook URL can be; check the URL registered in HubEx.'
              : 'The URL is not valid (a broken percent-encoding); check the URL registered in HubEx.',
            request.id,
          ),
        );
    },
  };
}

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
