// A handler cannot take the router down for good: a promise it forgets is logged and the router
// keeps serving; an exception thrown outside its run (a timer callback) stops the router cleanly
// (exit 1, for its supervisor to restart it), and a delivery that does that on every start goes
// dead after MAX_ATTEMPTS instead of crash-looping. A value that cannot even be printed is
// recorded like any failure. Real child processes, real handler modules in HANDLERS_DIR.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Database } from '../src/store/sqlite/driver.js';
import { afterEach, expect, it, onTestFinished } from 'vitest';
import { DB_FILE } from '../src/store/sqlite/store.js';
import { defineHandler } from '../src/delivery/define-handler.js';
import { checkHandler } from '../src/delivery/loader.js';
import { createLogger } from '../src/observability/log.js';
import { SqliteStore } from '../src/store/sqlite/store.js';
import { makeApp, type TestApp, tempDir } from './support/test-app.js';
import { httpRequest, spawnRouter } from './support/spawn-router.js';
import { waitFor } from './support/wait.js';
import { incoming } from './support/incoming.js';

const apps: TestApp[] = [];
afterEach(async () => {
  await Promise.all(apps.splice(0).map((a) => a.close()));
});

/** A data folder and a HANDLERS_DIR holding one module with this source, removed after the test. */
function setup(source: string): { dataDir: string; env: Record<string, string> } {
  const data = tempDir();
  const handlers = tempDir('hubex-router-handlers-');
  writeFileSync(join(handlers.dir, 'culprit.mjs'), source);
  onTestFinished(() => {
    data.remove();
    handlers.remove();
  });
  return { dataDir: data.dir, env: { HANDLERS_DIR: handlers.dir, LOG_EVENTS: 'false' } };
}

function deliveries(dataDir: string): { status: string; attempts: number; last_error: string | null }[] {
  const db = new Database(join(dataDir, DB_FILE), { readonly: true, fileMustExist: true });
  try {
    return db.prepare('SELECT status, attempts, last_error FROM deliveries ORDER BY id').all() as never;
  } finally {
    db.close();
  }
}

it('a promise a handler forgets to await is logged and counted; the router keeps serving', async () => {
  const { dataDir, env } = setup(`
    export default {
      name: 'forgetful',
      on: '*',
      handle() {
        Promise.reject(new Error('stray rejection from a handler')); // not awaited
      },
    };
  `);
  const router = await spawnRouter({ dataDir, env });
  expect((await httpRequest(router.url(), { body: JSON.stringify({ EventID: 40, AssetID: 1 }) })).status).toBe(202);
  await waitFor(
    () => router.stdout,
    (out) => out.includes('stray rejection from a handler'),
    { what: 'the rejection in the log' },
  );
  const line = router.stdout.split('\n').find((l) => l.includes('stray rejection from a handler'))!;
  expect(JSON.parse(line)).toMatchObject({
    level: 'error',
    error: 'stray rejection from a handler',
    errorClass: 'Error',
    stack: expect.stringContaining('culprit.mjs'),
    msg: expect.stringMatching(/^a promise was rejected and nothing handled it/),
  });
  // Still serving: a second event is stored and its delivery runs.
  expect((await httpRequest(router.url(), { body: JSON.stringify({ EventID: 40, AssetID: 2 }) })).status).toBe(202);
  await waitFor(
    () => deliveries(dataDir),
    (ds) => ds.length === 2 && ds.every((d) => d.status === 'done'),
    { what: 'both deliveries done' },
  );
  const metrics = await httpRequest(`${router.base}/metrics`);
  expect(metrics.text).toMatch(/^hubex_router_uncaught_errors_total\{kind="rejection"\} [2-9]/m);
  expect(router.child.exitCode).toBe(null);
});

