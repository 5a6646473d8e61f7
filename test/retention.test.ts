// Retention: finished events and deliveries older than the cutoff go; dead letters, unfinished
// deliveries and recent events stay. The store directly, with a clock the test moves.
import { afterEach, expect, it } from 'vitest';
import { startRetention } from '../src/delivery/retention.js';
import { EventCatalogue } from '../src/events/catalogue.js';
import { createNormalizer } from '../src/events/normalize.js';
import { createLogger } from '../src/observability/log.js';
import type { Outcome } from '../src/store/contract.js';
import { SqliteStore } from '../src/store/sqlite/store.js';
import { readEvents } from './support/db.js';
import { tempDir } from './support/test-app.js';
import { incoming } from './support/incoming.js';

const DAY = 86_400_000;
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

it('prunes only finished events and deliveries older than RETENTION_DAYS', async () => {
  const { dir, remove } = tempDir();
  cleanups.push(remove);
  let now = Date.parse('2026-11-01T00:00:00Z');
  // Assets 1-4 fan out to handler "h"; asset 5 to nobody (unrouted).
  const inbox = new SqliteStore({ dataDir: dir, log: createLogger('silent'), now: () => now });
  cleanups.push(() => inbox.close());
  const normalize = createNormalizer({ catalogue: new EventCatalogue(), maxBatch: 10 });
  const accept = (assetID: number) =>
    inbox.accept(
      incoming(normalize({ EventID: 40, AssetID: assetID }, JSON.stringify({ EventID: 40, AssetID: assetID })), (e) =>
        e.assetID === 5 ? [] : ['h'],
      ),
    );
  const settle = async (outcome: Outcome) => {
    const { deliveries } = await inbox.claim(1, 60_000);
    const d = deliveries[0]!;
    await inbox.settle([{ id: d.id, attempt: d.attempt, replays: d.replays, startedAt: now, outcome }]);
    return d.event.id;
  };

  await accept(1); // old, done: pruned
  const oldDone = await settle({ kind: 'done' });
  await accept(2); // old, dead: stays
  const oldDead = await settle({ kind: 'dead', error: { message: 'no', errorClass: 'PermanentError' } });
  await accept(3); // old, still pending (a retry far ahead): stays
  await settle({ kind: 'retry', runAt: now + 30 * DAY, error: { message: 'later', errorClass: 'Error' } });
  await accept(5); // old, unrouted: pruned
  now += 8 * DAY;
  await accept(4); // recent, done: stays
  await settle({ kind: 'done' });

  const retention = startRetention(inbox, 7, createLogger('silent'), { firstAfterMs: 3_600_000, now: () => now })!;
  cleanups.push(() => retention.stop());
  const result = await retention.runOnce();
  expect(result).toEqual({ events: 2, deliveries: 1 });
  const left = readEvents(dir).map((r) => JSON.parse(r.raw).AssetID);
  expect(left).toEqual([2, 3, 4]);
  expect(readEvents(dir).map((r) => r.id)).not.toContain(oldDone);
  expect(await inbox.counts()).toEqual({ pending: 1, running: 0, done: 1, dead: 1, unroutedEvents: 0 });
  const dead = await inbox.list({ status: 'dead' });
  expect(dead).toMatchObject([{ eventId: oldDead, handler: 'h' }]);
  expect((await inbox.show(dead[0]!.id))!.history).toHaveLength(1);
  // A second pass finds nothing more.
  expect(await retention.runOnce()).toEqual({ events: 0, deliveries: 0 });
});

it('RETENTION_DAYS=0 keeps everything: no pruning starts', () => {
  expect(startRetention({ prune: () => Promise.reject(new Error('must not run')) }, 0, createLogger('silent'))).toBeUndefined();
});
