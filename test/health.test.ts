// GET /healthz (alive) and GET /readyz (the store takes writes).
import { afterEach, expect, it } from 'vitest';
import { makeApp, type TestApp } from './support/test-app.js';

let t: TestApp;
afterEach(async () => t?.close());

it('healthz answers 200 while the process lives, readyz 200 while the store takes writes', async () => {
  t = await makeApp();
  expect((await t.app.inject('/healthz')).json()).toEqual({ status: 'ok' });
  const ready = await t.app.inject('/readyz');
  expect(ready.statusCode).toBe(200);
  expect(ready.json()).toEqual({ status: 'ready' });
});

it('readyz answers 503 with the reason once the store is closed; healthz stays 200', async () => {
  t = await makeApp();
  await t.app.inbox.close();
  const ready = await t.app.inject('/readyz');
  expect(ready.statusCode).toBe(503);
  expect(ready.json()).toMatchObject({ status: 'unavailable', reason: expect.stringMatching(/closed/) });
  expect((await t.app.inject('/healthz')).statusCode).toBe(200);
});
