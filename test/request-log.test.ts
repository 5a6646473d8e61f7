// One JSON log line per request, with request id, status and duration.
import { type AddressInfo, connect } from 'node:net';
import { afterEach, expect, it } from 'vitest';
import { makeApp, type TestApp } from './support/test-app.js';

let t: TestApp;
afterEach(async () => t?.close());

const requestLines = (t: TestApp) => t.logs.lines.filter((l) => l.msg === 'request');

it('writes exactly one line per request, with request id, status, duration and the ingest counts', async () => {
  t = await makeApp();
  const ok = await t.post({ EventID: 40, AssetID: 1 });
  const bad = await t.post('{nope');
  await t.app.inject('/healthz');
  const lines = requestLines(t);
  expect(lines).toHaveLength(3);
  expect(lines[0]).toMatchObject({
    level: 'info',
    reqId: ok.headers['x-request-id'],
    method: 'POST',
    url: '/hooks/hubex/[REDACTED]',
    status: 202,
    durationMs: expect.any(Number),
    accepted: 1,
    duplicates: 0,
  });
  expect(lines[1]).toMatchObject({ level: 'warn', reqId: bad.headers['x-request-id'], status: 400, error: bad.json().error });
  expect(lines[2]).toMatchObject({ url: '/healthz', status: 200 });
});

