// The admin API: off without ADMIN_TOKEN, bearer-authenticated, filters and paging, replay.
import { afterEach, describe, expect, it } from 'vitest';
import { defineHandler } from '../src/delivery/define-handler.js';
import { checkHandler } from '../src/delivery/loader.js';
import { makeApp, type TestApp } from './support/test-app.js';
import { waitFor } from './support/wait.js';

const ADMIN = 'admin-token-0123456789abcdef';
let t: TestApp | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

let broken = true;
const handlers = [
  checkHandler(
    defineHandler({
      name: 'fragile',
      on: '*',
      handle: () => {
        if (broken) throw new Error('downstream is down');
      },
    }),
    'fragile.ts',
  ),
  checkHandler(defineHandler({ name: 'steady', on: 'asset.created', handle: () => undefined }), 'steady.ts'),
];

async function withDeadLetters(): Promise<TestApp> {
  broken = true;
  t = await makeApp({ ADMIN_TOKEN: ADMIN, MAX_ATTEMPTS: '1', RETRY_BASE_MS: '5', RETRY_MAX_MS: '10' }, { handlers });
  await t.post([
    { EventID: 40, AssetID: 1 },
    { EventID: 41, AssetID: 2 },
    { EventID: 41, AssetID: 3 },
  ]);
  await waitFor(
    () => t!.app.store.counts(),
    (c) => c.dead === 3 && c.done === 1,
    { what: '3 dead, 1 done' },
  );
  return t;
}

const get = (url: string, token: string | null = ADMIN) =>
  t!.app.inject({ method: 'GET', url, headers: token === null ? {} : { authorization: `Bearer ${token}` } });
const post = (url: string, body?: unknown) =>
  t!.app.inject({
    method: 'POST',
    url,
    headers: { authorization: `Bearer ${ADMIN}` },
    ...(body === undefined ? {} : { payload: body as object }),
  });

describe('access', () => {
  it('does not exist without ADMIN_TOKEN', async () => {
    t = await makeApp();
    const res = await get('/admin/stats');
    expect(res.statusCode).toBe(404);
  });

  it('answers 401 without the bearer token or with a wrong one, and never logs it', async () => {
    await withDeadLetters();
    expect((await get('/admin/stats', null)).statusCode).toBe(401);
    const wrong = await get('/admin/stats', 'admin-token-0123456789abcdeX');
    expect(wrong.statusCode).toBe(401);
    expect(wrong.json()).toMatchObject({ error: 'UNAUTHORIZED', message: expect.stringMatching(/Bearer <ADMIN_TOKEN>/) });
    expect((await get('/admin/stats')).statusCode).toBe(200);
    expect(JSON.stringify(t!.logs.lines)).not.toContain(ADMIN);
  });
});

describe('deliveries and events', () => {
  it('lists deliveries with filters and paging, and shows one', async () => {
    await withDeadLetters();
    const dead = (await get('/admin/deliveries?status=dead')).json();
    expect(dead.items).toHaveLength(3);
    expect(dead.items[0]).toMatchObject({ handler: 'fragile', status: 'dead', lastError: { message: 'downstream is down' } });
    expect((await get('/admin/deliveries?handler=steady')).json().items).toMatchObject([{ handler: 'steady', status: 'done' }]);
    expect((await get('/admin/deliveries?event=asset.updated')).json().items).toHaveLength(2);

    const page1 = (await get('/admin/deliveries?limit=2')).json();
    const page2 = (await get(`/admin/deliveries?limit=2&after=${page1.next}`)).json();
    expect([...page1.items, ...page2.items].map((d: { id: number }) => d.id)).toEqual([1, 2, 3, 4]);

    const one = await get(`/admin/deliveries/${dead.items[0].id}`);
    expect(one.json()).toMatchObject({ id: dead.items[0].id, history: [{ outcome: 'dead' }], event: { raw: expect.any(String) } });
    expect((await get('/admin/deliveries/999')).statusCode).toBe(404);
    const bad = await get('/admin/deliveries?status=failed');
    expect(bad.statusCode).toBe(400);
    expect(bad.json().message).toMatch(/not a delivery status/);
    expect((await get('/admin/deliveries?limit=abc')).statusCode).toBe(400);
  });

  it('lists events and shows one with its deliveries', async () => {
    await withDeadLetters();
    const events = (await get('/admin/events?name=asset.created')).json();
    expect(events.items).toMatchObject([{ name: 'asset.created', eventID: 40, routed: 2, entity: { type: 'asset', id: '1' } }]);
    const one = (await get(`/admin/events/${events.items[0].id}`)).json();
    expect(one.deliveries.map((d: { handler: string }) => d.handler).sort()).toEqual(['fragile', 'steady']);
    expect(JSON.parse(one.raw)).toEqual({ EventID: 40, AssetID: 1 });
    expect((await get('/admin/events/no-such-id')).statusCode).toBe(404);
  });

  it('replays one, then all dead ones, and reports stats', async () => {
    await withDeadLetters();
    expect((await get('/admin/stats')).json()).toEqual({ deliveries: { pending: 0, running: 0, done: 1, dead: 3, unroutedEvents: 0 } });
    broken = false;
    const dead = (await get('/admin/deliveries?status=dead')).json().items;
    const one = await post(`/admin/deliveries/${dead[0].id}/replay`);
    expect(one.json()).toEqual({ replayed: [dead[0].id], skipped: [] });
    const all = await post('/admin/deliveries/replay', { allDead: true, handler: 'fragile' });
    expect(all.statusCode).toBe(200);
    expect(all.json().replayed).toHaveLength(2);
    await waitFor(
      () => t!.app.store.counts(),
      (c) => c.done === 4,
      { what: 'all done' },
    );
    expect((await post('/admin/deliveries/replay', { nothing: true })).statusCode).toBe(400);
    expect((await post('/admin/deliveries/replay', { ids: [] })).json().message).toMatch(/at least one delivery id/);
  });
});

it('refuses to build an app whose ADMIN_TOKEN is one of its webhook tokens, a generated one included', async () => {
  const { tempDir } = await import('./support/test-app.js');
  const { buildApp } = await import('../src/server.js');
  const { ConfigError, loadConfig } = await import('../src/config.js');
  const { writeFileSync } = await import('node:fs');
  const tmp = tempDir();
  try {
    writeFileSync(`${tmp.dir}/webhook-token`, 'generated-token-0123456789\n');
    const config = loadConfig({ DATA_DIR: tmp.dir, ADMIN_TOKEN: 'generated-token-0123456789', LOG_LEVEL: 'silent' });
    await expect(buildApp(config)).rejects.toThrow(ConfigError);
    await expect(buildApp(config)).rejects.toThrow(/ADMIN_TOKEN: ADMIN_TOKEN must differ from every webhook token/);
  } finally {
    tmp.remove();
  }
});
