// Settings that are valid but probably a mistake: logged at start and shown by `doctor`.
import { isIP } from 'node:net';
import type { Config } from './schema.js';

/** Whether only this machine can connect to the address (127.0.0.0/8, ::1, localhost). */
const isLoopback = (host: string): boolean => host === 'localhost' || host === '::1' || /^(::ffff:)?127\.\d+\.\d+\.\d+$/i.test(host);

/** One sentence per doubtful setting, naming what to set instead. */
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
      out.push(
        `TRUST_PROXY trusts very wide ranges (${broad.join(', ')}): a client with an address in them can choose its own with X-Forwarded-For. Name the proxy's own addresses.`,
      );
    }
  } else if (typeof c.trustProxy === 'number' && c.trustProxy > 0 && !isLoopback(c.host)) {
    out.push(
      `TRUST_PROXY=${c.trustProxy} trusts ${c.trustProxy} hop(s) from whoever connects, while the router listens on ${c.host}: a client that reaches it directly, not through the proxy, can choose its own address with X-Forwarded-For. Set TRUST_PROXY to the proxy's address instead (127.0.0.1 when it runs on this host), or HOST=127.0.0.1.`,
    );
  }
  return out;
}
