// A store that cannot write answers 503 STORE_UNAVAILABLE (with Retry-After) and never 2xx. The
// faults stop root too (the tests may run as root, which writes through mode bits, from a checkout
// no other user can enter): a DATA_DIR that is a file, a database SQLite can only read (child
// processes), a store closed under a running app and a store thread that dies (in process).
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Database } from '../src/store/sqlite/driver.js';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/observability/log.js';
import { DB_FILE } from '../src/store/sqlite/store.js';
import { buildApp } from '../src/server.js';
import { readEvents } from './support/db.js';
import { tempDir } from './support/test-app.js';
import { type HttpAnswer, httpRequest, spawnRouter } from './support/spawn-router.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A folder of our own for the test, removed after it. */
function workspace(): string {
  const { dir, remove } = tempDir('hubex-router-unavailable-');
  cleanups.push(remove);
  return dir;
}

let counter = 0;
const uniqueBody = (tag: string) =>
  JSON.stringify({ EventID: 40, AssetID: 7000 + counter, Note: `${tag} ${process.pid} ${Date.now()} ${counter++}` });
const uniqueBatch = (tag: string) => JSON.stringify([JSON.parse(uniqueBody(tag)), JSON.parse(uniqueBody(tag))]);

/** Every answer is 503 STORE_UNAVAILABLE with a Retry-After of whole seconds; none is 2xx. */
function expectAllUnavailable(answers: readonly (HttpAnswer | LightMyRequestResponse)[]) {
  for (const a of answers) {
    const status = 'status' in a ? a.status : a.statusCode;
    const json = 'status' in a ? a.json : a.json();
    expect(status, JSON.stringify(json)).toBe(503);
    expect(json).toMatchObject({ error: 'STORE_UNAVAILABLE', message: expect.any(String), requestId: expect.any(String) });
    expect(a.headers['retry-after']).toMatch(/^\d+$/);
  }
}

const digest = (bytes: string | Buffer) => createHash('sha256').update(bytes).digest('hex');
const fileDigest = (file: string) => digest(readFileSync(file));

function countRows(file: string): number {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    return (db.prepare('SELECT count(*) AS n FROM events').get() as { n: number }).n;
  } finally {
    db.close();
  }
}

const waitForReopen = () => new Promise((resolve) => setTimeout(resolve, 1100)); // the store tries again after 1 s

