// Ordering and debounce at their edges, each found by a hostile review: a handler switched between
// debounce and orderBy across a restart, a retried debounced run older than one that ran since, a
// replayed delivery meeting a new event of its key, a key function that is async. Both back ends.
import { afterEach, describe, expect, it } from 'vitest';
import { type AnyHandlerDefinition, defineHandler } from '../src/delivery/define-handler.js';
import { flowsOf, type FlowProblem } from '../src/delivery/flows.js';
import { checkHandler } from '../src/delivery/loader.js';
import { EventCatalogue } from '../src/events/catalogue.js';
import { createNormalizer } from '../src/events/normalize.js';
import { backendsForFile } from './support/backends.js';
import { makeApp, type TestApp, tempDir } from './support/test-app.js';
import { sleep, waitFor } from './support/wait.js';

const ROUTER = { RETRY_BASE_MS: '5', RETRY_MAX_MS: '20', MAX_ATTEMPTS: '6', SHUTDOWN_TIMEOUT_MS: '300' };
const backends = backendsForFile();
const apps: TestApp[] = [];
const cleanups: (() => void)[] = [];
afterEach(async () => {
  await Promise.all(apps.splice(0).map((a) => a.close()));
  for (const c of cleanups.splice(0)) c();
});

const load = (h: AnyHandlerDefinition) => checkHandler(h, `${h.name ?? 'h'}.mjs`);
const ev = (n: number) => ({ EventID: 12, TaskID: 7, N: n });