it('keeps a sane X-Request-Id from a proxy and replaces an unsafe one', async () => {
  t = await makeApp();
  const kept = await t.post({ EventID: 40, AssetID: 2 }, { headers: { 'x-request-id': 'nginx-abc.123' } });
  expect(kept.headers['x-request-id']).toBe('nginx-abc.123');
  const replaced = await t.post({ EventID: 40, AssetID: 3 }, { headers: { 'x-request-id': 'evil\nline {"x":1}' } });
  expect(replaced.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
  expect(requestLines(t).map((l) => l.reqId)).toEqual(['nginx-abc.123', replaced.headers['x-request-id']]);
});

it('logs a 503 at error level with the cause, and answers the caller generically', async () => {
  t = await makeApp();
  await t.app.store.close();
  const res = await t.post({ EventID: 40, AssetID: 4 });
  expect(res.json().message).not.toContain(t.dir);
  const line = requestLines(t).at(-1)!;
  expect(line).toMatchObject({ level: 'error', status: 503, error: 'STORE_UNAVAILABLE' });
  expect(t.logs.lines.some((l) => l.level === 'error' && typeof l.err === 'object')).toBe(true);
});

it('redactUrl removes the token from the webhook path and secret query parameters, and leaves the rest', async () => {
  const { redactUrl } = await import('../src/observability/log.js');
  const cases: [string, string][] = [
    ['/hooks/hubex/s3cret', '/hooks/hubex/[REDACTED]'],
    ['/hooks/hubex/s3cret?x=1', '/hooks/hubex/[REDACTED]?x=1'],
    ['/hooks/hubex/s3cret/more', '/hooks/hubex/[REDACTED]/more'],
    ['/hooks/hubex/s3cret#frag', '/hooks/hubex/[REDACTED]#frag'],
    ['/hooks/hubex/', '/hooks/hubex/'],
    ['/hooks/hubex', '/hooks/hubex'],
    ['/hooks/hubex/s3cret?token=abc&access_token=def&x=2', '/hooks/hubex/[REDACTED]?token=[REDACTED]&access_token=[REDACTED]&x=2'],
    ['/healthz?webhook_token=abc', '/healthz?webhook_token=[REDACTED]'],
    ['/healthz?tokenish=1', '/healthz?tokenish=1'],
    ['/x/hooks/hubex/s3cret', '/x/hooks/hubex/s3cret'],
  ];
  for (const [url, logged] of cases) expect(redactUrl(url), url).toBe(logged);
});

it('never logs the token, however the URL spells the route: percent-encoded, or a 404 of a mistyped URL', async () => {
  t = await makeApp();
  const { TOKEN } = await import('./support/test-app.js');
  const encoded = await t.post({ EventID: 40, AssetID: 11 }, { url: `/hooks/%68ubex/${TOKEN}` });
  expect(encoded.statusCode).toBe(202); // the router decodes %68: the same route
  const doubled = await t.post({ EventID: 40, AssetID: 12 }, { url: `//hooks/hubex/${TOKEN}` });
  expect(doubled.statusCode).toBe(404);
  expect(doubled.body).not.toContain(TOKEN);
  expect(doubled.json().message).toContain('//hooks/hubex/[REDACTED]');
  const queried = await t.app.inject({ method: 'GET', url: `/nowhere?key=${TOKEN}` });
  expect(queried.statusCode).toBe(404);
  const lines = requestLines(t);
  expect(lines.map((l) => l.url)).toEqual(['/hooks/hubex/[REDACTED]', '//hooks/hubex/[REDACTED]', '/nowhere?key=[REDACTED]']);
  expect(t.logs.text).not.toContain(TOKEN);
  expect(t.logs.text).not.toContain(TOKEN.slice(4));
});

it('never logs a token put in the query, of any route or method', async () => {
  t = await makeApp();
  const { TOKEN } = await import('./support/test-app.js');
  const answers = [
    await t.post({ EventID: 40, AssetID: 13 }, { url: `/hooks/hubex?${TOKEN}` }),
    await t.post({ EventID: 40, AssetID: 14 }, { url: `/hooks/hubex/?t=${TOKEN}` }),
    await t.app.inject({ method: 'GET', url: `/hooks/hubex?x=1&${TOKEN}` }),
    await t.app.inject({ method: 'OPTIONS', url: `/hooks/hubex;${TOKEN}` }),
    await t.app.inject({ method: 'GET', url: `/healthz?${TOKEN}` }),
  ];
  expect(answers.map((a) => a.statusCode)).toEqual([401, 401, 405, 404, 200]);
  for (const a of answers) expect(a.body).not.toContain(TOKEN);
  expect(requestLines(t).map((l) => l.url)).toEqual([
    '/hooks/hubex?[REDACTED]',
    '/hooks/hubex/?t=[REDACTED]',
    '/hooks/hubex?x=1&[REDACTED]',
    '/hooks/hubex;[REDACTED]',
    '/healthz?[REDACTED]',
  ]);
  expect(t.logs.text).not.toContain(TOKEN);
});

it("never logs a malformed request's bytes, even at trace level (Fastify logs them as rawPacket)", async () => {
  t = await makeApp({ LOG_LEVEL: 'trace' });
  const { TOKEN } = await import('./support/test-app.js');
  await t.app.listen({ port: 0, host: '127.0.0.1' });
  const { port } = t.app.server.address() as AddressInfo;
  const socket = connect(port, '127.0.0.1');
  const closed = new Promise((resolve) => socket.on('close', resolve));
  socket.on('data', () => {});
  socket.write(`POST /hooks/hubex/${TOKEN} HTTP/1.1\r\nHost: x\r\nX-Webhook-Token: ${TOKEN}\r\nContent-Length: abc\r\n\r\n`);
  await closed;
  await new Promise((resolve) => setTimeout(resolve, 50));
  const clientError = t.logs.lines.find((l) => JSON.stringify(l).includes('rawPacket'));
  expect(clientError, 'Fastify logged the client error').toBeDefined();
  expect(t.logs.text).not.toContain(TOKEN);
  const bytes = [...Buffer.from(TOKEN.slice(0, 12))].join(',');
  expect(t.logs.text).not.toContain(bytes); // nor as the byte array rawPacket carries
});

it('cuts a long URL in the log', async () => {
  t = await makeApp();
  await t.app.inject({ method: 'GET', url: `/${'a/'.repeat(3000)}` });
  const url = String(requestLines(t).at(-1)!.url);
  expect(url.length).toBeLessThanOrEqual(1003);
  expect(url.endsWith('...')).toBe(true);
});

it('the request line written by hand is the line pino writes for the same fields, escapes included', async () => {
  const { createLogger, requestLineWriter } = await import('../src/observability/log.js');
  const { LogCapture } = await import('./support/test-app.js');
  const byHand = new LogCapture();
  const byPino = new LogCapture();
  const write = requestLineWriter(createLogger('info', byHand))!;
  const pinoLogger = createLogger('info', byPino);
  const cases = [
    {
      reqId: 'r-1',
      method: 'POST',
      url: '/hooks/hubex/[REDACTED]',
      status: 202,
      durationMs: 1.25,
      ip: '127.0.0.1',
      accepted: 1,
      duplicates: 0,
    },
    { reqId: 'r-2', method: 'GET', url: '/odd/"quote"\\back\u0001', status: 404, durationMs: 0.5, ip: '::1', error: 'NOT_FOUND' },
    { reqId: 'r-3', method: 'POST', url: '/x', status: 503, durationMs: 3, ip: undefined, error: 'STORE_UNAVAILABLE' },
  ];
  for (const [i, c] of cases.entries()) {
    const level = (['info', 'warn', 'error'] as const)[i]!;
    write(level, c);
    const { reqId, ...fields } = c;
    pinoLogger.child({ reqId })[level](fields, 'request');
  }
  await new Promise((r) => setTimeout(r, 20));
  // Byte for byte, key order included, but for the time.
  const withoutTime = (text: string) => text.replace(/"time":"[^"]+"/g, '"time":"T"');
  expect(withoutTime(byHand.text)).toBe(withoutTime(byPino.text));
  expect(byHand.lines).toHaveLength(3);
  expect(byHand.lines.map((l) => l.level)).toEqual(['info', 'warn', 'error']);
  expect(byHand.lines[1]!.url).toBe('/odd/"quote"\\back\u0001');
  // The logger's level holds: at warn, no info line.
  const atWarn = new LogCapture();
  const writeAtWarn = requestLineWriter(createLogger('warn', atWarn))!;
  for (const [i, c] of cases.entries()) writeAtWarn((['info', 'warn', 'error'] as const)[i]!, c);
  await new Promise((r) => setTimeout(r, 20));
  expect(atWarn.lines.map((l) => l.level)).toEqual(['warn', 'error']);
});

it('a logger not made by createLogger still gets one line per request, through pino', async () => {
  const pino = (await import('pino')).default;
  const { LogCapture } = await import('./support/test-app.js');
  const logs = new LogCapture();
  t = await makeApp({}, { logger: pino({ level: 'info' }, logs) });
  const ok = await t.post({ EventID: 40, AssetID: 9 });
  const lines = logs.lines.filter((l) => l.msg === 'request');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatchObject({ reqId: ok.headers['x-request-id'], status: 202, accepted: 1, url: '/hooks/hubex/[REDACTED]' });
});
