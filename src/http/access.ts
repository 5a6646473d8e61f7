// Who may call: an optional allow-list of addresses (ALLOWED_IPS, 403 outside it) and an optional
// rate limit per client address (RATE_LIMIT_MAX per RATE_LIMIT_WINDOW_MS, 429 with Retry-After).
// Both use request.ip, so behind nginx with TRUST_PROXY the real client counts, not the proxy.
// /healthz and /readyz are exempt: the orchestrator probes them from wherever it runs.
import { BlockList, isIP } from 'node:net';
import rateLimit from '@fastify/rate-limit';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Config } from '../config.js';
import { HttpError } from '../errors.js';

const EXEMPT = new Set(['/healthz', '/readyz']);
const exempt = (request: FastifyRequest) => EXEMPT.has(request.url.split('?')[0]!);

/** A BlockList of the allowed addresses and ranges (IPv4-mapped IPv6 addresses match their IPv4 form). */
export function allowList(entries: readonly string[]): (ip: string) => boolean {
  const list = new BlockList();
  for (const e of entries) {
    const [ip, bits] = e.split('/') as [string, string | undefined];
    const type = isIP(ip) === 6 ? 'ipv6' : 'ipv4';
    if (bits === undefined) list.addAddress(ip, type);
    else list.addSubnet(ip, Number(bits), type);
  }
  return (ip) => {
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
    const address = mapped ? mapped[1]! : ip;
    const type = isIP(address) === 6 ? 'ipv6' : 'ipv4';
    return isIP(address) !== 0 && list.check(address, type);
  };
}

export async function installAccessControl(app: FastifyInstance, config: Pick<Config, 'allowedIps' | 'rateLimit'>): Promise<void> {
  if (config.allowedIps) {
    const allowed = allowList(config.allowedIps);
    app.addHook('onRequest', async (request) => {
      if (exempt(request) || allowed(request.ip)) return;
      throw new HttpError(
        'FORBIDDEN_ADDRESS',
        `Calls from ${request.ip} are not allowed here (ALLOWED_IPS); behind a proxy, set TRUST_PROXY.`,
      );
    });
  }
  if (config.rateLimit) {
    const { max, windowMs } = config.rateLimit;
    await app.register(rateLimit, {
      global: true,
      max,
      timeWindow: windowMs,
      allowList: (request) => exempt(request),
      keyGenerator: (request) => request.ip,
      errorResponseBuilder: (_request, context) =>
        new HttpError(
          'RATE_LIMITED',
          `Too many requests from this address: at most ${max} per ${windowMs / 1000} s; try again in ${Math.ceil(context.ttl / 1000)} s.`,
          { headers: { 'retry-after': String(Math.max(1, Math.ceil(context.ttl / 1000))) } },
        ),
    });
  }
}
