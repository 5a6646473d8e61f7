// Duplicates are detected by id, counted and answered, and never stored twice.
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../src/observability/log.js';
import { SqliteStore } from '../src/store/sqlite/store.js';
import { EventCatalogue } from '../src/events/catalogue.js';
import { createNormalizer } from '../src/events/normalize.js';
import { readEvents } from './support/db.js';
import { makeApp, type TestApp, tempDir } from './support/test-app.js';
import { incoming } from './support/incoming.js';

let t: TestApp | undefined;
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  await t?.close();
  t = undefined;
  for (const c of cleanups.splice(0)) await c();
});

describe('dedup', () => {
  it('within one batch', async () => {
    t = await makeApp();
    const res = await t.post([
      { EventID: 41, AssetID: 1 },
      { AssetID: 1, EventID: 41 },
      { EventID: 41, AssetID: 2 },
    ]);
    expect(res.statusCode).toBe(202);
    const body = res.json();
    expect(body).toMatchObject({ accepted: 2, duplicates: 1 });
    expect(body.events.map((e: { duplicate: boolean }) => e.duplicate)).toEqual([false, true, false]);
    expect(body.events[1].id).toBe(body.events[0].id);
    expect(readEvents(t.dir)).toHaveLength(2);
  });

  it('across requests, counting each duplicate on the stored row', async () => {
    t = await makeApp();
    const body = { eventID: 12, taskID: 98231, taskStageID: 4 };
    await t.post(body);
    expect((await t.post(body)).statusCode).toBe(200);
    expect((await t.post(body)).statusCode).toBe(200);
    const rows = readEvents(t.dir);
    expect(rows).toHaveLength(1);
    expect(rows[0]!.duplicates).toBe(2);
  });

  it('after a restart on the same folder', async () => {
    const { dir, remove } = tempDir();
    cleanups.push(remove);
    const first = await makeApp({}, {}, dir);
    const a = await first.post({ EventID: 40, AssetID: 77, EventUID: 'uid-1' });
    const b = await first.post({ EventID: 40, AssetID: 78 });
    await first.close();
    t = await makeApp({}, {}, dir);
    expect((await t.post({ EventID: 40, AssetID: 77, EventUID: 'uid-1' })).json()).toMatchObject({ accepted: 0, duplicates: 1 });
    const again = await t.post({ EventID: 40, AssetID: 78 });
    expect(again.statusCode).toBe(200);
    expect(again.json().events[0].id).toBe(b.json().events[0].id);
    expect(a.json().events[0].id).toBe('uid-1');
    expect(readEvents(dir)).toHaveLength(2);
  });

  it('by the payload unique id even when the rest of the body differs', async () => {
    t = await makeApp();
    await t.post({ EventID: 41, AssetID: 1, EventUID: 'call-77', attempt: 1 });
    const res = await t.post({ EventID: 41, AssetID: 1, EventUID: 'call-77', attempt: 2 });
    expect(res.json()).toMatchObject({ accepted: 0, duplicates: 1, events: [{ id: 'call-77' }] });
  });

  it('an identical body without a unique id is a new event once DEDUP_WINDOW_MS has passed', async () => {
    const { dir, remove } = tempDir();
    cleanups.push(remove);
    let now = Date.parse('2026-11-28T10:00:00Z');
    const inbox = new SqliteStore({ dataDir: dir, dedupWindowMs: 60_000, log: createLogger('silent'), now: () => now });
    cleanups.push(() => inbox.close());
    const normalize = createNormalizer({ catalogue: new EventCatalogue(), maxBatch: 10 });
    const send = () => inbox.accept(incoming(normalize({ EventID: 41, AssetID: 5501 }, '{"EventID":41,"AssetID":5501}')));
    const first = await send();
    now += 59_000;
    expect(await send()).toMatchObject({ accepted: 0, duplicates: 1 });
    now += 2_000;
    const later = await send();
    expect(later).toMatchObject({ accepted: 1, duplicates: 0 });
    expect(later.events[0]!.id).toBe(`${first.events[0]!.id}.2`);
    now += 1_000; // a retry of the later one is a duplicate of it
    expect(await send()).toMatchObject({ accepted: 0, events: [{ id: later.events[0]!.id, duplicate: true }] });
    expect(readEvents(dir).map((r) => r.id)).toEqual([first.events[0]!.id, later.events[0]!.id]);
  });
});

describe('group commit', () => {
  it('commits the accepts of one event-loop turn in one transaction, each answered after it', async () => {
    const { dir, remove } = tempDir();
    cleanups.push(remove);
    const inbox = new SqliteStore({ dataDir: dir, log: createLogger('silent') });
    cleanups.push(() => inbox.close());
    const normalize = createNormalizer({ catalogue: new EventCatalogue(), maxBatch: 10 });
    const before = (await inbox.stats()).commits;
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) => inbox.accept(incoming(normalize({ EventID: 41, AssetID: i }, '')))),
    );
    expect((await inbox.stats()).commits - before).toBe(1);
    expect(results.every((r) => r.accepted === 1)).toBe(true);
    expect(readEvents(dir)).toHaveLength(50);
  });
});
