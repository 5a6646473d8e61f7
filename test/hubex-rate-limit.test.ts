// HUBEX_RATE_LIMIT: the shared client never goes over it (one instance, and two on one Redis),
// and a 429 with Retry-After pauses every call of the client. Against the fake HubEx, which
// stamps each call it answers; real SQLite and a real redis-server.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { defineHandler } from '../src/delivery/define-handler.js';
import { checkHandler } from '../src/delivery/loader.js';
import { createHubexClient, LocalRateGate, parseRateLimit } from '../src/hubex/index.js';
import { type FakeHubex, startFakeHubex } from '../src/testing/fake-hubex.js';
import { createLogger } from '../src/observability/log.js';
import { RedisRateGate } from '../src/store/redis/rate-gate.js';
import { hasRedis, type RedisServer, startRedis } from './support/redis.js';
import { makeApp, type TestApp } from './support/test-app.js';
import { waitFor } from './support/wait.js';

let fake: FakeHubex;
let redis: RedisServer | undefined;
beforeAll(async () => {
  fake = await startFakeHubex();
  fake.tasks.set(5, { notes: 'rate-limited' });
  if (hasRedis) redis = await startRedis();
});
afterAll(async () => {
  await fake.close();
  await redis?.close();
});
const apps: TestApp[] = [];
afterEach(async () => {
  await Promise.all(apps.splice(0).map((a) => a.close()));
});

/** The most calls in any window of `ms` (sliding, half-open), over the calls answered after `from`. */
function busiest(from: number, ms: number): number {
  const times = fake.calls.filter((c) => c.at >= from).map((c) => c.at);
  let most = 0;
  for (let i = 0, j = 0; i < times.length; i++) {
    while (times[i]! - times[j]! >= ms) j++;
    most = Math.max(most, i - j + 1);
  }
  return most;
}

const reader = checkHandler(
  defineHandler({
    name: 'reader',
    on: 40,
    async handle({ hubex, signal }) {
      await hubex.work.getTask(5, { signal });
    },
  }),
  'reader.mjs',
);
const ENV = {
  HUBEX_RATE_LIMIT: '120/min',
  HUBEX_BASE_URL: '',
  HUBEX_SERVICE_TOKEN: '',
  HANDLER_CONCURRENCY: '8',
  HANDLER_TIMEOUT_MS: '60000',
};
const env = () => ({ ...ENV, HUBEX_BASE_URL: fake.url, HUBEX_SERVICE_TOKEN: fake.serviceToken });
const events = (from: number, n: number) => Array.from({ length: n }, (_, i) => ({ EventID: 40, AssetID: from + i }));

