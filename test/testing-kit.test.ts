// 'hubex-router/testing' as integrators use it: runHandler for a unit test against the fake
// HubEx, and `hubex-router fake-hubex` as a server a real router is pointed at, with `send`.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHubexClient, type HubexClient } from '../src/hubex/index.js';
import { defineHandler, PermanentError } from '../src/index.js';
import { type FakeHubex, runHandler, startFakeHubex } from '../src/testing/index.js';
import { cli } from './support/cli.js';
import overview from './fixtures/comment-on-new-task.js';
import { REPO_ROOT, ROUTER_TOKEN, spawnRouter } from './support/spawn-router.js';
import { tempDir } from './support/test-app.js';
import { waitFor } from './support/wait.js';

describe('runHandler', () => {
  let fake: FakeHubex;
  let hubex: HubexClient;
  beforeAll(async () => {
    fake = await startFakeHubex();
    fake.tasks.set(5, { notes: 'Fix the pump' });
    hubex = createHubexClient(fake.clientOptions);
  });
  afterAll(async () => {
    hubex.close();
    await fake.close();
  });

  const titler = defineHandler({
    name: 'titler',
    on: 'task.created',
    where: (event) => event.taskStageID !== 9,
    async handle({ event, hubex, log, signal }) {
      const task = await hubex.work.getTask(event.taskID, { signal });
      if (task.notes === 'forbidden') throw new PermanentError('not this task');
      log.info({ notes: task.notes }, 'read the task');
    },
  });
  const events = [{ id: 12, name: 'task.created' }];

  it('runs a handler once for a payload as HubEx sends it, against the fake HubEx, with its log lines', async () => {
    const result = await runHandler(titler, { EventID: 12, TaskID: 5 }, { hubex, events });
    expect(result).toMatchObject({ status: 'done', event: { name: 'task.created', taskID: 5 } });
    expect(result.logs.find((l) => l.msg === 'read the task')).toMatchObject({ notes: 'Fix the pump', handler: 'titler' });
    expect(fake.calls.some((c) => c.method === 'GET' && c.path === '/WORK/Tasks/5')).toBe(true);
  });

  it('says what the router would do: skipped, dead (PermanentError, a HubEx 404, no taskID), retry', async () => {
    expect((await runHandler(titler, { EventID: 12, TaskID: 5, TaskStageID: 9 }, { hubex, events })).status).toBe('skipped');
    fake.tasks.set(6, { notes: 'forbidden' });
    expect(await runHandler(titler, { EventID: 12, TaskID: 6 }, { hubex, events })).toMatchObject({
      status: 'dead',
      error: { message: 'not this task', errorClass: 'PermanentError' },
    });
    expect(await runHandler(titler, { EventID: 12, TaskID: 404 }, { hubex, events })).toMatchObject({
      status: 'dead',
      error: { errorClass: 'HubexApiError' },
    });
    expect(await runHandler(titler, { EventID: 12, AssetID: 1 }, { hubex, events })).toMatchObject({
      status: 'dead',
      error: { message: expect.stringContaining('has no taskID') },
    });
    fake.fail({ path: '/WORK/Tasks/5', status: 503, times: 10 });
    const busy = await runHandler(
      titler,
      { EventID: 12, TaskID: 5 },
      { hubex: createHubexClient({ ...fake.clientOptions, retries: 0 }), events },
    );
    expect(busy).toMatchObject({ status: 'retry', error: { errorClass: 'HubexApiError' } });
  });

  it('runs the opening example of docs/handlers.md: a message on a task in stage 4, a deleted task dead at once', async () => {
    fake.tasks.set(7, { notes: 'in stage 4' });
    fake.tasks.set(8, { deleted: true });
    expect((await runHandler(overview, { EventID: 12, TaskID: 7, TaskStageID: 4 }, { hubex, events })).status).toBe('done');
    expect(fake.conversations.get(7)).toMatchObject([{ message: 'Seen' }]);
    expect((await runHandler(overview, { EventID: 12, TaskID: 7, TaskStageID: 3 }, { hubex, events })).status).toBe('skipped');
    const gone = await runHandler(overview, { EventID: 12, TaskID: 8, TaskStageID: 4 }, { hubex, events });
    expect(gone).toMatchObject({ status: 'dead', error: { message: 'the task was deleted' } });
    expect(gone.logs.find((l) => l.msg === 'tell a person')).toMatchObject({ task: 8, reason: 'the task was deleted' });
  });

  it("without a hubex option, gives the handler a client whose calls fail clearly; its timeoutMs option wins over the handler's", async () => {
    expect(await runHandler(titler, { EventID: 12, TaskID: 5 }, { events })).toMatchObject({
      status: 'dead',
      error: { errorClass: 'HubexConfigError' },
    });
    const slow = defineHandler({
      name: 'slow',
      on: 40,
      timeoutMs: 3000,
      handle: ({ signal }) => new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason as Error))),
    });
    expect(await runHandler(slow, { EventID: 40, AssetID: 1 }, { timeoutMs: 50, attempt: 12 })).toMatchObject({
      status: 'dead',
      error: { errorClass: 'HandlerTimeoutError', message: expect.stringContaining('within 50 ms') },
    });
  });

  it('gives a handler without a HubEx token a client whose calls fail clearly, not undefined', async () => {
    const r = await runHandler(
      titler,
      { EventID: 12, TaskID: 5 },
      { hubex: createHubexClient({ baseUrl: fake.url, applicationId: 5 }), events },
    );
    expect(r).toMatchObject({
      status: 'dead',
      error: { errorClass: 'HubexConfigError', message: expect.stringContaining('HUBEX_SERVICE_TOKEN') },
    });
  });
});

