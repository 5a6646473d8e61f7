// A store that cannot write answers 503 STORE_UNAVAILABLE (with Retry-After) and never 2xx: a
// read-only DATA_DIR (a real child process, run as `nobody` when the tests run as root, since
// root ignores permission bits), and a store closed under a running app (in process).
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import Database from 'better-sqlite3';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/log.js';
import { DB_FILE } from '../src/queue/sqlite/sqlite-inbox.js';
import { buildApp } from '../src/server.js';
import { readEvents } from './support/db.js';
import { tempDir } from './support/test-app.js';
import { type HttpAnswer, httpRequest, lookupUser, REPO_ROOT, type SpawnedRouter, spawnRouter } from './support/spawn-router.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const isRoot = process.getuid?.() === 0;

/** Who runs the child: `nobody` when we are root (root writes through any mode bits), else ourselves. */
function unprivilegedUser(): { uid: number; gid: number } | undefined {
  if (!isRoot) return undefined;
  const nobody = lookupUser('nobody');
  if (!nobody) throw new Error('the tests run as root and /etc/passwd has no user nobody to run the router as');
  return nobody;
}

/**
 * A folder tree the unprivileged child can reach: base (0755) / data, and base / tmp (0777, the
 * child's TMPDIR, for tsx's cache), removed after the test.
 */
function workspace(): { base: string; data: string; childTmp: string } {
  const base = mkdtempSync(join(tmpdir(), 'hubex-router-ro-'));
  cleanups.push(() => {
    chmodTree(base, 0o755, 0o644); // a read-only tree may not be removable by a non-root owner
    rmSync(base, { recursive: true, force: true });
  });
  chmodSync(base, 0o755);
  const data = join(base, 'data');
  const childTmp = join(base, 'tmp');
  mkdirSync(data);
  mkdirSync(childTmp);
  chmodSync(childTmp, 0o777);
  return { base, data, childTmp };
}

function chmodTree(dir: string, dirMode: number, fileMode: number): void {
  if (!existsSync(dir)) return;
  chmodSync(dir, dirMode);
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) chmodTree(p, dirMode, fileMode);
    else chmodSync(p, fileMode);
  }
}

/** Fails with a clear message when `nobody` cannot read the repository (every ancestor needs o+x). */
function expectRepoReadableByOthers(): void {
  const problems: string[] = [];
  for (let d = REPO_ROOT.replace(/\/$/, ''); d !== dirname(d); d = dirname(d)) {
    if ((statSync(d).mode & 0o001) === 0) problems.push(`${d} is not searchable by others (o+x)`);
  }
  for (const f of ['src/main.ts', 'node_modules/tsx/package.json', 'node_modules/better-sqlite3/package.json']) {
    if ((statSync(join(REPO_ROOT, f)).mode & 0o004) === 0) problems.push(`${f} is not readable by others (o+r)`);
  }
  expect(problems, 'the router cannot run as nobody from this checkout').toEqual([]);
}

async function startUnprivileged(dataDir: string, childTmp: string): Promise<SpawnedRouter> {
  const user = unprivilegedUser();
  if (user) expectRepoReadableByOthers();
  const router = await spawnRouter({
    dataDir,
    ...(user ? { uid: user.uid, gid: user.gid, env: { TMPDIR: childTmp, HOME: childTmp } } : {}),
  });
  const status = `/proc/${router.pid}/status`;
  if (user && existsSync(status)) {
    // Root would write through the read-only modes: make sure the child really is someone else.
    expect(readFileSync(status, 'utf8')).toMatch(new RegExp(`^Uid:\\s+${user.uid}\\s`, 'm'));
  }
  return router;
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

const fileDigest = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');

function countRows(file: string): number {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    return (db.prepare('SELECT count(*) AS n FROM events').get() as { n: number }).n;
  } finally {
    db.close();
  }
}