describe('HUBEX_RATE_LIMIT', () => {
  it('reads 60/min, 5/s, 1000/h; refuses anything else, and over 1,000 a second, with a sentence', () => {
    expect(parseRateLimit('60/min')).toEqual({ limit: 60, windowMs: 60_000 });
    expect(parseRateLimit(' 5 / s ')).toEqual({ limit: 5, windowMs: 1000 });
    expect(parseRateLimit('1000/h')).toEqual({ limit: 1000, windowMs: 3_600_000 });
    for (const bad of ['60', '60/day', '/min', '0/s', 'sixty/min', '1e3/s']) expect(parseRateLimit(bad), bad).toBeUndefined();
    expect(() => loadConfig({ HUBEX_RATE_LIMIT: '60 per minute' })).toThrow(/HUBEX_RATE_LIMIT.*must be requests per s, min or h/);
    expect(() => loadConfig({ HUBEX_RATE_LIMIT: '5000/s' })).toThrow(/at most 1,000 per second/);
    expect(loadConfig({ HUBEX_RATE_LIMIT: '120/min' }).hubexRateLimit).toEqual({ limit: 120, windowMs: 60_000 });
  });

  // Turns are spaced 500 ms apart at 120/min: a second's window holds 2, and 3 when it starts at
  // one call and ends at another (the stated burst: the limit plus one per window).
  it('30 handler runs calling getTask at 120/min: at most 2 calls in any second, plus the burst of 1, on one instance', async () => {
    const a = await makeApp(env(), { handlers: [reader] });
    apps.push(a);
    const from = Date.now();
    expect((await a.post(events(1, 30))).statusCode).toBe(202);
    await waitFor(
      () => a.app.store.counts(),
      (c) => c.done === 30,
      { what: '30 runs done', timeoutMs: 25_000 },
    );
    // The token exchange is a request too, and takes a turn.
    expect(fake.calls.filter((c) => c.at >= from && c.path === '/WORK/Tasks/5')).toHaveLength(30);
    expect(busiest(from, 1000)).toBeLessThanOrEqual(3);
    expect(busiest(from, 5000)).toBeLessThanOrEqual(11);
  }, 40_000);

  it.skipIf(!hasRedis)(
    'two instances on one Redis share the limit: at most 2 calls in any second between them, plus the burst of 1',
    async () => {
      const shared = { ...env(), QUEUE: 'redis', REDIS_URL: `${redis!.url}/5` };
      const ranOn = { a: 0, b: 0 };
      const counted = (who: 'a' | 'b') =>
        checkHandler(
          defineHandler({
            name: 'reader',
            on: 40,
            async handle({ hubex, signal }) {
              ranOn[who]++;
              await hubex.work.getTask(5, { signal });
            },
          }),
          'reader.mjs',
        );
      const a = await makeApp(shared, { handlers: [counted('a')] });
      const b = await makeApp(shared, { handlers: [counted('b')] });
      apps.push(a, b);
      const from = Date.now();
      await a.post(events(100, 15));
      await b.post(events(200, 15));
      await waitFor(
        () => a.app.store.counts(),
        (c) => c.done === 30,
        { what: '30 runs done across both', timeoutMs: 25_000 },
      );
      expect(busiest(from, 1000)).toBeLessThanOrEqual(3);
      expect(busiest(from, 5000)).toBeLessThanOrEqual(11);
      // Both instances took part: each ran some of the deliveries.
      expect(ranOn.a + ranOn.b).toBe(30);
      expect(Math.min(ranOn.a, ranOn.b)).toBeGreaterThan(0);
    },
    40_000,
  );

  it.skipIf(!hasRedis)("a 429 that one instance gets pauses the other's calls too, until its Retry-After", async () => {
    const gate = () =>
      new RedisRateGate({
        url: `${redis!.url}/6`,
        prefix: 'rate-test',
        name: 'default',
        limit: { limit: 50, windowMs: 1000 },
        log: createLogger('silent'),
      });
    const [g1, g2] = [gate(), gate()];
    const one = createHubexClient({ ...fake.clientOptions, rateGate: g1 });
    const two = createHubexClient({ ...fake.clientOptions, rateGate: g2 });
    try {
      await Promise.all([one.work.getTask(5), two.work.getTask(5)]); // tokens taken
      fake.fail({ path: '/WORK/Tasks/5', status: 429, retryAfterSec: 2 });
      const from = Date.now();
      const first = one.work.getTask(5); // gets the 429
      await waitFor(
        () => fake.calls.some((c) => c.at >= from && c.status === 429),
        (seen) => seen,
        { what: 'the 429' },
      );
      await Promise.all([first, two.work.getTask(5), two.work.getTask(5)]);
      const refused = fake.calls.find((c) => c.at >= from && c.status === 429)!;
      const next = fake.calls.filter((c) => c.at > refused.at);
      expect(next).toHaveLength(3);
      expect(Math.min(...next.map((c) => c.at)) - refused.at).toBeGreaterThanOrEqual(1990);
    } finally {
      one.close();
      two.close();
      await Promise.all([g1.close(), g2.close()]);
    }
  });

  it('after a 429 with Retry-After 2 s, no call of the client reaches HubEx for 2 s', async () => {
    const client = createHubexClient({ ...fake.clientOptions, rateGate: new LocalRateGate({ limit: 50, windowMs: 1000 }) });
    try {
      await client.work.getTask(5); // the token, taken before the 429
      fake.fail({ path: '/WORK/Tasks/5', status: 429, retryAfterSec: 2 });
      const from = Date.now();
      await Promise.all(Array.from({ length: 6 }, () => client.work.getTask(5)));
      const after = fake.calls.filter((c) => c.at >= from);
      const refused = after.find((c) => c.status === 429)!;
      const next = after.filter((c) => c.at > refused.at);
      expect(next.length).toBeGreaterThanOrEqual(6); // the refused call again, and the five others
      expect(Math.min(...next.map((c) => c.at)) - refused.at).toBeGreaterThanOrEqual(1990);
    } finally {
      client.close();
    }
  });

  it('a call waiting its turn gives up when its signal aborts, and the limit still holds', async () => {
    const gate = new LocalRateGate({ limit: 1, windowMs: 60_000 });
    await gate.take(); // the first turn is now; the next a minute away
    const controller = new AbortController();
    const waiting = gate.take(controller.signal);
    controller.abort(new Error('handler timed out'));
    await expect(waiting).rejects.toThrow('handler timed out');
  });
});
