// A slow client (headers a line at a time, or the body a byte at a time) cannot hold a request open: after
// REQUEST_TIMEOUT_MS it gets 408 and the connection is closed; nothing is stored, and others
// are served meanwhile. A real listening server and raw sockets.
import { connect } from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterEach, expect, it } from 'vitest';
import { readEvents } from './support/db.js';
import { makeApp, type TestApp, TOKEN } from './support/test-app.js';

let t: TestApp | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

/** Sends `parts` one every `everyMs`, and resolves with what came back once the server closes. */
function drip(port: number, parts: string[], everyMs: number): Promise<{ answer: string; ms: number }> {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const socket = connect(port, '127.0.0.1');
    let answer = '';
    let i = 0;
    const timer = setInterval(() => {
      if (i < parts.length && !socket.destroyed) socket.write(parts[i++]!);
    }, everyMs);
    socket.on('data', (d) => (answer += d));
    socket.on('error', () => {});
    socket.on('close', () => {
      clearInterval(timer);
      resolve({ answer, ms: Date.now() - t0 });
    });
  });
}

it.each([
  [
    'headers',
    (body: string) => [
      `POST /hooks/hubex/${TOKEN} HTTP/1.1\r\n`,
      'Host: x\r\n',
      ...Array.from({ length: 100 }, (_, i) => `X-Slow-${i}: 1\r\n`),
      `Content-Length: ${body.length}\r\n\r\n`,
      body,
    ],
  ],
  [
    'body',
    (body: string) => [
      `POST /hooks/hubex/${TOKEN} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`,
      ...body.split(''),
    ],
  ],
])('a client that sends its %s bit by bit gets 408 after REQUEST_TIMEOUT_MS, and nothing is stored', async (_what, parts) => {
  t = await makeApp({ REQUEST_TIMEOUT_MS: '500' });
  await t.app.listen({ port: 0, host: '127.0.0.1' });
  const { port } = t.app.server.address() as AddressInfo;
  const slow = drip(port, parts(JSON.stringify({ EventID: 40, AssetID: 1 })), 100);
  // Others are served meanwhile.
  const res = await fetch(`http://127.0.0.1:${port}/hooks/hubex/${TOKEN}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ EventID: 40, AssetID: 2 }),
  });
  expect(res.status).toBe(202);
  const { answer, ms } = await slow;
  expect(answer).toMatch(/^HTTP\/1\.1 408 /);
  expect(ms).toBeLessThan(5000); // well before the client would have finished (about 3 to 10 s of drip)
  expect(readEvents(t.dir).map((r) => JSON.parse(r.raw).AssetID)).toEqual([2]);
});
