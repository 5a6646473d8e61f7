// Ordering (orderBy) and debounce through the real app, on both back ends (SQLite in a temporary
// folder, a real redis-server), and across two instances on one Redis.
import { afterEach, describe, expect, it } from 'vitest';
import { type AnyHandlerDefinition, defineHandler } from '../src/delivery/define-handler.js';
import { checkHandler, HandlerLoadError } from '../src/delivery/loader.js';
import type { DeliveryRecord } from '../src/store/contract.js';
import { backendsForFile } from './support/backends.js';
import { hasRedis } from './support/redis.js';
import { makeApp, type TestApp } from './support/test-app.js';
import { sleep, waitFor } from './support/wait.js';
import { EventCatalogue } from '../src/events/catalogue.js';
import taskSettled from './fixtures/task-settled.js';
import taskTimeline from './fixtures/task-timeline.js';

const ROUTER = { RETRY_BASE_MS: '5', RETRY_MAX_MS: '20', MAX_ATTEMPTS: '6', HANDLER_CONCURRENCY: '8', SHUTDOWN_TIMEOUT_MS: '500' };

const backends = backendsForFile();
const BACKENDS = backends.list;
const redisUrl = backends.freshRedisUrl;
const apps: TestApp[] = [];
afterEach(async () => {
  await Promise.all(apps.splice(0).map((a) => a.close()));
});

const load = (h: AnyHandlerDefinition) => checkHandler(h, `${h.name ?? 'h'}.mjs`);

/** A random number source that gives the same numbers each run. */
function seeded(seed: number): () => number {
  let s = seed;
  return () => {
    s = (s * 1_103_515_245 + 12_345) % 2 ** 31;
    return s / 2 ** 31;
  };
}

/** What an ordered handler saw: the order of each task's runs, and how many ran at once, per task and in all. */
function orderWatch(latency: () => number) {
  const seen = new Map<number, number[]>();
  const running = new Map<number, number>();
  const w = { seen, mostPerTask: 0, most: 0, now: 0 };
  const handler = defineHandler({
    name: 'ordered',
    on: 12, // a task's event (the catalogue, not loaded here, would name it)
    orderBy: (e) => e.taskID,
    async handle({ event }) {
      const task = event.taskID!;
      running.set(task, (running.get(task) ?? 0) + 1);
      w.mostPerTask = Math.max(w.mostPerTask, running.get(task)!);
      w.most = Math.max(w.most, ++w.now);
      await sleep(latency());
      seen.set(task, [...(seen.get(task) ?? []), event.data.n as number]);
      running.set(task, running.get(task)! - 1);
      w.now--;
    },
  });
  return { w, handler };
}

/** 500 events over 20 tasks, in requests of 10: event N is about task N % 20. */
const burst = (from: number, n: number) =>
  Array.from({ length: n }, (_, i) => ({ EventID: 12, TaskID: ((from + i) % 20) + 1, N: from + i }));

function expectInOrder(seen: Map<number, number[]>, total: number): void {
  expect([...seen.values()].reduce((n, s) => n + s.length, 0)).toBe(total);
  for (const [task, ns] of seen) {
    expect(ns.every((n) => Number.isInteger(n) && n % 20 === task - 1)).toBe(true);
    expect(ns, `task ${task}`).toEqual([...ns].sort((a, b) => a - b));
  }
  expect(seen.size).toBe(20);
}

const allFinished = (a: TestApp, n: number, timeoutMs = 30_000) =>
  waitFor(
    async () => {
      const out: DeliveryRecord[] = [];
      for (let after: number | string | undefined; ;) {
        const page = await a.app.store.list({ limit: 1000, ...(after === undefined ? {} : { afterId: after }) });
        out.push(...page);
        if (page.length < 1000) return out;
        after = page.at(-1)!.id;
      }
    },
    (ds: DeliveryRecord[]) => ds.length === n && ds.every((d) => d.status === 'done' || d.status === 'dead'),
    { what: `${n} finished deliveries`, timeoutMs },
  );

