// The webhook watchdog through the real app, against the fake HubEx: this router's webhooks (by
// token or PUBLIC_URL) are read at each interval, counted in metrics, an inactive one or a falling
// callsRemaining logged as an error, and with WEBHOOK_AUTO_ACTIVATE=true activated again.
import { spawnSync } from 'node:child_process';
import net from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { hideTokens, isOwnWebhook } from '../src/sync/watchdog.js';
import { type FakeHubex, startFakeHubex } from '../src/testing/fake-hubex.js';
import { makeApp, metricValue, type TestApp, TOKEN, TOKEN2 } from './support/test-app.js';
import { waitFor } from './support/wait.js';

const INTERVAL = 200;
let fake: FakeHubex;
const apps: TestApp[] = [];
beforeEach(async () => {
  fake = await startFakeHubex({ webhookCallBudget: 3 });
});
afterEach(async () => {
  await Promise.all(apps.splice(0).map((a) => a.close()));
  await fake.close();
});

/** A port nothing listens on now. */
async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function router(env: Record<string, string> = {}, listenPort = 0): Promise<TestApp & { base: string }> {
  const a = await makeApp({
    HUBEX_BASE_URL: fake.url,
    HUBEX_SERVICE_TOKEN: fake.serviceToken,
    WEBHOOK_WATCH_INTERVAL_MS: String(INTERVAL),
    RECONCILE_INTERVAL_MS: '0',
    ...env,
  });
  apps.push(a);
  await a.app.listen({ port: listenPort, host: '127.0.0.1' });
  const { port } = a.app.server.address() as { port: number };
  return Object.assign(a, { base: `http://127.0.0.1:${port}` });
}

function webhook(uri: string, fields: Record<string, unknown> = {}): number {
  return fake.addWebhook({ uri, events: [13], ...fields });
}

const gauge = (a: TestApp, name: string, webhookId: number) => metricValue(a, name, { webhook: String(webhookId) });

const errors = (a: TestApp, start: string) => a.logs.lines.filter((l) => l.level === 'error' && String(l.msg).startsWith(start));

