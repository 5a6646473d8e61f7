// Event ids go to event_ids in sorted slices (writer.ts, indexIds), not one random index page per
// event; those not merged yet are held in memory and read back from the events after a restart.
// Dedup must hold at every point of that: before, during and after a merge, across a restart in
// the middle of one, after a prune, and on a database made by an older version (migration 4).
// The writer directly, on a real SQLite file, with a clock the test sets.
import { join } from 'node:path';
import { Database } from '../src/store/sqlite/driver.js';
import { afterEach, describe, expect, it } from 'vitest';
import { EventCatalogue } from '../src/events/catalogue.js';
import { createNormalizer } from '../src/events/normalize.js';
import { createLogger } from '../src/observability/log.js';
import { MIGRATIONS, migrate } from '../src/store/sqlite/migrations.js';
import { SqliteStore } from '../src/store/sqlite/store.js';
import { DB_FILE, type EventInput, SqliteWriter, type WriterOptions } from '../src/store/sqlite/writer.js';
import { tempDir } from './support/test-app.js';
import { incoming } from './support/incoming.js';

const T0 = Date.parse('2026-11-01T00:00:00Z');
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function folder(): string {
  const { dir, remove } = tempDir();
  cleanups.push(remove);
  return dir;
}

function open(dataDir: string, opts: Partial<WriterOptions> = {}): SqliteWriter {
  const w = new SqliteWriter({
    dataDir,
    dedupWindowMs: 3_600_000,
    reopenIntervalMs: 0,
    log: () => {},
    ...opts,
  });
  cleanups.push(() => w.close());
  return w;
}

const input = (key: string, idSource: EventInput['idSource'] = 'hash'): EventInput => ({
  key,
  tenant: 'default',
  idSource,
  eventID: 40,
  name: 'asset.created',
  entityType: 'asset',
  entityId: '5',
  raw: JSON.stringify({ EventID: 40, AssetID: 5, key }),
  handlers: [],
});

/** One group commit of one request per key; the answers, in order. */
function accept(w: SqliteWriter, keys: readonly string[], now = T0, windowMs?: number) {
  const results = w.transaction(now, keys, (k) => w.accept([input(k)], now, windowMs));
  return results.map((r) => {
    if (!r.ok) throw r.error;
    return (r.value as { events: { id: string; duplicate: boolean }[] }).events[0]!;
  });
}

function read(dataDir: string) {
  const db = new Database(join(dataDir, DB_FILE), { readonly: true });
  try {
    return {
      events: db.prepare('SELECT count(*) FROM events').pluck().get() as number,
      indexed: db.prepare('SELECT count(*) FROM event_ids').pluck().get() as number,
      through: Number(db.prepare("SELECT value FROM meta WHERE key = 'ids_indexed_through'").pluck().get()),
      maxSeq: db.prepare('SELECT max(seq) FROM events').pluck().get() as number,
    };
  } finally {
    db.close();
  }
}

// Each key its own first two characters: a merge slice takes whole groups of those (writer.ts).
const keys = (n: number) => Array.from({ length: n }, (_, i) => `${i.toString(16).padStart(2, '0')}-key`);
const allDuplicates = (w: SqliteWriter, ks: readonly string[]) => accept(w, ks).every((e) => e.duplicate);