it('an uncaught exception stops the router cleanly with exit 1; the delivery that causes it on every start goes dead, not round and round', async () => {
  const { dataDir, env: base } = setup(`
    export default {
      name: 'crasher',
      on: '*',
      handle() {
        setTimeout(() => { throw new Error('thrown in a timer callback'); }, 20);
        return new Promise((resolve) => setTimeout(resolve, 5000)); // still running when it hits
      },
    };
  `);
  const env = { ...base, MAX_ATTEMPTS: '2', HANDLER_LEASE_MS: '500' };
  const first = await spawnRouter({ dataDir, env });
  const answer = await httpRequest(first.url(), { body: JSON.stringify({ EventID: 40, AssetID: 7 }) });
  expect(answer.status).toBe(202);
  const exit = await first.exited;
  expect(exit.code).toBe(1);
  const fatal = first.stdout.split('\n').filter((l) => l.includes('"level":"fatal"'));
  expect(fatal).toHaveLength(1);
  expect(JSON.parse(fatal[0]!)).toMatchObject({
    error: 'thrown in a timer callback',
    msg: expect.stringMatching(/^uncaught exception: the router stops cleanly/),
  });
  expect(deliveries(dataDir)).toMatchObject([{ status: 'running', attempts: 1 }]); // acknowledged and kept

  // Restarted by its supervisor: the run cut short runs again once its lease ends, and crashes again.
  const second = await spawnRouter({ dataDir, env });
  expect((await second.exited).code).toBe(1);
  expect(deliveries(dataDir)).toMatchObject([{ status: 'running', attempts: 2 }]);

  // The third start finds its attempts used up: dead, without running it, and the router stays up.
  const third = await spawnRouter({ dataDir, env });
  const [d] = await waitFor(
    () => deliveries(dataDir),
    (ds) => ds[0]?.status === 'dead',
    { timeoutMs: 10_000, what: 'the delivery dead' },
  );
  expect(d!.last_error).toMatch(/^Run 3 of at most 2 \(MAX_ATTEMPTS\), and the last run was cut short/);
  expect((await httpRequest(`${third.base}/healthz`)).status).toBe(200);
  expect(third.stdout).not.toContain('thrown in a timer callback');
  expect(third.child.exitCode).toBe(null);
});

it('a handler that throws a value nothing can print (a cyclic null-prototype object) fails like any other, and the router goes on', async () => {
  const cyclic = () => {
    const o = Object.create(null) as Record<string, unknown>;
    o.self = o;
    return o;
  };
  const a = await makeApp(
    { RETRY_BASE_MS: '5', RETRY_MAX_MS: '10', MAX_ATTEMPTS: '2' },
    {
      handlers: [
        checkHandler(
          defineHandler({
            name: 'odd-thrower',
            on: '*',
            handle: () => {
              // eslint-disable-next-line @typescript-eslint/only-throw-error -- a value that is not an Error is the point
              throw cyclic();
            },
          }),
          'odd-thrower.ts',
        ),
      ],
    },
  );
  apps.push(a);
  expect((await a.post({ EventID: 40, AssetID: 1 })).statusCode).toBe(202);
  const [d] = await waitFor(
    () => a.app.store.list(),
    (ds) => ds[0]?.status === 'dead',
    { what: 'the delivery dead' },
  );
  expect(d).toMatchObject({ attempts: 2, lastError: { errorClass: 'object', message: 'a thrown object that cannot be shown' } });
  expect((await a.post({ EventID: 40, AssetID: 2 })).statusCode).toBe(202);
});

