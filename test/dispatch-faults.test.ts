// What a hostile review of the workers found: a handler that never returns must not stop the
// others (after a crash, or at shutdown on Redis), and an instance must not take its own running
// delivery again when the lease lapses under it. Real SQLite files, a real redis-server.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { defineHandler } from '../src/delivery/define-handler.js';
import { checkHandler } from '../src/delivery/loader.js';
import type { SqliteStore } from '../src/store/sqlite/index.js';
import { hasRedis, type RedisServer, startRedis } from './support/redis.js';
import { makeApp, type TestApp, tempDir } from './support/test-app.js';
import { waitFor } from './support/wait.js';

const apps: TestApp[] = [];
afterEach(async () => {
  await Promise.all(apps.splice(0).map((a) => a.close()));
});

/** Resolves with 'hung' if `p` has not settled within `ms`: a liveness check, not a timing goal. */
const within = <T>(p: Promise<T>, ms: number) =>
  Promise.race([p.then(() => 'settled' as const), new Promise<'hung'>((r) => setTimeout(() => r('hung'), ms))]);

describe('SQLite worker', () => {
  it('after a crash, a handler that ignores its abort and never returns does not hold up the recovered deliveries nor the new ones', async () => {
    const { dir, remove } = tempDir();
    try {
      // Before the "crash": four deliveries claimed under a lease that has already run out.
      const before = await makeApp({}, { handlers: [hangOn(1)], dispatch: false }, dir);
      await before.post([1, 2, 3, 4].map((n) => ({ EventID: 40, AssetID: n })));
      await (before.app.store as SqliteStore).claim(10, 1);
      await before.app.close();

      const ran: number[] = [];
      const a = await makeApp(
        { HANDLER_TIMEOUT_MS: '200', SHUTDOWN_TIMEOUT_MS: '200', MAX_ATTEMPTS: '5' },
        { handlers: [hangOn(1, ran)] },
        dir,
      );
      apps.push(a);
      await a.post([5, 6].map((n) => ({ EventID: 40, AssetID: n })));
      await waitFor(
        () => [...ran].sort(),
        (r) => [2, 3, 4, 5, 6].every((n) => r.includes(n)),
        { what: 'every delivery but the hung one to run', timeoutMs: 10_000 },
      );
      expect((await a.app.store.counts()).done).toBe(5);
    } finally {
      remove();
    }
  });

  it('a run that outlives its lease (the loop blocked, no renewal) is not claimed again by its own instance', async () => {
    let runs = 0;
    let wake = () => {};
    const a = await makeApp(
      { HANDLER_LEASE_MS: '500', HANDLER_TIMEOUT_MS: '5000' },
      {
        handlers: [
          checkHandler(
            defineHandler({
              name: 'blocker',
              on: 40,
              async handle() {
                runs++;
                await new Promise((r) => setTimeout(r, 0)); // past the first await: the loop is the handler's
                const until = Date.now() + 1200;
                while (Date.now() < until); // holds the loop past the lease: no heartbeat renews it
                wake(); // a claim before the heartbeat's renewal, as an accept arriving then makes one
                await new Promise((r) => setTimeout(r, 700));
              },
            }),
            'blocker.mjs',
          ),
        ],
      },
    );
    apps.push(a);
    wake = () => (a.app.dispatcher as unknown as { wake(): void }).wake();
    await a.post({ EventID: 40, AssetID: 1 });
    const [d] = await waitFor(
      () => a.app.store.list(),
      (ds) => ds[0]?.status === 'done',
      { what: 'the delivery done', timeoutMs: 10_000 },
    );
    const detail = await a.app.store.show(d!.id);
    expect(runs).toBe(1);
    expect(detail).toMatchObject({ attempts: 1 });
    expect(detail!.history.map((h) => h.outcome)).toEqual(['done']);
  });
});

describe('SQLite worker with a handler limit', () => {
  it('keeps the crash guard for a recovered delivery of a limited handler: it is not given back as a plain pending one', async () => {
    const { dir, remove } = tempDir();
    try {
      const ran: number[] = [];
      const limited = checkHandler(
        defineHandler({
          name: 'limited',
          on: 40,
          concurrency: 1,
          handle({ event }) {
            ran.push(event.assetID!);
          },
        }),
        'limited.mjs',
      );
      // Before the "crashes": an older pending delivery (asset 1), and one (asset 2) whose runs
      // were cut short three times (claimed under leases that ran out).
      const before = await makeApp({}, { handlers: [limited], dispatch: false }, dir);
      await before.post({ EventID: 40, AssetID: 1 });
      await before.post({ EventID: 40, AssetID: 2 });
      const store = before.app.store as SqliteStore;
      const [older] = await store.list({ limit: 1 });
      for (let i = 0; i < 3; i++) await store.claim(1, 1, [Number(older!.id)]);
      await before.app.close();

      const a = await makeApp({ MAX_ATTEMPTS: '2' }, { handlers: [limited] }, dir);
      apps.push(a);
      const ds = await waitFor(
        () => a.app.store.list(),
        (list) => list.length === 2 && list.every((d) => d.status === 'done' || d.status === 'dead'),
        { what: 'both deliveries finished' },
      );
      expect(ran).toEqual([1]); // the one cut short three times does not run a fourth time
      expect(ds.find((d) => d.status === 'dead')?.lastError?.message).toContain('the last run was cut short');
    } finally {
      remove();
    }
  });
});

describe.skipIf(!hasRedis)('Redis worker', () => {
  let redis: RedisServer;
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await redis?.close();
  });

  it('stops by its deadline when a handler ignores its abort and never returns', async () => {
    let started = false;
    const a = await makeApp(
      { QUEUE: 'redis', REDIS_URL: `${redis.url}/3`, SHUTDOWN_TIMEOUT_MS: '300', HANDLER_TIMEOUT_MS: '200', MAX_ATTEMPTS: '5' },
      {
        handlers: [
          checkHandler(
            defineHandler({
              name: 'deaf',
              on: 40,
              handle: () => {
                started = true;
                return new Promise(() => {}); // ignores ctx.signal, never settles
              },
            }),
            'deaf.mjs',
          ),
        ],
      },
    );
    await a.post({ EventID: 40, AssetID: 1, NotificationID: 'deaf-1' });
    await waitFor(
      () => started,
      (s) => s,
      { what: 'the handler to start' },
    );
    expect(await within(a.app.close(), 10_000)).toBe('settled');
  });
});

/** A handler that records each asset it runs for and, for `assetID`, ignores its abort and never returns. */
function hangOn(assetID: number, ran: number[] = []) {
  return checkHandler(
    defineHandler({
      name: 'h',
      on: 'asset.created',
      handle({ event }) {
        ran.push(event.assetID);
        return event.assetID === assetID ? new Promise(() => {}) : undefined;
      },
    }),
    'h.mjs',
  );
}
