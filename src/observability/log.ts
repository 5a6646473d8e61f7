// Logging: pino, with secrets removed at the logger (once), not at each call site.
import pino, { type DestinationStream, type Logger } from 'pino';
import { jsonString as str } from '../json-string.js';

// Log objects use the same few keys again and again: their forms are kept (up to a bound).
const keyForms = new Map<string, string>();

/**
 * Keys whose values never reach a log, wherever they appear in a logged object (compared without
 * case, dashes or underscores: `X-Webhook-Token`, `access_token` and `accessToken` alike).
 * A walk over the object with a Set costs far less than pino's path-based redact, which would run
 * on every request line.
 */
export const SECRET_KEYS: ReadonlySet<string> = new Set(
  [
    'authorization',
    'proxyAuthorization',
    'cookie',
    'setCookie',
    'xWebhookToken',
    'token',
    'tokens',
    'webhookTokens',
    'serviceToken',
    'accessToken',
    'refreshToken',
    'refreshJwt',
    'accessJwt',
    'jwt',
    'password',
    'adminToken',
    'secret',
    // Fastify logs a malformed request's bytes (at trace level): its request line and headers.
    'rawPacket',
  ].map(keyForm),
);

function keyForm(key: string): string {
  let form = keyForms.get(key);
  if (form === undefined) {
    form = key.replace(/[-_]/g, '').toLowerCase();
    // Bounded by count and by size: logged objects may hold a sender's keys (event.data).
    if (keyForms.size < 10_000 && key.length <= 64) keyForms.set(key, form);
  }
  return form;
}

const CENSOR = '[REDACTED]';
const MAX_REDACT_DEPTH = 6;

/** A copy of `value` with the secret keys censored; objects without secrets are returned as they are. */
export function redactSecrets<T>(value: T, depth = 0): T {
  if (value === null || typeof value !== 'object' || depth > MAX_REDACT_DEPTH) return value;
  if (Array.isArray(value)) {
    let copy: unknown[] | undefined;
    value.forEach((v, i) => {
      const r = redactSecrets(v, depth + 1);
      if (r !== v) (copy ??= [...value])[i] = r;
    });
    return (copy ?? value) as T;
  }
  let copy: Record<string, unknown> | undefined;
  const obj = value as Record<string, unknown>;
  for (const key of Object.keys(obj)) {
    const v = obj[key];
    const r = SECRET_KEYS.has(keyForm(key)) && v !== undefined && v !== null ? CENSOR : redactSecrets(v, depth + 1);
    if (r !== v) (copy ??= copyOf(obj))[key] = r;
  }
  return (copy ?? value) as T;
}

/** Errors keep their message and stack in the copy (they are not enumerable). */
function copyOf(obj: Record<string, unknown>): Record<string, unknown> {
  const copy: Record<string, unknown> = { ...obj };
  if (obj instanceof Error) {
    copy.type ??= obj.name;
    copy.message = obj.message;
    copy.stack = obj.stack;
  }
  return copy;
}

export interface LoggerOptions {
  /**
   * Write without blocking the event loop: lines that come while a write is under way go out
   * together in the next one (flushed at exit). For the server's own stdout.
   */
  readonly buffered?: boolean;
}

/** The loggers made here, whose line format requestLineWriter reproduces. */
const ours = new WeakSet<Logger>();

export function createLogger(level: string, destination?: DestinationStream, options: LoggerOptions = {}): Logger {
  const logger = pino(
    {
      level,
      base: { pid: process.pid },
      timestamp: isoTime,
      formatters: {
        level: (label) => ({ level: label }),
        bindings: (bindings) => redactSecrets(bindings),
        log: (obj) => redactSecrets(obj),
      },
    },
    destination ?? (options.buffered ? bufferedStdout() : pino.destination({ dest: 1, sync: true })),
  );
  ours.add(logger);
  return logger;
}

/** What the line of one HTTP request says. */
export interface RequestLine {
  readonly reqId: string;
  readonly method: string;
  readonly url: string;
  readonly status: number;
  readonly durationMs: number;
  readonly ip: string | undefined;
  readonly accepted?: number | undefined;
  readonly duplicates?: number | undefined;
  readonly error?: string | undefined;
}

export type RequestLineWriter = (level: 'info' | 'warn' | 'error', line: RequestLine) => void;

/**
 * Writes the line of one request as this logger would (the same JSON, `msg` "request"), built by
 * hand: a child logger per request, generic serialisation and the secret walk are a large share of
 * a request's cost, for fields that are fixed and hold no secret (the URL is redacted by the caller). Undefined for a logger not made by createLogger: log with it then.
 */