describe('hubex-router fake-hubex', () => {
  it('runs the fake as a server: it prints its address, a router pointed at it calls it, send drives the router', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/index.ts', 'fake-hubex', '--port', '0'], {
      cwd: REPO_ROOT,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d));
    child.stderr.on('data', (d: Buffer) => (err += d));
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    try {
      const url = (await waitFor(
        () => /HUBEX_BASE_URL=(\S+)/.exec(err),
        (m) => m !== null,
        { what: 'the fake to print its address', timeoutMs: 15_000 },
      ))![1]!;
      expect(err).toContain('HUBEX_SERVICE_TOKEN=fake-hubex-service-token');
      const { dir, remove } = tempDir();
      try {
        const router = await spawnRouter({
          dataDir: join(dir, 'data'),
          env: {
            HUBEX_BASE_URL: url,
            HUBEX_SERVICE_TOKEN: 'fake-hubex-service-token',
            TASK_COMMENT_ON: 'task.created', // the shipped comment-on-task handler, on a name from the fake's catalogue
            LOG_EVENTS: 'false',
          },
        });
        const sent = await cli(['send', 'task.created', '--task', '1', '--url', router.base], {
          WEBHOOK_TOKENS: ROUTER_TOKEN,
          DATA_DIR: dir,
        });
        expect(sent.code, sent.stderr).toBe(0);
        await waitFor(
          () => out,
          (o) => o.includes('POST /WORK/Tasks/1/conversation -> 201'),
          { what: 'the handler to add its message through the fake', timeoutMs: 15_000 },
        );
        expect(out).toContain('GET /COMMON/Events'); // the router read the catalogue from it at start
        expect(out).toContain('GET /WORK/Tasks/1 -> 200');
        await router.kill('SIGTERM');
      } finally {
        remove();
      }
      child.kill('SIGINT');
      expect(await exited).toBe(0);
    } finally {
      child.kill('SIGKILL');
    }
  }, 60_000);

  it('refuses a port it cannot take, and bad options, with a sentence', async () => {
    const bad = await cli(['fake-hubex', '--port', 'abc'], {});
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--port takes a whole number');
    const taken = await startFakeHubex();
    try {
      const port = new URL(taken.url).port;
      const busy = await cli(['fake-hubex', '--port', port], {});
      expect(busy.code).toBe(1);
      expect(busy.stderr).toContain(`port ${port} is taken; choose another with --port`);
    } finally {
      await taken.close();
    }
  });
});
