// Delivery: fan-out at accept, matching, where, retries, dead letters, timeouts, replay,
// graceful shutdown. Real SQLite in a temporary folder; the app built in process.
import { afterEach, describe, expect, it } from 'vitest';
import { defineHandler, type HandlerContext } from '../src/delivery/define-handler.js';
import { checkHandler } from '../src/delivery/loader.js';
import { HandlerTimeoutError, PermanentError } from '../src/errors.js';
import { listDeliveries, OperationError, replayDeliveries, showDelivery } from '../src/delivery/operations.js';
import type { DeliveryRecord } from '../src/store/contract.js';
import { readEvents } from './support/db.js';
import { makeApp, type TestApp, tempDir } from './support/test-app.js';
import { sleep, waitFor } from './support/wait.js';

const FAST = { RETRY_BASE_MS: '5', RETRY_MAX_MS: '20', MAX_ATTEMPTS: '3', HANDLER_TIMEOUT_MS: '2000' };

function handler(name: string, on: unknown, handle: (ctx: HandlerContext) => unknown, where?: (e: HandlerContext['event']) => boolean) {
  return checkHandler(defineHandler({ name, on: on as never, handle, ...(where ? { where } : {}) }), `${name}.ts`);
}

const apps: TestApp[] = [];
afterEach(async () => {
  await Promise.all(apps.splice(0).map((a) => a.close()));
});

async function app(env: Record<string, string>, handlers: ReturnType<typeof handler>[], dir?: string) {
  const a = await makeApp({ ...FAST, ...env }, { handlers }, dir);
  apps.push(a);
  return a;
}

const settled = (ds: DeliveryRecord[]) => ds.every((d) => d.status === 'done' || d.status === 'dead');

async function allSettled(a: TestApp, count: number) {
  return waitFor(
    () => a.app.store.list({ limit: 1000 }),
    (ds) => ds.length === count && settled(ds),
    { what: `${count} settled deliveries` },
  );
}

describe('fan-out and matching', () => {
  it("makes one delivery per matching handler, by name, by numeric id and by '*', in the accept's transaction", async () => {
    const seen: string[] = [];
    const record =
      (label: string) =>
      ({ event }: HandlerContext) =>
        void seen.push(`${label}:${event.name}`);
    const a = await app({}, [
      handler('by-name', 'asset.created', record('by-name')),
      handler('by-id', 41, record('by-id')),
      handler('by-old-name', 'event.42', record('by-old-name')), // 42 is asset.deleted: matched through the catalogue
      handler('all', '*', record('all')),
    ]);
    const res = await a.post([
      { EventID: 40, AssetID: 1 },
      { EventID: 41, AssetID: 1 },
      { EventID: 42, AssetID: 1 },
    ]);
    expect(res.statusCode).toBe(202);
    expect(readEvents(a.dir).map((r) => r.routed)).toEqual([2, 2, 2]);
    await allSettled(a, 6);
    expect(seen.sort()).toEqual([
      'all:asset.created',
      'all:asset.deleted',
      'all:asset.updated',
      'by-id:asset.updated',
      'by-name:asset.created',
      'by-old-name:asset.deleted',
    ]);
    const ds = await a.app.store.list();
    expect(ds.every((d) => d.status === 'done' && d.attempts === 1)).toBe(true);
  });

  it('keeps an event that no handler matches as unrouted, with no delivery', async () => {
    const a = await app({}, [handler('only-tasks', 'task.created', () => undefined)]);
    expect((await a.post({ EventID: 40, AssetID: 7 })).statusCode).toBe(202);
    expect(readEvents(a.dir)).toMatchObject([{ name: 'asset.created', routed: 0 }]);
    expect(await a.app.store.list()).toEqual([]);
    expect(await a.app.store.counts()).toMatchObject({ unroutedEvents: 1, pending: 0 });
  });

  it('a duplicate webhook makes no second delivery', async () => {
    let runs = 0;
    const a = await app({}, [handler('count', '*', () => void runs++)]);
    await a.post({ EventID: 40, AssetID: 8 });
    expect((await a.post({ EventID: 40, AssetID: 8 })).statusCode).toBe(200);
    await allSettled(a, 1);
    await sleep(50);
    expect(runs).toBe(1);
  });

  it('runs where at dispatch: false finishes the delivery without running it, a throw is a failed attempt', async () => {
    const ran: number[] = [];
    const a = await app({ MAX_ATTEMPTS: '2' }, [
      handler(
        'even-assets',
        '*',
        ({ event }) => void ran.push(event.assetID!),
        (e) => {
          if (e.assetID === 3) throw new Error('where broke');
          return e.assetID! % 2 === 0;
        },
      ),
    ]);
    await a.post([1, 2, 3].map((AssetID) => ({ EventID: 40, AssetID })));
    const ds = await allSettled(a, 3);
    expect(ran).toEqual([2]);
    const byAsset = async (id: number) => {
      for (const d of ds) if (JSON.parse((await a.app.store.show(d.id))!.event.raw).AssetID === id) return a.app.store.show(d.id);
      throw new Error('not found');
    };
    expect(await byAsset(1)).toMatchObject({ status: 'done', history: [{ outcome: 'skipped' }] });
    expect(await byAsset(2)).toMatchObject({ status: 'done', history: [{ outcome: 'done' }] });
    expect(await byAsset(3)).toMatchObject({
      status: 'dead',
      history: [{ outcome: 'retry', error: { message: 'where broke' } }, { outcome: 'dead' }],
    });
  });

  it('a failing handler is retried alone: the one that succeeded on the same event does not run again', async () => {
    let okRuns = 0;
    let flakyRuns = 0;
    const a = await app({ MAX_ATTEMPTS: '5' }, [
      handler('ok', '*', () => void okRuns++),
      handler('flaky', '*', () => {
        if (++flakyRuns < 3) throw new Error(`flaky failure ${flakyRuns}`);
      }),
    ]);
    await a.post({ EventID: 40, AssetID: 9 });
    const ds = await allSettled(a, 2);
    expect(ds.map((d) => [d.handler, d.status, d.attempts])).toEqual([
      ['ok', 'done', 1],
      ['flaky', 'done', 3],
    ]);
    expect(okRuns).toBe(1);
    expect(flakyRuns).toBe(3);
  });
});

