// A handler's own policy (timeoutMs, maxAttempts, retry), onDead, the id its subscriptions
// promise, and `where` under the timeout: through the real app, on both back ends (SQLite in a
// temporary folder, a real redis-server).
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type AnyHandlerDefinition, defineHandler } from '../src/delivery/define-handler.js';
import { checkHandler } from '../src/delivery/loader.js';
import type { DeliveryRecord } from '../src/store/contract.js';
import { hasRedis, type RedisServer, startRedis } from './support/redis.js';
import { makeApp, type TestApp } from './support/test-app.js';
import { sleep, waitFor } from './support/wait.js';

// The router's settings, which each handler below overrides.
const ROUTER = { RETRY_BASE_MS: '5', RETRY_MAX_MS: '20', MAX_ATTEMPTS: '6', HANDLER_TIMEOUT_MS: '5000', SHUTDOWN_TIMEOUT_MS: '500' };

let redis: RedisServer | undefined;
let dbN = 0;
beforeAll(async () => {
  if (hasRedis) redis = await startRedis();
});
afterAll(async () => {
  await redis?.close();
});
const apps: TestApp[] = [];
afterEach(async () => {
  await Promise.all(apps.splice(0).map((a) => a.close()));
});

const BACKENDS = [
  { name: 'sqlite', env: () => ({}) },
  { name: 'redis', env: () => ({ QUEUE: 'redis', REDIS_URL: `${redis!.url}/${++dbN % 16}` }), skip: !hasRedis },
] as const;

const load = (h: AnyHandlerDefinition) => checkHandler(h, `${h.name ?? 'h'}.mjs`);