describe('event ids merged in slices', () => {
  it('dedups before, during and after a merge, and the merge leaves every id in event_ids', () => {
    const dir = folder();
    const w = open(dir, { idMergeAt: 10, idMergeSlice: 4 });
    const ks = keys(25);
    expect(accept(w, ks.slice(0, 9)).every((e) => !e.duplicate)).toBe(true);
    w.indexIds(T0);
    expect(read(dir).indexed, 'below idMergeAt nothing is merged').toBe(0);

    accept(w, ks.slice(9, 25));
    const seen: number[] = [];
    for (let i = 0; i < 10 && read(dir).through === 0; i++) {
      w.indexIds(T0);
      seen.push(read(dir).indexed);
      expect(allDuplicates(w, ks), `after slice ${i + 1}`).toBe(true);
    }
    // 25 ids in slices of 4: 7 slices, the last one also moves the mark.
    expect(seen).toEqual([4, 8, 12, 16, 20, 24, 25]);
    expect(read(dir)).toMatchObject({ events: 25, indexed: 25, through: 25 });
    expect(allDuplicates(w, ks)).toBe(true);
    // The slices are written without a sync of their own; the accepts' commits are synced again.
    expect(w.synchronous).toBe(2);
    expect(w.stats).toMatchObject({ accepted: 25 });
  });

  it('after a restart, ids not merged yet are read back from the events and still dedup', async () => {
    const dir = folder();
    const first = open(dir, { idMergeAt: 1000 });
    accept(first, keys(15));
    await first.close();
    expect(read(dir)).toMatchObject({ events: 15, indexed: 0, through: 0 });

    const second = open(dir, { idMergeAt: 10, idMergeSlice: 100 });
    expect(allDuplicates(second, keys(15))).toBe(true);
    expect(accept(second, ['new'])[0]!.duplicate).toBe(false);
    second.indexIds(T0);
    expect(read(dir)).toMatchObject({ events: 16, indexed: 16, through: 16 });
  });

  it('a merge cut short (the process stopped between two slices) is finished after the restart', async () => {
    const dir = folder();
    const first = open(dir, { idMergeAt: 10, idMergeSlice: 4 });
    accept(first, keys(20));
    first.indexIds(T0);
    first.indexIds(T0);
    await first.close();
    expect(read(dir)).toMatchObject({ indexed: 8, through: 0 });

    const second = open(dir, { idMergeAt: 10, idMergeSlice: 4 });
    expect(allDuplicates(second, keys(20))).toBe(true);
    for (let i = 0; i < 5; i++) second.indexIds(T0);
    expect(read(dir)).toMatchObject({ events: 20, indexed: 20, through: 20 });
    expect(allDuplicates(second, keys(20))).toBe(true);
  });

  it('a body again after the window is a new event <key>.2, .3, ...; within it, a duplicate of the latest, merged or not', () => {
    const dir = folder();
    const w = open(dir, { idMergeAt: 2, idMergeSlice: 100 });
    const W = 1000;
    expect(accept(w, ['h'], T0, W)[0]).toEqual({ id: 'h', name: 'asset.created', duplicate: false });
    expect(accept(w, ['h'], T0 + W + 1, W)[0]).toMatchObject({ id: 'h.2', duplicate: false });
    w.indexIds(T0); // 'h' and 'h.2' move to event_ids
    expect(read(dir).indexed).toBe(2);
    expect(accept(w, ['h'], T0 + W + 2, W)[0]).toMatchObject({ id: 'h.2', duplicate: true });
    expect(accept(w, ['h'], T0 + 3 * W, W)[0]).toMatchObject({ id: 'h.3', duplicate: false });
    expect(accept(w, ['h'], T0 + 3 * W + 1, W)[0]).toMatchObject({ id: 'h.3', duplicate: true });
    // A payload id is a duplicate however late it comes again.
    const payload = w.transaction(T0, [0], () => w.accept([input('uid-1', 'payload')], T0))[0]!;
    const late = w.transaction(T0 + 100 * W, [0], () => w.accept([input('uid-1', 'payload')], T0 + 100 * W))[0]!;
    expect(payload.ok && late.ok && (late.value as { duplicates: number }).duplicates).toBe(1);
  });

  it('a repeat finds the latest of <key>.n even when a prune left a gap in the chain', () => {
    const dir = folder();
    const w = open(dir, { idMergeAt: 2, idMergeSlice: 100 });
    const W = 1000;
    const store = (at: number, handlers: string[]) => w.transaction(at, [0], () => w.accept([{ ...input('h'), handlers }], at, W))[0]!;
    const idOf = (r: ReturnType<typeof store>) =>
      r.ok ? (r.value as { events: { id: string; duplicate: boolean }[] }).events[0]! : r.error;
    expect(idOf(store(T0, ['kept']))).toMatchObject({ id: 'h', duplicate: false }); // a pending delivery keeps it
    expect(idOf(store(T0 + 2 * W, []))).toMatchObject({ id: 'h.2', duplicate: false }); // prunable
    w.indexIds(T0); // h and h.2 into event_ids
    expect(idOf(store(T0 + 4 * W, ['kept']))).toMatchObject({ id: 'h.3', duplicate: false });
    expect(w.prune(T0 + 3 * W, T0 + 3 * W).events).toBe(1); // h.2 goes: a gap between h and h.3
    expect(idOf(store(T0 + 4 * W + 10, []))).toMatchObject({ id: 'h.3', duplicate: true });
    w.indexIds(T0);
    expect(idOf(store(T0 + 4 * W + 20, []))).toMatchObject({ id: 'h.3', duplicate: true });
    expect(idOf(store(T0 + 6 * W, []))).toMatchObject({ id: 'h.4', duplicate: false });
  });

  it('ids that share their first characters are merged a slice at a time, not all at once', () => {
    const dir = folder();
    const w = open(dir, { idMergeAt: 10, idMergeSlice: 4 });
    const ks = Array.from({ length: 10 }, (_, i) => `same-prefix-${String(i).padStart(2, '0')}`);
    accept(w, ks);
    const seen: number[] = [];
    for (let i = 0; i < 5 && read(dir).through === 0; i++) {
      w.indexIds(T0);
      seen.push(read(dir).indexed);
      expect(allDuplicates(w, ks)).toBe(true);
    }
    expect(seen).toEqual([4, 8, 10]);
  });

  it("'behind' counts every id memory holds, those of a merge under way too (it bounds the memory)", () => {
    const w = open(folder(), { idMergeAt: 10, idMergeSlice: 5 });
    expect(w.mergeState).toBe('idle');
    accept(w, keys(20));
    expect(w.mergeState).toBe('due');
    accept(w, keys(45).slice(20));
    expect(w.mergeState).toBe('behind');
    w.indexIds(T0); // starts a merge of all 45: none waits for the next one, 40 are still in memory
    expect(w.mergeState).toBe('behind');
    for (let i = 0; i < 2; i++) w.indexIds(T0);
    expect(w.mergeState).toBe('due'); // 30 in memory, the merge under way
    for (let i = 0; i < 6; i++) w.indexIds(T0);
    expect(w.mergeState).toBe('idle');
  });

  it('a pruned event leaves event_ids and memory, so the same body is stored again as new', () => {
    const dir = folder();
    const w = open(dir, { idMergeAt: 3, idMergeSlice: 100 });
    accept(w, ['a', 'b', 'c'], T0);
    w.indexIds(T0); // a, b, c merged
    accept(w, ['d'], T0 + 10); // d in memory only
    expect(read(dir).indexed).toBe(3);
    expect(w.prune(T0 + 20, T0 + 20)).toEqual({ events: 4, deliveries: 0 });
    expect(read(dir)).toMatchObject({ events: 0, indexed: 0 });
    const again = accept(w, ['a', 'd'], T0 + 30);
    expect(again).toEqual([
      { id: 'a', name: 'asset.created', duplicate: false },
      { id: 'd', name: 'asset.created', duplicate: false },
    ]);
    // A seq is never reused after a prune (AUTOINCREMENT): the tail read at open relies on it.
    expect(read(dir).maxSeq).toBe(6);
  });

  it('an item that fails in a group commit fails alone and leaves nothing behind, in the file or in memory', () => {
    const dir = folder();
    const w = open(dir);
    const bad: EventInput = { ...input('x'), idSource: 'neither' as EventInput['idSource'] }; // fails the CHECK
    const results = w.transaction(T0, ['first', 'broken', 'last'], (item) => {
      if (item === 'broken') return w.accept([input('y'), bad], T0); // stores y, then fails
      return w.accept([input(item === 'first' ? 'a' : 'y')], T0);
    });
    expect(results.map((r) => r.ok)).toEqual([true, false, true]);
    // 'y' of the failed item was rolled back, so the last item's 'y' is new, not its duplicate.
    const last = results[2]!;
    expect(last.ok && (last.value as { accepted: number }).accepted).toBe(1);
    expect(read(dir).events).toBe(2);
    expect(w.stats).toMatchObject({ accepted: 2, duplicates: 0 });
    expect(accept(w, ['a', 'y', 'x']).map((e) => e.duplicate)).toEqual([true, true, false]);
  });

  it('a seq given back by a rollback and given again is still found after a restart', async () => {
    const dir = folder();
    const first = open(dir, { idMergeAt: 1, idMergeSlice: 100 });
    accept(first, ['a']); // seq 1
    const bad: EventInput = { ...input('x'), idSource: 'neither' as EventInput['idSource'] };
    const failed = first.transaction(T0, [0], () => first.accept([input('y'), bad], T0)); // seq 2, rolled back
    expect(failed[0]!.ok).toBe(false);
    first.indexIds(T0); // merges 'a'; everything up to the mark must be in event_ids
    accept(first, ['z']); // seq 2 again
    await first.close();
    expect(read(dir)).toMatchObject({ through: 1, maxSeq: 2 });

    const second = open(dir);
    expect(accept(second, ['a', 'z', 'y']).map((e) => e.duplicate)).toEqual([true, true, false]);
  });
});