describe('a store that cannot write answers 503 and never 2xx', () => {
  describe('a DATA_DIR the store cannot write (child process)', () => {
    it('DATA_DIR is a file: the router starts, readyz and webhooks answer 503, nothing is written; it recovers once a folder is there', async () => {
      const base = workspace();
      const data = join(base, 'data');
      const content = 'a file where the folder should be\n';
      writeFileSync(data, content);
      const router = await spawnRouter({ dataDir: data });

      const ready = await httpRequest(`${router.base}/readyz`);
      expect(ready.status, ready.text).toBe(503);
      expect(ready.json).toEqual({ status: 'unavailable', reason: expect.stringMatching(/cannot take writes/) });
      // The answer may be public: it names no path; the log does.
      expect(ready.json.reason).not.toContain(base);
      expect(router.stdout).toContain(`"file":"${join(data, DB_FILE)}"`);
      expect((await httpRequest(`${router.base}/healthz`)).status).toBe(200);

      const first = await Promise.all(
        Array.from({ length: 8 }, (_, i) => httpRequest(router.url(), { body: i % 2 ? uniqueBatch('no-dir') : uniqueBody('no-dir') })),
      );
      expectAllUnavailable(first);
      // After the reopen interval the router tries DATA_DIR again, and fails again.
      await waitForReopen();
      const second = await Promise.all(Array.from({ length: 4 }, () => httpRequest(router.url(), { body: uniqueBody('no-dir') })));
      expectAllUnavailable(second);
      expect((await httpRequest(`${router.base}/readyz`)).status).toBe(503);

      expect(router.child.exitCode, router.stderr).toBeNull(); // it did not crash
      // Root may replace the file with a folder, or write beside it: the router did neither.
      expect(readdirSync(base)).toEqual(['data']);
      expect(readFileSync(data, 'utf8')).toBe(content);
      expect(router.stdout).toMatch(/"msg":"store unavailable"/);

      // The control: the same process, once a folder is there, stores and answers 202.
      rmSync(data);
      mkdirSync(data);
      await waitForReopen();
      const ok = await httpRequest(router.url(), { body: uniqueBody('recovered') });
      expect(ok.status, ok.text).toBe(202);
      expect((await httpRequest(`${router.base}/readyz`)).status).toBe(200);
      await router.kill('SIGTERM');
      expect(countRows(join(data, DB_FILE))).toBe(1);
    });

    // SQLite opens the WAL index (-shm) for writing, and a directory cannot be opened so, by root
    // either; SQLite then opens it read-only, and the store reads but every write fails with
    // SQLITE_READONLY: what a read-only folder does to a router not run as root. The -shm left by
    // a killed router only indexes the -wal and is rebuilt by the next to open it: nothing is lost.
    it.each([
      ['stopped cleanly: the .db file alone', 'SIGTERM'],
      ['killed: the event still in the -wal file beside it', 'SIGKILL'],
    ] as const)(
      'a database SQLite can only read (its -shm a directory; %s): writes answer 503, the files stay as they were',
      async (_what, signal) => {
        const data = workspace();
        // A database with one event, made by a router that could write.
        const maker = await spawnRouter({ dataDir: data });
        const storedBody = uniqueBody('existing');
        const made = await httpRequest(maker.url(), { body: storedBody });
        expect(made.status, made.text).toBe(202);
        const exit = await maker.kill(signal);
        expect(exit, maker.stdout.slice(-2000)).toEqual(signal === 'SIGTERM' ? { code: 0, signal: null } : { code: null, signal });
        const [shm, wal] = [`${DB_FILE}-shm`, `${DB_FILE}-wal`];
        expect(readdirSync(data).sort()).toEqual(signal === 'SIGTERM' ? [DB_FILE] : [DB_FILE, shm, wal]);
        rmSync(join(data, shm), { force: true });
        mkdirSync(join(data, shm));
        const files = readdirSync(data).filter((f) => f !== shm);
        const before = Object.fromEntries(files.map((f) => [f, fileDigest(join(data, f))]));

        const router = await spawnRouter({ dataDir: data });
        const ready = await httpRequest(`${router.base}/readyz`);
        expect(ready.status, ready.text).toBe(503);
        // "readonly": the store opened and read the file, and only the write failed.
        expect(ready.json).toMatchObject({ status: 'unavailable', reason: expect.stringMatching(/cannot take writes.*readonly/) });
        expect(ready.json.reason).not.toContain(data);

        const answers = await Promise.all([
          ...Array.from({ length: 6 }, (_, i) => httpRequest(router.url(), { body: i % 2 ? uniqueBatch('ro-db') : uniqueBody('ro-db') })),
          // Even the event it already holds: counting a duplicate is a write too.
          httpRequest(router.url(), { body: storedBody }),
        ]);
        expectAllUnavailable(answers);
        expect(router.child.exitCode, router.stderr).toBeNull();
        await router.kill('SIGKILL');

        // Not a byte written: the files as they were, and at most the empty -wal SQLite makes to
        // open a WAL database (the clean stop had removed it).
        expect(readdirSync(data).sort()).toEqual([DB_FILE, shm, wal]);
        const after = Object.fromEntries([DB_FILE, wal].map((f) => [f, fileDigest(join(data, f))]));
        expect(after).toEqual({ [wal]: digest(''), ...before });
        // Once the index can be made again, the event is there, and the duplicate was not counted.
        rmSync(join(data, shm), { recursive: true });
        expect(readEvents(data).map((e) => ({ body: JSON.parse(e.raw), duplicates: e.duplicates }))).toEqual([
          { body: JSON.parse(storedBody), duplicates: 0 },
        ]);
      },
      60_000,
    ); // two routers start in it
  });

  describe('a closed store (in process)', () => {
    const TOKEN = 'closed-store-token-0123456789';

    async function app(): Promise<{ app: FastifyInstance; dir: string; post: (body: string) => Promise<LightMyRequestResponse> }> {
      const dir = mkdtempSync(join(tmpdir(), 'hubex-router-closed-'));
      const config = loadConfig({ DATA_DIR: dir, WEBHOOK_TOKENS: TOKEN, LOG_LEVEL: 'silent' });
      const a = await buildApp(config, { logger: createLogger('silent') });
      cleanups.push(async () => {
        await a.close();
        rmSync(dir, { recursive: true, force: true });
      });
      const post = (body: string) =>
        a.inject({ method: 'POST', url: `/hooks/hubex/${TOKEN}`, headers: { 'content-type': 'application/json' }, payload: body });
      return { app: a, dir, post };
    }

    it('after inbox.close() every webhook answers 503 and readyz 503; healthz stays 200', async () => {
      const { app: a, dir, post } = await app();
      const stored = uniqueBody('closed');
      const first = await post(stored);
      expect(first.statusCode, first.body).toBe(202);
      expect((await a.inject('/readyz')).statusCode).toBe(200);

      await a.store.close();
      const answers = await Promise.all([
        post(uniqueBody('closed')),
        post(uniqueBatch('closed')),
        post(stored), // a duplicate, too
        post(uniqueBody('closed')),
      ]);
      expectAllUnavailable(answers);
      // readyz reuses a probe's answer for a second (routes/health.ts): the next one sees the close.
      await new Promise((resolve) => setTimeout(resolve, 1100));
      const ready = await a.inject('/readyz');
      expect(ready.statusCode).toBe(503);
      expect(ready.json()).toEqual({ status: 'unavailable', reason: expect.stringMatching(/closed/) });
      const health = await a.inject('/healthz');
      expect(health.statusCode).toBe(200);
      expect(health.json()).toEqual({ status: 'ok' });

      await a.close();
      expect(countRows(join(dir, DB_FILE))).toBe(1);
    });

    it('a close while writes are pending: those already submitted are stored and answer 202, later ones 503', async () => {
      const { app: a, dir, post } = await app();
      const inbox = a.store;
      const accept = inbox.accept.bind(inbox);
      let calls = 0;
      let closing: Promise<void> | undefined;
      // The store closes right after the 10th accept was submitted, while it (and others) wait for their group commit.
      vi.spyOn(inbox, 'accept').mockImplementation((events) => {
        const p = accept(events);
        if (++calls === 10) closing = inbox.close();
        return p;
      });
      const answers = await Promise.all(
        Array.from({ length: 30 }, (_, i) =>
          post(i % 3 ? uniqueBody('burst') : uniqueBatch('burst')).then((res) => {
            if (res.statusCode === 503) expectAllUnavailable([res]);
            return { status: res.statusCode, ids: res.statusCode === 202 ? (res.json().events as { id: string }[]).map((e) => e.id) : [] };
          }),
        ),
      );
      await closing;
      const statuses = answers.map((r) => r.status);
      expect(calls).toBe(30);
      expect(
        statuses.filter((s) => s === 202),
        statuses.join(' '),
      ).toHaveLength(10);
      expect(
        statuses.filter((s) => s === 503),
        statuses.join(' '),
      ).toHaveLength(20);
      await a.close();
      const db = new Database(join(dir, DB_FILE), { readonly: true });
      const rows = db.prepare('SELECT id FROM events').pluck().all() as string[];
      db.close();
      expect(rows.sort()).toEqual(answers.flatMap((r) => r.ids).sort());
    });
  });
});

