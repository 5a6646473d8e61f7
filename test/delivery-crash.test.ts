// Crash recovery of deliveries: kill -9 of the router while handlers run; after the restart every
// acknowledged event's deliveries reach done (the runs cut short run again once their lease ends),
// and none is lost. A real child process, a real handler module in HANDLERS_DIR.
import { join } from 'node:path';
import { Database } from '../src/store/sqlite/driver.js';
import { expect, it } from 'vitest';
import { DB_FILE } from '../src/store/sqlite/store.js';
import { httpRequest, spawnRouter } from './support/spawn-router.js';
import { recorded, setupRecorder } from './support/recorder.js';
import { waitFor } from './support/wait.js';

const EVENTS = 120;
/** Each run takes this long, so that runs are under way whenever the kill comes. */
const RUN_MS = 150;

const setup = () => setupRecorder(RUN_MS);
const lines = recorded;

it('kill -9 while handlers run: after the restart every acknowledged event is handled, none lost', async () => {
  const { dataDir, record, env: base } = setup();
  const env = {
    ...base,
    HANDLER_CONCURRENCY: '8',
    HANDLER_LEASE_MS: '1000',
  };
  const first = await spawnRouter({ dataDir, env });
  const acked: string[] = [];
  for (let i = 0; i < EVENTS; i += 10) {
    const batch = Array.from({ length: 10 }, (_, j) => ({ EventID: 40, AssetID: 50_000 + i + j }));
    const res = await httpRequest(first.url(), { body: JSON.stringify(batch) });
    expect(res.status).toBe(202);
    for (const e of res.json.events) acked.push(e.id);
  }
  // Runs are under way (8 at a time, 150 ms each): kill in the middle of them.
  await waitFor(
    () => lines(record, 'start').length,
    (n) => n >= 16,
    { what: 'runs to start' },
  );
  await first.kill('SIGKILL');
  const startedBefore = lines(record, 'start');
  const endedBefore = lines(record, 'end');
  expect(endedBefore.length).toBeLessThan(EVENTS); // the kill came before the work was done
  const cutShort = startedBefore.filter((id) => !endedBefore.includes(id));
  expect(cutShort.length).toBeGreaterThan(0); // and while runs were under way

  const second = await spawnRouter({ dataDir, env });
  const db = () => new Database(join(dataDir, DB_FILE), { readonly: true, fileMustExist: true });
  const statuses = await waitFor(
    () => {
      const conn = db();
      try {
        return conn.prepare('SELECT status, count(*) AS n FROM deliveries GROUP BY status').all() as { status: string; n: number }[];
      } finally {
        conn.close();
      }
    },
    (rows) => rows.length === 1 && rows[0]!.status === 'done' && rows[0]!.n === EVENTS,
    { timeoutMs: 20_000, everyMs: 100, what: `${EVENTS} deliveries done` },
  );
  expect(statuses).toEqual([{ status: 'done', n: EVENTS }]);
  await second.kill('SIGTERM');

  const ended = new Set(lines(record, 'end'));
  expect(acked).toHaveLength(EVENTS);
  for (const id of acked) expect(ended.has(id), `event ${id} was handled`).toBe(true);
  // The runs the kill cut short ran again (at least once), after their lease ran out.
  const starts = lines(record, 'start');
  for (const id of cutShort) expect(starts.filter((s) => s === id).length).toBeGreaterThanOrEqual(2);
}, 60_000);

it('SIGTERM drains: the running handler finishes, waiting deliveries are released, the process exits 0', async () => {
  const { dataDir, record, env: base } = setup();
  const env = { ...base, HANDLER_CONCURRENCY: '2', SHUTDOWN_TIMEOUT_MS: '5000' };
  const router = await spawnRouter({ dataDir, env });
  const batch = Array.from({ length: 10 }, (_, j) => ({ EventID: 40, AssetID: 70_000 + j }));
  expect((await httpRequest(router.url(), { body: JSON.stringify(batch) })).status).toBe(202);
  await waitFor(
    () => lines(record, 'start').length,
    (n) => n >= 1,
    { what: 'a run to start' },
  );
  const exit = await router.kill('SIGTERM');
  expect(exit).toEqual({ code: 0, signal: null });
  const started = lines(record, 'start');
  const ended = lines(record, 'end');
  expect(ended.sort()).toEqual(started.sort()); // every run that started was allowed to finish
  const conn = new Database(join(dataDir, DB_FILE), { readonly: true, fileMustExist: true });
  try {
    const rows = conn.prepare('SELECT status, attempts FROM deliveries ORDER BY id').all() as { status: string; attempts: number }[];
    expect(rows.filter((r) => r.status === 'done')).toHaveLength(ended.length);
    // the rest wait for the next start, no attempt spent
    expect(rows.filter((r) => r.status !== 'done').every((r) => r.status === 'pending' && r.attempts === 0)).toBe(true);
    expect(rows.filter((r) => r.status === 'pending').length).toBeGreaterThan(0);
  } finally {
    conn.close();
  }
  expect(router.stdout).toMatch(/"msg":"stopped"/);
}, 30_000);
