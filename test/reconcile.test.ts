// Reconciliation (task.modified for changes no push covered) and the webhook watchdog, through
// the real app listening on a port, against the fake HubEx pushing to it as HubEx would: on both
// back ends (SQLite in a temporary folder, a real redis-server), and two instances on one Redis.
import http from 'node:http';
import { afterEach, beforeEach, describe, expect, it, onTestFinished } from 'vitest';
import { defineHandler } from '../src/delivery/define-handler.js';
import { checkHandler } from '../src/delivery/loader.js';
import type { Handler } from '../src/delivery/define-handler.js';
import type { Store } from '../src/store/contract.js';
import { type FakeHubex, startFakeHubex } from '../src/testing/fake-hubex.js';
import { backendsForFile } from './support/backends.js';
import { hasRedis } from './support/redis.js';
import { makeApp, metricValue, type TestApp, TOKEN, tempDir } from './support/test-app.js';
import { sleep, waitFor } from './support/wait.js';
import taskChanged from './fixtures/task-changed.js';

const INTERVAL = 300;
let fake: FakeHubex;
const backends = backendsForFile();
const BACKENDS = backends.list;
const redisUrl = backends.freshRedisUrl;
beforeEach(async () => {
  fake = await startFakeHubex({ webhookCallBudget: 3 });
});
const apps: TestApp[] = [];
const cleanups: (() => void)[] = [];
afterEach(async () => {
  await Promise.all(apps.splice(0).map((a) => a.close()));
  await fake.close();
  for (const c of cleanups.splice(0)) c();
});

/** Handlers that count their runs by task: one on task.modified, one on the pushed task.updated (13 in the fake's catalogue). */
function counters() {
  const modified = new Map<number, number>();
  const pushed = new Map<number, number>();
  const count = (m: Map<number, number>, id: number) => m.set(id, (m.get(id) ?? 0) + 1);
  const handlers: Handler[] = [
    checkHandler(
      defineHandler({ name: 'on-modified', on: 'task.modified', handle: ({ event }) => void count(modified, event.taskID) }),
      'on-modified.mjs',
    ),
    checkHandler(
      defineHandler({ name: 'on-pushed', on: 'task.updated', handle: ({ event }) => void count(pushed, event.taskID) }),
      'on-pushed.mjs',
    ),
  ];
  const total = (m: Map<number, number>) => [...m.values()].reduce((a, b) => a + b, 0);
  return { modified, pushed, handlers, total };
}

interface Router extends TestApp {
  /** The webhook URL HubEx calls. */
  readonly url: string;
  readonly store: Store;
}

async function router(env: Record<string, string>, handlers: Handler[], dir?: string): Promise<Router> {
  const a = await makeApp(
    {
      HUBEX_BASE_URL: fake.url,
      HUBEX_SERVICE_TOKEN: fake.serviceToken,
      RECONCILE_INTERVAL_MS: String(INTERVAL),
      WEBHOOK_WATCH_INTERVAL_MS: '0',
      RETRY_BASE_MS: '5',
      SHUTDOWN_TIMEOUT_MS: '500',
      ...env,
    },
    { handlers },
    dir,
  );
  apps.push(a);
  await a.app.listen({ port: 0, host: '127.0.0.1' });
  const { port } = a.app.server.address() as { port: number };
  return { ...a, url: `http://127.0.0.1:${port}/hooks/hubex/${TOKEN}`, store: a.app.store };
}

/** Registers a webhook in the fake that calls the router on task.updated (13). */
function register(url: string, fields: Record<string, unknown> = {}): number {
  return fake.addWebhook({ uri: url, events: [13], ...fields });
}

/** Waits for the first poll (it sets the cursor); answers the cursor. */
const firstPoll = (r: { store: Store }) =>
  waitFor(
    () => r.store.readCursor('default', 'tasks'),
    (x) => x !== null,
    { what: 'the first poll' },
  );

