// The HubEx client against the fake HubEx, over real HTTP: tokens, retries, timeouts, the
// in-flight cap, pagination, errors, and no token in the logs.
import { describe, expect, it } from 'vitest';
import { useFakeHubex } from './support/hubex-harness.js';
import { HubexApiError } from '../src/hubex/errors.js';

const h = useFakeHubex({ level: 'debug' });
const client = h.client;

const calls = h.calls;

describe('tokens', () => {
  it('buys an access token with the service token, then sends it with X-Application-ID on every call', async () => {
    h.hubex.tasks.set(5, { title: 'Pump check' });
    const c = client();
    expect(await c.work.getTask(5)).toMatchObject({ taskID: 5, title: 'Pump check' });
    await c.work.getTask(5);
    expect(h.hubex.issued.service).toBe(1);
    expect(calls('/WORK/Tasks/5').map((x) => [x.auth, x.applicationId])).toEqual([
      ['valid', '5'],
      ['valid', '5'],
    ]);
    expect(h.hubex.calls.every((x) => x.applicationId === '5')).toBe(true);
  });

  it('takes a refresh token early, renews through it ahead of expiry, and falls back to the service token when it fails', async () => {
    h.hubex.tasks.set(5, {});
    const c = client({ renewMarginMs: 60_000 });
    await c.work.getTask(5);
    await c.http.tokens.settled();
    expect(h.hubex.issued).toEqual({ service: 1, refresh: 0, refreshTokens: 1 });

    h.clock += 1800_000 - 60_000 + 1; // inside the margin: renew before HubEx would refuse it
    await c.work.getTask(5);
    expect(h.hubex.issued).toMatchObject({ service: 1, refresh: 1 });

    h.hubex.revokeRefreshTokens();
    h.clock += 1800_000;
    await c.work.getTask(5);
    expect(h.hubex.issued).toMatchObject({ service: 2, refresh: 1 });
    expect(calls('/WORK/Tasks/5').every((x) => x.auth === 'valid')).toBe(true);
  });

  it('reads the expiry from jwtValidTill when HubEx sends no expires_in', async () => {
    await h.restart({ expiryAs: 'jwtValidTill', accessTokenLifetimeSec: 600 });
    h.hubex.tasks.set(5, {});
    h.clock = Date.now();
    const c = client({ renewMarginMs: 60_000 });
    await c.work.getTask(5);
    h.clock += 500_000;
    await c.work.getTask(5);
    expect(h.hubex.issued.service + h.hubex.issued.refresh).toBe(1);
    h.clock += 50_000; // 550 s: within a minute of the 600 s
    await c.work.getTask(5);
    expect(h.hubex.issued.service + h.hubex.issued.refresh).toBe(2);
  });

  it('on a 401 renews once and retries once; a second 401 is a clear error', async () => {
    h.hubex.tasks.set(5, {});
    const c = client();
    await c.work.getTask(5);
    h.hubex.expireAccessTokens(); // HubEx stops accepting the token before the client expected
    expect(await c.work.getTask(5)).toMatchObject({ taskID: 5 });
    expect(calls('/WORK/Tasks/5').map((x) => x.status)).toEqual([200, 401, 200]);

    h.hubex.fail({ path: '/WORK/Tasks/5', status: 401, times: 2 });
    const err = await c.work.getTask(5).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HubexApiError);
    expect((err as HubexApiError).message).toMatch(
      /^HubEx answered 401 to GET \/WORK\/Tasks\/5 \(not authenticated: the token was refused; check HUBEX_SERVICE_TOKEN/,
    );
  });

  it('50 calls at once during a renewal cause one renewal', async () => {
    h.hubex.tasks.set(5, {});
    const c = client({ maxInFlight: 50 });
    await c.work.getTask(5);
    await c.http.tokens.settled();
    const before = h.hubex.issued.service + h.hubex.issued.refresh;
    h.hubex.expireAccessTokens();
    const results = await Promise.all(Array.from({ length: 50 }, () => c.work.getTask(5)));
    expect(results).toHaveLength(50);
    expect(h.hubex.issued.service + h.hubex.issued.refresh - before).toBe(1);
  });

  it('uses a ready HUBEX_ACCESS_TOKEN as it is, and cannot renew it', async () => {
    h.hubex.tasks.set(5, {});
    const c = client({ serviceToken: undefined, accessToken: h.hubex.issueAccessToken() });
    await c.work.getTask(5);
    expect(calls('/AUTHZ/AccessTokens')).toHaveLength(0);
    h.hubex.expireAccessTokens();
    await expect(c.work.getTask(5)).rejects.toMatchObject({ status: 401 });
    expect(calls('/AUTHZ/AccessTokens')).toHaveLength(0);
  });

  it('never writes a token to the log', async () => {
    h.hubex.tasks.set(5, {});
    const c = client();
    await c.work.getTask(5);
    await c.http.tokens.settled();
    h.hubex.expireAccessTokens();
    h.hubex.fail({ path: '/WORK/Tasks/5', status: 503 });
    await c.work.getTask(5);
    h.hubex.revokeRefreshTokens();
    h.clock += 3600_000;
    await c.work.getTask(5);
    const text = h.logs.lines.map((l) => JSON.stringify(l)).join('\n');
    expect(h.logs.lines.length).toBeGreaterThan(2); // it did log: renewals, the 401, the retry
    expect(text).not.toContain(h.hubex.serviceToken);
    expect(text).not.toMatch(/acc-[0-9a-f]{8}|ref-[0-9a-f]{8}|svc-[0-9a-f]{8}/);
  });
});

