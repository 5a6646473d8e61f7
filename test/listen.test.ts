// Over a real socket: the app listening on loopback answers real HTTP clients.
import { afterEach, expect, it } from 'vitest';
import { readEvents } from './support/db.js';
import { makeApp, type TestApp, TOKEN } from './support/test-app.js';

let t: TestApp;
afterEach(async () => t?.close());

it('takes webhooks over HTTP on a real port', async () => {
  t = await makeApp();
  const address = await t.app.listen({ port: 0, host: '127.0.0.1' });
  const post = (body: unknown, headers: Record<string, string> = {}) =>
    fetch(`${address}/hooks/hubex/${TOKEN}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify(body),
    });
  const answers = await Promise.all(Array.from({ length: 100 }, (_, i) => post({ EventID: 41, AssetID: i })));
  expect(answers.map((r) => r.status)).toEqual(Array(100).fill(202));
  expect((await post({ EventID: 41, AssetID: 7 })).status).toBe(200);
  const big = await post({ EventID: 40, AssetID: 1, pad: 'x'.repeat(2 * 1024 * 1024) });
  expect(big.status).toBe(413);
  expect((await fetch(`${address}/readyz`)).status).toBe(200);
  expect(readEvents(t.dir)).toHaveLength(100);
});