/** A store in `dir` with its worker thread, as the router runs it; send() posts a JSON body. */
function storeIn(dir: string, opts: Omit<ConstructorParameters<typeof SqliteStore>[0], 'dataDir' | 'log'>) {
  const inbox = new SqliteStore({ dataDir: dir, log: createLogger('silent'), ...opts });
  cleanups.push(() => inbox.close());
  const normalize = createNormalizer({ catalogue: new EventCatalogue(), maxBatch: 100 });
  return (body: object) => inbox.accept(incoming(normalize(body, JSON.stringify(body))));
}

/** Waits (up to 15 s) until event_ids holds `n` ids. */
async function untilIndexed(dir: string, n: number): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (read(dir).indexed < n && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
}

describe('the store merges on its own', () => {
  it('a slice at a time after its commits or on a timer, while it answers; dedup holds throughout', async () => {
    const dir = folder();
    const send = storeIn(dir, { idMergeAt: 5, idMergeSlice: 2 });
    const post = (n: number) => send({ EventID: 40, AssetID: n, Uid: `${n.toString(16).padStart(2, '0')}-x` });
    const first = await Promise.all(Array.from({ length: 20 }, (_, i) => post(i)));
    expect(first.every((r) => r.accepted === 1)).toBe(true);
    // No more accepts: the rest of the merge goes on a timer.
    await untilIndexed(dir, 20);
    expect(read(dir)).toMatchObject({ events: 20, indexed: 20, through: 20 });
    const again = await Promise.all(Array.from({ length: 20 }, (_, i) => post(i)));
    expect(again.every((r) => r.duplicates === 1)).toBe(true);
  });
  it('no merge while commits hold many calls (a burst); the merge runs once the store is idle', async () => {
    const dir = folder();
    // Idle after 1.5 s without accepts, so that the burst below has no idle moment.
    const send = storeIn(dir, { idMergeAt: 150, idMergeSlice: 10, mergeIdleMs: 1500 });
    const post = (n: number) => send({ EventID: 40, AssetID: n, Uid: `burst-${n}` });
    // 15 waves of 20 calls: each wave is one commit of 20 calls, as under saturation. A merge is
    // due from the 8th (150 ids), and 300 ids stay under 'behind' (600).
    for (let wave = 0; wave < 15; wave++) {
      const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => post(wave * 20 + i)));
      expect(answers.every((r) => r.accepted === 1)).toBe(true);
    }
    expect(read(dir)).toMatchObject({ events: 300, indexed: 0 });
    await untilIndexed(dir, 300);
    expect(read(dir)).toMatchObject({ events: 300, indexed: 300, through: 300 });
    const again = await Promise.all(Array.from({ length: 300 }, (_, n) => post(n)));
    expect(again.every((r) => r.duplicates === 1)).toBe(true);
  });

  it('a store that fails with a merge under way waits for it without keeping the worker busy, then merges', async () => {
    const dir = folder();
    const send = storeIn(dir, { idMergeAt: 10, idMergeSlice: 2, mergeIdleMs: 300, reopenIntervalMs: 0 });
    const post = (from: number, count: number) =>
      send(Array.from({ length: count }, (_, i) => ({ EventID: 40, AssetID: from + i, Uid: `fail-${from + i}` })));
    expect((await post(0, 20)).accepted).toBe(20); // due, not behind (40): 4 slices of 2, the rest waits for idle
    expect(read(dir).indexed).toBeLessThan(20);
    // Another connection holds the file before the store is idle: the next slice fails (after
    // busy_timeout, 5 s) and the store closes, with ids still waiting.
    const lock = new Database(join(dir, DB_FILE));
    cleanups.push(() => lock.open && lock.close());
    lock.exec('BEGIN EXCLUSIVE');
    await new Promise((r) => setTimeout(r, 6000));
    const before = process.cpuUsage();
    await new Promise((r) => setTimeout(r, 1000));
    const used = process.cpuUsage(before);
    expect((used.user + used.system) / 1000).toBeLessThan(300); // ms of CPU in that second; a spin takes ~1,000
    lock.exec('COMMIT');
    lock.close();
    expect((await post(20, 1)).accepted).toBe(1); // reopened
    await untilIndexed(dir, 21);
    expect(read(dir)).toMatchObject({ events: 21, indexed: 21 });
  }, 30_000);
});