describe('retries, timeouts, the in-flight cap', () => {
  it('retries 502, 503, 504 and dropped connections for a GET, then succeeds', async () => {
    h.hubex.tasks.set(5, {});
    const c = client();
    for (const status of [502, 503, 504]) h.hubex.fail({ path: '/WORK/Tasks/5', status });
    h.hubex.fail({ path: '/WORK/Tasks/5', drop: true });
    expect(await c.work.getTask(5)).toMatchObject({ taskID: 5 });
    expect(calls('/WORK/Tasks/5').map((x) => x.status)).toEqual([502, 503, 504, 0, 200]);
  });

  it('gives up after its retries with an error a retry could still help', async () => {
    h.hubex.tasks.set(5, {});
    const c = client({ retries: 2 });
    h.hubex.fail({ path: '/WORK/Tasks/5', status: 503, times: 10 });
    const err = (await c.work.getTask(5).catch((e: unknown) => e)) as HubexApiError;
    expect(err).toMatchObject({ status: 503, retryable: true, traceIdentifier: expect.stringMatching(/^0HN/) });
    expect(calls('/WORK/Tasks/5')).toHaveLength(3);
  });

  it('honours Retry-After on a 429', async () => {
    h.hubex.tasks.set(5, {});
    const c = client({ now: Date.now });
    h.hubex.fail({ path: '/WORK/Tasks/5', status: 429, retryAfterSec: 1 });
    const t0 = Date.now();
    await c.work.getTask(5);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(990);
    expect(calls('/WORK/Tasks/5').map((x) => x.status)).toEqual([429, 200]);
  });

  it('does not retry 4xx, nor a POST unless it is marked safe', async () => {
    h.hubex.tasks.set(5, {});
    const c = client();
    await expect(c.work.getTask(6)).rejects.toMatchObject({ status: 404, retryable: false });
    expect(calls('/WORK/Tasks/6')).toHaveLength(1);
    h.hubex.fail({ path: '/WORK/Tasks/5/conversation', status: 503 });
    await expect(c.work.addMessage(5, { message: 'hello' })).rejects.toMatchObject({ status: 503 });
    expect(calls('/WORK/Tasks/5/conversation')).toHaveLength(1);
    h.hubex.fail({ path: '/WORK/Tasks/5/conversation', status: 503 });
    await c.work.addMessage(5, { message: 'hello' }, { retrySafe: true });
    expect(calls('/WORK/Tasks/5/conversation').map((x) => x.status)).toEqual([503, 503, 201]);
    expect(h.hubex.conversations.get(5)).toEqual([{ message: 'hello', isExternal: false }]);
  });

  it('times out a call that takes too long, and stops at once when the caller aborts', async () => {
    h.hubex.tasks.set(5, {});
    const c = client({ timeoutMs: 100, retries: 0 });
    await c.work.getTask(5);
    h.hubex.fail({ path: '/WORK/Tasks/5', latencyMs: 400 });
    const err = (await c.work.getTask(5).catch((e: unknown) => e)) as HubexApiError;
    expect(err).toMatchObject({ status: 0, retryable: true });
    expect(err.message).toMatch(/HubEx did not answer GET \/WORK\/Tasks\/5 \(no answer within 100 ms\)/);

    const controller = new AbortController();
    const slow = client({ timeoutMs: 5000 });
    h.hubex.fail({ path: '/WORK/Tasks/5', latencyMs: 400 });
    const pending = slow.work.getTask(5, { signal: controller.signal });
    setTimeout(() => controller.abort(new Error('handler timed out')), 50);
    await expect(pending).rejects.toThrow('handler timed out');
  });

  it('keeps at most maxInFlight calls out at once', async () => {
    h.hubex.tasks.set(5, {});
    const c = client({ maxInFlight: 2 });
    await c.work.getTask(5);
    h.hubex.fail({ path: '/WORK/Tasks/5', latencyMs: 100, times: 6 });
    h.hubex.concurrency.peak = 0;
    await Promise.all(Array.from({ length: 6 }, () => c.work.getTask(5)));
    expect(h.hubex.concurrency.peak).toBe(2); // the fake saw two at once, never more
    expect(calls('/WORK/Tasks/5').filter((x) => x.status === 200)).toHaveLength(7);
  });
});