describe.each(BACKENDS)('on $name', (backend) => {
  async function app(handlers: ReturnType<typeof load>[], env: Record<string, string> = {}) {
    const extra: Record<string, string> = backend.env();
    if (extra.REDIS_URL) await flush(extra.REDIS_URL);
    const a = await makeApp({ ...ROUTER, ...extra, ...env }, { handlers });
    apps.push(a);
    return a;
  }
  const finished = (a: TestApp, n: number) =>
    waitFor(
      () => a.app.store.list({ limit: 100 }),
      (ds: DeliveryRecord[]) => ds.length === n && ds.every((d) => d.status === 'done' || d.status === 'dead'),
      { what: `${n} finished deliveries`, timeoutMs: 15_000 },
    );

  it.skipIf('skip' in backend && backend.skip)(
    'maxAttempts: 2 makes a delivery dead after 2 runs (MAX_ATTEMPTS is 6), and onDead runs once',
    async () => {
      const runs: number[] = [];
      const dead: { attempts: number; message: string; assetID: number }[] = [];
      const a = await app([
        load(
          defineHandler({
            name: 'flaky',
            on: 'asset.created',
            maxAttempts: 2,
            retry: { baseMs: 1, maxMs: 5 },
            handle({ attempt }) {
              runs.push(attempt);
              throw new Error(`failed run ${attempt}`);
            },
            onDead({ event, attempts }, error) {
              dead.push({ attempts, message: error.message, assetID: event.assetID! });
            },
          }),
        ),
      ]);
      expect((await a.post({ EventID: 40, AssetID: 9 })).statusCode).toBe(202);
      const [d] = await finished(a, 1);
      expect(d).toMatchObject({ status: 'dead', attempts: 2, lastError: { message: 'failed run 2' } });
      expect(runs).toEqual([1, 2]);
      await waitFor(
        () => dead.length,
        (n) => n === 1,
        { what: 'onDead' },
      );
      await sleep(300); // and not again
      expect(dead).toEqual([{ attempts: 2, message: 'failed run 2', assetID: 9 }]);
      expect(a.logs.lines.filter((l) => l.msg === 'onDead ran')).toHaveLength(1);
    },
  );

  it.skipIf('skip' in backend && backend.skip)(
    'an onDead that throws is logged once and not retried; the delivery stays dead',
    async () => {
      let calls = 0;
      const a = await app([
        load(
          defineHandler({
            name: 'doomed',
            on: 40,
            maxAttempts: 1,
            handle() {
              throw new Error('no');
            },
            onDead() {
              calls++;
              throw new Error('the pager is down');
            },
          }),
        ),
      ]);
      await a.post({ EventID: 40, AssetID: 1 });
      await finished(a, 1);
      await waitFor(
        () => a.logs.lines.filter((l) => l.msg === 'onDead failed; it is not run again'),
        (ls) => ls.length === 1,
        { what: 'the onDead failure logged' },
      );
      await sleep(300);
      expect(calls).toBe(1);
      expect(a.logs.lines.find((l) => l.msg === 'onDead failed; it is not run again')).toMatchObject({
        handler: 'doomed',
        error: 'the pager is down',
      });
      expect((await a.app.store.list())[0]).toMatchObject({ status: 'dead', attempts: 1 });
    },
  );

  it.skipIf('skip' in backend && backend.skip)(
    'timeoutMs of the handler, not HANDLER_TIMEOUT_MS, aborts its run, and covers an async where',
    async () => {
      const a = await app([
        load(
          defineHandler({
            name: 'slow',
            on: 40,
            timeoutMs: 100,
            maxAttempts: 1,
            handle: ({ signal }) => new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason as Error))),
          }),
        ),
        load(
          defineHandler({
            name: 'undecided',
            on: 40,
            timeoutMs: 100,
            maxAttempts: 1,
            // Ignores its abort, and settles only later: a dead outcome is recorded once it has
            // (on Redis its job and its slot are held until then; on SQLite the slot alone).
            where: () => new Promise<boolean>((resolve) => setTimeout(() => resolve(true), 1000)),
            handle() {},
          }),
        ),
      ]);
      const started = Date.now();
      await a.post({ EventID: 40, AssetID: 1 });
      const ds = await finished(a, 2);
      expect(Date.now() - started).toBeLessThan(4000); // far below HANDLER_TIMEOUT_MS (5 s)
      for (const d of ds) expect(d).toMatchObject({ status: 'dead', lastError: { errorClass: 'HandlerTimeoutError' } });
      expect(ds.map((d) => d.lastError?.message).join()).toContain('within 100 ms (its timeoutMs)');
    },
  );

  it.skipIf('skip' in backend && backend.skip)(
    "retry: { baseMs, maxMs } of the handler sets its backoff (MAX_ATTEMPTS' 20 ms ceiling does not apply)",
    async () => {
      const times: number[] = [];
      const a = await app([
        load(
          defineHandler({
            name: 'patient',
            on: 40,
            maxAttempts: 2,
            retry: { baseMs: 400, maxMs: 400 },
            handle() {
              times.push(Date.now());
              throw Object.assign(new Error('busy'), { retryAfterMs: 400 }); // the floor: the delay is exactly its maxMs
            },
          }),
        ),
      ]);
      await a.post({ EventID: 40, AssetID: 1 });
      await finished(a, 1);
      expect(times).toHaveLength(2);
      expect(times[1]! - times[0]!).toBeGreaterThanOrEqual(380);
    },
  );

  it.skipIf('skip' in backend && backend.skip)(
    'a handler on task names gets only events with a taskID: one without is dead, not handled',
    async () => {
      const got: number[] = [];
      const a = await app(
        [
          load(
            defineHandler({
              name: 'tasks',
              on: ['task.created'],
              handle({ event }) {
                got.push(event.taskID);
              },
            }),
          ),
        ],
        {},
      );
      a.app.catalogue.register({ id: 12, name: 'task.created', entity: 'task' });
      await a.post([
        { EventID: 12, TaskID: 5 },
        { EventID: 12, AssetID: 3, NotificationID: 'no-task' },
      ]);
      const ds = await finished(a, 2);
      expect(got).toEqual([5]);
      const dead = ds.find((d) => d.status === 'dead')!;
      expect(dead.lastError?.message).toContain('has no taskID');
    },
  );

  it.skipIf('skip' in backend && backend.skip)(
    'an onDead that never settles is aborted at the shutdown deadline: the stop does not wait for its timeout',
    async () => {
      let signal: AbortSignal | undefined;
      const a = await app([
        load(
          defineHandler({
            name: 'hangs-up',
            on: 40,
            maxAttempts: 1,
            timeoutMs: 60_000,
            handle() {
              throw new Error('no');
            },
            onDead(ctx) {
              signal = ctx.signal;
              return new Promise(() => {});
            },
          }),
        ),
      ]);
      await a.post({ EventID: 40, AssetID: 1 });
      await waitFor(
        () => signal,
        (s) => s !== undefined,
        { what: 'onDead to start' },
      );
      apps.splice(apps.indexOf(a), 1);
      const closed = a.close().then(() => 'closed' as const);
      expect(await Promise.race([closed, sleep(10_000).then(() => 'hung' as const)])).toBe('closed'); // SHUTDOWN_TIMEOUT_MS is 500
      expect(signal!.aborted).toBe(true);
    },
  );

  it.skipIf('skip' in backend && backend.skip)(
    'a handler that ignores its abort holds its slot even when its delivery dies: HANDLER_CONCURRENCY holds',
    async () => {
      let alive = 0;
      let most = 0;
      const a = await app(
        [
          load(
            defineHandler({
              name: 'deaf',
              on: 40,
              maxAttempts: 1,
              timeoutMs: 50,
              handle() {
                alive++;
                most = Math.max(most, alive);
                return new Promise(() => {}); // never returns, whatever its signal says
              },
            }),
          ),
        ],
        { HANDLER_CONCURRENCY: '1' },
      );
      await a.post([1, 2, 3, 4, 5].map((n) => ({ EventID: 40, AssetID: n })));
      await waitFor(
        () => alive,
        (n) => n >= 1,
        { what: 'the first run' },
      );
      await sleep(800); // sixteen timeouts' worth
      expect(most).toBe(1);
      expect(a.app.dispatcher!.active).toBeLessThanOrEqual(1);
    },
  );

  it.skipIf('skip' in backend && backend.skip)(
    'a handler on task and asset names gets each event only with its own entity id: a company one is dead',
    async () => {
      const got: string[] = [];
      const a = await app([
        load(
          defineHandler({
            name: 'mixed',
            on: ['task.created', 'asset.created'],
            handle({ event }) {
              got.push(event.entity.type);
            },
          }),
        ),
      ]);
      a.app.catalogue.register({ id: 12, name: 'task.created', entity: 'task' });
      await a.post([
        { EventID: 12, TaskID: 5 },
        { EventID: 40, AssetID: 6 },
        { EventID: 40, CompanyID: 3 },
      ]);
      const ds = await finished(a, 3);
      expect(got.sort()).toEqual(['asset', 'task']);
      expect(ds.find((d) => d.status === 'dead')?.lastError?.message).toContain('has no assetID (its entity: company 3)');
    },
  );

  it.skipIf('skip' in backend && backend.skip)(
    'concurrency: 2 runs at most two of its runs at once; another handler is not held up by it',
    async () => {
      let now = 0;
      let most = 0;
      let others = 0;
      const a = await app(
        [
          load(
            defineHandler({
              name: 'narrow',
              on: 40,
              concurrency: 2,
              async handle() {
                most = Math.max(most, ++now);
                await sleep(60);
                now--;
              },
            }),
          ),
          load(
            defineHandler({
              name: 'wide',
              on: 40,
              handle() {
                others++;
              },
            }),
          ),
        ],
        { HANDLER_CONCURRENCY: '8' },
      );
      await a.post(Array.from({ length: 12 }, (_, i) => ({ EventID: 40, AssetID: i + 1 })));
      const ds = await finished(a, 24);
      expect(ds.every((d) => d.status === 'done' && d.attempts === 1)).toBe(true);
      expect(most).toBe(2);
      expect(others).toBe(12);
    },
  );
});

