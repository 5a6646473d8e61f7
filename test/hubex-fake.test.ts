// The fake HubEx itself, spoken to with plain fetch: it must behave as ../shared/HUBEX.md says, or
// the client's tests (and users' handler tests) would prove nothing.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type FakeHubex, startFakeHubex } from '../src/testing/fake-hubex.js';

let hubex: FakeHubex;
beforeEach(async () => {
  hubex = await startFakeHubex({ accessTokenLifetimeSec: 60 });
});
afterEach(() => hubex.close());

const APP = { 'x-application-id': '5' };

async function token(): Promise<string> {
  const res = await fetch(`${hubex.url}/AUTHZ/AccessTokens`, {
    method: 'POST',
    headers: { ...APP, 'content-type': 'application/json' },
    body: JSON.stringify({ serviceToken: hubex.serviceToken }),
  });
  expect(res.status).toBe(200);
  const body = (await res.json()) as { access_token: string; expires_in: number; jwtValidTill: string };
  expect(body).toMatchObject({ expires_in: 60, jwtValidTill: expect.any(String) });
  return body.access_token;
}

describe('the fake HubEx', () => {
  it('403 without X-Application-ID, on every endpoint, the token exchange included', async () => {
    for (const [method, path] of [
      ['GET', '/WORK/Tasks/1'],
      ['POST', '/AUTHZ/AccessTokens'],
      ['GET', '/COMMON/Events'],
    ] as const) {
      const res = await fetch(`${hubex.url}${path}`, { method });
      expect(res.status).toBe(403);
      expect(await res.json()).toMatchObject({
        code: 'Forbidden',
        message: expect.any(String),
        traceIdentifier: expect.stringMatching(/^0HN/),
      });
    }
  });

  it('an access token expires: 401 afterwards, and RefreshTokens refuses it too', async () => {
    hubex.tasks.set(1, {});
    const t = await token();
    const get = () => fetch(`${hubex.url}/WORK/Tasks/1`, { headers: { ...APP, authorization: `Bearer ${t}` } });
    expect((await get()).status).toBe(200);
    const refresh = await fetch(`${hubex.url}/AUTHZ/RefreshTokens`, {
      method: 'POST',
      headers: { ...APP, authorization: `Bearer ${t}`, 'content-type': 'application/json' },
      body: '{}',
    });
    const { refresh_token } = (await refresh.json()) as { refresh_token: string };
    hubex.expireAccessTokens();
    expect((await get()).status).toBe(401);
    const late = await fetch(`${hubex.url}/AUTHZ/RefreshTokens`, {
      method: 'POST',
      headers: { ...APP, authorization: `Bearer ${t}` },
      body: '{}',
    });
    expect(late.status).toBe(401);
    const renewed = await fetch(`${hubex.url}/AUTHZ/AccessTokens`, {
      method: 'POST',
      headers: { ...APP, 'content-type': 'application/json' },
      body: JSON.stringify({ refreshJwt: refresh_token }),
    });
    expect(renewed.status).toBe(200);
    expect(hubex.issued).toEqual({ service: 1, refresh: 1, refreshTokens: 1 });
  });

  it('cuts a list at 10,000 without Range (200, no Content-Range); clamps items=0-49 to 1-49', async () => {
    for (let id = 1; id <= 10_005; id++) hubex.tasks.set(id, {});
    const auth = { ...APP, authorization: `Bearer ${await token()}` };
    const whole = await fetch(`${hubex.url}/WORK/Tasks`, { headers: auth });
    expect(whole.status).toBe(200);
    expect(whole.headers.get('content-range')).toBeNull();
    expect(Object.keys((await whole.json()) as object)).toHaveLength(10_000);

    const first = await fetch(`${hubex.url}/WORK/Tasks`, { headers: { ...auth, range: 'items=0-49' } });
    expect(first.status).toBe(206);
    expect(first.headers.get('content-range')).toBe('items=1-49/10005');
    const page = (await first.json()) as Record<string, object>;
    expect(Object.keys(page)).toHaveLength(49);
    expect(page['1']).toEqual({}); // map-shaped: the key is the id, the value has none

    const last = await fetch(`${hubex.url}/WORK/Tasks`, { headers: { ...auth, range: 'items=10001-10100' } });
    expect(last.headers.get('content-range')).toBe('items=10001-10005/10005');
    const head = await fetch(`${hubex.url}/WORK/Tasks`, { method: 'HEAD', headers: auth });
    expect(head.headers.get('content-range')).toBe('items=1-10005/10005');
  });

  it('keeps lastModified on changed tasks and filters the list by it; refuses a date it cannot read', async () => {
    const auth = { ...APP, authorization: `Bearer ${await token()}` };
    hubex.tasks.set(1, { title: 'never changed' });
    const before = Date.now();
    const first = String(hubex.modifyTask(2, { title: 'changed' }).lastModified);
    expect(Date.parse(first)).toBeGreaterThanOrEqual(before);
    const second = String(hubex.modifyTask(2, { title: 'changed again' }).lastModified);
    expect(Date.parse(second)).toBeGreaterThan(Date.parse(first)); // two changes in one ms stay apart
    const list = async (query: string) => {
      const res = await fetch(`${hubex.url}/WORK/Tasks?${query}`, { headers: { ...auth, range: 'items=1-100' } });
      return { status: res.status, body: (await res.json()) as Record<string, { title: string; lastModified?: string }> };
    };
    const from = new Date(before - 1).toISOString();
    expect(Object.keys((await list(`lastModifiedFrom=${from}`)).body)).toEqual(['2']); // a map keyed by id
    expect(Object.keys((await list(`lastModifiedTill=${from}`)).body)).toEqual([]);
    expect(Object.keys((await list('')).body)).toEqual(['1', '2']);
    expect((await list('lastModifiedFrom=yesterday')).status).toBe(409);
    // A change through the API marks the task too.
    const patched = await fetch(`${hubex.url}/WORK/Tasks/1`, {
      method: 'PATCH',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify([{ field: 'title', value: 'patched' }]),
    });
    expect(patched.status).toBe(202);
    expect(Object.keys((await list(`lastModifiedFrom=${from}`)).body)).toEqual(['1', '2']);
  });

  it('pushes to active webhooks of the event only; a failed call costs one callsRemaining, and none left stops the webhook until activated', async () => {
    const got: unknown[] = [];
    const receiver = (await import('node:http')).createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        got.push(JSON.parse(body));
        res.writeHead(req.url === '/ok' ? 202 : 500).end();
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    const base = `http://127.0.0.1:${(receiver.address() as { port: number }).port}`;
    try {
      const ok = hubex.addWebhook({ uri: `${base}/ok`, events: [13] });
      const failing = hubex.addWebhook({ uri: `${base}/fails`, events: [13], callsRemaining: 2 });
      hubex.addWebhook({ uri: `${base}/ok`, events: [40] }); // another event
      expect(await hubex.push({ eventID: 13, taskID: 5 })).toEqual([
        { webhookID: ok, status: 202, ok: true },
        { webhookID: failing, status: 500, ok: false },
      ]);
      expect(got).toEqual([
        { eventID: 13, taskID: 5 },
        { eventID: 13, taskID: 5 },
      ]);
      expect(hubex.webhooks.get(failing)).toMatchObject({
        isActive: true,
        callsRemaining: 1,
        lastCall: { exception: expect.stringContaining('500') },
      });
      await hubex.push({ eventID: 13, taskID: 5 });
      expect(hubex.webhooks.get(failing)).toMatchObject({ isActive: false, callsRemaining: 0 });
      expect((await hubex.push({ eventID: 13, taskID: 6 })).map((r) => r.webhookID)).toEqual([ok]);
      expect(hubex.webhooks.get(ok)).toMatchObject({ isActive: true, callsRemaining: 10, lastCall: { exception: null } });
      const auth = { ...APP, authorization: `Bearer ${await token()}` };
      const activated = await fetch(`${hubex.url}/MSG/Webhooks/activate/${failing}`, { method: 'PUT', headers: auth });
      expect(activated.status).toBe(202);
      expect(hubex.webhooks.get(failing)).toMatchObject({ isActive: true, callsRemaining: 10 });
    } finally {
      await new Promise((resolve) => receiver.close(resolve));
    }
  });

  it('faults apply to their path and method, as many times as asked, then the endpoint answers again', async () => {
    hubex.tasks.set(1, {});
    const auth = { ...APP, authorization: `Bearer ${await token()}` };
    hubex.fail({ path: /^\/WORK\/Tasks\/\d+$/, method: 'GET', status: 429, retryAfterSec: 7, times: 2 });
    hubex.fail({ path: '/WORK/Tasks/1', drop: true });
    const a = await fetch(`${hubex.url}/WORK/Tasks/1`, { headers: auth });
    const b = await fetch(`${hubex.url}/WORK/Tasks/2`, { headers: auth });
    expect([a.status, a.headers.get('retry-after'), b.status]).toEqual([429, '7', 429]);
    await expect(fetch(`${hubex.url}/WORK/Tasks/1`, { headers: auth })).rejects.toThrow();
    expect((await fetch(`${hubex.url}/WORK/Tasks/1`, { headers: auth })).status).toBe(200);
    expect(hubex.calls.filter((c) => c.path.startsWith('/WORK/')).map((c) => c.status)).toEqual([429, 429, 0, 200]);
    expect(hubex.calls.every((c) => !JSON.stringify(c).includes(hubex.serviceToken))).toBe(true);
  });
});