it('a delivery that ran beside the one that crashes the router is not dead-lettered with it: recovered runs go one at a time', async () => {
  const { dataDir, env: base } = setup(`
    export default {
      name: 'mixed',
      on: '*',
      async handle({ event }) {
        if (event.eventID === 40) setTimeout(() => { throw new Error('the culprit'); }, 300);
        await new Promise((resolve) => setTimeout(resolve, 1000)); // the innocent one is under way when it hits
      },
    };
  `);
  const env = { ...base, MAX_ATTEMPTS: '2', HANDLER_LEASE_MS: '500' };
  const first = await spawnRouter({ dataDir, env });
  const both = await httpRequest(first.url(), {
    body: JSON.stringify([
      { EventID: 41, AssetID: 1 },
      { EventID: 40, AssetID: 2 },
    ]),
  });
  expect(both.status).toBe(202);
  expect((await first.exited).code).toBe(1);
  expect(deliveries(dataDir).map((d) => d.status)).toEqual(['running', 'running']); // both cut short
  // Restarted until it stays up: the recovered runs go alone, so only the culprit crashes again.
  for (let start = 2; start <= 4; start++) {
    const router = await spawnRouter({ dataDir, env });
    const exit = await Promise.race([router.exited, new Promise<'up'>((resolve) => setTimeout(() => resolve('up'), 4000))]);
    if (exit === 'up') break;
    expect(exit.code).toBe(1);
  }
  const [innocent, culprit] = await waitFor(
    () => deliveries(dataDir),
    (ds) => ds.every((d) => d.status === 'done' || d.status === 'dead'),
    { timeoutMs: 15_000, what: 'both settled' },
  );
  expect(innocent).toMatchObject({ status: 'done', attempts: 2 });
  expect(culprit).toMatchObject({ status: 'dead', attempts: 3 });
});

it('lowering MAX_ATTEMPTS does not dead-letter a delivery that never crashed: it runs once more', async () => {
  const data = tempDir();
  onTestFinished(() => data.remove());
  let runs = 0;
  let fail = true;
  const flaky = checkHandler(
    defineHandler({
      name: 'flaky',
      on: '*',
      handle: () => {
        runs++;
        if (fail) throw new Error('down');
      },
    }),
    'flaky.ts',
  );
  const before = await makeApp({ MAX_ATTEMPTS: '12', RETRY_BASE_MS: '1', RETRY_MAX_MS: '5' }, { handlers: [flaky] }, data.dir);
  expect((await before.post({ EventID: 40, AssetID: 1 })).statusCode).toBe(202);
  await waitFor(
    () => runs,
    (n) => n >= 4,
    { what: 'four failed runs' },
  );
  await before.app.close();
  const attempts = deliveries(data.dir)[0]!.attempts;
  expect(attempts).toBeGreaterThanOrEqual(4);
  fail = false;
  const after = await makeApp({ MAX_ATTEMPTS: '3' }, { handlers: [flaky] }, data.dir);
  apps.push(after);
  await waitFor(
    () => deliveries(data.dir),
    (ds) => ds[0]?.status === 'done',
    { what: 'the delivery done' },
  );
  expect(deliveries(data.dir)[0]).toMatchObject({ status: 'done', attempts: attempts + 1 });
});

it("an event stored by an older router that today's intake would refuse still runs (a ToString key, a 300-character key)", async () => {
  const data = tempDir();
  onTestFinished(() => data.remove());
  // Stored straight into the store, as an older router did: without today's refusals.
  const raw = JSON.stringify({ EventID: 40, AssetID: 1, ToString: 5, ['k'.repeat(300)]: 'long' });
  const store = new SqliteStore({ dataDir: data.dir, log: createLogger('silent') });
  const legacy = {
    id: 'legacy-1',
    idSource: 'payload' as const,
    source: 'webhook' as const,
    eventID: 40,
    name: 'asset.created',
    entity: { type: 'asset', id: 1 },
    receivedAt: new Date().toISOString(),
    data: {},
    raw,
  };
  await store.accept(incoming([legacy], ['reader']));
  await store.close();
  const seen: Record<string, unknown>[] = [];
  const reader = checkHandler(
    defineHandler({ name: 'reader', on: '*', handle: ({ event }) => void seen.push(event.data as Record<string, unknown>) }),
    'reader.ts',
  );
  const a = await makeApp({}, { handlers: [reader] }, data.dir);
  apps.push(a);
  await waitFor(
    () => deliveries(data.dir),
    (ds) => ds[0]?.status === 'done',
    { what: 'the delivery done' },
  );
  expect(seen[0]).toMatchObject({ eventID: 40, ToString: 5, ['k'.repeat(300)]: 'long' });
  expect(String(seen[0])).toBe('[object Object]');
});
