// A restart (close the app, build a new one on the same folder) keeps every acknowledged event.
import { afterEach, expect, it } from 'vitest';
import { readEvents } from './support/db.js';
import { makeApp, tempDir } from './support/test-app.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

it('keeps every acknowledged event, with its normalised form and raw body, across a restart', async () => {
  const { dir, remove } = tempDir();
  cleanups.push(remove);
  const first = await makeApp({}, {}, dir);
  const acknowledged: string[] = [];
  const answers = await Promise.all(
    Array.from({ length: 200 }, (_, i) =>
      first.post(
        i % 2
          ? { EventID: 41, AssetID: i, TenantID: 77 }
          : [
              { eventID: 12, taskID: i },
              { event_id: '43', asset_id: `${i}` },
            ],
      ),
    ),
  );
  for (const res of answers) {
    expect(res.statusCode).toBe(202);
    for (const e of res.json().events) acknowledged.push(e.id);
  }
  await first.close();

  const second = await makeApp({}, {}, dir);
  cleanups.push(() => second.close());
  const rows = readEvents(dir);
  expect(rows.map((r) => r.id).sort()).toEqual([...acknowledged].sort());
  expect(rows).toHaveLength(300);
  const published = rows.find((r) => r.name === 'asset.published')!;
  expect(published).toMatchObject({ event_id: 43, entity_type: 'asset', entity_id: expect.stringMatching(/^\d+$/) });
  expect(JSON.parse(published.raw)).toHaveProperty('event_id', '43');
  // and the new app serves
  expect((await second.post({ EventID: 40, AssetID: 999_999 })).statusCode).toBe(202);
});