describe('the webhook watchdog', () => {
  it('an inactive webhook of this router gives an error line and webhook_active 0; another service’s webhook is left alone', async () => {
    const a = await router();
    const mine = webhook(`https://example.test/hooks/hubex/${TOKEN2}`, {
      isActive: false,
      callsRemaining: 0,
      lastCall: {
        started: '2026-12-01T10:00:00Z',
        completed: '2026-12-01T10:00:01Z',
        exception: `POST https://example.test/hooks/hubex/${TOKEN2} timed out`,
      },
    });
    const theirs = webhook('https://elsewhere.test/receiver', { isActive: false });
    await waitFor(
      () => errors(a, `webhook ${mine} is inactive`),
      (l) => l.length === 1,
      { what: 'the inactive error line' },
    );
    expect(await gauge(a, 'webhook_active', mine)).toBe(0);
    expect(await gauge(a, 'webhook_calls_remaining', mine)).toBe(0);
    expect(await gauge(a, 'webhook_last_call_failed', mine)).toBe(1);
    expect(await gauge(a, 'webhook_last_call_timestamp_seconds', mine)).toBe(Date.parse('2026-12-01T10:00:01Z') / 1000);
    expect(await gauge(a, 'webhook_active', theirs)).toBeUndefined();
    const line = errors(a, `webhook ${mine} is inactive`)[0]!;
    expect(line).toMatchObject({ webhook: mine, uri: 'https://example.test/hooks/hubex/[REDACTED]', callsRemaining: 0 });
    expect(String(line.lastError)).toContain('[REDACTED]');
    expect(String(line.msg)).toContain(`hubex-router webhooks activate ${mine}`);
    // Still inactive at the next rounds: not logged again each time (a reminder every 10 minutes).
    const rounds = fake.calls.filter((c) => c.path === '/MSG/Webhooks').length;
    await waitFor(
      () => fake.calls.filter((c) => c.path === '/MSG/Webhooks').length,
      (n) => n >= rounds + 2,
      { what: 'two more rounds' },
    );
    expect(errors(a, `webhook ${mine} is inactive`)).toHaveLength(1);
    expect(a.logs.text).not.toContain(TOKEN2);
    expect(a.logs.text).not.toContain(fake.serviceToken);
    // Details (the uri) are read once per webhook, not at every round.
    expect(fake.calls.filter((c) => c.path === `/MSG/Webhooks/${mine}`).length).toBe(1);
  });

  it('WEBHOOK_AUTO_ACTIVATE=true activates it again (the fake sees the call) and says so', async () => {
    const a = await router({ WEBHOOK_AUTO_ACTIVATE: 'true' });
    const id = webhook(`https://example.test/hooks/hubex/${TOKEN}`, { isActive: false, callsRemaining: 0 });
    await waitFor(
      () => fake.calls.filter((c) => c.method === 'PUT' && c.path === `/MSG/Webhooks/activate/${id}`),
      (calls) => calls.length === 1 && calls[0]!.status === 202,
      { what: 'the activate call' },
    );
    expect(fake.webhooks.get(id)).toMatchObject({ isActive: true, callsRemaining: 3 });
    expect(a.logs.lines.some((l) => l.msg === `activated webhook ${id} again (WEBHOOK_AUTO_ACTIVATE=true)`)).toBe(true);
    await waitFor(
      () => gauge(a, 'webhook_active', id),
      (v) => v === 1,
      { what: 'webhook_active 1' },
    );
    expect(fake.calls.filter((c) => c.path.startsWith('/MSG/Webhooks/activate/'))).toHaveLength(1);
  });

  it('failing calls: callsRemaining falls (an error line each time), and at 0 HubEx stops the webhook (found by PUBLIC_URL)', async () => {
    const port = await freePort();
    const b = await router({ PUBLIC_URL: `http://127.0.0.1:${port}` }, port);
    // Found by PUBLIC_URL, not by its token (an old one, which the router refuses: 401).
    const id = webhook(`${b.base}/hooks/hubex/an-old-token-0000000000`);
    await waitFor(
      () => gauge(b, 'webhook_calls_remaining', id),
      (v) => v === 3,
      { what: 'the first round' },
    );
    const [first] = await fake.push({ eventID: 13, taskID: 1 });
    expect(first).toMatchObject({ status: 401, ok: false });
    await waitFor(
      () => errors(b, `HubEx's calls to webhook ${id} are failing`),
      (l) => l.length === 1,
      { what: 'the callsRemaining error line' },
    );
    expect(errors(b, `HubEx's calls to webhook ${id} are failing`)[0]).toMatchObject({ callsRemaining: 2, callsRemainingBefore: 3 });
    expect(await gauge(b, 'webhook_last_call_failed', id)).toBe(1);
    await fake.push({ eventID: 13, taskID: 1 });
    await fake.push({ eventID: 13, taskID: 1 });
    expect(fake.webhooks.get(id)).toMatchObject({ isActive: false, callsRemaining: 0 });
    expect(await fake.push({ eventID: 13, taskID: 1 })).toEqual([]); // an inactive webhook gets no call
    await waitFor(
      () => gauge(b, 'webhook_active', id),
      (v) => v === 0,
      { what: 'webhook_active 0' },
    );
    expect(errors(b, `webhook ${id} is inactive`)).toHaveLength(1);
    expect(b.logs.text).not.toContain('an-old-token-0000000000');
  });

  it('activates again only a webhook with a current token, and at most every 10 minutes; one unreadable webhook spoils no other', async () => {
    const a = await router({ WEBHOOK_AUTO_ACTIVATE: 'true', PUBLIC_URL: 'https://hooks.example.com' });
    const current = webhook(`https://hooks.example.com/hooks/hubex/${TOKEN}`, { isActive: false, callsRemaining: 0 });
    const rotated = webhook('https://hooks.example.com/hooks/hubex/a-token-rotated-away-000', { isActive: false, callsRemaining: 0 });
    const unreadable = webhook('https://elsewhere.example/x');
    fake.fail({ path: `/MSG/Webhooks/${unreadable}`, method: 'GET', status: 403, times: 1000 });
    await waitFor(
      () => gauge(a, 'webhook_active', current),
      (v) => v === 1,
      { what: 'the current one active again' },
    );
    const activations = () =>
      fake.calls.filter((c) => c.method === 'PUT' && c.path.startsWith('/MSG/Webhooks/activate/')).map((c) => c.path);
    expect(activations()).toEqual([`/MSG/Webhooks/activate/${current}`]);
    expect(errors(a, `webhook ${rotated} is inactive`)[0]!.msg).toContain('carries none of WEBHOOK_TOKENS (a rotated token?)');
    // HubEx stops it again at once: not activated again before 10 minutes have passed.
    fake.webhooks.get(current)!.isActive = false;
    const rounds = fake.calls.filter((c) => c.path === '/MSG/Webhooks').length;
    await waitFor(
      () => fake.calls.filter((c) => c.path === '/MSG/Webhooks').length,
      (n) => n >= rounds + 3,
      { what: 'three more rounds' },
    );
    expect(activations()).toHaveLength(1);
    expect(await gauge(a, 'webhook_active', current)).toBe(0);
    expect(errors(a, `webhook ${current} is inactive`).at(-1)!.msg).toContain('HubEx stopped it again within 10 minutes');
  });

  it('HubEx unreachable: an error line and a count per round, and the router keeps serving', async () => {
    const a = await router();
    fake.fail({ path: '/MSG/Webhooks', status: 500, times: 1000 });
    await waitFor(
      async () => (await metricValue(a, 'webhook_watch_errors_total')) ?? 0,
      (n) => n >= 2,
      { what: 'two failed rounds' },
    );
    expect(errors(a, "could not read this router's webhooks")[0]).toMatchObject({
      error: { status: 500, message: expect.stringContaining('500') },
    });
    expect((await a.post({ EventID: 40, AssetID: 1 })).statusCode).toBe(202);
  });
});

