// GET /healthz (alive) and GET /readyz (the store takes writes).
import type { AddressInfo } from 'node:net';
import { connect } from 'node:net';
import { afterEach, expect, it } from 'vitest';
import { readEvents } from './support/db.js';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/observability/log.js';
import type { Health } from '../src/store/contract.js';
import { openBackend } from '../src/store/open.js';
import { makeApp, type TestApp, tempDir, TOKEN } from './support/test-app.js';

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
  await t.app.store.close();
  const ready = await t.app.inject('/readyz');
  expect(ready.statusCode).toBe(503);
  expect(ready.json()).toMatchObject({ status: 'unavailable', reason: expect.stringMatching(/closed/) });
  expect((await t.app.inject('/healthz')).statusCode).toBe(200);
});

it('while closing, finishes the call in flight and acknowledges nothing new', async () => {
  t = await makeApp();
  await t.app.listen({ port: 0, host: '127.0.0.1' });
  const { port } = t.app.server.address() as AddressInfo;
  // A call in flight: headers sent, half of the body still to come.
  const body = JSON.stringify({ EventID: 40, AssetID: 31337 });
  const socket = connect(port, '127.0.0.1');
  let answer = '';
  socket.on('data', (d) => (answer += d));
  const ended = new Promise((resolve) => socket.on('close', resolve));
  socket.write(
    `POST /hooks/hubex/${TOKEN} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n` +
      body.slice(0, 10),
  );
  await new Promise((resolve) => t.app.server.once('request', resolve));
  // Past the onRequest hooks (token checked), reading the body: a call in flight.
  await new Promise((resolve) => setTimeout(resolve, 30));

  const closed = t.app.close();
  await new Promise((resolve) => setImmediate(resolve));
  // The rest of that call, and a second one pipelined behind it on the same connection.
  const second = JSON.stringify({ EventID: 40, AssetID: 2 });
  socket.write(
    body.slice(10) +
      `POST /hooks/hubex/${TOKEN} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${second.length}\r\n\r\n${second}`,
  );
  await ended;
  await closed;
  const statuses = [...answer.matchAll(/^HTTP\/1.1 (\d{3})/gm)].map((m) => Number(m[1]));
  // The call in flight is answered; the one behind it is refused (503) or dropped by Node's
  // close, never acknowledged.
  expect(statuses[0]).toBe(202);
  expect(statuses.slice(1).every((s) => s === 503)).toBe(true);
  expect(readEvents(t.dir).map((r) => JSON.parse(r.raw).AssetID)).toEqual([31337]);
});

/**
 * An app on the real SQLite store whose health() goes through `probe` (given the real one): the
 * readiness route's own behaviour is what is under test.
 */
async function appWithProbe(probe: (real: () => Promise<Health>) => Promise<Health>): Promise<() => Promise<void>> {
  const tmp = tempDir();
  const backend = openBackend(loadConfig({ DATA_DIR: tmp.dir }), { log: createLogger('silent') });
  const real = backend.store;
  const wrapped = new Proxy(real, {
    get(target, key) {
      const value = Reflect.get(target, key, target) as unknown;
      if (key === 'health') return () => probe(() => target.health());
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  t = await makeApp({}, { backend: { store: wrapped, worker: backend.worker } }, tmp.dir);
  return async () => {
    await real.close();
    tmp.remove();
  };
}

it('readyz runs one store probe at a time and reuses its answer for about a second', async () => {
  // The real store, counted: every probe is a synced write to the SQLite file.
  let probes = 0;
  const done = await appWithProbe((real) => (probes++, real()));
  const atStart = probes;
  const answers = await Promise.all(Array.from({ length: 50 }, () => t.app.inject('/readyz')));
  expect(answers.map((a) => a.statusCode)).toEqual(Array(50).fill(200));
  expect(probes - atStart).toBe(1);
  expect((await t.app.inject('/readyz')).statusCode).toBe(200);
  expect(probes - atStart).toBe(1); // still the same answer
  await new Promise((resolve) => setTimeout(resolve, 1100));
  expect((await t.app.inject('/readyz')).statusCode).toBe(200);
  expect(probes - atStart).toBe(2);
  await done();
});

it('a probe that never answers makes readyz say unavailable after 5 s, and the next probe starts afresh', async () => {
  // The real store, but one probe hangs (a wedged store thread would).
  let hang = false;
  const done = await appWithProbe((real) => (hang ? ((hang = false), new Promise(() => {})) : real()));
  hang = true;
  const started = performance.now();
  const stuck = await t.app.inject('/readyz');
  expect(stuck.statusCode).toBe(503);
  expect(stuck.json()).toEqual({ status: 'unavailable', reason: 'the store did not answer a write within 5000 ms' });
  expect(performance.now() - started).toBeGreaterThanOrEqual(4900);
  await new Promise((resolve) => setTimeout(resolve, 1100));
  expect((await t.app.inject('/readyz')).statusCode).toBe(200);
  await done();
});
