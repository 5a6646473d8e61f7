// Every error the router answers with: a stable code, its HTTP status, and what it means.
// docs/errors.md lists the same codes; test/errors-doc.test.ts keeps the two in step.

export const ERROR_CODES = {
  EMPTY_BODY: { status: 400, summary: 'the request has no body' },
  INVALID_JSON: { status: 400, summary: 'the body is not valid JSON' },
  FORBIDDEN_KEY: { status: 400, summary: 'the body holds a key that is a built-in name of JavaScript objects (__proto__, constructor, toString, ...)' },
  FIELD_TOO_LONG: { status: 400, summary: 'a top-level key or an id is longer than 256 characters (an entity type than 64)' },
  TOO_DEEP: { status: 400, summary: 'the JSON is nested deeper than the router accepts' },
  INVALID_SHAPE: { status: 400, summary: 'the body is not an object or an array of objects' },
  BATCH_TOO_LARGE: { status: 400, summary: 'an array body holds more events than MAX_BATCH' },
  NO_EVENT: { status: 400, summary: 'an object has neither an event id nor an entity id' },
  UNSTORABLE: { status: 400, summary: 'the store refused an event for its data (a value it cannot hold); the message names the field' },
  BAD_REQUEST: { status: 400, summary: 'any other malformed request' },
  UNAUTHORIZED: { status: 401, summary: 'the webhook token (or the admin token) is missing or unknown' },
  FORBIDDEN_ADDRESS: { status: 403, summary: 'the caller is outside ALLOWED_IPS' },
  NOT_FOUND: { status: 404, summary: 'no such route' },
  METHOD_NOT_ALLOWED: { status: 405, summary: 'the route exists, the method does not' },
  BODY_TOO_LARGE: { status: 413, summary: 'the body is larger than BODY_LIMIT' },
  URI_TOO_LONG: { status: 414, summary: 'a part of the URL (the token) is longer than any token can be' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, summary: 'the Content-Type is not JSON' },
  RATE_LIMITED: { status: 429, summary: 'the caller sent more than RATE_LIMIT_MAX requests in RATE_LIMIT_WINDOW_MS; Retry-After says when to come back' },
  STORE_UNAVAILABLE: { status: 503, summary: 'the store cannot take the write; nothing was acknowledged' },
  SHUTTING_DOWN: { status: 503, summary: 'the router is stopping; nothing was acknowledged' },
  INTERNAL: { status: 500, summary: 'a fault in the router; the log has the details' },
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

/** The body of every error answer: the code, a sentence for a person, and the request's id. */
export function errorBody(code: ErrorCode, message: string, requestId: string): { error: ErrorCode; message: string; requestId: string } {
  return { error: code, message, requestId };
}

/** An error whose message is meant for the caller: 4xx and 503 messages pass through as they are. */
export class HttpError extends Error {
  override readonly name = 'HttpError';
  readonly statusCode: number;
  readonly headers: Record<string, string> | undefined;
  constructor(
    readonly code: ErrorCode,
    message: string,
    options?: { cause?: unknown; headers?: Record<string, string> },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.statusCode = ERROR_CODES[code].status;
    this.headers = options?.headers;
  }
}

/** The store could not durably take a write. Nothing was acknowledged; the caller may retry. */
export class StoreUnavailableError extends Error {
  override readonly name = 'StoreUnavailableError';
  readonly code = 'STORE_UNAVAILABLE';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** The store refused an event because of its data, not because it is down: a 400 that names the field. */
export class UnstorableEventError extends Error {
  override readonly name = 'UnstorableEventError';
  readonly code = 'UNSTORABLE';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

export const isStoreUnavailable = (err: unknown): err is StoreUnavailableError =>
  err instanceof Error && err.name === 'StoreUnavailableError';

/**
 * Thrown by a handler to say that no retry can help: the delivery goes to the dead letters at
 * once. Recognised by name too, so that it survives a copy of the class (another package
 * version, a worker thread).
 */
export class PermanentError extends Error {
  override readonly name = 'PermanentError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

export const isPermanentError = (err: unknown): boolean =>
  err instanceof Error && (err instanceof PermanentError || err.name === 'PermanentError');

/** A handler run that outlived HANDLER_TIMEOUT_MS; it counts as a failed attempt and is retried. */
export class HandlerTimeoutError extends Error {
  override readonly name = 'HandlerTimeoutError';
  constructor(readonly timeoutMs: number) {
    super(`The handler did not finish within ${timeoutMs} ms (HANDLER_TIMEOUT_MS) and was aborted.`);
  }
}

/** The abort reason a run gets when the router stops before it finished: it is released, to run again after the restart. */
export class ShutdownAbortError extends Error {
  override readonly name = 'ShutdownAbortError';
  constructor() {
    super('The router is stopping; the run was aborted and will run again after the restart.');
  }
}
