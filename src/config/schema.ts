// Every variable the router reads, in one place each: its name, parser and default here, in
// `variables`, and where its value lands in the Config that `toConfig` builds from them. The
// Config type is derived from both, so a variable is never written a third time.
import { resolve } from 'node:path';
import { z } from 'zod';
import { parseRateLimit } from '../hubex/rate-gate.js';
import {
  addressList,
  bool,
  hasHost,
  httpUrl,
  hubexToken,
  int,
  nonEmpty,
  periodOrOff,
  secret,
  token,
  tokenList,
  trustProxy,
  withoutTrailingSlash,
} from './parsers.js';

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

// Each default is declared beside its variable; docs/configuration.md lists the same table.
export const variables = z.object({
  /** Port to listen on (0 picks a free one). */
  PORT: int(0, 65535).default(3000),
  /** Address to listen on; default every interface. */
  HOST: nonEmpty().default('0.0.0.0'),
  /** The address HubEx reaches this router at, for printing the webhook URL; unset means none is known. */
  PUBLIC_URL: httpUrl().transform(withoutTrailingSlash).optional(),
  /** Comma-separated webhook tokens; unset means one is generated and kept in DATA_DIR. */
  WEBHOOK_TOKENS: secret(tokenList().optional()),
  /** Folder for the SQLite file and the generated token; default ./data, resolved at load. */
  DATA_DIR: nonEmpty().default('./data'),
  /** Queue back end: sqlite (one instance) or redis (several). */
  QUEUE: z.enum(['sqlite', 'redis'], { error: 'must be sqlite or redis' }).default('sqlite'),
  /** Redis address; no default, required with QUEUE=redis. */
  REDIS_URL: z
    .url({ protocol: /^rediss?$/, error: 'must be a redis:// or rediss:// URL' })
    .refine(hasHost, 'must name a host: redis://[:password@]host:port[/db]')
    .optional(),
  /** Largest request body, in bytes; default 1 MiB. */
  BODY_LIMIT: int(1024, 100 * 1024 * 1024).default(1_048_576),
  /** Largest number of events in one request (an array body). */
  MAX_BATCH: int(1, 100_000).default(1000),
  /** How long an identical body (no unique id of its own) counts as a duplicate, in ms; default an hour. */
  DEDUP_WINDOW_MS: int(0, 365 * 24 * 3600 * 1000).default(3_600_000),
  /** Behind a reverse proxy: true, a hop count, or trusted addresses; default false, no proxy trusted. */
  TRUST_PROXY: trustProxy().default(false),
  /** A folder of the deployment's own handler modules (.js/.mjs); unset means only the shipped handlers/. */
  HANDLERS_DIR: nonEmpty().optional(),
  /** Handler runs at once. */
  HANDLER_CONCURRENCY: int(1, 1000).default(8),
  /** A run that takes longer is aborted through ctx.signal and counts as a failed attempt, in ms; default 30 s. */
  HANDLER_TIMEOUT_MS: int(10, 24 * 3600 * 1000).default(30_000),
  /** How long a claimed delivery stays leased without a heartbeat; after a crash it runs again once it ends, in ms; default 15 s. */
  HANDLER_LEASE_MS: int(500, 3600 * 1000).default(15_000),
  /** Runs of one delivery before it is dead (a replay starts again from 1). */
  MAX_ATTEMPTS: int(1, 1000).default(12),
  /** The first retry's delay ceiling, in ms (doubles per attempt, full jitter); default 1 s. */
  RETRY_BASE_MS: int(1, 24 * 3600 * 1000).default(1000),
  /** No retry waits longer, in ms; default an hour. */
  RETRY_MAX_MS: int(1, 30 * 24 * 3600 * 1000).default(3_600_000),
  /** Finished events and deliveries are deleted after this many days; 0 keeps them for ever. */
  RETENTION_DAYS: int(0, 36_500).default(7),
  /** On SIGTERM, how long running handlers get to finish before they are aborted, in ms; default 20 s. */
  SHUTDOWN_TIMEOUT_MS: int(0, 3600 * 1000).default(20_000),
  /** HubEx's API address; the services follow (/WORK/Tasks/5); the default is HubEx's cloud. */
  HUBEX_BASE_URL: httpUrl().refine(hasHost, 'must name a host').transform(withoutTrailingSlash).default('https://api.hubex.ru/fsm'),
  /** The API user's service token (preferred): access tokens are bought and renewed from it. With neither token set, handlers get no HubEx client. */
  HUBEX_SERVICE_TOKEN: secret(hubexToken().optional()),
  /** A ready access token, used as it is (no renewal) when HUBEX_SERVICE_TOKEN is unset. */
  HUBEX_ACCESS_TOKEN: secret(hubexToken().optional()),
  /**
   * X-Application-ID; default 5 (Api), what an integration sends. HubEx's applications: 1 EngineerMobile,
   * 2 CustomerMobile, 3 MainWeb, 4 AdminWeb, 5 Api, 6 PlateWeb.
   */
  HUBEX_APPLICATION_ID: z
    .string()
    .trim()
    .regex(/^[1-6]$/, "must be one of HubEx's applications, 1 to 6 (5 = Api, what an integration sends)")
    .transform(Number)
    .default(5),
  /** The longest wait for one HubEx call, in ms; default 15 s. */
  HUBEX_TIMEOUT_MS: int(100, 600_000).default(15_000),
  /** HubEx calls in flight at most (the rest wait), so that a burst of events cannot flood the tenant. */
  HUBEX_MAX_IN_FLIGHT: int(1, 1000).default(8),
  /** HubEx's rate limit for the client, as requests per second, minute or hour (`60/min`, `5/s`); across instances on Redis; unset means none. */
  HUBEX_RATE_LIMIT: z
    .string()
    .trim()
    .transform((text, ctx) => {
      const limit = parseRateLimit(text);
      if (limit && limit.windowMs / limit.limit >= 1) return limit;
      ctx.addIssue({ code: 'custom', message: 'must be requests per s, min or h, such as 60/min or 5/s (at most 1,000 per second)' });
      return z.NEVER;
    })
    .optional(),
  /**
   * How often to poll HubEx for task changes no webhook brought (task.modified events), in ms; 0
   * turns it off; default a minute when a HubEx token is set, else off.
   */
  RECONCILE_INTERVAL_MS: periodOrOff(100, 24 * 3600 * 1000).optional(),
  /** How often to read this router's webhooks in HubEx (active, callsRemaining), in ms; 0 turns it off; default a minute when a HubEx token is set, else off. */
  WEBHOOK_WATCH_INTERVAL_MS: periodOrOff(100, 24 * 3600 * 1000).optional(),
  /** Activate this router's webhook again when HubEx has stopped it; default false. */
  WEBHOOK_AUTO_ACTIVATE: bool().default(false),
  /** The longest a request may take to arrive (headers and body); slower clients get 408; in ms, default 30 s. */
  REQUEST_TIMEOUT_MS: int(100, 600_000).default(30_000),
  /** Requests per client address and window; unset means no limit (HubEx's own retries are finite). */
  RATE_LIMIT_MAX: int(1, 10_000_000).optional(),
  /** The rate limit's window, in ms; default a minute. */
  RATE_LIMIT_WINDOW_MS: int(100, 24 * 3600 * 1000).default(60_000),
  /** Comma-separated addresses or CIDR ranges allowed to call (IPv4 or IPv6); unset allows all. */
  ALLOWED_IPS: addressList().optional(),
  /** Enables the admin API (Authorization: Bearer <ADMIN_TOKEN>); unset means no admin API. */
  ADMIN_TOKEN: secret(token().optional()),
  /** pino level. */
  LOG_LEVEL: z.enum(LOG_LEVELS, { error: `must be one of ${LOG_LEVELS.join(', ')}` }).default('info'),
});