async function flush(url: string): Promise<void> {
  const { Redis } = await import('ioredis');
  const r = new Redis(url);
  await r.flushdb();
  r.disconnect();
}

describe.skipIf(!hasRedis)('concurrency across instances', () => {
  it('two instances on one Redis run at most `concurrency` runs of a handler between them', async () => {
    let now = 0;
    let most = 0;
    const runsOn = { a: 0, b: 0 };
    const narrow = (who: 'a' | 'b') =>
      load(
        defineHandler({
          name: 'narrow',
          on: 40,
          concurrency: 2,
          async handle() {
            runsOn[who]++;
            most = Math.max(most, ++now);
            await sleep(80);
            now--;
          },
        }),
      );
    const url = `${redis!.url}/${++dbN % 16}`;
    await flush(url);
    const env = { ...ROUTER, QUEUE: 'redis', REDIS_URL: url, HANDLER_CONCURRENCY: '8' };
    const a = await makeApp(env, { handlers: [narrow('a')] });
    const b = await makeApp(env, { handlers: [narrow('b')] });
    apps.push(a, b);
    await a.post(Array.from({ length: 10 }, (_, i) => ({ EventID: 40, AssetID: i + 1 })));
    await b.post(Array.from({ length: 10 }, (_, i) => ({ EventID: 40, AssetID: 100 + i })));
    const ds = await waitFor(
      () => a.app.store.list({ limit: 100 }),
      (list: DeliveryRecord[]) => list.length === 20 && list.every((d) => d.status === 'done'),
      { what: '20 runs done', timeoutMs: 20_000 },
    );
    expect(ds.every((d) => d.attempts === 1)).toBe(true); // waiting for a slot spends no attempt
    expect(most).toBe(2);
    expect(runsOn.a + runsOn.b).toBe(20);
    expect(Math.min(runsOn.a, runsOn.b)).toBeGreaterThan(0);
  });
});

