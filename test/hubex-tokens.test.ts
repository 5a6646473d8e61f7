// The token manager against the fake HubEx, over real HTTP: renewal ahead of expiry under load,
// the refresh token taken while the access token is valid, the token exchange's own retries, and
// what a person is told when a token is refused. No token may reach a log or an error.
import { describe, expect, it } from 'vitest';
import { useFakeHubex } from './support/hubex-harness.js';
import { hubexOptionsFromEnv } from '../src/hubex-env.js';
import type { HubexApiError } from '../src/hubex/errors.js';

const h = useFakeHubex({ level: 'trace', setup: (hubex) => hubex.tasks.set(5, { number: 'T-5' }) });
const client = h.client;

const calls = h.calls;
const renewals = () => h.hubex.issued.service + h.hubex.issued.refresh;
/** Every token the fake knows of starts with one of these and 8 hex digits. */
const ANY_TOKEN = /(acc|ref|svc)-[0-9a-f]{8}/;

describe('renewal', () => {
  it('20 calls at once when the token is due cause one renewal, ahead of expiry: no call sees a 401', async () => {
    const c = client({ maxInFlight: 20, renewMarginMs: 120_000 });
    await c.work.getTask(5);
    await c.http.tokens.settled();
    const before = renewals();
    h.clock += 1800_000 - 120_000 + 1_000; // inside the margin; HubEx would still accept the token
    const results = await Promise.all(Array.from({ length: 20 }, () => c.work.getTask(5)));
    expect(results.every((t) => t.number === 'T-5')).toBe(true);
    expect(renewals() - before).toBe(1);
    expect(h.hubex.issued.refresh).toBe(1); // through the refresh token, not the service token
    expect(h.hubex.calls.filter((x) => x.status === 401)).toEqual([]);
  });

  it('takes the refresh token while the access token is valid, and only once', async () => {
    const c = client();
    await Promise.all(Array.from({ length: 5 }, () => c.work.getTask(5)));
    await c.http.tokens.settled();
    await c.work.getTask(5);
    const taken = calls('/AUTHZ/RefreshTokens');
    expect(taken).toHaveLength(1);
    expect(taken[0]).toMatchObject({ method: 'POST', auth: 'valid', status: 200 });
    expect(h.hubex.issued.service).toBe(1);
  });

  it('retries the token exchange itself when HubEx is briefly down (a token asked twice does no harm)', async () => {
    h.hubex.fail({ path: '/AUTHZ/AccessTokens', status: 503 });
    h.hubex.fail({ path: '/AUTHZ/AccessTokens', drop: true });
    const c = client();
    expect(await c.work.getTask(5)).toMatchObject({ number: 'T-5' });
    expect(calls('/AUTHZ/AccessTokens').map((x) => x.status)).toEqual([503, 0, 200]);
  });

  it('falls back to the service token when the refresh token is refused, and warns once without a token', async () => {
    const c = client();
    await c.work.getTask(5);
    await c.http.tokens.settled();
    h.hubex.revokeRefreshTokens();
    h.clock += 1800_000; // expired: the refresh token is tried first, then the service token
    await c.work.getTask(5);
    expect(h.hubex.issued).toMatchObject({ service: 2, refresh: 0 });
    expect(calls('/AUTHZ/AccessTokens').map((x) => x.status)).toEqual([200, 401, 200]);
    const warnings = h.logs.lines.filter((l) => l.level === 'warn' && /refresh token/.test(String(l.msg)));
    expect(warnings).toHaveLength(1);
    expect(h.logs.text).not.toMatch(ANY_TOKEN);
    expect(h.logs.text).not.toContain(h.hubex.serviceToken);
  });
});