/** Waits until the store's cursor has passed this task's change: every change up to it is stored. */
const caughtUp = (store: Store, taskID: number, timeoutMs = 10_000) =>
  waitFor(
    () => store.readCursor('default', 'tasks'),
    (c) => c !== null && Date.parse(c) >= Date.parse(String(fake.tasks.get(taskID)!.lastModified)),
    { timeoutMs, what: `the cursor to pass task ${taskID}'s change` },
  );

const metric = metricValue;

describe.each(BACKENDS)('reconciliation on $name', (b) => {
  const skip = 'skip' in b && b.skip;

  it.skipIf(skip)('push working: 100 tasks modified and pushed give no task.modified event', async () => {
    const c = counters();
    const r = await router(await b.env(), c.handlers);
    register(r.url);
    await firstPoll(r);
    for (let id = 1; id <= 100; id++) {
      fake.modifyTask(id, { title: `task ${id}` });
      const [res] = await fake.push({ eventID: 13, taskID: id });
      expect(res?.ok).toBe(true);
    }
    await caughtUp(r.store, 100);
    await waitFor(
      () => c.total(c.pushed),
      (n) => n === 100,
      { what: '100 pushed runs' },
    );
    expect(await r.store.listEvents({ name: 'task.modified' })).toEqual([]);
    expect(c.total(c.modified)).toBe(0);
    expect(await metric(r, 'reconcile_tasks_total', { result: 'covered' })).toBeGreaterThanOrEqual(100);
  });

  it.skipIf(skip)(
    'webhook inactive: 100 changes with no push run the task.modified handler once each, by the second poll after them, and never again after a restart',
    async () => {
      const { dir, remove } = tempDir();
      cleanups.push(remove);
      const env = await b.env();
      const c = counters();
      const r = await router(env, c.handlers, dir);
      register(r.url, { isActive: false });
      const okPolls = async () => (await metric(r, 'reconcile_polls_total', { outcome: 'ok' })) ?? 0;
      const pollsBefore = await waitFor(okPolls, (n) => n >= 1, { what: 'the first poll' });
      for (let id = 1; id <= 100; id++) fake.modifyTask(id, { title: `task ${id}`, taskStage: { id: 2, name: 'Stage 2' } });
      expect((await fake.push({ eventID: 13, taskID: 1 })).length).toBe(0); // the inactive webhook gets nothing
      await waitFor(
        () => r.store.listEvents({ name: 'task.modified', limit: 1000 }),
        (es) => es.length === 100,
        {
          what: '100 task.modified events',
        },
      );
      // A change waits half an interval for its push, so the first or the second poll after it
      // stores it (a third when the one under way at the last change had listed it too young).
      await caughtUp(r.store, 100);
      const polls = (await waitFor(okPolls, (n) => n > pollsBefore, { what: 'the poll that stored them to end' })) - pollsBefore;
      expect(polls).toBeLessThanOrEqual(3);
      await waitFor(
        () => c.total(c.modified),
        (n) => n === 100,
        { what: '100 task.modified runs' },
      );
      expect([...c.modified.values()].every((n) => n === 1)).toBe(true);
      const [one] = await r.store.listEvents({ name: 'task.modified', limit: 1 });
      const detail = await r.store.showEvent(one!.id);
      const raw = JSON.parse(detail!.raw) as Record<string, unknown>;
      expect(raw).toMatchObject({ taskID: expect.any(Number), title: expect.any(String), lastModified: expect.any(String) });
      expect(one!.entity).toEqual({ type: 'task', id: String(raw.taskID) });

      await r.close();
      apps.splice(apps.indexOf(r), 1);
      const again = counters();
      const r2 = await router(env, again.handlers, dir);
      const before = (await metric(r2, 'reconcile_polls_total', { outcome: 'ok' })) ?? 0;
      await waitFor(
        async () => ((await metric(r2, 'reconcile_polls_total', { outcome: 'ok' })) ?? 0) - before,
        (n) => n >= 3,
        {
          what: 'three polls after the restart',
        },
      );
      expect(again.total(again.modified)).toBe(0);
      expect(await r2.store.listEvents({ name: 'task.modified', limit: 1000 })).toHaveLength(100);
    },
  );

  it.skipIf(skip)(
    'HubEx down for three intervals: the cursor stays, each failure is logged and counted, and once back every change runs once',
    async () => {
      const c = counters();
      const r = await router(await b.env(), c.handlers);
      const start = await firstPoll(r);
      fake.fail({ path: '/WORK/Tasks', status: 503, times: 100_000 });
      for (let id = 1; id <= 30; id++) fake.modifyTask(id);
      await waitFor(
        () => metric(r, 'reconcile_polls_total', { outcome: 'failed' }),
        (n) => (n ?? 0) >= 3,
        {
          timeoutMs: 30_000,
          what: 'three failed polls',
        },
      );
      expect(await r.store.readCursor('default', 'tasks')).toBe(start);
      const failures = r.logs.lines.filter((l) => String(l.msg).startsWith('reconciliation poll failed'));
      expect(failures).toHaveLength(1); // one line a minute while it lasts, not one a poll
      expect(failures[0]).toMatchObject({
        level: 'error',
        error: { type: 'HubexApiError', status: 503, traceId: expect.stringMatching(/^0HN/) },
      });
      expect(r.logs.text).not.toContain(fake.serviceToken);
      fake.clearFaults();
      await caughtUp(r.store, 30, 20_000);
      await waitFor(
        () => c.total(c.modified),
        (n) => n === 30,
        { what: '30 task.modified runs' },
      );
      await sleep(3 * INTERVAL);
      expect(c.total(c.modified)).toBe(30);
      expect([...c.modified.keys()].sort((x, y) => x - y)).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
      const back = r.logs.lines.find((l) => l.msg === 'reconciliation works again');
      expect(back?.failedPolls).toBeGreaterThanOrEqual(3);
    },
  );
});