describe('a store that cannot write answers 503 and never 2xx', () => {
  describe('a read-only DATA_DIR (child process)', () => {
    it('an empty read-only folder: the router starts, readyz and webhooks answer 503, nothing is written; it recovers once writable', async () => {
      const ws = workspace();
      chmodSync(ws.data, 0o555);
      const router = await startUnprivileged(ws.data, ws.childTmp);

      const ready = await httpRequest(`${router.base}/readyz`);
      expect(ready.status, ready.text).toBe(503);
      expect(ready.json).toEqual({ status: 'unavailable', reason: expect.stringMatching(/cannot take writes/) });
      // The answer may be public: it names no path; the log does.
      expect(ready.json.reason).not.toContain(ws.data);
      expect(router.stdout).toContain(`"file":"${join(ws.data, DB_FILE)}"`);
      expect((await httpRequest(`${router.base}/healthz`)).status).toBe(200);

      const first = await Promise.all(
        Array.from({ length: 8 }, (_, i) => httpRequest(router.url(), { body: i % 2 ? uniqueBatch('ro') : uniqueBody('ro') })),
      );
      expectAllUnavailable(first);
      // After the reopen interval (1 s) the router tries the folder again, and fails again.
      await new Promise((resolve) => setTimeout(resolve, 1100));
      const second = await Promise.all(Array.from({ length: 4 }, () => httpRequest(router.url(), { body: uniqueBody('ro') })));
      expectAllUnavailable(second);
      expect((await httpRequest(`${router.base}/readyz`)).status).toBe(503);

      expect(router.child.exitCode, router.stderr).toBeNull(); // it did not crash
      expect(readdirSync(ws.data), 'nothing may be written to the read-only folder').toEqual([]);
      expect(router.stdout).toMatch(/"msg":"store unavailable"/);

      // The control: the same process, once the folder is writable, stores and answers 202.
      // (This also proves the 503s came from the folder, not from running as another user.)
      chmodSync(ws.data, 0o777);
      await new Promise((resolve) => setTimeout(resolve, 1100));
      const body = uniqueBody('recovered');
      const ok = await httpRequest(router.url(), { body });
      expect(ok.status, ok.text).toBe(202);
      expect((await httpRequest(`${router.base}/readyz`)).status).toBe(200);
      await router.kill('SIGTERM');
      expect(countRows(join(ws.data, DB_FILE))).toBe(1);
    });

    it.each([
      ['stopped cleanly: the .db file alone', 'SIGTERM'],
      ['killed: the event still in the -wal file beside it', 'SIGKILL'],
    ] as const)('a read-only folder holding a database (%s): writes answer 503, the files stay as they were', async (_what, signal) => {
      const ws = workspace();
      // A database with one event, made by a router running as ourselves.
      const maker = await spawnRouter({ dataDir: ws.data });
      const storedBody = uniqueBody('existing');
      const made = await httpRequest(maker.url(), { body: storedBody });
      expect(made.status, made.text).toBe(202);
      const exit = await maker.kill(signal);
      expect(exit, maker.stdout.slice(-2000)).toEqual(signal === 'SIGTERM' ? { code: 0, signal: null } : { code: null, signal });
      const file = join(ws.data, DB_FILE);
      const files = readdirSync(ws.data).sort();
      expect(files).toEqual(signal === 'SIGTERM' ? [DB_FILE] : [DB_FILE, `${DB_FILE}-shm`, `${DB_FILE}-wal`]);
      const before = Object.fromEntries(files.map((f) => [f, fileDigest(join(ws.data, f))]));
      chmodTree(ws.data, 0o555, 0o444);

      const router = await startUnprivileged(ws.data, ws.childTmp);
      const ready = await httpRequest(`${router.base}/readyz`);
      expect(ready.status, ready.text).toBe(503);
      expect(ready.json).toMatchObject({ status: 'unavailable', reason: expect.stringMatching(/cannot take writes/) });
      expect(ready.json.reason).not.toContain(ws.data);

      const answers = await Promise.all([
        ...Array.from({ length: 6 }, (_, i) => httpRequest(router.url(), { body: i % 2 ? uniqueBatch('ro-db') : uniqueBody('ro-db') })),
        // Even the event it already holds: counting a duplicate is a write too.
        httpRequest(router.url(), { body: storedBody }),
      ]);
      expectAllUnavailable(answers);
      expect(router.child.exitCode, router.stderr).toBeNull();
      await router.kill('SIGKILL');

      // Not a byte changed, and the event is still there (read only now, as a reader may touch -shm).
      expect(readdirSync(ws.data).sort()).toEqual(files);
      const after = Object.fromEntries(files.map((f) => [f, fileDigest(join(ws.data, f))]));
      expect(after).toEqual(before);
      chmodTree(ws.data, 0o755, 0o644);
      expect(countRows(file)).toBe(1);
    });
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

      await a.inbox.close();
      const answers = await Promise.all([
        post(uniqueBody('closed')),
        post(uniqueBatch('closed')),
        post(stored), // a duplicate, too
        post(uniqueBody('closed')),
      ]);
      expectAllUnavailable(answers);
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
      const inbox = a.inbox;
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
      expect(statuses.filter((s) => s === 202), statuses.join(' ')).toHaveLength(10);
      expect(statuses.filter((s) => s === 503), statuses.join(' ')).toHaveLength(20);
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
        a.inject({ method: 'POST', url: '/hooks/hubex/worker-crash-token-0123456789', headers: { 'content-type': 'application/json' }, payload: { EventID: 40, AssetID } });
      expect((await post(1)).statusCode).toBe(202);
      const inbox = a.inbox as unknown as Record<symbol, () => Promise<void>>;
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
      else expect([[1, 4], [1, 2, 4]]).toContainEqual(stored);
    } finally {
      await a.close();
      remove();
    }
  });
});