describe('retries and dead letters', () => {
  it('retries with backoff, then dead after MAX_ATTEMPTS, each attempt with its error', async () => {
    const attempts: number[] = [];
    const a = await app({ MAX_ATTEMPTS: '3' }, [
      handler('always-fails', '*', ({ attempt }) => {
        attempts.push(attempt);
        throw Object.assign(new Error(`HubEx answered 503 (attempt ${attempt})`), { status: 503, traceIdentifier: `0HN-${attempt}` });
      }),
    ]);
    await a.post({ EventID: 40, AssetID: 10 });
    const [d] = await allSettled(a, 1);
    expect(attempts).toEqual([1, 2, 3]);
    const detail = await a.app.store.show(d!.id);
    expect(detail).toMatchObject({
      status: 'dead',
      attempts: 3,
      lastError: { message: 'HubEx answered 503 (attempt 3)', errorClass: 'Error', traceId: '0HN-3' },
    });
    expect(detail!.history.map((h) => [h.attempt, h.outcome, h.error?.traceId])).toEqual([
      [1, 'retry', '0HN-1'],
      [2, 'retry', '0HN-2'],
      [3, 'dead', '0HN-3'],
    ]);
  });

  const permanent: [string, () => Error][] = [
    ['a PermanentError', () => new PermanentError('the task is closed')],
    ...[400, 403, 404, 409, 422].map((status): [string, () => Error] => [
      `HubEx ${status}`,
      () => Object.assign(new Error(`HubEx answered ${status}`), { status }),
    ]),
  ];
  it.each(permanent)('%s goes to the dead letters at once', async (_label, make) => {
    let runs = 0;
    const a = await app({ MAX_ATTEMPTS: '5' }, [
      handler('permanent', '*', () => {
        runs++;
        throw make();
      }),
    ]);
    await a.post({ EventID: 40, AssetID: 11 });
    const [d] = await allSettled(a, 1);
    expect(d).toMatchObject({ status: 'dead', attempts: 1 });
    expect(runs).toBe(1);
  });

  it('a 429 is retried, not before its Retry-After (up to RETRY_MAX_MS)', async () => {
    const startedAt: number[] = [];
    const a = await app({ MAX_ATTEMPTS: '5', RETRY_MAX_MS: '1000' }, [
      handler('rate-limited', '*', () => {
        startedAt.push(Date.now());
        if (startedAt.length === 1) throw Object.assign(new Error('HubEx answered 429'), { status: 429, retryAfterMs: 300 });
      }),
    ]);
    await a.post({ EventID: 40, AssetID: 12 });
    await allSettled(a, 1);
    expect(startedAt).toHaveLength(2);
    expect(startedAt[1]! - startedAt[0]!).toBeGreaterThanOrEqual(290);
  });

  it('a run over HANDLER_TIMEOUT_MS is aborted through ctx.signal and counts as a failed attempt', async () => {
    const reasons: unknown[] = [];
    const a = await app({ HANDLER_TIMEOUT_MS: '100', MAX_ATTEMPTS: '2' }, [
      handler(
        'slow',
        '*',
        ({ signal }) =>
          new Promise((_resolve, reject) => {
            signal.addEventListener('abort', () => {
              reasons.push(signal.reason);
              reject(signal.reason);
            });
          }),
      ),
    ]);
    await a.post({ EventID: 40, AssetID: 13 });
    const [d] = await allSettled(a, 1);
    expect(reasons).toHaveLength(2);
    expect(reasons.every((r) => r instanceof HandlerTimeoutError)).toBe(true);
    const detail = await a.app.store.show(d!.id);
    expect(detail!.history.map((h) => [h.outcome, h.error?.errorClass])).toEqual([
      ['retry', 'HandlerTimeoutError'],
      ['dead', 'HandlerTimeoutError'],
    ]);
    expect(detail!.history[0]!.finishedAt - detail!.history[0]!.startedAt).toBeGreaterThanOrEqual(95);
  });

  it('a handler that ignores the abort keeps its slot until it returns, and its delivery does not run twice at once', async () => {
    let running = 0;
    let most = 0;
    const a = await app({ HANDLER_TIMEOUT_MS: '50', HANDLER_CONCURRENCY: '1', MAX_ATTEMPTS: '2' }, [
      handler('stubborn', '*', async () => {
        most = Math.max(most, ++running);
        await sleep(300); // ignores ctx.signal
        running--;
      }),
    ]);
    await a.post({ EventID: 40, AssetID: 14 });
    await allSettled(a, 1);
    await waitFor(
      () => a.app.dispatcher!.active,
      (n) => n === 0,
      { what: 'the lingering run to return' },
    );
    expect(most).toBe(1);
  });
});

