// Logging: pino, with secrets removed at the logger (once), not at each call site.
import pino, { type DestinationStream, type Logger } from 'pino';

/** Paths pino removes wherever they appear in a log object. */
export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers["x-webhook-token"]',
  'req.headers.cookie',
  'headers.authorization',
  'headers["x-webhook-token"]',
  'token',
  '*.token',
  'tokens',
  'webhookTokens',
  '*.webhookTokens',
  'serviceToken',
  '*.serviceToken',
  'accessToken',
  '*.accessToken',
  'refreshToken',
  '*.refreshToken',
  'access_token',
  '*.access_token',
  'refresh_token',
  '*.refresh_token',
  'refreshJwt',
  '*.refreshJwt',
];

export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      redact: { paths: REDACT_PATHS, censor: '[REDACTED]' },
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination ?? pino.destination({ dest: 1, sync: true }),
  );
}

const HOOK_PATH = /^(\/hooks\/hubex\/)[^/?#]+/;
const SECRET_QUERY = /([?&](?:token|access_token|webhook_token)=)[^&#]*/gi;

/** The URL as it may be logged: the webhook token in the path or the query replaced. */
export function redactUrl(url: string): string {
  return url.replace(HOOK_PATH, '$1[REDACTED]').replace(SECRET_QUERY, '$1[REDACTED]');
}
