// QUEUE=redis in process: two apps on one real redis-server (as two instances behind a load
// balancer would be), the real route and the BullMQ workers. Duplicates across instances, retries,
// dead letters and replay through the same operations as SQLite, the admin API, Redis going away
// and coming back. The process-level tests (kill -9) are in redis-instances.test.ts.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { defineHandler, type HandlerContext } from '../src/delivery/define-handler.js';
import { checkHandler } from '../src/delivery/loader.js';
import { listDeliveries, listEvents, replayDeliveries, showDelivery, showEvent, stats } from '../src/delivery/operations.js';
import { PermanentError, UnstorableEventError } from '../src/errors.js';
import { EventCatalogue } from '../src/events/catalogue.js';
import { createNormalizer } from '../src/events/normalize.js';
import { jobIdOf, type RedisStore } from '../src/store/redis/index.js';
import { hasRedis, type RedisServer, startRedis } from './support/redis.js';
import { makeApp, type TestApp } from './support/test-app.js';
import { waitFor } from './support/wait.js';
import { incoming } from './support/incoming.js';

const FAST = { RETRY_BASE_MS: '5', RETRY_MAX_MS: '20', MAX_ATTEMPTS: '3', HANDLER_TIMEOUT_MS: '2000', HANDLER_LEASE_MS: '1000' };

function handler(name: string, handle: (ctx: HandlerContext) => unknown) {
  return checkHandler(defineHandler({ name, on: '*', handle }), `${name}.ts`);
}