describe('refused tokens', () => {
  it('a wrong service token is an error that names HUBEX_SERVICE_TOKEN and does not hold the token', async () => {
    const wrong = 'svc-0123456789abcdef-wrong';
    const c = client({ serviceToken: wrong });
    const err = (await c.work.getTask(5).catch((e: unknown) => e)) as HubexApiError;
    expect(err).toMatchObject({ name: 'HubexApiError', status: 401, method: 'POST', path: '/AUTHZ/AccessTokens', retryable: false });
    expect(err.message).toMatch(/^HubEx answered 401 to POST \/AUTHZ\/AccessTokens \(not authenticated: .*check HUBEX_SERVICE_TOKEN/);
    expect(err.traceIdentifier).toMatch(/^0HN/);
    expect(JSON.stringify({ ...err, message: err.message })).not.toContain(wrong);
    expect(h.logs.text).not.toContain(wrong);
    expect(calls('/AUTHZ/AccessTokens')).toHaveLength(1); // a 401 is not retried
    expect(calls('/WORK/Tasks/5')).toHaveLength(0);
  });

  it('an expired HUBEX_ACCESS_TOKEN is not renewed, and the error says to set HUBEX_SERVICE_TOKEN', async () => {
    const fixed = h.hubex.issueAccessToken(60);
    const c = client({ serviceToken: undefined, accessToken: fixed });
    await c.work.getTask(5);
    h.hubex.expireAccessTokens();
    const err = (await c.work.getTask(5).catch((e: unknown) => e)) as HubexApiError;
    expect(err).toMatchObject({ status: 401, retryable: false });
    expect(err.message).toMatch(/HUBEX_ACCESS_TOKEN has expired or was refused.*set HUBEX_SERVICE_TOKEN instead/);
    expect(err.message).not.toContain(fixed);
    expect(h.hubex.calls.filter((x) => x.path.startsWith('/AUTHZ/'))).toEqual([]);
  });

  it('a 401 in mid-flight: one renewal and one retry per call, then a clear error, and nothing leaks', async () => {
    const c = client();
    await c.work.getTask(5);
    await c.http.tokens.settled();
    const before = renewals();
    h.hubex.fail({ path: '/WORK/Tasks/5', status: 401, times: 2 });
    const err = (await c.work.getTask(5).catch((e: unknown) => e)) as HubexApiError;
    expect(err.status).toBe(401);
    expect(calls('/WORK/Tasks/5').map((x) => x.status)).toEqual([200, 401, 401]);
    expect(renewals() - before).toBe(1);
    for (const line of h.logs.lines) expect(JSON.stringify(line)).not.toMatch(ANY_TOKEN);
  });
});

describe('X-Application-ID', () => {
  it('sends the configured application id on every call, the token exchange included', async () => {
    const c = client({ applicationId: 3 });
    await c.work.getTask(5);
    await c.http.tokens.settled();
    expect(h.hubex.calls.length).toBeGreaterThanOrEqual(3);
    expect(new Set(h.hubex.calls.map((x) => x.applicationId))).toEqual(new Set(['3']));
  });

  it('hubexOptionsFromEnv reads HUBEX_* as the router does, and names a bad variable without its value', async () => {
    const options = hubexOptionsFromEnv({
      HUBEX_BASE_URL: `${h.hubex.url}/`,
      HUBEX_SERVICE_TOKEN: h.hubex.serviceToken,
      HUBEX_APPLICATION_ID: '4',
    });
    expect(options).toMatchObject({ baseUrl: h.hubex.url, applicationId: 4, timeoutMs: 15_000, maxInFlight: 8 });
    const c = client({ ...options, log: undefined, now: Date.now });
    await c.work.getTask(5);
    expect(h.hubex.calls.at(-1)).toMatchObject({ path: '/WORK/Tasks/5', applicationId: '4', auth: 'valid' });
    const bad = () => hubexOptionsFromEnv({ HUBEX_BASE_URL: 'ftp://nowhere', HUBEX_ACCESS_TOKEN: 'short' });
    expect(bad).toThrow(/HUBEX_BASE_URL: must be an http/);
    expect(bad).toThrow(/HUBEX_ACCESS_TOKEN: is too short/);
    expect(bad).not.toThrow(/short"/); // the value of a secret is never echoed
  });

  it('an application id HubEx does not know is refused with 403, and the message says what to check', async () => {
    const c = client({ applicationId: 9 });
    const err = (await c.work.getTask(5).catch((e: unknown) => e)) as HubexApiError;
    expect(err).toMatchObject({ status: 403, retryable: false });
    expect(err.message).toMatch(/HubEx answered 403 to POST \/AUTHZ\/AccessTokens \(no access: .*X-Application-ID/);
  });
});
