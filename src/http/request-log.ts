// One log line per request (request id, method, URL with its secrets redacted, status, duration,
// client address, ingest counts, error code), written by hand on the hot path, and the count of
// webhook answers by status.
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { type RequestLine, redactUrl, requestLineWriter } from '../observability/log.js';
import type { Metrics } from '../observability/metrics.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** Filled by the webhook route, for the request's log line. */
    ingest?: { accepted: number; duplicates: number };
    /** The error code answered, for the request's log line. */
    errorCode?: string;
  }
}

export function installRequestLog(app: FastifyInstance, logger: Logger, metrics: Metrics): void {
  // The hooks that run on every request take callbacks, not promises: cheaper on the hot path.
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
}
