// The value parsers the variables in schema.ts are built from: each takes the variable's text
// and gives its typed value, or an issue whose message is shown after the variable's name.
import { isIP } from 'node:net';
import { z } from 'zod';

/** Variables whose values must never be echoed, not even in an error message: see `secret`. */
const SECRETS = new WeakSet<z.ZodType>();

/**
 * Marks a variable's parser as a secret: a message about it never shows its value. Wrap the whole
 * parser, `.optional()` included: the mark is on the object the schema's shape holds.
 */
export function secret<T extends z.ZodType>(schema: T): T {
  SECRETS.add(schema);
  return schema;
}

export const isSecret = (schema: z.ZodType | undefined): boolean => schema !== undefined && SECRETS.has(schema);

const TOKEN_RE = /^[A-Za-z0-9._~-]{16,256}$/;
const TOKEN_RULE = '16 to 256 characters of A-Z a-z 0-9 . _ ~ -';

export const int = (min: number, max: number) =>
  z
    .string()
    .trim()
    .regex(/^\d+$/, `must be a whole number from ${min} to ${max}`)
    .transform(Number)
    .refine((n) => n >= min && n <= max, `must be a whole number from ${min} to ${max}`);

/** true or false (also 1/0, yes/no, on/off), in any case. */
export const bool = () =>
  z
    .string()
    .trim()
    .toLowerCase()
    .transform((s, ctx) => {
      if (['true', '1', 'yes', 'on'].includes(s)) return true;
      if (['false', '0', 'no', 'off', ''].includes(s)) return false;
      ctx.addIssue({ code: 'custom', message: 'must be true or false' });
      return z.NEVER;
    });

/** A period in ms: 0 (off), or from `min` to `max`. */
export const periodOrOff = (min: number, max: number) =>
  int(0, max).refine((n) => n === 0 || n >= min, `must be 0 (off) or at least ${min}`);

export const nonEmpty = () => z.string().trim().min(1, 'must not be empty');

export const httpUrl = () => z.url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' });

export const withoutTrailingSlash = (u: string): string => u.replace(/\/+$/, '');

/** A URL with a host: `redis:/:pw@host` parses (an opaque path), but names no server, and would print the password. */
export const hasHost = (u: string): boolean => {
  try {
    return new URL(u).hostname !== '';
  } catch {
    return false;
  }
};

/** One token of ours (a webhook or admin token): it travels in URLs and headers. */
export const token = () => z.string().trim().regex(TOKEN_RE, `must be ${TOKEN_RULE}`);

/** Comma-separated tokens, trimmed, at least one. */
export const tokenList = () =>
  z
    .string()
    .transform((s) =>
      s
        .split(',')
        .map((t) => t.trim())
        .filter(Boolean),
    )
    .refine((list) => list.length > 0, 'must hold at least one token')
    .refine((list) => list.every((t) => TOKEN_RE.test(t)), `each token must be ${TOKEN_RULE}`);

export const hubexToken = () => z.string().trim().min(8, 'is too short to be a HubEx token');

/** Comma-separated IP addresses or CIDR ranges. */
export const addressList = () =>
  z.string().transform((s, ctx) => {
    const list = s
      .split(',')
      .map((x) => x.trim())
      .filter(Boolean);
    for (const item of list) {
      if (!isAddressOrRange(item))
        ctx.addIssue({ code: 'custom', message: `"${item}" is not an IP address or CIDR range (like 203.0.113.0/24)` });
    }
    return list;
  });

/** More hops than any real chain of proxies. */
const MAX_HOPS = 32;

/** proxy-addr's names for address ranges, which Fastify's trustProxy takes too. */
const PROXY_RANGES = new Set(['loopback', 'linklocal', 'uniquelocal']);

// A number is a hop count (1: the one proxy in front), never a boolean: `true` trusts every hop,
// and lets any client choose its address with X-Forwarded-For.
export const trustProxy = () =>
  z
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
      const list = s
        .split(',')
        .map((x) => x.trim())
        .filter(Boolean);
      for (const item of list) {
        if (/\/0+$/.test(item)) {
          ctx.addIssue({
            code: 'custom',
            message: `"${item.slice(0, 100)}" trusts every address, which lets any client choose its own; name the proxy's address`,
          });
        } else if (!isAddressOrRange(item) && !PROXY_RANGES.has(item)) {
          ctx.addIssue({
            code: 'custom',
            message: `"${item.slice(0, 100)}" is not a hop count, an IP address, a CIDR range, loopback, linklocal or uniquelocal`,
          });
        }
      }
      return list.join(','); // addresses or CIDR ranges of the trusted proxies
    });

function isAddressOrRange(s: string): boolean {
  const [ip, bits, extra] = s.split('/');
  if (extra !== undefined || !ip) return false;
  const family = isIP(ip);
  if (family === 0) return false;
  if (bits === undefined) return true;
  return /^\d+$/.test(bits) && Number(bits) <= (family === 4 ? 32 : 128);
}