describe('replay', () => {
  it('replays one dead delivery, then all the dead ones; each runs again from attempt 1 and keeps its history', async () => {
    let broken = true;
    const runs: string[] = [];
    const a = await app({ MAX_ATTEMPTS: '2' }, [
      handler('fragile', '*', ({ event, attempt }) => {
        runs.push(`${event.assetID}#${attempt}`);
        if (broken) throw new Error('downstream is down');
      }),
    ]);
    await a.post([21, 22, 23].map((AssetID) => ({ EventID: 40, AssetID })));
    const dead = await allSettled(a, 3);
    expect(dead.every((d) => d.status === 'dead')).toBe(true);
    expect(await a.app.store.list({ status: 'dead' })).toHaveLength(3);

    const listed = await listDeliveries(a.app.store, { status: 'dead' });
    expect(listed.map((d) => d.lastError?.message)).toEqual(['downstream is down', 'downstream is down', 'downstream is down']);

    broken = false;
    runs.length = 0;
    const one = await replayDeliveries(a.app.store, { ids: [String(dead[0]!.id), 999_999] });
    expect(one).toEqual({ replayed: [dead[0]!.id], skipped: [999_999] });
    await waitFor(
      () => a.app.store.show(dead[0]!.id),
      (d) => d?.status === 'done',
      { what: 'the replayed delivery' },
    );
    expect(runs).toEqual(['21#1']);
    const detail = await showDelivery(a.app.store, String(dead[0]!.id));
    expect(detail).toMatchObject({ status: 'done', attempts: 1, replays: 1, lastError: null });
    expect(detail!.history.map((h) => [h.cycle, h.attempt, h.outcome])).toEqual([
      [0, 1, 'retry'],
      [0, 2, 'dead'],
      [1, 1, 'done'],
    ]);

    const progress: number[] = [];
    const all = await replayDeliveries(a.app.store, { allDead: true }, (p) => progress.push(p.done));
    expect(progress).toEqual([2]);
    expect([...all.replayed].sort()).toEqual([dead[1]!.id, dead[2]!.id].sort());
    await allSettled(a, 3);
    expect((await a.app.store.list()).map((d) => d.status)).toEqual(['done', 'done', 'done']);
    expect(runs.sort()).toEqual(['21#1', '22#1', '23#1']);
    expect(await a.app.store.counts()).toMatchObject({ dead: 0, done: 3 });
  });

  it('replays only the dead letters of one handler or one event name when asked', async () => {
    const a = await app({ MAX_ATTEMPTS: '1' }, [
      handler('a', '*', () => {
        throw new Error('a fails');
      }),
      handler('b', '*', () => {
        throw new Error('b fails');
      }),
    ]);
    await a.post([
      { EventID: 40, AssetID: 31 },
      { EventID: 41, AssetID: 31 },
    ]);
    await allSettled(a, 4);
    const byHandler = await a.app.store.replay({ allDead: true, handler: 'a' });
    expect(byHandler.replayed).toHaveLength(2);
    await allSettled(a, 4);
    const byName = await a.app.store.replay({ allDead: true, handler: 'b', eventName: 'asset.updated' });
    expect(byName.replayed).toHaveLength(1);
    const d = await a.app.store.show(byName.replayed[0]!);
    expect(d).toMatchObject({ handler: 'b', eventName: 'asset.updated' });
  });
});