describe('a store worker thread that dies', () => {
  it('fails the calls in flight with 503, never 2xx, and a new worker takes over at the next call', async () => {
    const { dir, remove } = tempDir();
    const config = loadConfig({ DATA_DIR: dir, WEBHOOK_TOKENS: 'worker-crash-token-0123456789', LOG_LEVEL: 'silent' });
    const a = await buildApp(config, { logger: createLogger('silent') });
    try {
      const post = (AssetID: number) =>
        a.inject({
          method: 'POST',
          url: '/hooks/hubex/worker-crash-token-0123456789',
          headers: { 'content-type': 'application/json' },
          payload: { EventID: 40, AssetID },
        });
      expect((await post(1)).statusCode).toBe(202);
      const inbox = a.store as unknown as Record<symbol, () => Promise<void>>;
      const inFlight = post(2); // submitted, then the worker dies under it
      await inbox[Symbol.for('hubex-router.test.crashStoreWorker')]!();
      const answer = await inFlight;
      expect([202, 503]).toContain(answer.statusCode); // answered before the crash, or refused: never lost silently
      const during = await post(3);
      expect(during.statusCode).toBe(503);
      expect((await a.inject('/readyz')).statusCode).toBe(503);
      // at most once a second, the next call starts a new worker on the same file
      await new Promise((resolve) => setTimeout(resolve, 1100));
      expect((await post(4)).statusCode).toBe(202);
      const stored = readEvents(dir).map((r) => JSON.parse(r.raw).AssetID);
      // A 2xx is always on disk; a 503 may or may not be (the commit can finish as the thread
      // dies): HubEx calls again, and a stored one is then answered as a duplicate.
      if (answer.statusCode === 202) expect(stored).toEqual([1, 2, 4]);
      else
        expect([
          [1, 4],
          [1, 2, 4],
        ]).toContainEqual(stored);
    } finally {
      await a.close();
      remove();
    }
  });
});