describe.skipIf(!hasRedis)('QUEUE=redis', () => {
  let redis: RedisServer;
  let prefixN = 0;
  const apps: TestApp[] = [];
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await redis?.close();
  });
  afterEach(async () => {
    await Promise.all(apps.splice(0).map((a) => a.close()));
  });

  /** An instance on the shared Redis; `shared` instances of one test see the same keys. */
  async function instance(handlers: ReturnType<typeof handler>[], env: Record<string, string> = {}, deps: { dispatch?: boolean } = {}) {
    const a = await makeApp({ ...FAST, QUEUE: 'redis', REDIS_URL: redis.url, ...env }, { handlers, ...deps });
    apps.push(a);
    return a;
  }
  /** A fresh Redis database per test, so that tests do not see each other's jobs. */
  const db = () => `${redis.url}/${++prefixN % 16}`;

  it('answers a duplicate sent to another instance with 200, and runs each handler once per event', async () => {
    const runs = new Map<string, number>();
    const count = (name: string) =>
      handler(name, ({ event }) => void runs.set(`${name} ${event.id}`, (runs.get(`${name} ${event.id}`) ?? 0) + 1));
    const url = db();
    await flush(url);
    const a = await instance([count('one'), count('two')], { REDIS_URL: url });
    const b = await instance([count('one'), count('two')], { REDIS_URL: url });
    const batch = (from: number, n: number) =>
      Array.from({ length: n }, (_, i) => ({ EventID: 40, AssetID: from + i, NotificationID: `n-${from + i}` }));

    const first = await a.post(batch(1, 40));
    expect(first.statusCode).toBe(202);
    expect(first.json()).toMatchObject({ accepted: 40, duplicates: 0 });
    const again = await b.post(batch(1, 40)); // HubEx's retry, landing on the other instance
    expect(again.statusCode).toBe(200);
    expect(again.json()).toMatchObject({ accepted: 0, duplicates: 40 });
    expect(again.json().events.map((e: { id: string }) => e.id)).toEqual(first.json().events.map((e: { id: string }) => e.id));
    const mixed = await b.post(batch(21, 40)); // 20 old, 20 new
    expect(mixed.json()).toMatchObject({ accepted: 20, duplicates: 20 });

    const done = await waitFor(
      () => stats(a.app.store),
      (c) => c.done === 120,
      { what: '120 deliveries done', timeoutMs: 20_000 },
    );
    expect(done).toEqual({ pending: 0, running: 0, done: 120, dead: 0, unroutedEvents: 0 });
    expect(runs.size).toBe(120);
    expect([...runs.values()].every((n) => n === 1)).toBe(true);
    // The delivery is the job `eventId@handler`.
    const d = await showDelivery(b.app.store, jobIdOf('n-1', 'one'));
    expect(d).toMatchObject({ id: 'n-1@one', status: 'done', handler: 'one', attempts: 1, eventId: 'n-1' });
    expect(d.history).toMatchObject([{ attempt: 1, outcome: 'done', error: null }]);
    const event = await showEvent(a.app.store, 'n-1');
    expect(event).toMatchObject({ id: 'n-1', name: 'asset.created', duplicates: 1, routed: 2 });
    expect(event.deliveries.map((x) => x.status)).toEqual(['done', 'done']);
  });

  it('retries with backoff, sends to the dead letters, and replays them with their history kept', async () => {
    const url = db();
    await flush(url);
    let flaky = 0;
    let fixed = false;
    const a = await instance(
      [
        handler('flaky', () => {
          if (++flaky < 3) throw new Error(`try ${flaky} failed`);
        }),
        handler('strict', ({ event }) => {
          if (!fixed) throw new PermanentError(`event ${event.id} cannot be handled`);
        }),
      ],
      { REDIS_URL: url },
    );
    expect((await a.post({ EventID: 40, AssetID: 7, NotificationID: 'dead-1' })).statusCode).toBe(202);
    await waitFor(
      () => stats(a.app.store),
      (c) => c.done === 1 && c.dead === 1,
      { what: 'one done, one dead' },
    );
    const f = await showDelivery(a.app.store, 'dead-1@flaky');
    expect(f.history.map((h) => h.outcome)).toEqual(['retry', 'retry', 'done']);
    expect(f.attempts).toBe(3);
    const dead = await listDeliveries(a.app.store, { status: 'dead' });
    expect(dead).toMatchObject([{ id: 'dead-1@strict', handler: 'strict', lastError: { errorClass: 'PermanentError' } }]);

    fixed = true;
    const progress: number[] = [];
    const r = await replayDeliveries(a.app.store, { allDead: true }, (p) => progress.push(p.done));
    expect(r).toEqual({ replayed: ['dead-1@strict'], skipped: [] });
    await waitFor(
      () => stats(a.app.store),
      (c) => c.done === 2 && c.dead === 0,
      { what: 'the replay to finish' },
    );
    const s = await showDelivery(a.app.store, 'dead-1@strict');
    expect(s).toMatchObject({ status: 'done', replays: 1, attempts: 1, lastError: null });
    expect(s.history.map((h) => [h.cycle, h.outcome])).toEqual([
      [0, 'dead'],
      [1, 'done'],
    ]);
    // A running or unknown delivery is not replayed; a done one is, by id.
    expect(await replayDeliveries(a.app.store, { ids: ['nope@strict', 'dead-1@flaky'] })).toEqual({
      replayed: ['dead-1@flaky'],
      skipped: ['nope@strict'],
    });
  });

  it('offers the admin API over Redis: events, deliveries by status, replay', async () => {
    const url = db();
    await flush(url);
    const a = await instance(
      [
        handler('never', () => {
          throw new PermanentError('no');
        }),
      ],
      { REDIS_URL: url, ADMIN_TOKEN: 'admin-token-0123456789abcdef' },
    );
    for (let i = 0; i < 3; i++) await a.post({ EventID: 40, AssetID: i, NotificationID: `adm-${i}` });
    await waitFor(
      () => stats(a.app.store),
      (c) => c.dead === 3,
      { what: 'three dead letters' },
    );
    const get = (url: string) => a.app.inject({ url, headers: { authorization: 'Bearer admin-token-0123456789abcdef' } });
    const page1 = (await get('/admin/deliveries?status=dead&limit=2')).json();
    expect(page1.items.map((d: { id: string }) => d.id)).toEqual(['adm-0@never', 'adm-1@never']);
    const page2 = (await get(`/admin/deliveries?status=dead&limit=2&after=${encodeURIComponent(page1.next)}`)).json();
    expect(page2.items.map((d: { id: string }) => d.id)).toEqual(['adm-2@never']);
    const events = (await get('/admin/events?limit=10')).json();
    expect(events.items.map((e: { id: string }) => e.id)).toEqual(['adm-0', 'adm-1', 'adm-2']);
    expect((await get('/admin/stats')).json()).toEqual({ deliveries: { pending: 0, running: 0, done: 0, dead: 3, unroutedEvents: 0 } });
    expect((await listEvents(a.app.store, { afterSeq: events.items[0].seq })).map((e) => e.id)).toEqual(['adm-1', 'adm-2']);
    // The metrics read the same counts from Redis.
    const metrics = (await a.app.inject({ url: '/metrics' })).body;
    expect(metrics).toMatch(/^hubex_router_deliveries_queued\{status="dead"\} 3$/m);
    expect(metrics).toMatch(/^hubex_router_deliveries_queued\{status="pending"\} 0$/m);
    expect(metrics).toMatch(/^hubex_router_deliveries_total\{handler="never",outcome="dead"\} 3$/m);
  });

  it('a shutdown past its deadline aborts a running handler and releases its job, due at once, the attempt not counted', async () => {
    const url = db();
    await flush(url);
    let started = 0;
    let slow = true;
    const patient = handler('patient', ({ signal }) => {
      started++;
      if (!slow) return;
      return new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason)));
    });
    const first = await instance([patient], { REDIS_URL: url, SHUTDOWN_TIMEOUT_MS: '300', HANDLER_TIMEOUT_MS: '60000' });
    await first.post({ EventID: 40, AssetID: 1, NotificationID: 'rel-1' });
    await waitFor(
      () => started,
      (n) => n === 1,
      { what: 'the run to start' },
    );
    await first.close();
    apps.splice(apps.indexOf(first), 1);
    const second = await instance([], { REDIS_URL: url }, { dispatch: false }); // runs nothing, reads the store
    const released = await showDelivery(second.app.store, 'rel-1@patient');
    expect(released).toMatchObject({ status: 'pending', attempts: 0 });
    expect(released.history).toMatchObject([{ outcome: 'released', error: { errorClass: 'ShutdownAbortError' } }]);
    await second.close();
    apps.splice(apps.indexOf(second), 1);
    slow = false;
    const third = await instance([patient], { REDIS_URL: url });
    await waitFor(
      () => stats(third.app.store),
      (c) => c.done === 1,
      { what: 'the released run to finish after the restart' },
    );
    expect(started).toBe(2);
    expect((await showDelivery(third.app.store, 'rel-1@patient')).attempts).toBe(1);
  });

  it('an instance without the handler retries its job instead of killing it, so that an instance with it (a rolling deploy) runs it', async () => {
    const url = db();
    await flush(url);
    const ran: string[] = [];
    const added = handler('added-later', ({ event }) => void ran.push(event.id));
    const producer = await instance([added], { REDIS_URL: url }, { dispatch: false }); // stores and fans out only
    expect((await producer.post({ EventID: 40, AssetID: 1, NotificationID: 'roll-1' })).statusCode).toBe(202);
    const old = await instance([], { REDIS_URL: url, MAX_ATTEMPTS: '12', RETRY_BASE_MS: '1000', RETRY_MAX_MS: '5000' });
    const tried = await waitFor(
      () => old.app.store.show('roll-1@added-later'),
      (d) => (d?.attempts ?? 0) >= 1,
      { what: 'the old instance to try it' },
    );
    // Not dead: waiting for its retry (or, a moment after its record was written, still on its way there).
    expect(['pending', 'running']).toContain(tried!.status);
    expect(tried).toMatchObject({ lastError: { message: 'No handler named "added-later" is loaded on this instance.' } });
    await old.close();
    apps.splice(apps.indexOf(old), 1);
    const upgraded = await instance([added], { REDIS_URL: url, MAX_ATTEMPTS: '12', RETRY_BASE_MS: '1000', RETRY_MAX_MS: '5000' });
    await waitFor(
      () => upgraded.app.store.show('roll-1@added-later'),
      (d) => d?.status === 'done',
      { what: 'the upgraded instance to run it', timeoutMs: 15_000 },
    );
    expect(ran).toEqual(['roll-1']);
  });

  it('retention deletes finished events and their jobs; dead letters and their events stay', async () => {
    const url = db();
    await flush(url);
    const a = await instance(
      [
        handler('picky', ({ event }) => {
          if (event.assetID === 2) throw new PermanentError('not this one');
        }),
      ],
      { REDIS_URL: url },
    );
    await a.post([
      { EventID: 40, AssetID: 1, NotificationID: 'old-done' },
      { EventID: 40, AssetID: 2, NotificationID: 'old-dead' },
    ]);
    await waitFor(
      () => stats(a.app.store),
      (c) => c.done === 1 && c.dead === 1,
      { what: 'one done, one dead' },
    );
    expect(await a.app.store.prune(Date.now() - 60_000)).toEqual({ events: 0, deliveries: 0 }); // nothing old enough
    expect(await a.app.store.prune(Date.now() + 1000)).toEqual({ events: 1, deliveries: 1 });
    expect((await listEvents(a.app.store)).map((e) => e.id)).toEqual(['old-dead']);
    expect(await a.app.store.show('old-done@picky')).toBeUndefined();
    expect(await stats(a.app.store)).toEqual({ pending: 0, running: 0, done: 0, dead: 1, unroutedEvents: 0 });
    expect(await a.app.store.prune(Date.now() + 1000)).toEqual({ events: 0, deliveries: 0 });
  });

  it('replaying dead letters whose handler still fails replays each once, and returns', async () => {
    const url = db();
    await flush(url);
    let runs = 0;
    const a = await instance(
      [
        handler('broken', () => {
          runs++;
          throw new PermanentError('still broken');
        }),
      ],
      { REDIS_URL: url },
    );
    for (let i = 0; i < 5; i++) await a.post({ EventID: 40, AssetID: i, NotificationID: `still-${i}` });
    await waitFor(
      () => stats(a.app.store),
      (c) => c.dead === 5,
      { what: 'five dead letters' },
    );
    expect(runs).toBe(5);
    const r = await replayDeliveries(a.app.store, { allDead: true });
    expect([...r.replayed].sort()).toEqual(['still-0@broken', 'still-1@broken', 'still-2@broken', 'still-3@broken', 'still-4@broken']);
    await waitFor(
      () => stats(a.app.store),
      (c) => c.dead === 5 && c.pending === 0 && c.running === 0,
      { what: 'the replays to end dead again' },
    );
    expect(runs).toBe(10);
    expect((await showDelivery(a.app.store, 'still-0@broken')).history.map((h) => [h.cycle, h.outcome])).toEqual([
      [0, 'dead'],
      [1, 'dead'],
    ]);
  });

  it('tells how far a long replay of dead letters got', async () => {
    const url = db();
    await flush(url);
    let fixed = false;
    const a = await instance(
      [
        handler('later', () => {
          if (!fixed) throw new PermanentError('not yet');
        }),
      ],
      { REDIS_URL: url },
    );
    for (let i = 0; i < 250; i += 50) {
      await a.post(Array.from({ length: 50 }, (_, j) => ({ EventID: 40, AssetID: i + j, NotificationID: `many-${i + j}` })));
    }
    await waitFor(
      () => stats(a.app.store),
      (c) => c.dead === 250,
      { what: '250 dead letters', timeoutMs: 20_000 },
    );
    fixed = true;
    const progress: string[] = [];
    const r = await replayDeliveries(a.app.store, { allDead: true }, (p) => progress.push(`${p.done}/${p.total}`));
    expect(r.replayed).toHaveLength(250);
    expect(progress).toEqual(['100/250', '200/250', '250/250']);
    await waitFor(
      () => stats(a.app.store),
      (c) => c.done === 250,
      { what: 'the replays to finish', timeoutMs: 20_000 },
    );
  });

  it('a duplicate never runs a handler again: not after its completed job is gone, nor with RETENTION_DAYS=0 (kept)', async () => {
    const url = db();
    await flush(url);
    let runs = 0;
    const a = await instance([handler('once', () => void runs++)], { REDIS_URL: url, RETENTION_DAYS: '0' });
    await a.post({ EventID: 40, AssetID: 1, NotificationID: 'keep-1' });
    await waitFor(
      () => stats(a.app.store),
      (c) => c.done === 1,
      { what: 'the run' },
    );
    expect(await showDelivery(a.app.store, 'keep-1@once')).toMatchObject({ status: 'done', attempts: 1 }); // kept: RETENTION_DAYS=0
    // BullMQ removes completed jobs after RETENTION_DAYS; a late duplicate must not make it again.
    const store = a.app.store as RedisStore;
    await (await store.queue.getJob('keep-1@once'))!.remove();
    expect((await a.post({ EventID: 40, AssetID: 1, NotificationID: 'keep-1' })).statusCode).toBe(200);
    await new Promise((r) => setTimeout(r, 300));
    expect(runs).toBe(1);
    expect(await stats(a.app.store)).toMatchObject({ pending: 0, running: 0 });
  });

  it('a body repeated after the dedup window gets a new id even after retention deleted the first, and runs', async () => {
    const url = db();
    await flush(url);
    const ran: string[] = [];
    const a = await instance([handler('each', ({ event }) => void ran.push(event.id))], { REDIS_URL: url, DEDUP_WINDOW_MS: '1000' });
    const store = a.app.store as RedisStore;
    const body = { EventID: 40, AssetID: 77 }; // no id of its own: deduplicated by its content
    const first = (await a.post(body)).json().events[0].id as string;
    await waitFor(
      () => ran.length,
      (n) => n === 1,
      { what: 'the first run' },
    );
    await new Promise((r) => setTimeout(r, 1100)); // past the dedup window
    expect((await a.post(body)).json().events[0].id).toBe(`${first}.2`);
    await waitFor(
      () => ran.length,
      (n) => n === 2,
      { what: 'the repeat to run' },
    );
    // Retention deletes the first event (its hash held the repeat counter) with its job, as prune does; the repeat stays.
    await store.redis
      .multi()
      .del(store.key(`ev:${first}`))
      .zrem(store.key('events'), first)
      .exec();
    await (await store.queue.getJob(`${first}@each`))!.remove();
    expect((await a.post(body)).json().events[0].id).toBe(first); // a new first
    await new Promise((r) => setTimeout(r, 1100));
    const again = (await a.post(body)).json();
    expect(again).toMatchObject({ accepted: 1, duplicates: 0 });
    expect(again.events[0].id).toBe(`${first}.3`); // not .2, which is still stored
    await waitFor(
      () => ran.length,
      (n) => n === 4,
      { what: 'every new event to run' },
    );
    expect(ran).toEqual([first, `${first}.2`, first, `${first}.3`]);
  });

  it('takes an id with a lone UTF-16 surrogate (which Redis cannot decode) as U+FFFD, with the rest of its batch', async () => {
    const url = db();
    await flush(url);
    const a = await instance([], { REDIS_URL: url });
    const res = await a.post(
      '[{"EventID": 40, "AssetID": 1, "NotificationID": "a\\ud800b"}, {"EventID": 40, "AssetID": 2, "NotificationID": "plain"}]',
    );
    expect(res.statusCode).toBe(202);
    expect(res.json().events.map((e: { id: string }) => e.id)).toEqual(['a\ufffdb', 'plain']);
    expect((await a.post('{"EventID": 40, "AssetID": 1, "NotificationID": "a\\ud800b"}')).statusCode).toBe(200);
  });

  it('takes a lone surrogate in EntityType, ObjectType and every other string as U+FFFD: the batch is stored, readyz stays honest', async () => {
    const url = db();
    await flush(url);
    const seen: unknown[] = [];
    const a = await instance([handler('reader', ({ event }) => void seen.push(event.entity, event.data.note))], { REDIS_URL: url });
    const res = await a.post(
      '[{"EntityType": "Ta\\udc00sk", "EntityID": 5, "Note": "x\\ud800"}, {"ObjectType": "\\ud800", "ObjectID": "o\\udfff1"}, {"EventID": 40, "AssetID": 3}]',
    );
    expect(res.statusCode, res.body).toBe(202);
    expect(res.json()).toMatchObject({ accepted: 3 });
    const events = await listEvents(a.app.store);
    expect(events.map((e) => e.entity)).toEqual([
      { type: 'ta\ufffdsk', id: '5' },
      { type: '\ufffd', id: 'o\ufffd1' },
      { type: 'asset', id: '3' },
    ]);
    await waitFor(
      () => seen.length,
      (n) => n === 6,
      { what: 'the handler to see all three' },
    );
    expect(seen.slice(0, 2)).toEqual([{ type: 'ta\ufffdsk', id: 5 }, 'x\ufffd']);
    expect((await a.app.inject('/readyz')).statusCode).toBe(200);
  });

  it('an event whose data Redis refuses is a 400 naming the field, not a 503 that HubEx would retry for ever', async () => {
    const url = db();
    await flush(url);
    const a = await instance([], { REDIS_URL: url });
    // Past the normaliser (which makes every string well formed): straight to the store.
    const [event] = createNormalizer({ catalogue: new EventCatalogue(), maxBatch: 10 })(
      { EventID: 40, AssetID: 1 },
      '{"EventID":40,"AssetID":1}',
    );
    const poisoned = { ...event!, entity: { type: 'as\ud800set', id: 1 } };
    const err = await a.app.store.accept(incoming([event!, poisoned])).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnstorableEventError);
    expect((err as Error).message).toBe('The entity type of event 1 holds text Redis cannot store (a lone UTF-16 surrogate).');
    expect(await listEvents(a.app.store)).toEqual([]); // nothing of the batch was stored
    expect((await a.app.store.health()).ok).toBe(true);
  });

  it('a Redis that cannot write (out of memory, a read-only replica after a failover) answers 503, never a 400 that would drop the event', async () => {
    const url = db();
    await flush(url);
    const ran: string[] = [];
    const a = await instance([handler('after', ({ event }) => void ran.push(event.id))], { REDIS_URL: url });
    const { Redis } = await import('ioredis');
    const admin = new Redis(redis.url);
    let n = 0;
    const post = () => a.post({ EventID: 40, AssetID: 9000 + n++ });
    try {
      expect((await post()).statusCode).toBe(202);
      await admin.config('SET', 'maxmemory', '1');
      const oom = await post();
      expect(oom.statusCode, oom.body).toBe(503);
      expect(oom.json()).toMatchObject({ error: 'STORE_UNAVAILABLE' });
      await admin.config('SET', 'maxmemory', '0');
      await admin.replicaof('127.0.0.1', '1'); // a replica of nothing reachable: READONLY
      const readonly = await post();
      expect(readonly.statusCode, readonly.body).toBe(503);
    } finally {
      await admin.config('SET', 'maxmemory', '0');
      await admin.replicaof('NO', 'ONE');
      admin.disconnect();
    }
    expect((await post()).statusCode).toBe(202);
    expect((await listEvents(a.app.store)).length).toBe(2); // the refused ones were not stored
    // And the deliveries run again once Redis takes writes.
    await waitFor(
      () => ran.length,
      (n) => n === 2,
      { what: 'both events handled', timeoutMs: 10_000 },
    );
  });

  it('a handler that ignores its abort keeps its job until it returns: its retry never runs beside it', async () => {
    const url = db();
    await flush(url);
    let running = 0;
    let most = 0;
    let runs = 0;
    const stubborn = handler('stubborn', async () => {
      runs++;
      most = Math.max(most, ++running);
      await new Promise((r) => setTimeout(r, 600)); // ignores ctx.signal
      running--;
      if (runs < 3) throw new Error('slow and failing');
    });
    const a = await instance([stubborn], { REDIS_URL: url, HANDLER_TIMEOUT_MS: '100', MAX_ATTEMPTS: '5' });
    await a.post({ EventID: 40, AssetID: 1, NotificationID: 'stub-1' });
    await waitFor(
      () => runs,
      (n) => n >= 3,
      { what: 'three runs', timeoutMs: 15_000 },
    );
    await waitFor(
      () => running,
      (n) => n === 0,
      { what: 'the last run to return' },
    );
    expect(most).toBe(1);
  });

  it('Redis away: webhooks answer 503 (never 2xx) and readyz 503; back: all resumes, and nothing acknowledged is lost', async () => {
    const url = db();
    await flush(url);
    const ran = new Set<string>();
    const a = await instance([handler('note', ({ event }) => void ran.add(event.id))], { REDIS_URL: url });
    const acked: string[] = [];
    const send = async (n: number) => {
      const res = await a.post({ EventID: 40, AssetID: n, NotificationID: `away-${n}` });
      if (res.statusCode === 202) acked.push(res.json().events[0].id);
      return res;
    };
    for (let i = 0; i < 10; i++) expect((await send(i)).statusCode).toBe(202);

    await redis.stop('SIGKILL'); // a crash: only the AOF (appendfsync always) keeps the data
    const down = await waitFor(
      () => send(100),
      (r) => r.statusCode !== 202,
      { what: 'a non-2xx answer' },
    );
    expect(down.statusCode).toBe(503);
    expect(down.json()).toMatchObject({ error: 'STORE_UNAVAILABLE' });
    for (let i = 101; i < 110; i++) expect((await send(i)).statusCode).toBe(503);
    expect((await a.app.inject({ url: '/readyz' })).statusCode).toBe(503);
    expect((await a.app.inject({ url: '/healthz' })).statusCode).toBe(200); // the process lives

    await redis.start();
    await waitFor(
      () => a.app.inject({ url: '/readyz' }).then((r) => r.statusCode),
      (s) => s === 200,
      { what: 'readyz 200 again', timeoutMs: 15_000 },
    );
    for (let i = 200; i < 210; i++) expect((await send(i)).statusCode).toBe(202);
    await waitFor(
      () => ran.size,
      (n) => n === acked.length,
      { what: 'every acknowledged event handled', timeoutMs: 20_000 },
    );
    expect([...ran].sort()).toEqual([...acked].sort());
    const stored = await listEvents(a.app.store, { limit: 1000 });
    expect(stored.map((e) => e.id).sort()).toEqual([...acked].sort());
    expect(acked).toHaveLength(20);
  });
});