describe('reconciliation across instances', () => {
  it.skipIf(!hasRedis)('two instances on one Redis: one polls at a time, and each change is delivered once', async () => {
    const env = { QUEUE: 'redis', REDIS_URL: await redisUrl() };
    const c = counters();
    const one = await router(env, c.handlers);
    const two = await router(env, c.handlers);
    await firstPoll(one);
    for (let id = 1; id <= 100; id++) fake.modifyTask(id);
    await caughtUp(one.store, 100);
    await waitFor(
      () => c.total(c.modified),
      (n) => n === 100,
      { what: '100 task.modified runs' },
    );
    await sleep(3 * INTERVAL);
    expect(c.total(c.modified)).toBe(100);
    expect([...c.modified.values()].every((n) => n === 1)).toBe(true);
    const polls = await Promise.all([one, two].map((a) => metric(a, 'reconcile_polls_total', { outcome: 'ok' })));
    const skipped = await Promise.all([one, two].map((a) => metric(a, 'reconcile_polls_total', { outcome: 'skipped' })));
    // The lease's holder polls; the other skips every time, until the holder is gone.
    expect(polls.filter((n) => (n ?? 0) > 0)).toHaveLength(1);
    expect(skipped.some((n) => (n ?? 0) > 0)).toBe(true);

    // The holder stops: the other takes the lease over and carries on from the shared cursor.
    const holder = (polls[0] ?? 0) > 0 ? one : two;
    const other = holder === one ? two : one;
    await holder.close();
    apps.splice(apps.indexOf(holder), 1);
    for (let id = 101; id <= 120; id++) fake.modifyTask(id);
    await caughtUp(other.store, 120);
    await waitFor(
      () => c.total(c.modified),
      (n) => n === 120,
      { what: '120 task.modified runs' },
    );
    expect([...c.modified.values()].every((n) => n === 1)).toBe(true);
  });
});