describe('migration 4 of a database made by an older version', () => {
  it('keeps every row, dedups the stored ids, and carries on the seqs', async () => {
    const dir = folder();
    const old = new Database(join(dir, DB_FILE));
    migrate(
      old,
      MIGRATIONS.filter((m) => m.version <= 3),
    );
    const insert = old.prepare(
      `INSERT INTO events (id, id_source, name, received_at, routed, raw) VALUES (?, 'hash', 'asset.created', ?, 0, '{}')`,
    );
    for (const k of keys(30)) insert.run(k, T0);
    insert.run('z.2', T0); // a repeat stored by the old version
    old.close();

    const w = open(dir, { idMergeAt: 10 });
    expect(allDuplicates(w, keys(30))).toBe(true);
    expect(read(dir)).toMatchObject({ events: 31, indexed: 31, through: 31 });
    expect(accept(w, ['z.2'])[0]!.duplicate).toBe(true);
    expect(accept(w, ['fresh'])[0]).toMatchObject({ id: 'fresh', duplicate: false });
    expect(read(dir).maxSeq).toBe(32);
    await w.close();

    const db = new Database(join(dir, DB_FILE), { readonly: true });
    expect(db.pragma('user_version', { simple: true })).toBe(MIGRATIONS.at(-1)!.version);
    expect(db.prepare("SELECT count(*) FROM sqlite_master WHERE name LIKE 'sqlite_autoindex_events%'").pluck().get()).toBe(0);
    db.close();
  });
});