describe('lists', () => {
  it('walks a map-shaped list with 1-based ranges, no item lost or repeated', async () => {
    for (let id = 1; id <= 250; id++) h.hubex.tasks.set(id, { title: `task ${id}` });
    const c = client();
    const seen: number[] = [];
    for await (const t of c.work.listTasks({}, { pageSize: 100 })) seen.push(t.id);
    expect(seen).toEqual(Array.from({ length: 250 }, (_, i) => i + 1));
    expect(calls('/WORK/Tasks').map((x) => x.range)).toEqual(['items=1-100', 'items=101-200', 'items=201-300']);
    expect(await c.count('/WORK/Tasks')).toBe(250);
  });

  it('walks an array-shaped list, and a list longer than the 10,000 HubEx cuts at without Range', async () => {
    for (let id = 1; id <= 10_050; id++) h.hubex.assets.set(id, { name: `asset ${id}` });
    const c = client();
    let n = 0;
    let last = 0;
    for await (const a of c.list('/ES/Assets', { pageSize: 1000 })) {
      n++;
      last = a.id;
    }
    expect([n, last]).toEqual([10_050, 10_050]);
    expect(calls('/ES/Assets')).toHaveLength(11);
  });

  it('an empty list ends at once', async () => {
    const c = client();
    const items = [];
    for await (const t of c.work.listTasks()) items.push(t);
    expect(items).toEqual([]);
  });
});

describe('the typed API and its errors', () => {
  it('fills path parameters, sends bodies, and says what a person can do on an error', async () => {
    h.hubex.tasks.set(7, { taskStageID: 2 });
    const c = client();
    const task = await c.request('GET', '/WORK/Tasks/{taskID}', { params: { taskID: 7 } });
    expect(task).toMatchObject({ taskID: 7 });
    await c.work.patchTask(7, [{ field: 'description', value: 'checked' }]);
    await c.work.moveToStage(7, 3, { notes: 'done' });
    expect(h.hubex.tasks.get(7)).toMatchObject({ description: 'checked', taskStageID: 3 });
    const next = [];
    for await (const s of c.work.nextStages(7)) next.push(s);
    expect(next).toMatchObject([{ id: 4 }, { id: 5 }]);
    await expect(c.request('GET', '/WORK/Tasks/{taskID}', {} as never)).rejects.toThrow(/needs the path parameter taskID/);

    h.hubex.fail({ path: '/WORK/Tasks/7', status: 403 });
    const err = (await c.work.getTask(7).catch((e: unknown) => e)) as HubexApiError;
    expect(err.message).toMatch(
      /^HubEx answered 403 to GET \/WORK\/Tasks\/7 \(no access: permission or licence, or no X-Application-ID; check the API user's roles\): "injected 403" \[Injected\], trace 0HN/,
    );
  });

  it('webhooks, events, assets and companies through their helpers', async () => {
    h.hubex.assets.set(3, { name: 'Chiller' });
    h.hubex.companies.set(9, { name: 'Acme' });
    const c = client();
    const [id] = (await c.msg.webhooks.save([
      { name: 'router', uri: 'https://hooks.example.com/hooks/hubex/x', events: [40], taskStages: [], isActive: false },
    ]))!;
    await c.msg.webhooks.activate(id!);
    expect(await c.msg.webhooks.get(id!)).toMatchObject({ isActive: true, callsRemaining: 10 });
    const listed = [];
    for await (const w of c.msg.webhooks.list()) listed.push(w);
    expect(listed).toHaveLength(1);
    await c.msg.webhooks.delete(id!);
    expect(h.hubex.webhooks.size).toBe(0);
    expect((await c.common.events()).map((e) => e.id)).toContain(40);
    expect(await c.es.getAsset(3)).toMatchObject({ id: 3, name: 'Chiller' });
    expect(await c.es.getCompany(9)).toMatchObject({ id: 9, name: 'Acme' });
  });

  it('the fake answers 403 to a call without X-Application-ID, as HubEx does', async () => {
    const res = await fetch(`${h.hubex.url}/COMMON/Events`);
    expect(res.status).toBe(403);
    expect(await res.json()).toMatchObject({ code: 'Forbidden', traceIdentifier: expect.any(String) });
  });
});