describe.each(BACKENDS)('on $name', (backend) => {
  const skip = 'skip' in backend && backend.skip;
  async function app(handlers: AnyHandlerDefinition[], env: Record<string, string> = {}) {
    const a = await makeApp({ ...ROUTER, ...(await backend.env()), ...env }, { handlers: handlers.map(load) });
    apps.push(a);
    return a;
  }

  it.skipIf(skip)('orderBy: 500 events over 20 tasks run in the order received per task, one at a time, tasks in parallel', async () => {
    const { w, handler } = orderWatch(
      (
        (r) => () =>
          Math.floor(r() * 21)
      )(seeded(7)),
    );
    const a = await app([handler]);
    for (let i = 0; i < 500; i += 10) expect((await a.post(burst(i, 10))).statusCode).toBe(202);
    const ds = await allFinished(a, 500);
    expect(ds.every((d) => d.status === 'done' && d.attempts === 1)).toBe(true); // waiting its turn spends no attempt
    expectInOrder(w.seen, 500);
    expect(w.mostPerTask).toBe(1);
    expect(w.most).toBeGreaterThan(1); // different tasks overlap
  });

  it.skipIf(skip)('a failing event holds back its own task only, until it is done; then until it is dead', async () => {
    const order: string[] = [];
    let a1Runs = 0;
    const a = await app([
      defineHandler({
        name: 'picky',
        on: 12,
        orderBy: (e) => e.taskID,
        maxAttempts: 3,
        retry: { baseMs: 150, maxMs: 150 },
        handle({ event }) {
          const tag = event.data.tag as string;
          if (tag === 'A1' && ++a1Runs < 3) throw new Error('A1 not yet');
          if (tag === 'C1') throw new Error('C1 never');
          order.push(tag);
        },
      }),
    ]);
    const ev = (task: number, tag: string) => ({ EventID: 12, TaskID: task, Tag: tag });
    await a.post([ev(1, 'A1'), ev(1, 'A2'), ev(2, 'B1'), ev(2, 'B2'), ev(3, 'C1'), ev(3, 'C2'), ev(1, 'A3')]);
    const ds = await allFinished(a, 7);
    expect(a1Runs).toBe(3);
    // Task A's events in order, after A1's two retries; task B's went meanwhile.
    expect(order.filter((t) => t.startsWith('A'))).toEqual(['A1', 'A2', 'A3']);
    expect(order.indexOf('B2')).toBeLessThan(order.indexOf('A1'));
    // C1 was dead after 3 attempts; then C2 ran.
    expect(order.filter((t) => t.startsWith('C'))).toEqual(['C2']);
    expect(order.indexOf('C2')).toBeGreaterThan(order.indexOf('B2'));
    expect(ds.filter((d) => d.status === 'dead')).toHaveLength(1);
    expect(ds.every((d) => d.status === 'dead' || d.attempts === 1 || d.attempts === 3)).toBe(true);
  });

  it.skipIf(skip)('a replayed delivery waits behind what its key has running', async () => {
    let failA1 = true;
    const log: string[] = [];
    const a = await app([
      defineHandler({
        name: 'replayed',
        on: 12,
        orderBy: (e) => e.taskID,
        maxAttempts: 1,
        async handle({ event }) {
          const tag = event.data.tag as string;
          log.push(`${tag} start`);
          if (tag === 'A1' && failA1) throw new Error('A1 fails');
          if (tag === 'A3') await sleep(400);
          log.push(`${tag} end`);
        },
      }),
    ]);
    await a.post([
      { EventID: 12, TaskID: 1, Tag: 'A1' },
      { EventID: 12, TaskID: 1, Tag: 'A2' },
    ]);
    const [dead] = (await allFinished(a, 2)).filter((d) => d.status === 'dead');
    failA1 = false;
    await a.post({ EventID: 12, TaskID: 1, Tag: 'A3' });
    await waitFor(
      () => log.includes('A3 start'),
      (y) => y,
      { what: 'A3 running' },
    );
    expect((await a.app.store.replay({ ids: [dead!.id] })).replayed).toEqual([dead!.id]);
    await allFinished(a, 3);
    await waitFor(
      () => log.includes('A1 end'),
      (y) => y,
      { what: 'the replayed A1 done' },
    );
    expect(log).toEqual(['A1 start', 'A2 start', 'A2 end', 'A3 start', 'A3 end', 'A1 start', 'A1 end']);
  });

  it.skipIf(skip)(
    'debounce: 20 events of a task within 300 ms run once, with the last, 500 ms after it; the others are collapsed into it',
    async () => {
      const runs: { task: number; n: number; collapsed: number; at: number }[] = [];
      const a = await app([
        defineHandler({
          name: 'settled',
          on: 12,
          debounce: { key: (e) => e.taskID, periodMs: 500 },
          handle({ event, collapsed }) {
            runs.push({ task: event.taskID!, n: event.data.n as number, collapsed, at: Date.now() });
          },
        }),
      ]);
      let last = 0;
      for (let i = 0; i < 20; i++) {
        await a.post({ EventID: 12, TaskID: 7, N: i });
        last = Date.now();
        await sleep(15);
      }
      await a.post({ EventID: 12, TaskID: 8, N: 100 }); // another key: a run of its own
      const ds = await allFinished(a, 21);
      await sleep(700); // and nothing more
      expect(runs.filter((r) => r.task === 7)).toEqual([{ task: 7, n: 19, collapsed: 19, at: expect.any(Number) }]);
      expect(runs.find((r) => r.task === 7)!.at - last).toBeGreaterThanOrEqual(450);
      expect(runs.filter((r) => r.task === 8)).toMatchObject([{ n: 100, collapsed: 0 }]);
      const ran = ds.filter((d) => d.collapsedInto === undefined);
      expect(ran).toHaveLength(2);
      // Each collapsed one leads, through collapsedInto (on Redis possibly by way of a later one of
      // the burst that was collapsed in turn), to the delivery that ran.
      const byId = new Map(ds.map((d) => [d.id, d]));
      const final = (d: DeliveryRecord): DeliveryRecord => (d.collapsedInto === undefined ? d : final(byId.get(d.collapsedInto)!));
      const into = ran.find((d) => d.attempts === 1 && ds.filter((x) => x !== d && final(x) === d).length === 19);
      expect(into).toBeDefined();
      expect(ds.filter((d) => d.collapsedInto !== undefined).every((d) => d.status === 'done' && d.attempts === 0)).toBe(true);
    },
  );

  it.skipIf(skip)('a key function that throws or gives no key leaves the event outside the flow, said in the log', async () => {
    const ran: number[] = [];
    const a = await app([
      defineHandler({
        name: 'keyless',
        on: 12,
        orderBy: (e) => {
          if (e.taskID === 1) throw new Error('no key for you');
          return e.taskID === 2 ? ({} as unknown as string) : undefined;
        },
        handle({ event }) {
          ran.push(event.taskID!);
        },
      }),
    ]);
    await a.post([1, 2, 3].map((t) => ({ EventID: 12, TaskID: t })));
    await allFinished(a, 3);
    expect(ran.sort()).toEqual([1, 2, 3]);
    const warned = a.logs.lines.filter((l) => l.handler === 'keyless' && l.field === 'orderBy');
    expect(warned).toHaveLength(1); // once a minute per handler
    expect(warned[0]!.problem).toBe('it threw: no key for you');
  });
});