describe('the replay module checks what people type', () => {
  it('refuses unknown statuses, bad ids and empty requests with a sentence', async () => {
    const a = await app({}, []);
    await expect(listDeliveries(a.app.store, { status: 'failed' })).rejects.toThrow(
      /"failed" is not a delivery status; use one of pending, running, done, dead/,
    );
    await expect(showDelivery(a.app.store, 'abc')).rejects.toThrow(OperationError);
    await expect(showDelivery(a.app.store, 42)).rejects.toThrow(/There is no delivery 42/);
    await expect(replayDeliveries(a.app.store, { ids: [] })).rejects.toThrow(/at least one delivery id/);
    await expect(replayDeliveries(a.app.store, { ids: ['-1'] })).rejects.toThrow(/whole number/);
    await expect(listDeliveries(a.app.store, { limit: 5000 })).rejects.toThrow(/from 1 to 1000/);
  });
});

describe('graceful shutdown', () => {
  it('lets running handlers finish before the deadline, aborts the rest and releases them to run after the restart', async () => {
    const { dir, remove } = tempDir();
    const started: string[] = [];
    const quick = handler('quick', '*', async () => {
      started.push('quick');
      await sleep(100);
    });
    const endless = handler('endless', '*', ({ signal }) => {
      started.push('endless');
      return new Promise((_resolve, reject) => signal.addEventListener('abort', () => reject(signal.reason)));
    });
    const first = await makeApp({ ...FAST, SHUTDOWN_TIMEOUT_MS: '400', HANDLER_TIMEOUT_MS: '60000' }, { handlers: [quick, endless] }, dir);
    await first.post({ EventID: 40, AssetID: 41 });
    await waitFor(
      () => started.length,
      (n) => n === 2,
      { what: 'both handlers to start' },
    );
    const t0 = Date.now();
    await first.app.close();
    expect(Date.now() - t0).toBeGreaterThanOrEqual(350);

    // The store as the next start finds it: quick done, endless pending again with no attempt spent.
    const rerun: string[] = [];
    const second = await app(
      {},
      [handler('quick', '*', () => void rerun.push('quick')), handler('endless', '*', () => void rerun.push('endless'))],
      dir,
    );
    await allSettled(second, 2);
    expect(rerun).toEqual(['endless']);
    const ds = await second.app.store.list();
    const endlessDetail = await second.app.store.show(ds.find((d) => d.handler === 'endless')!.id);
    expect(endlessDetail!.history.map((h) => [h.attempt, h.outcome])).toEqual([
      [1, 'released'],
      [1, 'done'],
    ]);
    await second.close();
    apps.splice(apps.indexOf(second), 1);
    remove();
  });

  it('gives back deliveries claimed ahead of a free slot: pending again, no attempt spent, no history', async () => {
    const { dir, remove } = tempDir();
    let started = 0;
    const slow = handler('slow', '*', async () => {
      started++;
      await sleep(150);
    });
    const first = await makeApp({ ...FAST, HANDLER_CONCURRENCY: '1' }, { handlers: [slow] }, dir);
    await first.post([1, 2, 3, 4].map((AssetID) => ({ EventID: 40, AssetID: 60 + AssetID })));
    await waitFor(
      () => started,
      (n) => n === 1,
      { what: 'the first run' },
    );
    await first.app.close(); // the first run finishes within SHUTDOWN_TIMEOUT_MS; three were waiting
    expect(started).toBe(1);

    const second = await app({ HANDLER_CONCURRENCY: '4' }, [handler('slow', '*', () => undefined)], dir);
    const ds = await allSettled(second, 4);
    expect(ds.every((d) => d.status === 'done' && d.attempts === 1)).toBe(true);
    for (const d of ds) {
      const history = (await second.app.store.show(d.id))!.history;
      expect(history.map((h) => [h.attempt, h.outcome])).toEqual([[1, 'done']]);
    }
    await second.close();
    apps.splice(apps.indexOf(second), 1);
    remove();
  });
});