describe.skipIf(!hasRedis)('QUEUE=redis with a password', () => {
  const PASSWORD = 'redis-secret-7f3a9c2e1b';
  let redis: RedisServer;
  beforeAll(async () => {
    redis = await startRedis(['--requirepass', PASSWORD]);
  });
  afterAll(async () => {
    await redis?.close();
  });

  it('works with the password in REDIS_URL, answers 503 with a wrong one, and never logs either', async () => {
    const url = (password: string) => `redis://:${password}@127.0.0.1:${redis.port}`;
    const good = await makeApp({ ...FAST, QUEUE: 'redis', REDIS_URL: url(PASSWORD) }, { handlers: [] });
    try {
      expect((await good.post({ EventID: 40, AssetID: 1, NotificationID: 'pw-1' })).statusCode).toBe(202);
      expect((await good.app.inject({ url: '/readyz' })).statusCode).toBe(200);
    } finally {
      await good.close();
    }
    const wrong = await makeApp({ ...FAST, QUEUE: 'redis', REDIS_URL: url('not-the-password-42') }, { handlers: [] });
    try {
      const res = await wrong.post({ EventID: 40, AssetID: 2, NotificationID: 'pw-2' });
      expect(res.statusCode).toBe(503);
      expect((await wrong.app.inject({ url: '/readyz' })).statusCode).toBe(503);
      expect(wrong.logs.text).toMatch(/Redis/);
      expect(wrong.logs.text).not.toContain('not-the-password-42');
      expect(good.logs.text + wrong.logs.text).not.toContain(PASSWORD);
      expect(JSON.stringify(res.json())).not.toContain('not-the-password-42');
    } finally {
      await wrong.close();
    }
  });
});

/** Empties one Redis database (the test's own). */
async function flush(url: string): Promise<void> {
  const { Redis } = await import('ioredis');
  const r = new Redis(url);
  await r.flushdb();
  r.disconnect();
}