const hasPromtool = spawnSync('promtool', ['--version'], { stdio: 'ignore' }).status === 0;
it.skipIf(!hasPromtool && !process.env.CI)('the watchdog and reconciliation metrics pass promtool check metrics', async () => {
  const a = await router({ RECONCILE_INTERVAL_MS: '200', WEBHOOK_AUTO_ACTIVATE: 'false' });
  const id = webhook(`https://example.test/hooks/hubex/${TOKEN}`, {
    lastCall: { started: '2026-12-01T10:00:00Z', completed: null, exception: null },
  });
  await waitFor(
    () => gauge(a, 'webhook_active', id),
    (v) => v === 1,
    { what: 'a watched webhook' },
  );
  const body = (await a.app.inject('/metrics')).body;
  for (const name of ['webhook_active', 'webhook_calls_remaining', 'webhook_last_call_timestamp_seconds', 'reconcile_polls_total'])
    expect(body).toContain(`hubex_router_${name}`);
  const check = spawnSync('promtool', ['check', 'metrics'], { input: body, encoding: 'utf8' });
  expect(check.error, 'promtool must run (under CI, .ci/run installs it)').toBeUndefined();
  expect(`${check.stdout}${check.stderr}`.trim()).toBe('');
});

describe('whose webhook', () => {
  it('is this router’s when its uri is the webhook path with one of its tokens, or the webhook path under PUBLIC_URL', () => {
    expect(isOwnWebhook(`https://r.example/hooks/hubex/${TOKEN}`, [TOKEN], undefined)).toBe(true);
    expect(isOwnWebhook(`https://r.example/hooks/hubex/${TOKEN}/`, [TOKEN], undefined)).toBe(true);
    expect(isOwnWebhook(`https://r.example/in?token=${TOKEN}`, [TOKEN], undefined)).toBe(true);
    expect(isOwnWebhook('https://r.example/hooks/hubex/an-old-token', [TOKEN], 'https://r.example')).toBe(true); // rotated away
    // Another service on the same host, a token inside something else, a look-alike host: not this router's.
    expect(isOwnWebhook('https://r.example/crm?apikey=S', [TOKEN], 'https://r.example')).toBe(false);
    expect(isOwnWebhook(`https://r.example/hooks/hubex/${TOKEN}x`, [TOKEN], undefined)).toBe(false);
    expect(isOwnWebhook('https://r.example.evil/hooks/hubex/other', [TOKEN], 'https://r.example')).toBe(false);
    expect(isOwnWebhook('not a url', [TOKEN], undefined)).toBe(false);
    expect(isOwnWebhook('', [TOKEN], undefined)).toBe(false);
  });

  it('hides every token, any /hooks/hubex/ segment and every query string in what it logs, and bounds its length', () => {
    expect(hideTokens(`a ${TOKEN} b https://h/hooks/hubex/secret-x?y=1`, [TOKEN])).toBe(
      'a [REDACTED] b https://h/hooks/hubex/[REDACTED]?[...]',
    );
    expect(hideTokens('https://crm.example/in?apikey=S3CRET&x=1 timed out', [])).toBe('https://crm.example/in?[...] timed out');
    expect(hideTokens('x'.repeat(1000), [])).toHaveLength(300);
  });
});