/** Where each variable lands: the frozen Config the app is given. */
function toConfig(v: z.output<typeof variables>) {
  return Object.freeze({
    port: v.PORT,
    host: v.HOST,
    publicUrl: v.PUBLIC_URL,
    /** Tokens from WEBHOOK_TOKENS; undefined means "use the generated one in dataDir". */
    webhookTokens: v.WEBHOOK_TOKENS ? Object.freeze(v.WEBHOOK_TOKENS) : undefined,
    dataDir: resolve(v.DATA_DIR),
    queue: v.QUEUE,
    redisUrl: v.REDIS_URL,
    bodyLimit: v.BODY_LIMIT,
    maxBatch: v.MAX_BATCH,
    dedupWindowMs: v.DEDUP_WINDOW_MS,
    trustProxy: v.TRUST_PROXY,
    handlersDir: v.HANDLERS_DIR === undefined ? undefined : resolve(v.HANDLERS_DIR),
    handlerConcurrency: v.HANDLER_CONCURRENCY,
    handlerTimeoutMs: v.HANDLER_TIMEOUT_MS,
    handlerLeaseMs: v.HANDLER_LEASE_MS,
    maxAttempts: v.MAX_ATTEMPTS,
    retryBaseMs: v.RETRY_BASE_MS,
    retryMaxMs: v.RETRY_MAX_MS,
    retentionDays: v.RETENTION_DAYS,
    shutdownTimeoutMs: v.SHUTDOWN_TIMEOUT_MS,
    adminToken: v.ADMIN_TOKEN,
    requestTimeoutMs: v.REQUEST_TIMEOUT_MS,
    /** Undefined when RATE_LIMIT_MAX is unset: no limit. */
    rateLimit: v.RATE_LIMIT_MAX === undefined ? undefined : Object.freeze({ max: v.RATE_LIMIT_MAX, windowMs: v.RATE_LIMIT_WINDOW_MS }),
    /** Undefined when every address may call. */
    allowedIps: v.ALLOWED_IPS && v.ALLOWED_IPS.length > 0 ? Object.freeze(v.ALLOWED_IPS) : undefined,
    hubex: Object.freeze({
      baseUrl: v.HUBEX_BASE_URL,
      serviceToken: v.HUBEX_SERVICE_TOKEN,
      accessToken: v.HUBEX_ACCESS_TOKEN,
      applicationId: v.HUBEX_APPLICATION_ID,
      timeoutMs: v.HUBEX_TIMEOUT_MS,
      maxInFlight: v.HUBEX_MAX_IN_FLIGHT,
    }),
    /** 0: no reconciliation (the default without a HubEx token). */
    reconcileIntervalMs: v.RECONCILE_INTERVAL_MS ?? (v.HUBEX_SERVICE_TOKEN || v.HUBEX_ACCESS_TOKEN ? 60_000 : 0),
    /** 0: no watchdog (the default without a HubEx token). */
    webhookWatchIntervalMs: v.WEBHOOK_WATCH_INTERVAL_MS ?? (v.HUBEX_SERVICE_TOKEN || v.HUBEX_ACCESS_TOKEN ? 60_000 : 0),
    webhookAutoActivate: v.WEBHOOK_AUTO_ACTIVATE,
    /** Undefined when HUBEX_RATE_LIMIT is unset: the client's calls are not spaced. */
    hubexRateLimit: v.HUBEX_RATE_LIMIT === undefined ? undefined : Object.freeze(v.HUBEX_RATE_LIMIT),
    logLevel: v.LOG_LEVEL,
  });
}

export const configSchema = variables.transform(toConfig);

/** The validated settings, frozen: what `loadConfig` returns and the app is given. */
export type Config = z.output<typeof configSchema>;

/** Every variable the router reads (docs/configuration.md lists the same; a test keeps them in step). */
export const VARIABLES: readonly string[] = Object.keys(variables.shape);