describe('a handler read at load', () => {
  it('takes a class instance whose handle is a method, and reads each field once', () => {
    class Greeter {
      on = 40;
      #reads = 0;
      get maxAttempts() {
        return ++this.#reads === 1 ? 2 : 1e15; // a getter that would answer the check one thing, the run another
      }
      handle() {
        return 'hi';
      }
    }
    const h = checkHandler(new Greeter() as never, 'greeter.mjs');
    expect(typeof h.handle).toBe('function');
    expect(h.maxAttempts).toBe(2);
    expect(h.maxAttempts).toBe(2);
  });

  it('turns a definition that throws while being read into a load error naming the file', () => {
    const hostile = new Proxy(
      {},
      {
        ownKeys() {
          throw new Error('no keys for you');
        },
      },
    );
    expect(() => checkHandler(hostile, 'hostile.mjs')).toThrow(/hostile\.mjs: the handler cannot be read: no keys for you/);
    const getter = Object.defineProperty({ on: 40, handle() {} }, 'timeoutMs', {
      enumerable: true,
      get() {
        throw new Error('boom');
      },
    });
    expect(() => checkHandler(getter, 'getter.mjs')).toThrow(/getter\.mjs: the handler cannot be read: boom/);
  });
});

describe('policy checked at load', () => {
  const refuse = (extra: Record<string, unknown>) => () =>
    checkHandler(defineHandler({ name: 'x', on: 40, handle() {}, ...extra } as never), 'x.mjs');
  it.each([
    [{ maxAttempts: 0 }, 'maxAttempts must be a whole number from 1 to 1000'],
    [{ concurrency: 0 }, 'concurrency must be a whole number from 1 to 1000'],
    [{ maxAttempts: 2.5 }, 'maxAttempts must be a whole number'],
    [{ timeoutMs: 5 }, 'timeoutMs must be a whole number from 10'],
    [{ retry: 5 }, 'retry must be { baseMs, maxMs }'],
    [{ retry: { baseMs: 0 } }, 'retry.baseMs must be a whole number'],
    [{ retry: { baseMs: 500, maxMs: 100 } }, 'retry.baseMs must not be over retry.maxMs'],
    [{ retry: { base: 5 } }, 'retry has no field base'],
    [{ maxAttempt: 3 }, 'a handler has no field "maxAttempt"'],
    [{ onDead: 'tell someone' }, 'onDead is not a function'],
  ])('refuses %j, naming the file', (extra, message) => {
    expect(refuse(extra)).toThrow(message);
    expect(refuse(extra)).toThrow('x.mjs');
  });
});
