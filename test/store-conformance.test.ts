// What both back ends promise (src/store/contract.ts), written once and run on each: a real SQLite
// file in a temporary folder, and a real redis-server. Each test drives a back end through the
// contract alone: accept, its worker running deliveries with a RunDelivery the test writes, and
// the tools' reads, replay and prune. What only one back end has is tested in its own files.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { EventCatalogue } from '../src/events/catalogue.js';
import type { HubexEvent } from '../src/events/event.js';
import { createNormalizer } from '../src/events/normalize.js';
import { taskModifiedEvent, taskModifiedId, taskModifiedRaw } from '../src/events/synthesized.js';
import { createLogger } from '../src/observability/log.js';
import type { Backend, DeliveryRecord, Outcome, RunDelivery, RunnableDelivery, Store } from '../src/store/contract.js';
import { createRedisBackend } from '../src/store/redis/index.js';
import { createSqliteBackend } from '../src/store/sqlite/index.js';
import { hasRedis, type RedisServer, startRedis } from './support/redis.js';
import { tempDir } from './support/test-app.js';
import { waitFor } from './support/wait.js';

const log = createLogger('silent');
const normalize = createNormalizer({ catalogue: new EventCatalogue(), maxBatch: 1000 });
const event = (body: Record<string, unknown>): HubexEvent => normalize(body, JSON.stringify(body))[0]!;
/** One event a body, its tenant and handlers. */
const incoming = (bodies: Record<string, unknown>[], handlers: string[] = [], tenant = 'default') =>
  bodies.map((b) => ({ event: event(b), tenant, handlers }));

/** The test's clock, real time plus what a test moves it by: the stores and their workers read it. */
let offset = 0;
const now = () => Date.now() + offset;

interface Made {
  readonly backend: Backend;
  /** Another back end on the same data (another instance, or the process after a restart). */
  again(): Backend;
}

let redis: RedisServer | undefined;
let prefixes = 0;
const opened: Backend[] = [];
const cleanups: (() => void)[] = [];

const BACKENDS: [name: string, make: (o: { leaseMs: number; concurrency?: number }) => Made][] = [
  [
    'sqlite',
    (o) => {
      const { dir, remove } = tempDir();
      cleanups.push(remove);
      const make = () =>
        createSqliteBackend({ dataDir: dir, log, now, concurrency: o.concurrency ?? 4, leaseMs: o.leaseMs, dedupWindowMs: 60_000 });
      return { backend: make(), again: make };
    },
  ],
  [
    'redis',
    (o) => {
      const prefix = `conformance-${process.pid}-${++prefixes}`;
      const make = () =>
        createRedisBackend({
          url: redis!.url,
          prefix,
          log,
          now,
          concurrency: o.concurrency ?? 4,
          leaseMs: o.leaseMs,
          maxAttempts: 3,
          dedupWindowMs: 60_000,
        });
      return { backend: make(), again: make };
    },
  ],
];

beforeAll(async () => {
  if (hasRedis) redis = await startRedis();
});
afterAll(async () => {
  await redis?.close();
});
afterEach(async () => {
  for (const b of opened.splice(0).reverse()) {
    await b.worker.stop(0).catch(() => {});
    await b.store.close().catch(() => {});
  }
  for (const c of cleanups.splice(0)) c();
  offset = 0;
});

/** A RunDelivery that answers from a script by handler; every run is recorded. */
function runner(script: (d: RunnableDelivery) => Outcome | Promise<Outcome>): { run: RunDelivery; runs: RunnableDelivery[] } {
  const runs: RunnableDelivery[] = [];
  const run: RunDelivery = async (d) => {
    runs.push(d);
    const startedAt = now();
    const outcome = await script(d);
    return { outcome, startedAt, ms: now() - startedAt, work: undefined };
  };
  return { run, runs };
}

const settled = (store: Store, n: number) =>
  waitFor(
    () => store.list({ limit: 1000 }),
    (ds: DeliveryRecord[]) => ds.length === n && ds.every((d) => d.status === 'done' || d.status === 'dead'),
    { timeoutMs: 15_000, what: `${n} settled deliveries` },
  );