describe('reconciliation and HubEx lists', () => {
  it("walks more than 10,000 changes through Range pages, HubEx's own page cap and its map-shaped list", async () => {
    await fake.close();
    fake = await startFakeHubex({ pageCap: 400 });
    const c = counters();
    const r = await router({ RECONCILE_INTERVAL_MS: '1000' }, c.handlers);
    await firstPoll(r);
    for (let id = 1; id <= 10_050; id++) fake.modifyTask(id);
    await caughtUp(r.store, 10_050, 60_000);
    await waitFor(
      () => c.total(c.modified),
      (n) => n === 10_050,
      { timeoutMs: 60_000, what: '10,050 task.modified runs' },
    );
    const walks = fake.calls.filter((x) => x.path === '/WORK/Tasks' && x.query.lastModifiedFrom);
    expect(walks.every((x) => /^items=\d+-\d+$/.test(x.range ?? ''))).toBe(true); // never the cut list without Range
    expect(walks.length).toBeGreaterThanOrEqual(Math.ceil(10_050 / 400));
  });

  it("HUBEX_RATE_LIMIT spaces the poll's calls like every other HubEx call", async () => {
    await fake.close();
    fake = await startFakeHubex({ pageCap: 20 });
    const c = counters();
    const r = await router({ RECONCILE_INTERVAL_MS: '500', HUBEX_RATE_LIMIT: '10/s' }, c.handlers);
    await firstPoll(r);
    const from = Date.now();
    for (let id = 1; id <= 400; id++) fake.modifyTask(id);
    await caughtUp(r.store, 400, 30_000);
    const times = fake.calls.filter((x) => x.at >= from).map((x) => x.at);
    expect(times.length).toBeGreaterThanOrEqual(20);
    let most = 0;
    for (let i = 0, j = 0; i < times.length; i++) {
      while (times[i]! - times[j]! >= 1000) j++;
      most = Math.max(most, i - j + 1);
    }
    expect(most).toBeLessThanOrEqual(11); // the limit, plus the stated burst of one
  });
});

describe('pull-only, as docs/handlers.md shows it', () => {
  it('task-changed (test/fixtures/task-changed.ts) logs each change made in HubEx, with no webhook registered at all', async () => {
    const r = await router({}, [checkHandler(taskChanged, 'task-changed.ts')]);
    expect(fake.webhooks.size).toBe(0);
    await firstPoll(r);
    const task = fake.modifyTask(7, { title: 'Chiller', taskStage: { id: 3, name: 'In progress' } });
    const line = await waitFor(
      () => r.logs.lines.find((l) => l.msg === 'task changed in HubEx'),
      (l) => l !== undefined,
      { what: 'the handler to log' },
    );
    expect(line).toMatchObject({ task: 7, stage: 'In progress', changedAt: task.lastModified, handler: 'task-changed' });
    expect(fake.calls.some((c) => c.method === 'GET' && c.path === '/WORK/Tasks/7')).toBe(true);
  });
});

describe('clocks that disagree', () => {
  it("a change stamped hours ahead of this machine's clock (a zone gone wrong) is stored at once, said in a warning, and never moves the cursor past now", async () => {
    const c = counters();
    const r = await router({}, c.handlers);
    await firstPoll(r);
    // Moscow time written without a zone, read as UTC: three hours ahead.
    const ahead = new Date(Date.now() + 3 * 3_600_000).toISOString().replace('Z', '');
    fake.tasks.set(5, { title: 'ahead', lastModified: ahead });
    fake.modifyTask(6);
    await caughtUp(r.store, 6);
    await waitFor(
      () => c.total(c.modified),
      (n) => n === 2,
      { what: 'both changes to run' },
    );
    expect(Date.parse((await r.store.readCursor('default', 'tasks'))!)).toBeLessThanOrEqual(Date.now());
    expect(r.logs.lines.filter((l) => String(l.msg).startsWith('HubEx says tasks changed more than 5 minutes ahead'))).toHaveLength(1);
    await sleep(3 * INTERVAL); // listed again at each poll (the cursor stays at now): a duplicate, not a second run
    expect(c.modified.get(5)).toBe(1);
  });
});

