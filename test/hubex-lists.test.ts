// Walking HubEx lists through the client, against the fake HubEx: 1-based ranges, no item lost
// or repeated at page edges, map-shaped answers, pages shorter than asked, totals through HEAD.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createHubexClient, type HubexClient } from '../src/hubex/client.js';
import { type FakeHubex, type FakeHubexOptions, startFakeHubex } from '../src/testing/fake-hubex.js';

let hubex: FakeHubex;
let c: HubexClient;

async function start(options: FakeHubexOptions = {}): Promise<void> {
  hubex = await startFakeHubex(options);
  c = createHubexClient({ ...hubex.clientOptions, retryBaseMs: 5, retryMaxMs: 20 });
}
beforeEach(() => start());
afterEach(async () => {
  c.close();
  await hubex.close();
});

const ranges = (path: string) => hubex.calls.filter((x) => x.path === path && x.method === 'GET').map((x) => x.range);
async function all<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

describe('pages', () => {
  it('a list that fills its pages exactly ends without asking for an empty page', async () => {
    for (let id = 1; id <= 200; id++) hubex.tasks.set(id, { number: `T-${id}` });
    const tasks = await all(c.work.listTasks({}, { pageSize: 100 }));
    expect(tasks.map((t) => t.id)).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
    expect(ranges('/WORK/Tasks')).toEqual(['items=1-100', 'items=101-200']);
  });

  it('a one-item list, pages of one, and the map key as id on values that carry none', async () => {
    hubex.tasks.set(42, { number: 'T-42' });
    expect(await all(c.work.listTasks({}, { pageSize: 1 }))).toEqual([{ id: 42, number: 'T-42' }]);
    expect(ranges('/WORK/Tasks')).toEqual(['items=1-1']);
  });

  it('follows Content-Range when HubEx answers fewer items than asked', async () => {
    await hubex.close();
    c.close();
    await start({ pageCap: 30 });
    for (let id = 1; id <= 75; id++) hubex.tasks.set(id * 10, {});
    const ids = (await all(c.work.listTasks({}, { pageSize: 50 }))).map((t) => t.id);
    expect(ids).toEqual(Array.from({ length: 75 }, (_, i) => (i + 1) * 10));
    expect(ranges('/WORK/Tasks')).toEqual(['items=1-50', 'items=31-80', 'items=61-110']);
  });

  it('sends the filter with every page, beside the Range', async () => {
    for (let id = 1; id <= 3; id++) hubex.tasks.set(id, {});
    await all(c.work.listTasks({ taskStageID: 4, isDeleted: false }, { pageSize: 2 }));
    const sent = hubex.calls.filter((x) => x.path === '/WORK/Tasks');
    expect(sent.map((x) => [x.query, x.range])).toEqual([
      [{ taskStageID: '4', isDeleted: 'false' }, 'items=1-2'],
      [{ taskStageID: '4', isDeleted: 'false' }, 'items=3-4'],
    ]);
  });

  it('stops when the caller aborts between pages', async () => {
    for (let id = 1; id <= 50; id++) hubex.tasks.set(id, {});
    const controller = new AbortController();
    const seen: number[] = [];
    const walk = (async () => {
      for await (const t of c.work.listTasks({}, { pageSize: 10, signal: controller.signal })) {
        seen.push(t.id);
        if (seen.length === 15) controller.abort(new Error('enough'));
      }
    })();
    await expect(walk).rejects.toThrow('enough');
    expect(seen).toHaveLength(15);
    expect(ranges('/WORK/Tasks')).toEqual(['items=1-10', 'items=11-20']);
  });
});

describe('shapes and totals', () => {
  it('next stages (a map) carry their stage id; a conversation (an array) keeps its own ids', async () => {
    hubex.tasks.set(7, { taskStageID: 2 });
    expect(await all(c.work.nextStages(7))).toMatchObject([
      { id: 3, name: 'Stage 3' },
      { id: 4, name: 'Stage 4' },
    ]);
    await c.work.addMessage(7, { message: 'first' });
    await c.work.addMessage(7, { message: 'second', isExternal: true });
    const messages = await all(c.list('/WORK/Tasks/{taskID}/conversations', { params: { taskID: 7 }, pageSize: 1 }));
    expect(messages).toMatchObject([
      { id: 1, message: 'first' },
      { id: 2, message: 'second', isExternal: true },
    ]);
    expect(ranges('/WORK/Tasks/7/conversations')).toEqual(['items=1-1', 'items=2-2']);
  });

  it('counts with HEAD, without items', async () => {
    for (let id = 1; id <= 123; id++) hubex.tasks.set(id, {});
    expect(await c.count('/WORK/Tasks')).toBe(123);
    hubex.tasks.set(7000, {});
    expect(await c.count('/WORK/Tasks', { query: { isDeleted: false } })).toBe(124);
    const heads = hubex.calls.filter((x) => x.method === 'HEAD');
    expect(heads.map((x) => x.path)).toEqual(['/WORK/Tasks', '/WORK/Tasks']);
    expect(heads[1]!.query).toEqual({ isDeleted: 'false' });
    expect(await c.count('/COMMON/Events')).toBe(hubex.events.length);
  });

  it('the event catalogue and the webhooks are walked with Range, never cut', async () => {
    for (let id = 100; id < 700; id++) hubex.events.push({ id, code: `Custom${id}Happened`, name: `custom ${id}` });
    const events = await c.common.events();
    expect(events).toHaveLength(hubex.events.length); // the fake's own 4, and these 600
    expect(hubex.events.length).toBe(604);
    expect(new Set(events.map((e) => e.id)).size).toBe(604);
    expect(ranges('/COMMON/Events')).toEqual(['items=1-500', 'items=501-1000']);

    for (let i = 0; i < 3; i++)
      await c.msg.webhooks.create({ name: `hook ${i}`, uri: `https://example.com/h/${i}`, events: [40], taskStages: [], isActive: true });
    const hooks = await all(c.msg.webhooks.list({ pageSize: 2 }));
    expect(hooks.map((h) => [h.id, h.name])).toEqual([
      [1, 'hook 0'],
      [2, 'hook 1'],
      [3, 'hook 2'],
    ]);
    expect(ranges('/MSG/Webhooks')).toEqual(['items=1-2', 'items=3-4']);
  });
});