describe.skipIf(!hasRedis)('ordering across instances', () => {
  it('two instances on one Redis keep each task in order between them', async () => {
    const random = seeded(11);
    const { w, handler } = orderWatch(() => Math.floor(random() * 21));
    const url = await redisUrl();
    const env = { ...ROUTER, QUEUE: 'redis', REDIS_URL: url };
    const a = await makeApp(env, { handlers: [load(handler)] });
    const b = await makeApp(env, { handlers: [load(handler)] });
    apps.push(a, b);
    const ranOn = { a: 0, b: 0 };
    for (let i = 0; i < 500; i += 10) expect((await (i % 20 === 0 ? a : b).post(burst(i, 10))).statusCode).toBe(202);
    await allFinished(a, 500);
    expectInOrder(w.seen, 500);
    expect(w.mostPerTask).toBe(1);
    expect(w.most).toBeGreaterThan(1);
    for (const [who, x] of [
      ['a', a],
      ['b', b],
    ] as const) {
      const m = await x.app.inject({ method: 'GET', url: '/metrics' });
      ranOn[who] = [...m.body.matchAll(/^hubex_router_deliveries_total\{[^}]*handler="ordered"[^}]*\} (\d+)/gm)].reduce(
        (n, r) => n + Number(r[1]),
        0,
      );
    }
    expect(ranOn.a + ranOn.b).toBeGreaterThanOrEqual(500);
    expect(Math.min(ranOn.a, ranOn.b)).toBeGreaterThan(0);
  });
});

