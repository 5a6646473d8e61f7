// One error handler for the app: 4xx messages pass through, 5xx are generic to the caller and
// logged in full. Every error body is {error, message, requestId}.
import type { FastifyError, FastifyInstance } from 'fastify';
import type { Config } from '../config.js';
import { redactUrl } from '../observability/log.js';
import { ERROR_CODES, type ErrorCode, errorBody, HttpError, isAnswerCode, isStoreUnavailable } from '../errors.js';

export function installErrorHandling(app: FastifyInstance, config: Pick<Config, 'bodyLimit'>): void {
  app.setErrorHandler((err: FastifyError | Error, request, reply) => {
    const e = toHttpError(err, config.bodyLimit, request.headers['content-type']);
    if (e.statusCode >= 500) {
      request.log.error({ err }, e.code === 'INTERNAL' ? 'unexpected error' : e.message);
    }
    if (e.headers) reply.headers(e.headers);
    request.errorCode = e.code; // for the request's log line
    return reply.code(e.statusCode).send(errorBody(e.code, e.message, request.id));
  });

  app.setNotFoundHandler((request, reply) => {
    request.errorCode = 'NOT_FOUND';
    // The URL as the log has it: a mistyped webhook URL holds the token somewhere.
    const message = `No route ${request.method} ${redactUrl(request.url.split('?')[0]!).slice(0, 200)}; HubEx posts to /hooks/hubex/<token>.`;
    return reply.code(404).send(errorBody('NOT_FOUND', message, request.id));
  });
}

function toHttpError(err: FastifyError | Error, bodyLimit: number, contentType: string | undefined): HttpError {
  if (err instanceof HttpError) return err;
  if (isStoreUnavailable(err)) {
    return new HttpError(
      'STORE_UNAVAILABLE',
      'The router cannot store events right now, so nothing was acknowledged; HubEx will call again. The router log says why.',
      { headers: { 'retry-after': '5' } },
    );
  }
  const code = (err as FastifyError).code;
  // The router's own errors that are a caller's doing (UnstorableEventError, OperationError,
  // NotFoundError) carry the code they are answered with; their message is for the caller.
  if (isAnswerCode(code) && ERROR_CODES[code].status < 500) return new HttpError(code, err.message);
  switch (code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new HttpError('BODY_TOO_LARGE', `The body is larger than ${bodyLimit} bytes (BODY_LIMIT).`);
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new HttpError(
        'UNSUPPORTED_MEDIA_TYPE',
        `The Content-Type is ${contentType ? `"${contentType.slice(0, 100)}"` : 'missing'}; HubEx events are sent as application/json.`,
      );
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new HttpError('EMPTY_BODY', 'The request has no body; HubEx sends the event as JSON in the body.');
  }
  const status = (err as FastifyError).statusCode;
  if (status !== undefined && status >= 400 && status < 500) {
    const known =
      status === 400 ? undefined : (Object.entries(ERROR_CODES).find(([, v]) => v.status === status)?.[0] as ErrorCode | undefined);
    return new HttpError(known ?? 'BAD_REQUEST', err.message);
  }
  return new HttpError('INTERNAL', 'The router failed to handle this request; nothing was acknowledged.', { cause: err });
}