describe.each(backends.list)('on $name', (backend) => {
  async function app(handlers: AnyHandlerDefinition[], env: Record<string, string>, dir: string) {
    const a = await makeApp({ ...ROUTER, ...env }, { handlers: handlers.map(load), catalogue: new EventCatalogue() }, dir);
    apps.push(a);
    return a;
  }
  const setUp = async () => {
    const { dir, remove } = tempDir();
    cleanups.push(remove);
    return { dir, env: await backend.env() };
  };
  const allDone = (a: TestApp, n: number) =>
    waitFor(
      () => a.app.store.list({ limit: 100 }),
      (ds) => ds.length === n && ds.every((d) => d.status === 'done'),
      { what: `${n} deliveries done`, timeoutMs: 20_000 },
    );

  it.skipIf(backend.skip)('a handler changed from debounce to orderBy across a restart: the key is not parked for ever', async () => {
    const { dir, env } = await setUp();
    const runs: number[] = [];
    const handle = ({ event }: { event: { data: Record<string, unknown> } }) => void runs.push(Number(event.data.n));
    const first = await app([defineHandler({ name: 'h', on: 12, debounce: { key: (e) => e.taskID, periodMs: 1500 }, handle })], env, dir);
    expect((await first.post(ev(1))).statusCode).toBe(202); // waits its period: still pending at the restart
    await first.close();
    apps.splice(apps.indexOf(first), 1);
    const second = await app([defineHandler({ name: 'h', on: 12, orderBy: (e) => e.taskID, handle })], env, dir);
    expect((await second.post(ev(2))).statusCode).toBe(202);
    expect((await second.post(ev(3))).statusCode).toBe(202);
    await allDone(second, 3);
    expect(runs.filter((n) => n !== 1)).toEqual([2, 3]); // the ordered ones in order
    expect(runs).toContain(1); // the debounced one at the end of its period
  });

  it.skipIf(backend.skip)('a handler changed from orderBy to debounce across a restart: the parked ones still run', async () => {
    const { dir, env } = await setUp();
    const runs: number[] = [];
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const first = await app(
      [
        defineHandler({
          name: 'h',
          on: 12,
          orderBy: (e) => e.taskID,
          handle: async ({ event, signal }) => {
            await Promise.race([held, new Promise((r) => signal.addEventListener('abort', r))]);
            if (signal.aborted) throw new Error('stopped');
            runs.push(Number(event.data.n));
          },
        }),
      ],
      env,
      dir,
    );
    await first.post(ev(1)); // the head, held
    await first.post(ev(2)); // parked behind it
    await sleep(200);
    await first.close(); // the head is released (due again); 2 stays parked
    apps.splice(apps.indexOf(first), 1);
    release();
    const handle = ({ event }: { event: { data: Record<string, unknown> } }) => void runs.push(Number(event.data.n));
    const second = await app([defineHandler({ name: 'h', on: 12, debounce: { key: (e) => e.taskID, periodMs: 300 }, handle })], env, dir);
    await second.post(ev(3)); // debounced, due in 300 ms
    await allDone(second, 3);
    expect(runs.filter((n) => n === 1 || n === 2)).toEqual([1, 2]);
    expect(runs).toContain(3);
  });

  it.skipIf(backend.skip)(
    'a debounced run retried after a newer event of its key ran is finished as collapsed, not run with the older event',
    async () => {
      const { dir, env } = await setUp();
      const runs: number[] = [];
      let failFirst = true;
      const a = await app(
        [
          defineHandler({
            name: 'h',
            on: 12,
            debounce: { key: (e) => e.taskID, periodMs: 100 },
            retry: { baseMs: 1500, maxMs: 1500 },
            handle: ({ event }) => {
              const n = Number(event.data.n);
              if (n === 1 && failFirst) {
                failFirst = false;
                throw new Error('not now');
              }
              runs.push(n);
            },
          }),
        ],
        { ...env, RETRY_BASE_MS: '1500', RETRY_MAX_MS: '1500' },
        dir,
      );
      await a.post(ev(1));
      await waitFor(
        () => a.app.store.list(),
        (ds) => ds.some((d) => d.attempts >= 1 && d.status === 'pending'),
        { what: 'the first run to fail and wait for its retry' },
      );
      await a.post(ev(2)); // runs 100 ms later, long before the first one's retry
      const ds = await allDone(a, 2);
      await sleep(1700); // past the retry's time
      expect(runs).toEqual([2]);
      const older = (await a.app.store.list()).find((d) => d.id !== ds.find((x) => x.attempts === 1 && x.collapsedInto === undefined)?.id);
      expect(older?.collapsedInto).toBeDefined();
    },
  );

  it.skipIf(backend.skip)(
    'a replayed debounced delivery runs as it is, even when a new event of its key comes before it runs',
    async () => {
      const { dir, env } = await setUp();
      const runs: number[] = [];
      const a = await app(
        [
          defineHandler({
            name: 'h',
            on: 12,
            debounce: { key: (e) => e.taskID, periodMs: 200 },
            handle: ({ event }) => void runs.push(Number(event.data.n)),
          }),
        ],
        env,
        dir,
      );
      await a.post([ev(1), ev(2)]); // 1 is collapsed into 2
      const ds = await allDone(a, 2);
      const collapsed = ds.find((d) => d.collapsedInto !== undefined)!;
      expect(runs).toEqual([2]);
      expect((await a.app.store.replay({ ids: [collapsed.id] })).replayed).toEqual([collapsed.id]);
      await a.post(ev(3));
      await allDone(a, 3);
      await waitFor(
        () => runs.length,
        (n) => n === 3,
        { what: 'the replayed one and the new one to run' },
      );
      expect(runs.slice(1).sort()).toEqual([1, 3]);
    },
  );
});

describe('key functions', () => {
  it('an async key function is reported once and its rejection never goes unhandled', async () => {
    const normalize = createNormalizer({ catalogue: new EventCatalogue(), maxBatch: 10 });
    const event = normalize({ EventID: 12, TaskID: 1 }, '{"EventID":12,"TaskID":1}')[0]!;
    const handler = load(
      defineHandler({
        name: 'async-key',
        on: 12,
        orderBy: (async (e: { data: { task?: { id: number } } }) => e.data.task!.id) as never,
        handle: () => undefined,
      }),
    );
    const unhandled: unknown[] = [];
    const listener = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', listener);
    try {
      const problems: FlowProblem[] = [];
      expect(flowsOf([handler], event, (p) => problems.push(p))).toBeUndefined();
      expect(problems).toEqual([
        { handler: 'async-key', field: 'orderBy', problem: expect.stringContaining('returned a Promise') as unknown as string },
      ]);
      await sleep(50);
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', listener);
    }
  });
});
