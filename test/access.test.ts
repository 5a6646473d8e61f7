// ALLOWED_IPS and the rate limit, with and without a proxy header (TRUST_PROXY).
import { afterEach, describe, expect, it } from 'vitest';
import { allowList } from '../src/http/access.js';
import { ConfigError, loadConfig } from '../src/config.js';
import { readEvents } from './support/db.js';
import { makeApp, type TestApp, TOKEN } from './support/test-app.js';

let t: TestApp | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

let n = 0;
const hook = (opts: { ip?: string; forwardedFor?: string } = {}) =>
  t!.app.inject({
    method: 'POST',
    url: `/hooks/hubex/${TOKEN}`,
    remoteAddress: opts.ip ?? '127.0.0.1',
    headers: { 'content-type': 'application/json', ...(opts.forwardedFor ? { 'x-forwarded-for': opts.forwardedFor } : {}) },
    payload: JSON.stringify({ EventID: 40, AssetID: 10_000 + n++ }),
  });

describe('ALLOWED_IPS', () => {
  it('answers 403 outside the list and stores nothing; health stays reachable', async () => {
    t = await makeApp({ ALLOWED_IPS: '10.0.0.0/8, 2001:db8::/32, 192.0.2.7' });
    const refused = await hook({ ip: '198.51.100.1' });
    expect(refused.statusCode).toBe(403);
    expect(refused.json()).toMatchObject({ error: 'FORBIDDEN_ADDRESS', message: expect.stringMatching(/198\.51\.100\.1 .*ALLOWED_IPS/) });
    expect((await hook({ ip: '10.20.30.40' })).statusCode).toBe(202);
    expect((await hook({ ip: '::ffff:10.1.1.1' })).statusCode).toBe(202);
    expect((await hook({ ip: '2001:db8::5' })).statusCode).toBe(202);
    expect((await hook({ ip: '192.0.2.7' })).statusCode).toBe(202);
    expect((await hook({ ip: '192.0.2.8' })).statusCode).toBe(403);
    expect((await t.app.inject({ url: '/healthz', remoteAddress: '198.51.100.1' })).statusCode).toBe(200);
    expect(readEvents(t.dir)).toHaveLength(4);
  });

  it('behind a proxy counts the forwarded address only with TRUST_PROXY', async () => {
    t = await makeApp({ ALLOWED_IPS: '10.0.0.0/8' });
    // Without TRUST_PROXY a client cannot claim an address with a header.
    expect((await hook({ ip: '127.0.0.1', forwardedFor: '10.0.0.1' })).statusCode).toBe(403);
    await t.close();
    t = await makeApp({ ALLOWED_IPS: '10.0.0.0/8', TRUST_PROXY: '127.0.0.1' });
    expect((await hook({ ip: '127.0.0.1', forwardedFor: '10.0.0.1' })).statusCode).toBe(202);
    expect((await hook({ ip: '127.0.0.1', forwardedFor: '203.0.113.9' })).statusCode).toBe(403);
  });

  it('TRUST_PROXY=1 trusts the one proxy in front, not the hops a client writes itself', async () => {
    // nginx appends the address it sees to what the client sent: "6.6.6.6, 7.7.7.7, <client>".
    t = await makeApp({ ALLOWED_IPS: '6.6.6.6,7.7.7.7', TRUST_PROXY: '1' });
    expect((await hook({ ip: '127.0.0.1', forwardedFor: '6.6.6.6, 7.7.7.7, 198.51.100.9' })).statusCode).toBe(403);
    expect((await hook({ ip: '127.0.0.1', forwardedFor: '198.51.100.9, 7.7.7.7' })).statusCode).toBe(202);
    const line = t.logs.lines.filter((l) => l.msg === 'request').at(0)!;
    expect(line).toMatchObject({ status: 403, ip: '198.51.100.9' });
  });

  it('refuses a bad entry at start', () => {
    expect(() => loadConfig({ ALLOWED_IPS: '10.0.0.0/33,example.com' })).toThrow(ConfigError);
    expect(allowList(['10.0.0.0/8'])('not-an-ip')).toBe(false);
  });
});

describe('RATE_LIMIT_MAX', () => {
  it('answers 429 with Retry-After past the limit, per client address', async () => {
    t = await makeApp({ RATE_LIMIT_MAX: '3', RATE_LIMIT_WINDOW_MS: '60000', TRUST_PROXY: '127.0.0.1' });
    for (let i = 0; i < 3; i++) expect((await hook({ forwardedFor: '203.0.113.1' })).statusCode).toBe(202);
    const limited = await hook({ forwardedFor: '203.0.113.1' });
    expect(limited.statusCode).toBe(429);
    expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
    expect(limited.json()).toMatchObject({
      error: 'RATE_LIMITED',
      message: expect.stringMatching(/at most 3 per 60 s/),
      requestId: limited.headers['x-request-id'],
    });
    // another client behind the same proxy is not limited, nor are the probes
    expect((await hook({ forwardedFor: '203.0.113.2' })).statusCode).toBe(202);
    for (let i = 0; i < 5; i++) expect((await t.app.inject({ url: '/healthz', remoteAddress: '127.0.0.1' })).statusCode).toBe(200);
    expect(readEvents(t.dir)).toHaveLength(4);
  });

  it('cannot be dodged by rotating X-Forwarded-For behind a proxy (TRUST_PROXY=1 or its address)', async () => {
    for (const trust of ['1', '127.0.0.1']) {
      t = await makeApp({ RATE_LIMIT_MAX: '3', TRUST_PROXY: trust });
      // The same client (the address the proxy saw and appended), a new made-up address each time.
      const statuses: number[] = [];
      for (let i = 0; i < 5; i++) statuses.push((await hook({ forwardedFor: `10.9.9.${i}, 203.0.113.50` })).statusCode);
      expect(statuses, `TRUST_PROXY=${trust}`).toEqual([202, 202, 202, 429, 429]);
      await t.close();
      t = undefined;
    }
  });

  it('is off unless RATE_LIMIT_MAX is set', async () => {
    t = await makeApp();
    for (let i = 0; i < 50; i++) expect((await hook()).statusCode).toBe(202);
  });
});
