// Every error of the router, in one place: the codes it answers HTTP calls with (with their
// status), and every error class with its stable code. docs/errors.md lists the same;
// test/errors-doc.test.ts keeps the two in step. Flow-steering errors (PermanentError) are
// recognised by name too, so that they survive a copy of this module (another package version).
// The HubEx client's one error, HubexApiError, lives with the client (src/hubex/errors.ts), which
// stands alone.

/** The answers: a code, its HTTP status, and when it is given. */
export const ERROR_CODES = {
  EMPTY_BODY: { status: 400, summary: 'the request has no body' },
  INVALID_JSON: { status: 400, summary: 'the body is not valid JSON' },
  FORBIDDEN_KEY: {
    status: 400,
    summary: 'the body holds a key that is a built-in name of JavaScript objects (__proto__, constructor, toString, ...)',
  },
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
  RATE_LIMITED: {
    status: 429,
    summary: 'the caller sent more than RATE_LIMIT_MAX requests in RATE_LIMIT_WINDOW_MS; Retry-After says when to come back',
  },
  STORE_UNAVAILABLE: { status: 503, summary: 'the store cannot take the write; nothing was acknowledged' },
  SHUTTING_DOWN: { status: 503, summary: 'the router is stopping; nothing was acknowledged' },
  INTERNAL: { status: 500, summary: 'a fault in the router; the log has the details' },
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

/**
 * Every error class and its stable code: an answer code above when the error becomes an HTTP
 * answer, its own code otherwise (they never reach a caller over HTTP).
 */
export const ERROR_CLASSES = {
  HttpError: 'the code it is made with',
  StoreUnavailableError: 'STORE_UNAVAILABLE',
  UnstorableEventError: 'UNSTORABLE',
  OperationError: 'BAD_REQUEST',
  NotFoundError: 'NOT_FOUND',
  PermanentError: 'PERMANENT',
  HandlerTimeoutError: 'HANDLER_TIMEOUT',
  ShutdownAbortError: 'SHUTDOWN_ABORT',
  ConfigError: 'CONFIG_INVALID',
  HandlerLoadError: 'HANDLER_LOAD',
  UsageError: 'USAGE',
  NeedsConfigError: 'CONFIG_MISSING',
} as const;

/** The body of every error answer: the code, a sentence for a person, and the request's id. */
export function errorBody(code: ErrorCode, message: string, requestId: string): { error: ErrorCode; message: string; requestId: string } {
  return { error: code, message, requestId };
}

/** Whether a code is one the router answers HTTP calls with. */
export const isAnswerCode = (code: unknown): code is ErrorCode => typeof code === 'string' && Object.hasOwn(ERROR_CODES, code);

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
}

export const isStoreUnavailable = (err: unknown): err is StoreUnavailableError =>
  err instanceof Error && err.name === 'StoreUnavailableError';

/** The store refused an event because of its data, not because it is down: a 400 that names the field. */
export class UnstorableEventError extends Error {
  override readonly name = 'UnstorableEventError';
  readonly code = 'UNSTORABLE';
}

/** A request of the tools (the command line, the admin API) that cannot be carried out as asked; the message says why. */
export class OperationError extends Error {
  override readonly name: string = 'OperationError';
  readonly code: ErrorCode = 'BAD_REQUEST';
}

/** What a tool asked for does not exist. */
export class NotFoundError extends OperationError {
  override readonly name = 'NotFoundError';
  override readonly code = 'NOT_FOUND';
}

/**
 * Thrown by a handler to say that no retry can help: the delivery goes to the dead letters at
 * once. Recognised by name too, so that it survives a copy of the class (another package
 * version, a worker thread).
 */
export class PermanentError extends Error {
  override readonly name = 'PermanentError';
  readonly code = 'PERMANENT';
}

export const isPermanentError = (err: unknown): boolean =>
  err instanceof Error && (err instanceof PermanentError || err.name === 'PermanentError');

/** A handler run that outlived HANDLER_TIMEOUT_MS; it counts as a failed attempt and is retried. */
export class HandlerTimeoutError extends Error {
  override readonly name = 'HandlerTimeoutError';
  readonly code = 'HANDLER_TIMEOUT';
  /** `setting`: where the limit comes from (the router's variable, or the handler's timeoutMs). */
  constructor(
    readonly timeoutMs: number,
    setting = 'HANDLER_TIMEOUT_MS',
  ) {
    super(`The handler did not finish within ${timeoutMs} ms (${setting}) and was aborted.`);
  }
}

/** The abort reason a run gets when the router stops before it finished: it is released, to run again after the restart. */
export class ShutdownAbortError extends Error {
  override readonly name = 'ShutdownAbortError';
  readonly code = 'SHUTDOWN_ABORT';
  constructor() {
    super('The router is stopping; the run was aborted and will run again after the restart.');
  }
}

/** A configuration that cannot run: one error naming every bad variable and why (exit code 78). */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  readonly code = 'CONFIG_INVALID';
  constructor(readonly problems: readonly { variable: string; message: string }[]) {
    super(
      `Invalid configuration (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n` +
        problems.map((p) => `  ${p.variable}: ${p.message}`).join('\n'),
    );
  }
}

/** A handler module that cannot be loaded: the start stops (exit code 78) with a message naming the file. */
export class HandlerLoadError extends Error {
  override readonly name = 'HandlerLoadError';
  readonly code = 'HANDLER_LOAD';
  constructor(
    readonly file: string,
    problem: string,
  ) {
    super(`${file}: ${problem}`);
  }
}

/** A command or option of the command line that does not exist or is misused (exit code 2). */
export class UsageError extends Error {
  override readonly name = 'UsageError';
  readonly code = 'USAGE';
}

/** A command of the command line that needs a setting not given (exit code 78): the message says which. */
export class NeedsConfigError extends Error {
  override readonly name = 'NeedsConfigError';
  readonly code = 'CONFIG_MISSING';
}