export function requestLineWriter(logger: Logger): RequestLineWriter | undefined {
  if (!ours.has(logger)) return undefined;
  const stream = (logger as unknown as Record<symbol, DestinationStream>)[pino.symbols.streamSym]!;
  const head = { info: '{"level":"info"', warn: '{"level":"warn"', error: '{"level":"error"' } as const;
  const pid = `,"pid":${process.pid},"reqId":`;
  return (level, l) => {
    if (!logger.isLevelEnabled(level)) return;
    let line = `${head[level]}${isoTime()}${pid}${str(l.reqId)},"method":${str(l.method)},"url":${str(l.url)},"status":${l.status},"durationMs":${l.durationMs}`;
    if (l.ip !== undefined) line += `,"ip":${str(l.ip)}`;
    if (l.accepted !== undefined) line += `,"accepted":${l.accepted},"duplicates":${l.duplicates ?? 0}`;
    if (l.error !== undefined) line += `,"error":${str(l.error)}`;
    stream.write(`${line},"msg":"request"}\n`);
  };
}

/** pino's isoTime, made once per millisecond: under load many lines share one. */
let lastMs = 0;
let lastTime = '';
function isoTime(): string {
  const ms = Date.now();
  if (ms !== lastMs) {
    lastMs = ms;
    lastTime = `,"time":"${new Date(ms).toISOString()}"`;
  }
  return lastTime;
}

const FLUSH_MS = 2;

/**
 * Stdout that never blocks the event loop: the lines of FLUSH_MS go out in one asynchronous write
 * (each write is a hop to libuv's thread pool and back, too dear once per line, or even once per
 * event-loop turn, under load). Lines still waiting when the process exits are written
 * synchronously then.
 */
function bufferedStdout(): DestinationStream {
  const dest = pino.destination({ dest: 1, sync: false });
  // An array joined once: a string grown line by line is flattened again at the write.
  let lines: string[] = [];
  const flush = () => {
    if (lines.length === 0) return;
    const out = lines.join('');
    lines = [];
    dest.write(out);
  };
  process.on('exit', () => {
    flush();
    try {
      dest.flushSync();
    } catch {
      // stdout is gone: nothing more can be said
    }
  });
  return {
    write(line: string) {
      if (lines.length === 0) setTimeout(flush, FLUSH_MS);
      lines.push(line);
      return true;
    },
  };
}

const HOOK_PREFIX = '/hooks/hubex/';
const SECRET_QUERY = /([?&](?:token|access_token|webhook_token)=)[^&#]*/gi;
/**
 * Parts of a URL this long may be a token, whatever their place: anywhere in a path that matched
 * no route (a mistyped webhook URL), anywhere in any query (`/hooks/hubex?<token>`).
 */
const LONG_PART = /([/=?&;])[^/?&#=;]{16,}/g;
/** The longest URL a log line holds; the rest is cut. */
export const MAX_LOGGED_URL = 1000;

/**
 * The URL as it may be logged. `route` is the pattern of the route that matched: its `:token`
 * parameter is replaced whatever way the URL spelt it (`/hooks/%68ubex/<token>` matches too). With
 * no route (a 404, a broken URL), every part of 16 characters or more is replaced, since a token
 * may sit anywhere in a mistyped URL (`//hooks/hubex/<token>`). In the query, every such part is,
 * and secret parameters (`token=`) whatever their length, route or not.
 */
export function redactUrl(url: string, route?: string): string {
  const cut = url.length > MAX_LOGGED_URL ? url.slice(0, MAX_LOGGED_URL) : url;
  const q = cut.search(/[?#]/);
  let path = q < 0 ? cut : cut.slice(0, q);
  let rest = q < 0 ? '' : cut.slice(q);
  if (route?.includes(':token')) path = route.replace(':token', '[REDACTED]');
  else {
    if (path.startsWith(HOOK_PREFIX)) {
      // The path segment after the prefix is the token: up to the next '/'.
      const end = path.indexOf('/', HOOK_PREFIX.length);
      const tokenEnd = end < 0 ? path.length : end;
      if (tokenEnd > HOOK_PREFIX.length) path = `${HOOK_PREFIX}[REDACTED]${path.slice(tokenEnd)}`;
    }
    if (route === undefined) path = path.replace(LONG_PART, '$1[REDACTED]');
  }
  if (rest.length > 0) rest = rest.replace(LONG_PART, '$1[REDACTED]').replace(SECRET_QUERY, '$1[REDACTED]');
  const out = path + rest;
  return cut === url ? out : `${out}...`;
}