describe('the examples of docs/handlers.md', () => {
  it('task-timeline keeps each task in order; task-settled runs once per burst with the last event', async () => {
    const catalogue = new EventCatalogue();
    catalogue.register({ id: 12, name: 'task.created', entity: 'task' });
    catalogue.register({ id: 13, name: 'task.stage_changed', entity: 'task' });
    const a = await makeApp(ROUTER, { handlers: [load(taskTimeline), load(taskSettled)], catalogue, loadCatalogue: false });
    apps.push(a);
    await a.post({ EventID: 12, TaskID: 1, TaskStageID: 1 });
    for (const stage of [2, 3, 4]) await a.post({ EventID: 13, TaskID: 1, TaskStageID: stage });
    await a.post({ EventID: 12, TaskID: 2, TaskStageID: 1 });
    const settled = await waitFor(
      () => a.logs.lines.filter((l) => l.msg === 'task settled'),
      (ls) => ls.length === 2,
      { what: 'two settled runs', timeoutMs: 10_000 },
    );
    expect(settled.map((l) => [l.task, l.stage, l.collapsed])).toEqual([
      [1, 4, 3],
      [2, 1, 0],
    ]);
    const timeline = a.logs.lines.filter((l) => l.msg === 'task changed' && l.task === 1).map((l) => l.stage);
    expect(timeline).toEqual([1, 2, 3, 4]);
  });
});

describe('orderBy and debounce read at load', () => {
  const base = { name: 'x', on: 'task.created', handle() {} };
  it.each([
    [{ orderBy: 'taskID' }, 'orderBy is not a function'],
    [{ debounce: { key: (e: { taskID: number }) => e.taskID } }, 'debounce.periodMs must be'],
    [{ debounce: { key: 'taskID', periodMs: 100 } }, 'debounce.key must be a function'],
    [{ debounce: { key: () => 1, periodMs: 100, maxWaitMs: 50 } }, 'debounce.maxWaitMs must be'],
    [{ debounce: { key: () => 1, periodMs: 100, period: 5 } }, 'debounce has no field period'],
    [{ orderBy: () => 1, debounce: { key: () => 1, periodMs: 100 } }, 'orderBy or debounce, not both'],
  ])('refuses %j', (extra, message) => {
    expect(() => checkHandler({ ...base, ...extra }, 'x.mjs')).toThrow(HandlerLoadError);
    expect(() => checkHandler({ ...base, ...extra }, 'x.mjs')).toThrow(message);
  });

  it('gives debounce a maxWaitMs of 10 x periodMs when it has none', () => {
    const h = checkHandler({ ...base, debounce: { key: () => 1, periodMs: 200 } }, 'x.mjs');
    expect(h.debounce).toMatchObject({ periodMs: 200, maxWaitMs: 2000 });
  });
});
