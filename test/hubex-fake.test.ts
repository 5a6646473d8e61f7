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