describe('what a hostile review found', () => {
  it('a HubEx clock two minutes behind, with a task stamped hours ahead: every change is still found, and the cursor follows HubEx', async () => {
    const c = counters();
    const r = await router({}, c.handlers);
    await firstPoll(r);
    const behind = () => new Date(Date.now() - 120_000).toISOString();
    fake.tasks.set(1, { title: 'changed by HubEx, its clock behind', lastModified: behind() });
    fake.tasks.set(2, { title: 'stamped in the future', lastModified: new Date(Date.now() + 3 * 3_600_000).toISOString() });
    await waitFor(
      () => c.total(c.modified),
      (n) => n === 2,
      { what: 'both changes' },
    );
    const cursor = Date.parse((await r.store.readCursor('default', 'tasks'))!);
    expect(cursor).toBeLessThan(Date.now() - 60_000); // HubEx's time of task 1, not this machine's now, nor task 2's
    fake.tasks.set(3, { title: 'a later change, HubEx still behind', lastModified: behind() });
    await waitFor(
      () => c.modified.get(3) ?? 0,
      (n) => n === 1,
      { what: 'the later change' },
    );
    expect(c.modified.get(2)).toBe(1);
  });

  it('a task changed all the time is not put off for ever: deferred once, then taken', async () => {
    const c = counters();
    const r = await router({}, c.handlers);
    await firstPoll(r);
    const until = Date.now() + 8 * INTERVAL;
    while (Date.now() < until && (c.modified.get(1) ?? 0) === 0) {
      fake.modifyTask(1); // every 20 ms: always younger than the half interval a change waits
      await sleep(20);
    }
    expect(c.modified.get(1) ?? 0).toBeGreaterThanOrEqual(1);
  });

  it('odd answers from HubEx: items that are not tasks are skipped; a list that ignores lastModifiedFrom stops the walk with an error, the cursor kept', async () => {
    let answer: unknown[] = [];
    const hubex = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        if (req.url?.startsWith('/fsm/AUTHZ/AccessTokens')) {
          res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ access_token: 'odd-token', expires_in: 1800 }));
        } else if (req.url?.startsWith('/fsm/WORK/Tasks')) {
          const [from, till] = /items=(\d+)-(\d+)/.exec(String(req.headers.range))!.slice(1).map(Number) as [number, number];
          const page = answer.slice(from - 1, till);
          res
            .writeHead(206, {
              'content-type': 'application/json',
              'content-range': `items=${from}-${from + page.length - 1}/${answer.length}`,
            })
            .end(JSON.stringify(page));
        } else res.writeHead(404).end();
      });
    });
    await new Promise<void>((resolve) => hubex.listen(0, '127.0.0.1', resolve));
    onTestFinished(() => new Promise<void>((resolve) => hubex.close(() => resolve())));
    const c = counters();
    const url = `http://127.0.0.1:${(hubex.address() as { port: number }).port}/fsm`;
    const r = await router({ HUBEX_BASE_URL: url, HUBEX_SERVICE_TOKEN: 'odd-service-token', RECONCILE_INTERVAL_MS: '200' }, c.handlers);
    const start = await firstPoll(r);
    answer = [null, 5, 'x', { id: 7, lastModified: new Date(Date.now() - 1000).toISOString(), title: 'a task' }];
    await waitFor(
      () => c.modified.get(7) ?? 0,
      (n) => n === 1,
      { what: 'task 7 among the odd items' },
    );
    expect(await metric(r, 'reconcile_tasks_total', { result: 'unusable' })).toBeGreaterThanOrEqual(3);
    const cursor = await r.store.readCursor('default', 'tasks');
    expect(cursor).not.toBe(start);
    // HubEx answering every task ever, whatever lastModifiedFrom says.
    const old = new Date(Date.now() - 30 * 86_400_000).toISOString();
    answer = Array.from({ length: 3000 }, (_, i) => ({ id: 100 + i, lastModified: old }));
    const line = await waitFor(
      () => r.logs.lines.find((l) => String(l.msg).startsWith('reconciliation poll failed')),
      (l) => l !== undefined,
      { what: 'the failed walk' },
    );
    expect(String((line!.error as { message: string }).message)).toContain('did not filter by it');
    expect(await r.store.readCursor('default', 'tasks')).toBe(cursor);
  });
});