describe.each(BACKENDS)('the %s back end', (name, make) => {
  const skip = name === 'redis' && !hasRedis;
  const open = (o: { leaseMs?: number; concurrency?: number } = {}) => {
    const made = make({ leaseMs: o.leaseMs ?? 15_000, ...o });
    opened.push(made.backend);
    return {
      ...made,
      again: () => {
        const b = made.again();
        opened.push(b);
        return b;
      },
    };
  };

  it.skipIf(skip)(
    'takes a repeat of a payload id, or of a body within the window, as a duplicate: one event, no second delivery',
    async () => {
      const { store } = open().backend;
      const first = await store.accept(
        incoming(
          [
            { EventID: 40, AssetID: 1, EventUID: 'u-1' },
            { EventID: 41, AssetID: 2 },
          ],
          ['h'],
        ),
      );
      expect(first).toMatchObject({ accepted: 2, duplicates: 0 });
      const again = await store.accept(
        incoming(
          [
            { EventID: 40, AssetID: 1, EventUID: 'u-1' },
            { EventID: 41, AssetID: 2 },
          ],
          ['h'],
        ),
      );
      expect(again).toMatchObject({ accepted: 0, duplicates: 2 });
      expect(again.events.map((e) => e.id)).toEqual(first.events.map((e) => e.id));
      const events = await store.listEvents();
      expect(events).toHaveLength(2);
      expect(events.map((e) => e.duplicates)).toEqual([1, 1]);
      expect((await store.list()).length).toBe(2);
      // Past the window, the same body (no id of its own) is a new event.
      offset += 61_000;
      const later = await store.accept(incoming([{ EventID: 41, AssetID: 2 }], ['h']));
      expect(later).toMatchObject({ accepted: 1, events: [{ id: `${first.events[1]!.id}.2`, duplicate: false }] });
    },
  );

  it.skipIf(skip)('fans an event out to one delivery per handler, keeps one with none as unrouted, and carries the tenant', async () => {
    const { store, worker } = open().backend;
    await store.accept([...incoming([{ EventID: 40, AssetID: 1 }], ['a', 'b']), ...incoming([{ EventID: 42, AssetID: 2 }], [], 'acme')]);
    expect(await store.counts()).toMatchObject({ pending: 2, unroutedEvents: 1 });
    const { run, runs } = runner(() => ({ kind: 'done' }));
    worker.start(run);
    const done = await settled(store, 2);
    expect(done.map((d) => d.handler).sort()).toEqual(['a', 'b']);
    expect(runs.map((r) => r.event.tenant)).toEqual(['default', 'default']);
    const [routed, unrouted] = await store.listEvents();
    expect(routed).toMatchObject({ routed: 2, tenant: 'default', name: 'asset.created' });
    expect(unrouted).toMatchObject({ routed: 0, tenant: 'acme' });
    expect((await store.showEvent(unrouted!.id))?.tenant).toBe('acme');
    expect(await store.counts()).toMatchObject({ pending: 0, running: 0, done: 2, dead: 0, unroutedEvents: 1 });
  });

  it.skipIf(skip)('retries a failed run when it is due, and keeps every attempt in the history', async () => {
    const { store, worker } = open().backend;
    await store.accept(incoming([{ EventID: 40, AssetID: 1 }], ['flaky']));
    const error = { message: 'HubEx is down', errorClass: 'HubexApiError', traceId: 't-1' };
    const { run, runs } = runner((d) => (d.attempt === 1 ? { kind: 'retry', runAt: now() + 20, error } : { kind: 'done' }));
    worker.start(run);
    const [d] = await settled(store, 1);
    expect(runs.map((r) => r.attempt)).toEqual([1, 2]);
    expect(d).toMatchObject({ status: 'done', attempts: 2, lastError: null });
    const detail = await store.show(d!.id);
    expect(detail?.history.map((h) => [h.attempt, h.outcome, h.error?.message ?? null])).toEqual([
      [1, 'retry', 'HubEx is down'],
      [2, 'done', null],
    ]);
    expect(detail?.event).toMatchObject({ name: 'asset.created', tenant: 'default' });
  });

  it.skipIf(skip)(
    'sends a dead run to the dead letters, and replays them (by id, and all of one handler) with the history kept',
    async () => {
      const { store, worker } = open().backend;
      await store.accept(
        incoming(
          [
            { EventID: 40, AssetID: 1 },
            { EventID: 40, AssetID: 2 },
          ],
          ['picky', 'other'],
        ),
      );
      let fixed = false;
      const { run } = runner((d) =>
        fixed || d.handler === 'other'
          ? { kind: 'done' }
          : { kind: 'dead', error: { message: 'no such task', errorClass: 'PermanentError' } },
      );
      worker.start(run);
      await settled(store, 4);
      const dead = await store.list({ status: 'dead' });
      expect(dead.map((d) => d.handler)).toEqual(['picky', 'picky']);
      expect(dead[0]).toMatchObject({ lastError: { message: 'no such task', errorClass: 'PermanentError' } });
      expect(await store.counts()).toMatchObject({ dead: 2, done: 2 });
      expect(await store.backlog()).toMatchObject({ pending: 0, running: 0, dead: 2 });
      fixed = true;
      expect(await store.replay({ ids: [dead[0]!.id, 'no-such-delivery'] })).toEqual({
        replayed: [dead[0]!.id],
        skipped: ['no-such-delivery'],
      });
      await waitFor(
        () => store.show(dead[0]!.id),
        (d) => d?.status === 'done',
        { what: 'the replayed one done' },
      );
      expect((await store.replay({ allDead: true, handler: 'other' })).replayed).toEqual([]);
      expect((await store.replay({ allDead: true, handler: 'picky' })).replayed).toEqual([dead[1]!.id]);
      const detail = await waitFor(
        () => store.show(dead[1]!.id),
        (d) => d?.status === 'done',
        { what: 'the second done' },
      );
      expect(detail).toMatchObject({ replays: 1, attempts: 1 });
      expect(detail!.history.map((h) => [h.cycle, h.outcome])).toEqual([
        [0, 'dead'],
        [1, 'done'],
      ]);
    },
  );

  it.skipIf(skip)('runs again, elsewhere, a delivery whose run was cut short (the process died): at least once, never lost', async () => {
    const first = open({ leaseMs: 600 });
    await first.backend.store.accept(incoming([{ EventID: 40, AssetID: 1 }], ['h']));
    const hung = runner(() => new Promise<Outcome>(() => {})); // never returns: the process "dies" during the run
    first.backend.worker.start(hung.run);
    await waitFor(
      () => hung.runs.length,
      (n) => n === 1,
      { what: 'the first run to start' },
    );
    first.backend.worker.abandon(); // as after an uncaught exception: not released, its lease runs out
    await first.backend.worker.stop(0);
    offset += 1000; // past the lease (BullMQ's lock on Redis lapses in real time, 600 ms)
    const other = first.again();
    const { run, runs } = runner(() => ({ kind: 'done' }));
    other.worker.start(run);
    const [d] = await settled(other.store, 1);
    expect(runs).toHaveLength(1);
    expect(d).toMatchObject({ status: 'done' });
    expect(runs[0]!.attempt).toBeGreaterThanOrEqual(1);
  });

  it.skipIf(skip)('a shutdown past its deadline aborts a run and releases it: due again, the attempt not counted', async () => {
    const { store, worker } = open().backend;
    await store.accept(incoming([{ EventID: 40, AssetID: 1 }], ['slow']));
    // A run that lasts until it is aborted, and then says so, as src/delivery/runner.ts does.
    let aborted: AbortSignal | undefined;
    worker.start(async (_d, controller) => {
      aborted = controller.signal;
      const startedAt = now();
      await new Promise((resolve) => controller.signal.addEventListener('abort', resolve, { once: true }));
      return {
        outcome: { kind: 'released', error: { message: 'stopping', errorClass: 'ShutdownAbortError' } },
        startedAt,
        ms: now() - startedAt,
        work: undefined,
      };
    });
    await waitFor(
      () => aborted,
      (a) => a !== undefined,
      { what: 'the run to start' },
    );
    await worker.stop(50);
    expect(aborted?.aborted).toBe(true);
    const [d] = await store.list();
    expect(d).toMatchObject({ status: 'pending', attempts: 0 });
  });

  it.skipIf(skip)('pages through deliveries and events without overlap or gaps', async () => {
    const { store } = open().backend;
    await store.accept(
      incoming(
        Array.from({ length: 25 }, (_, i) => ({ EventID: 40, AssetID: i })),
        ['h'],
      ),
    );
    const seen: DeliveryRecord['id'][] = [];
    let after: DeliveryRecord['id'] | undefined;
    for (;;) {
      const page = await store.list({ limit: 10, afterId: after });
      if (page.length === 0) break;
      seen.push(...page.map((d) => d.id));
      after = page.at(-1)!.id;
    }
    expect(seen).toHaveLength(25);
    expect(new Set(seen).size).toBe(25);
    // Newest first (the dashboard's order): the same deliveries, the other way round.
    const newest: DeliveryRecord['id'][] = [];
    for (let before: DeliveryRecord['id'] | undefined; ;) {
      const page = await store.list({ limit: 10, afterId: before, newestFirst: true });
      if (page.length === 0) break;
      newest.push(...page.map((d) => d.id));
      before = page.at(-1)!.id;
    }
    expect(newest).toEqual([...seen].reverse());
    const events: number[] = [];
    let afterSeq = 0;
    for (;;) {
      const page = await store.listEvents({ limit: 7, afterSeq });
      if (page.length === 0) break;
      events.push(...page.map((e) => e.seq));
      afterSeq = page.at(-1)!.seq;
    }
    expect(events).toHaveLength(25);
    expect([...events].sort((a, b) => a - b)).toEqual(events);
    expect(await store.list({ handler: 'nobody' })).toEqual([]);
    expect((await store.list({ eventName: 'asset.created', limit: 1000 })).length).toBe(25);
  });

  it.skipIf(skip)('prunes finished events received before the cutoff, and keeps dead letters and their events', async () => {
    const { store, worker } = open().backend;
    const old = now();
    await store.accept(
      incoming(
        [
          { EventID: 40, AssetID: 1 },
          { EventID: 40, AssetID: 2 },
        ],
        ['h'],
      ),
    );
    await store.accept(incoming([{ EventID: 40, AssetID: 3 }])); // unrouted, old
    const { run } = runner((d) =>
      d.event.raw.includes('"AssetID":2') ? { kind: 'dead', error: { message: 'x', errorClass: 'E' } } : { kind: 'done' },
    );
    worker.start(run);
    await settled(store, 2);
    offset += 10 * 86_400_000;
    await store.accept(incoming([{ EventID: 40, AssetID: 4 }])); // recent
    const pruned = await store.prune(old + 86_400_000);
    expect(pruned.events).toBe(2); // the done one and the unrouted one
    expect(await store.listEvents()).toHaveLength(2); // the dead letter's event, and the recent one
    expect((await store.list()).map((d) => d.status)).toEqual(['dead']);
  });

  it.skipIf(skip)('searches events newest first, by task, name and receive time, a page at a time', async () => {
    const { store } = open().backend;
    const start = now();
    // 12 events, a minute apart: tasks 1, 2, 3 in turn, named task.created (12) or asset.created (40).
    for (let i = 0; i < 12; i++) {
      offset += 60_000;
      await store.accept(
        incoming([i % 2 === 0 ? { EventID: 12, TaskID: (i % 3) + 1, n: i } : { EventID: 40, AssetID: 9, TaskID: (i % 3) + 1, n: i }]),
      );
    }
    const n = (items: readonly { id: string }[]) => items.length;
    const all = await store.searchEvents({});
    expect(n(all.items)).toBe(12);
    expect(all.next).toBeNull();
    expect(all.items.map((e) => e.seq)).toEqual([...all.items.map((e) => e.seq)].sort((a, b) => b - a)); // newest first

    const task2 = await store.searchEvents({ taskID: 2 });
    expect(task2.items.map((e) => e.entity)).toEqual(Array(2).fill({ type: 'task', id: '2' })); // the asset ones name asset 9
    expect((await store.searchEvents({ name: 'asset.created' })).items).toHaveLength(6);

    // Received in minutes 4 to 7 after the start (4 events; the bounds fall between two), newest first, two to a page.
    const span = { receivedFrom: start + 3.5 * 60_000, receivedBefore: start + 7.5 * 60_000 };
    const minute = (e: { receivedAt: number }) => Math.round((e.receivedAt - start) / 60_000);
    const first = await store.searchEvents({ ...span, limit: 2 });
    expect(first.items.map(minute)).toEqual([7, 6]);
    expect(first.next).not.toBeNull();
    const second = await store.searchEvents({ ...span, limit: 2, beforeSeq: first.next! });
    expect(second.items.map(minute)).toEqual([5, 4]);
    const third = second.next === null ? { items: [] } : await store.searchEvents({ ...span, limit: 2, beforeSeq: second.next });
    expect(third.items).toEqual([]);
  });

  it.skipIf(skip)("keeps the reconciler's cursor per tenant and name, across a restart", async () => {
    const made = open();
    const { store } = made.backend;
    expect(await store.readCursor('default', 'tasks')).toBeNull();
    await store.writeCursor('default', 'tasks', '2026-12-03T06:00:00.000Z');
    await store.writeCursor('other', 'tasks', '2026-01-01T00:00:00.000Z');
    await store.writeCursor('default', 'tasks', '2026-12-03T06:01:00.000Z');
    await store.close();
    const again = made.again().store;
    expect(await again.readCursor('default', 'tasks')).toBe('2026-12-03T06:01:00.000Z');
    expect(await again.readCursor('other', 'tasks')).toBe('2026-01-01T00:00:00.000Z');
    expect(await again.readCursor('default', 'assets')).toBeNull();
  });

  it.skipIf(skip)('gives a lease to one holder at a time: renewed by it, free once released or run out', async () => {
    const made = open();
    const a = made.backend.store;
    // Redis: another instance; SQLite serves one process, whose holders share its store.
    const b = name === 'redis' ? made.again().store : a;
    expect(await a.lease('reconcile', 'A', 60_000)).toBe(true);
    expect(await b.lease('reconcile', 'B', 60_000)).toBe(false);
    expect(await a.lease('reconcile', 'A', 60_000)).toBe(true); // renewed
    expect(await b.lease('other', 'B', 60_000)).toBe(true); // another name is another lease
    await b.releaseLease('reconcile', 'B'); // not B's: nothing happens
    expect(await b.lease('reconcile', 'B', 60_000)).toBe(false);
    await a.releaseLease('reconcile', 'A');
    expect(await b.lease('reconcile', 'B', 300)).toBe(true);
    await waitFor(
      () => a.lease('reconcile', 'A', 60_000),
      (got: boolean) => got,
      { timeoutMs: 5000, what: 'the lease to run out' },
    );
  });

  it.skipIf(skip)(
    'says when each task last had a pushed event: not the router-made task.modified, nor another tenant, nor before the moment',
    async () => {
      const { store } = open().backend;
      const before = now();
      await store.accept(incoming([{ EventID: 12, TaskID: 1, n: 1 }]));
      await store.accept(incoming([{ EventID: 12, TaskID: 2, n: 1 }], [], 'other'));
      await store.accept(incoming([{ EventID: 40, AssetID: 3 }]));
      const polled = taskModifiedEvent(
        taskModifiedId(4, before),
        taskModifiedRaw(4, { lastModified: new Date(before).toISOString() }),
        new Date(),
      );
      await store.accept([{ event: polled, tenant: 'default', handlers: [] }]);
      const got = await store.lastPushedTasks('default', [1, 2, 3, 4, 5], before - 1000);
      expect([...got.keys()]).toEqual([1]);
      expect(got.get(1)).toBeGreaterThanOrEqual(before);
      expect(got.get(1)).toBeLessThanOrEqual(now());
      expect((await store.lastPushedTasks('other', [2], before - 1000)).get(2)).toBeGreaterThanOrEqual(before);
      expect((await store.lastPushedTasks('default', [1], now() + 60_000)).size).toBe(0);
      expect((await store.lastPushedTasks('default', [], 0)).size).toBe(0);
    },
  );

  it.skipIf(skip)('answers health, and after close refuses to accept (StoreUnavailableError, never a silent loss)', async () => {
    const { store } = open().backend;
    expect(await store.health()).toEqual({ ok: true });
    await store.close();
    const err = await store.accept(incoming([{ EventID: 40, AssetID: 1 }])).catch((e: unknown) => e);
    expect((err as Error).name).toBe('StoreUnavailableError');
    expect((await store.health()).ok).toBe(false);
  });
});

if (!hasRedis && !process.env.CI)
  process.stdout.write('redis-server not found: the Redis half of test/store-conformance.test.ts is skipped\n');
