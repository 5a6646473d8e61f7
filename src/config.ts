// Configuration: the environment (and a .env file) parsed once, validated, frozen, and passed in.
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseEnv } from 'node:util';
import { isIP } from 'node:net';
import { z } from 'zod';

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/**
 * A URL as it may be shown: a password or user in it (`redis://:pw@host`, `https://user:pw@host`)
 * replaced by ***. Works on text that is not a valid URL too: that is when it is shown, in an error.
 */
export function maskUrl(text: string): string {
  // Up to the last '@': a password may hold '/', '?', '#' or '@' itself, which is exactly what
  // makes the URL invalid and gets it echoed.
  const at = text.lastIndexOf('@');
  if (at < 0) return text;
  const scheme = /^[a-z][a-z0-9+.-]*:\/*/i.exec(text)?.[0] ?? '';
  return `${scheme}***${text.slice(at)}`;
}

/** A URL with a host: `redis:/:pw@host` parses (an opaque path), but names no server, and would print the password. */
const hasHost = (u: string): boolean => {
  try {
    return new URL(u).hostname !== '';
  } catch {
    return false;
  }
};

/** Variables whose values must never be echoed, not even in an error message. */
const SECRET = new Set(['WEBHOOK_TOKENS', 'HUBEX_SERVICE_TOKEN', 'HUBEX_ACCESS_TOKEN', 'ADMIN_TOKEN']);

const TOKEN_RE = /^[A-Za-z0-9._~-]{16,256}$/;

const int = (min: number, max: number) =>
  z
    .string()
    .trim()
    .regex(/^\d+$/, `must be a whole number from ${min} to ${max}`)
    .transform(Number)
    .refine((n) => n >= min && n <= max, `must be a whole number from ${min} to ${max}`);

/** More hops than any real chain of proxies. */
const MAX_HOPS = 32;

/** proxy-addr's names for address ranges, which Fastify's trustProxy takes too. */
const PROXY_RANGES = new Set(['loopback', 'linklocal', 'uniquelocal']);

// A number is a hop count (1: the one proxy in front), never a boolean: `true` trusts every hop,
// and lets any client choose its address with X-Forwarded-For.
const trustProxy = z
  .string()
  .trim()
  .transform((s, ctx): boolean | number | string => {
    if (/^(true|yes)$/i.test(s)) return true;
    if (/^(false|no|0|)$/i.test(s)) return false;
    if (/^\d+$/.test(s)) {
      // number of proxy hops to trust
      if (s.length > 2 || Number(s) > MAX_HOPS) ctx.addIssue({ code: 'custom', message: `a hop count is at most ${MAX_HOPS}` });
      return Number(s);
    }
    const list = s.split(',').map((x) => x.trim()).filter(Boolean);
    for (const item of list) {
      if (/\/0+$/.test(item)) {
        ctx.addIssue({ code: 'custom', message: `"${item.slice(0, 100)}" trusts every address, which lets any client choose its own; name the proxy's address` });
      } else if (!isAddressOrRange(item) && !PROXY_RANGES.has(item)) {
        ctx.addIssue({ code: 'custom', message: `"${item.slice(0, 100)}" is not a hop count, an IP address, a CIDR range, loopback, linklocal or uniquelocal` });
      }
    }
    return list.join(','); // addresses or CIDR ranges of the trusted proxies
  });

// Each default is declared beside its variable; docs/configuration.md lists the same table.
const schema = z.object({
  /** Port to listen on. */
  PORT: int(0, 65535).default(3000),
  /** Address to listen on. */
  HOST: z.string().trim().min(1, 'must not be empty').default('0.0.0.0'),
  /** The address HubEx reaches this router at, for printing the webhook URL. */
  PUBLIC_URL: z
    .url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' })
    .transform((u) => u.replace(/\/+$/, ''))
    .optional(),
  /** Comma-separated webhook tokens; unset means one is generated and kept in DATA_DIR. */
  WEBHOOK_TOKENS: z
    .string()
    .transform((s) => s.split(',').map((t) => t.trim()).filter(Boolean))
    .refine((list) => list.length > 0, 'must hold at least one token')
    .refine(
      (list) => list.every((t) => TOKEN_RE.test(t)),
      'each token must be 16 to 256 characters of A-Z a-z 0-9 . _ ~ -',
    )
    .optional(),
  /** Folder for the SQLite file and the generated token. */
  DATA_DIR: z.string().trim().min(1, 'must not be empty').default('./data'),
  /** Queue back end: sqlite (one instance) or redis (several). */
  QUEUE: z.enum(['sqlite', 'redis'], { error: 'must be sqlite or redis' }).default('sqlite'),
  /** Redis address, for QUEUE=redis. */
  REDIS_URL: z
    .url({ protocol: /^rediss?$/, error: 'must be a redis:// or rediss:// URL' })
    .refine(hasHost, 'must name a host: redis://[:password@]host:port[/db]')
    .optional(),
  /** Largest request body, in bytes. */
  BODY_LIMIT: int(1024, 100 * 1024 * 1024).default(1_048_576),
  /** Largest number of events in one request (an array body). */
  MAX_BATCH: int(1, 100_000).default(1000),
  /** How long an identical body (no unique id of its own) counts as a duplicate, in ms. */
  DEDUP_WINDOW_MS: int(0, 365 * 24 * 3600 * 1000).default(3_600_000),
  /** Behind a reverse proxy: true, a hop count, or trusted addresses. */
  TRUST_PROXY: trustProxy.default(false),
  /** A folder of the deployment's own handler modules (.js/.mjs), besides the shipped handlers/. */
  HANDLERS_DIR: z.string().trim().min(1, 'must not be empty').optional(),
  /** Handler runs at once. */
  HANDLER_CONCURRENCY: int(1, 1000).default(8),
  /** A run that takes longer is aborted through ctx.signal and counts as a failed attempt, in ms. */
  HANDLER_TIMEOUT_MS: int(10, 24 * 3600 * 1000).default(30_000),
  /** How long a claimed delivery stays leased without a heartbeat; after a crash it runs again once it ends, in ms. */
  HANDLER_LEASE_MS: int(500, 3600 * 1000).default(15_000),
  /** Runs of one delivery before it is dead (a replay starts again from 1). */
  MAX_ATTEMPTS: int(1, 1000).default(12),
  /** The first retry's delay ceiling, in ms (doubles per attempt, full jitter). */
  RETRY_BASE_MS: int(1, 24 * 3600 * 1000).default(1000),
  /** No retry waits longer, in ms. */
  RETRY_MAX_MS: int(1, 30 * 24 * 3600 * 1000).default(3_600_000),
  /** Finished events and deliveries are deleted after this many days; 0 keeps them for ever. */
  RETENTION_DAYS: int(0, 36_500).default(7),
  /** On SIGTERM, how long running handlers get to finish before they are aborted, in ms. */
  SHUTDOWN_TIMEOUT_MS: int(0, 3600 * 1000).default(20_000),
  /** HubEx's API address; the services follow (/WORK/Tasks/5). */
  HUBEX_BASE_URL: z
    .url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' })
    .refine(hasHost, 'must name a host')
    .transform((u) => u.replace(/\/+$/, ''))
    .default('https://api.hubex.ru/fsm'),
  /** The API user's service token (preferred): access tokens are bought and renewed from it. */
  HUBEX_SERVICE_TOKEN: z.string().trim().min(8, 'is too short to be a HubEx token').optional(),
  /** A ready access token, used as it is (no renewal). */
  HUBEX_ACCESS_TOKEN: z.string().trim().min(8, 'is too short to be a HubEx token').optional(),
  /** X-Application-ID: 5 (Api) for an integration. */
  /** HubEx's applications: 1 EngineerMobile, 2 CustomerMobile, 3 MainWeb, 4 AdminWeb, 5 Api, 6 PlateWeb. */
  HUBEX_APPLICATION_ID: z
    .string()
    .trim()
    .regex(/^[1-6]$/, 'must be one of HubEx\'s applications, 1 to 6 (5 = Api, what an integration sends)')
    .transform(Number)
    .default(5),
  /** The longest wait for one HubEx call, in ms. */
  HUBEX_TIMEOUT_MS: int(100, 600_000).default(15_000),
  /** HubEx calls in flight at most (the rest wait), so that a burst of events cannot flood the tenant. */
  HUBEX_MAX_IN_FLIGHT: int(1, 1000).default(8),
  /** The longest a request may take to arrive (headers and body); slower clients get 408. */
  REQUEST_TIMEOUT_MS: int(100, 600_000).default(30_000),
  /** Requests per client address and window; unset means no limit (HubEx's own retries are finite). */
  RATE_LIMIT_MAX: int(1, 10_000_000).optional(),
  /** The rate limit's window, in ms. */
  RATE_LIMIT_WINDOW_MS: int(100, 24 * 3600 * 1000).default(60_000),
  /** Comma-separated addresses or CIDR ranges allowed to call (IPv4 or IPv6); unset allows all. */
  ALLOWED_IPS: z
    .string()
    .transform((s, ctx) => {
      const list = s.split(',').map((x) => x.trim()).filter(Boolean);
      for (const item of list) {
        if (!isAddressOrRange(item)) ctx.addIssue({ code: 'custom', message: `"${item}" is not an IP address or CIDR range (like 203.0.113.0/24)` });
      }
      return list;
    })
    .optional(),
  /** Enables the admin API (Authorization: Bearer <ADMIN_TOKEN>); unset means no admin API. */
  ADMIN_TOKEN: z
    .string()
    .trim()
    .regex(TOKEN_RE, 'must be 16 to 256 characters of A-Z a-z 0-9 . _ ~ -')
    .optional(),
  /** pino level. */
  LOG_LEVEL: z.enum(LOG_LEVELS, { error: `must be one of ${LOG_LEVELS.join(', ')}` }).default('info'),
});

function isAddressOrRange(s: string): boolean {
  const [ip, bits, extra] = s.split('/');
  if (extra !== undefined || !ip) return false;
  const family = isIP(ip);
  if (family === 0) return false;
  if (bits === undefined) return true;
  return /^\d+$/.test(bits) && Number(bits) <= (family === 4 ? 32 : 128);
}

type Parsed = z.infer<typeof schema>;

/** Every variable the router reads (docs/configuration.md lists the same; a test keeps them in step). */
export const VARIABLES: readonly string[] = Object.keys(schema.shape);

export interface Config {
  readonly port: number;
  readonly host: string;
  readonly publicUrl: string | undefined;
  /** Tokens from WEBHOOK_TOKENS; undefined means "use the generated one in dataDir". */
  readonly webhookTokens: readonly string[] | undefined;
  readonly dataDir: string;
  readonly queue: 'sqlite' | 'redis';
  readonly redisUrl: string | undefined;
  readonly bodyLimit: number;
  readonly maxBatch: number;
  readonly dedupWindowMs: number;
  readonly trustProxy: boolean | number | string;
  readonly handlersDir: string | undefined;
  readonly handlerConcurrency: number;
  readonly handlerTimeoutMs: number;
  readonly handlerLeaseMs: number;
  readonly maxAttempts: number;
  readonly retryBaseMs: number;
  readonly retryMaxMs: number;
  readonly retentionDays: number;
  readonly shutdownTimeoutMs: number;
  readonly adminToken: string | undefined;
  readonly requestTimeoutMs: number;
  readonly rateLimit: { readonly max: number; readonly windowMs: number } | undefined;
  readonly allowedIps: readonly string[] | undefined;
  readonly hubex: {
    readonly baseUrl: string;
    readonly serviceToken: string | undefined;
    readonly accessToken: string | undefined;
    readonly applicationId: number;
    readonly timeoutMs: number;
    readonly maxInFlight: number;
  };
  readonly logLevel: (typeof LOG_LEVELS)[number];
}

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

export type Env = Readonly<Record<string, string | undefined>>;

/** Validates the environment; throws one ConfigError that names every bad variable. */
export function loadConfig(env: Env): Config {
  // An empty variable means "not set", as in most tools (and docker-compose's `FOO=`).
  const input: Record<string, string> = {};
  for (const key of Object.keys(schema.shape)) {
    const v = env[key];
    if (v !== undefined && v.trim() !== '') input[key] = v;
  }
  const result = schema.safeParse(input);
  if (!result.success) {
    const problems = result.error.issues.map((issue) => {
      const variable = String(issue.path[0] ?? '(environment)');
      const given = input[variable];
      const shown = given === undefined || SECRET.has(variable) ? '' : ` (got ${JSON.stringify(maskUrl(given).slice(0, 200))})`;
      return { variable, message: issue.message + shown };
    });
    throw new ConfigError(problems);
  }
  const c: Parsed = result.data;
  const problems: { variable: string; message: string }[] = [];
  if (c.QUEUE === 'redis' && !c.REDIS_URL) {
    problems.push({ variable: 'REDIS_URL', message: 'is required when QUEUE=redis' });
  }
  if (c.ADMIN_TOKEN !== undefined && c.WEBHOOK_TOKENS?.includes(c.ADMIN_TOKEN)) {
    problems.push({ variable: 'ADMIN_TOKEN', message: 'must differ from every token in WEBHOOK_TOKENS (a webhook token travels in URLs; it must not also open the admin API)' });
  }
  if (c.RETRY_MAX_MS < c.RETRY_BASE_MS) {
    problems.push({ variable: 'RETRY_MAX_MS', message: `must not be less than RETRY_BASE_MS (${c.RETRY_BASE_MS})` });
  }
  if (problems.length) throw new ConfigError(problems);
  return Object.freeze({
    port: c.PORT,
    host: c.HOST,
    publicUrl: c.PUBLIC_URL,
    webhookTokens: c.WEBHOOK_TOKENS ? Object.freeze(c.WEBHOOK_TOKENS) : undefined,
    dataDir: resolve(c.DATA_DIR),
    queue: c.QUEUE,
    redisUrl: c.REDIS_URL,
    bodyLimit: c.BODY_LIMIT,
    maxBatch: c.MAX_BATCH,
    dedupWindowMs: c.DEDUP_WINDOW_MS,
    trustProxy: c.TRUST_PROXY,
    handlersDir: c.HANDLERS_DIR === undefined ? undefined : resolve(c.HANDLERS_DIR),
    handlerConcurrency: c.HANDLER_CONCURRENCY,
    handlerTimeoutMs: c.HANDLER_TIMEOUT_MS,
    handlerLeaseMs: c.HANDLER_LEASE_MS,
    maxAttempts: c.MAX_ATTEMPTS,
    retryBaseMs: c.RETRY_BASE_MS,
    retryMaxMs: c.RETRY_MAX_MS,
    retentionDays: c.RETENTION_DAYS,
    shutdownTimeoutMs: c.SHUTDOWN_TIMEOUT_MS,
    adminToken: c.ADMIN_TOKEN,
    requestTimeoutMs: c.REQUEST_TIMEOUT_MS,
    rateLimit: c.RATE_LIMIT_MAX === undefined ? undefined : Object.freeze({ max: c.RATE_LIMIT_MAX, windowMs: c.RATE_LIMIT_WINDOW_MS }),
    allowedIps: c.ALLOWED_IPS && c.ALLOWED_IPS.length > 0 ? Object.freeze(c.ALLOWED_IPS) : undefined,
    hubex: Object.freeze({
      baseUrl: c.HUBEX_BASE_URL,
      serviceToken: c.HUBEX_SERVICE_TOKEN,
      accessToken: c.HUBEX_ACCESS_TOKEN,
      applicationId: c.HUBEX_APPLICATION_ID,
      timeoutMs: c.HUBEX_TIMEOUT_MS,
      maxInFlight: c.HUBEX_MAX_IN_FLIGHT,
    }),
    logLevel: c.LOG_LEVEL,
  });
}

/** Whether only this machine can connect to the address (127.0.0.0/8, ::1, localhost). */
const isLoopback = (host: string): boolean => host === 'localhost' || host === '::1' || /^(::ffff:)?127\.\d+\.\d+\.\d+$/i.test(host);

/**
 * Settings that work but are probably a mistake, one sentence each: logged at start and shown by
 * `doctor`.
 */
export function configWarnings(c: Pick<Config, 'trustProxy' | 'host'>): string[] {
  const out: string[] = [];
  if (c.trustProxy === true && !isLoopback(c.host)) {
    out.push(
      `TRUST_PROXY=true trusts every X-Forwarded-For hop while the router listens on ${c.host}: any client can choose its own address with that header, through the proxy or not, and pass ALLOWED_IPS and RATE_LIMIT_MAX. Set TRUST_PROXY to the proxy's address (127.0.0.1 when it runs on this host), and HOST=127.0.0.1 when the proxy is on this host.`,
    );
  } else if (typeof c.trustProxy === 'string') {
    const broad = c.trustProxy.split(',').filter((r) => {
      const [ip, bits] = r.split('/');
      return bits !== undefined && Number(bits) < (isIP(ip ?? '') === 6 ? 32 : 8);
    });
    if (broad.length > 0) {
      out.push(`TRUST_PROXY trusts very wide ranges (${broad.join(', ')}): a client with an address in them can choose its own with X-Forwarded-For. Name the proxy's own addresses.`);
    }
  } else if (typeof c.trustProxy === 'number' && c.trustProxy > 0 && !isLoopback(c.host)) {
    out.push(
      `TRUST_PROXY=${c.trustProxy} trusts ${c.trustProxy} hop(s) from whoever connects, while the router listens on ${c.host}: a client that reaches it directly, not through the proxy, can choose its own address with X-Forwarded-For. Set TRUST_PROXY to the proxy's address instead (127.0.0.1 when it runs on this host), or HOST=127.0.0.1.`,
    );
  }
  return out;
}

/**
 * The process environment over a `.env` file in `cwd`, when there is one.
 * Variables already set in the environment win, as with dotenv.
 */
export function readEnv(processEnv: Env = process.env, cwd = process.cwd()): Env {
  const file = resolve(cwd, '.env');
  if (!existsSync(file)) return processEnv;
  const fromFile = parseEnv(readFileSync(file, 'utf8')) as Record<string, string>;
  return { ...fromFile, ...processEnv };
}
