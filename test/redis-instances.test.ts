// Several router processes on one real redis-server, as behind a load balancer: a burst with every
// batch sent to both (HubEx's retry landing on the other instance), kill -9 of one instance while
// its handlers run, Redis restarted mid-run, and the dead letters replayed with the command line.
// The recorder (test/support/recorder.ts), a real handler module in HANDLERS_DIR, notes each run.
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli } from './support/cli.js';
import { hasRedis, type RedisServer, startRedis } from './support/redis.js';
import { httpRequest, type SpawnedRouter, spawnRouter } from './support/spawn-router.js';
import { recorded, setupRecorder } from './support/recorder.js';
import { waitFor } from './support/wait.js';

const RUN_MS = 100;

const lines = recorded;

const counted = (ids: readonly string[]) => ids.reduce((m, id) => m.set(id, (m.get(id) ?? 0) + 1), new Map<string, number>());

describe.skipIf(!hasRedis)('several instances on one Redis', () => {
  let redis: RedisServer;
  let dbN = 0;
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await redis?.close();
  });

  /** The recorder, and the env of an instance on a fresh Redis database. */
  function setup() {
    const r = setupRecorder(RUN_MS);
    const env = {
      ...r.env,
      QUEUE: 'redis',
      REDIS_URL: `${redis.url}/${++dbN}`,
      HANDLER_CONCURRENCY: '4',
      HANDLER_LEASE_MS: '1000',
      RETRY_BASE_MS: '10',
      RETRY_MAX_MS: '50',
      LOG_LEVEL: 'warn',
    };
    return { ...r, env };
  }

  /** Sends `n` events in batches of 10, each batch to `to[0]` and its duplicate to `to[1]`; answers the acknowledged ids. */
  async function burst(to: readonly SpawnedRouter[], n: number, from = 0): Promise<string[]> {
    const acked = new Set<string>();
    for (let i = 0; i < n; i += 10) {
      const batch = JSON.stringify(
        Array.from({ length: 10 }, (_, j) => ({ EventID: 40, AssetID: from + i + j, NotificationID: `b-${from + i + j}` })),
      );
      const answers = await Promise.all(to.map((r) => httpRequest(r.url(), { body: batch })));
      for (const a of answers) {
        expect([200, 202]).toContain(a.status);
        for (const e of a.json.events) acked.add(e.id);
      }
      // Between them, the two answers took each event once.
      expect(answers.reduce((s, a) => s + a.json.accepted, 0)).toBe(10);
    }
    return [...acked];
  }

  it('two instances take a burst with every batch sent to both, and run the handler once per event', async () => {
    const { dataDir, record, env } = setup();
    const a = await spawnRouter({ dataDir, env });
    const b = await spawnRouter({ dataDir: `${dataDir}/b`, env });
    const acked = await burst([a, b], 200);
    expect(acked).toHaveLength(200);
    await waitFor(
      () => lines(record, 'end').length,
      (n) => n >= 200,
      { what: '200 runs to end', timeoutMs: 30_000 },
    );
    const starts = counted(lines(record, 'start'));
    expect([...starts.keys()].sort()).toEqual([...acked].sort());
    expect([...starts.values()].every((n) => n === 1)).toBe(true);
    // Both instances did some of the work.
    expect(new Set(lines(record, 'end', true))).toEqual(new Set([String(a.pid), String(b.pid)]));
    const res = await cli(['deliveries', 'list', '--json', '--limit', '1000'], { ...env, DATA_DIR: dataDir });
    expect(res.code).toBe(0);
    const list = JSON.parse(res.stdout) as { status: string }[];
    expect(list.filter((d) => d.status === 'done')).toHaveLength(200);
  });

  it('kill -9 of one instance mid-run: the other finishes its work, and no acknowledged event is lost', async () => {
    const { dataDir, record, env } = setup();
    const a = await spawnRouter({ dataDir, env });
    const b = await spawnRouter({ dataDir: `${dataDir}/b`, env });
    const acked = await burst([a], 120);
    await waitFor(
      () => lines(record, 'start').length,
      (n) => n >= 12,
      { what: 'runs to start' },
    );
    await a.kill('SIGKILL');
    const cutShortAt = lines(record, 'start').length - lines(record, 'end').length;
    expect(cutShortAt).toBeGreaterThan(0); // runs were under way when the kill came
    await waitFor(
      () => new Set(lines(record, 'end')).size,
      (n) => n === acked.length,
      { what: 'every acknowledged event to be handled by the survivor', timeoutMs: 30_000 },
    );
    expect(new Set(lines(record, 'end'))).toEqual(new Set(acked));
    // Only runs cut short by the kill ran twice (at least once, never lost).
    const twice = [...counted(lines(record, 'start'))].filter(([, n]) => n > 1);
    expect(twice.length).toBeLessThanOrEqual(8);
    expect(b.child.exitCode).toBeNull();
  });

  it('kill -9 of one instance while it runs ordered handlers: the other carries every key on, in order', async () => {
    const { dataDir, record, env } = setup();
    // The recorder, ordered by asset over 4 keys (a file beside it in HANDLERS_DIR).
    const dir = (env as Record<string, string>).HANDLERS_DIR!;
    rmSync(`${dir}/recorder.mjs`);
    writeFileSync(
      `${dir}/ordered.mjs`,
      `import { appendFileSync } from 'node:fs';
export default {
  name: 'ordered',
  on: '*',
  orderBy: (event) => event.assetID % 4,
  async handle({ event }) {
    appendFileSync(process.env.RECORD_FILE, 'start ' + event.id + ' ' + process.pid + '\\n');
    await new Promise((resolve) => setTimeout(resolve, ${RUN_MS}));
    appendFileSync(process.env.RECORD_FILE, 'end ' + event.id + ' ' + process.pid + '\\n');
  },
};
`,
    );
    const a = await spawnRouter({ dataDir, env });
    const b = await spawnRouter({ dataDir: `${dataDir}/b`, env });
    const acked = await burst([a], 40);
    await waitFor(
      () => lines(record, 'start', true).filter((pid) => pid === String(a.pid)).length,
      (n) => n >= 2,
      { what: 'runs on a' },
    );
    await a.kill('SIGKILL');
    await waitFor(
      () => new Set(lines(record, 'end')).size,
      (n) => n === acked.length,
      // A stalled job waits out its lock, a parked one its park: slow on a loaded machine.
      { what: 'every acknowledged event handled', timeoutMs: 50_000 },
    );
    // Each key's events ended in the order sent (b-0, b-4, b-8, ... for key 0). A run the killed
    // instance ended just before the kill, before its outcome was recorded, runs again on the
    // survivor (at least once): that repeat follows it at once, and no other event repeats.
    const n = (id: string) => Number(id.slice(2));
    const ends = lines(record, 'end').map(n);
    const startedOnA = new Set(
      lines(record, 'start', true)
        .map((pid, i) => [pid, n(lines(record, 'start')[i]!)] as const)
        .filter(([pid]) => pid === String(a.pid))
        .map(([, id]) => id),
    );
    for (let key = 0; key < 4; key++) {
      const mine = ends.filter((x) => x % 4 === key).filter((x, i, all) => i === 0 || x !== all[i - 1] || !startedOnA.has(x));
      expect(mine).toEqual([...new Set(mine)].sort((x, y) => x - y));
      expect(mine).toHaveLength(10);
    }
    // On the survivor, a key never had two runs at once.
    const text = readFileSync(record, 'utf8')
      .split('\n')
      .filter((l) => l.endsWith(` ${b.pid}`));
    const open = new Map<number, number>();
    for (const l of text) {
      const [kind, id] = l.split(' ');
      const key = n(id!) % 4;
      open.set(key, (open.get(key) ?? 0) + (kind === 'start' ? 1 : -1));
      expect(open.get(key)).toBeLessThanOrEqual(1);
    }
    expect(b.child.exitCode).toBeNull();
  }, 60_000);

  it('SIGTERM of one instance drains its running handlers and exits 0; the other takes up the rest, each run once', async () => {
    const { dataDir, record, env } = setup();
    const a = await spawnRouter({ dataDir, env: { ...env, SHUTDOWN_TIMEOUT_MS: '5000' } });
    const b = await spawnRouter({ dataDir: `${dataDir}/b`, env });
    const acked = await burst([a], 80);
    await waitFor(
      () => lines(record, 'start', true).filter((pid) => pid === String(a.pid)).length,
      (n) => n >= 4,
      { what: 'runs on a' },
    );
    expect(await a.kill('SIGTERM')).toEqual({ code: 0, signal: null });
    const byA = lines(record, 'start', true).filter((pid) => pid === String(a.pid)).length;
    expect(lines(record, 'end', true).filter((pid) => pid === String(a.pid))).toHaveLength(byA); // none cut short
    await waitFor(
      () => new Set(lines(record, 'end')).size,
      (n) => n === acked.length,
      { what: 'b to finish the rest', timeoutMs: 30_000 },
    );
    expect([...counted(lines(record, 'start')).values()].every((n) => n === 1)).toBe(true);
    expect(b.child.exitCode).toBeNull();
  });

  it('Redis restarted mid-run: the instances carry on, and every acknowledged event is handled', async () => {
    const { dataDir, record, env } = setup();
    const a = await spawnRouter({ dataDir, env });
    const b = await spawnRouter({ dataDir: `${dataDir}/b`, env });
    const before = await burst([a, b], 60);
    await waitFor(
      () => lines(record, 'start').length,
      (n) => n >= 8,
      { what: 'runs to start' },
    );
    await redis.stop('SIGTERM');
    const refused = await httpRequest(a.url(), { body: JSON.stringify({ EventID: 40, AssetID: 1, NotificationID: 'while-down' }) });
    expect(refused.status).toBe(503);
    await redis.start();
    await waitFor(
      () => httpRequest(`${b.base}/readyz`, { method: 'GET' }).then((r) => r.status),
      (s) => s === 200,
      { what: 'readyz 200', timeoutMs: 15_000 },
    );
    const after = await burst([b, a], 60, 1000);
    const acked = [...before, ...after];
    await waitFor(
      () => new Set(lines(record, 'end')).size,
      (n) => n === acked.length,
      { what: 'every event handled', timeoutMs: 30_000 },
    );
    expect(new Set(lines(record, 'end'))).toEqual(new Set(acked));
    expect(lines(record, 'end')).not.toContain('while-down');
  });

  it('replays the dead letters from the command line, on any instance', async () => {
    const { dataDir, record, env, failFile } = setup();
    writeFileSync(failFile, '');
    const a = await spawnRouter({ dataDir, env });
    const acked = await burst([a], 20);
    const run = (args: string[]) => cli(args, { ...env, DATA_DIR: dataDir });
    await waitFor(
      () => run(['deliveries', 'list', '--status', 'dead', '--json']).then((r) => JSON.parse(r.stdout).length),
      (n) => n === 20,
      {
        what: '20 dead letters',
        timeoutMs: 20_000,
      },
    );
    const shown = await run(['deliveries', 'show', `${acked[0]}@recorder`]);
    expect(shown.code).toBe(0);
    expect(shown.stdout).toContain(`delivery ${acked[0]}@recorder: dead`);
    expect(shown.stdout).toContain('the recorder is switched off');

    rmSync(failFile);
    const replay = await run(['deliveries', 'replay', '--all-dead']);
    expect(replay.code).toBe(0);
    expect(replay.stdout).toMatch(/20 deliveries pending again/);
    await waitFor(
      () => new Set(lines(record, 'end')).size,
      (n) => n === 20,
      { what: 'the replayed runs', timeoutMs: 20_000 },
    );
    const dead = await run(['deliveries', 'list', '--status', 'dead', '--json']);
    expect(JSON.parse(dead.stdout)).toEqual([]);
  });
});
