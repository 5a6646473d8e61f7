// Every row of the DESIGN answer table, through app.inject on a real SQLite file.
import { afterEach, describe, expect, it } from 'vitest';
import { makeApp, type TestApp } from './support/test-app.js';

let t: TestApp;
afterEach(async () => t?.close());

describe('webhook answers', () => {
  it('202 with {accepted, duplicates, events:[{id, name}]} when a new event is stored', async () => {
    t = await makeApp();
    const res = await t.post({ EventID: 40, AssetID: 5501, TenantID: 77 });
    expect(res.statusCode).toBe(202);
    const body = res.json();
    expect(body).toEqual({
      accepted: 1,
      duplicates: 0,
      events: [{ id: expect.stringMatching(/^[0-9a-f]{32}$/), name: 'asset.created', duplicate: false }],
    });
  });

  it('202 when a batch holds at least one new event among duplicates', async () => {
    t = await makeApp();
    await t.post({ EventID: 41, AssetID: 1 });
    const res = await t.post([
      { EventID: 41, AssetID: 1 },
      { EventID: 41, AssetID: 2 },
    ]);
    expect(res.statusCode).toBe(202);
    expect(res.json()).toMatchObject({ accepted: 1, duplicates: 1 });
  });

  it('200 with accepted 0 when every event is a duplicate', async () => {
    t = await makeApp();
    const first = await t.post({ EventID: 41, AssetID: 5501 });
    const again = await t.post({ EventID: 41, AssetID: 5501 });
    expect(again.statusCode).toBe(200);
    expect(again.json()).toEqual({
      accepted: 0,
      duplicates: 1,
      events: [{ id: first.json().events[0].id, name: 'asset.updated', duplicate: true }],
    });
  });

  it.each([
    ['not JSON', '{"EventID": 40,', 'INVALID_JSON'],
    ['not an object or array', '42', 'INVALID_SHAPE'],
    ['an array of non-objects', '[1, 2]', 'INVALID_SHAPE'],
    ['no recognisable event', '{"hello": "world"}', 'NO_EVENT'],
  ])('400 {error, message, requestId} for a body that is %s', async (_what, body, code) => {
    t = await makeApp();
    const res = await t.post(body);
    expect(res.statusCode).toBe(400);
    const json = res.json();
    expect(json.error).toBe(code);
    expect(json.message).toMatch(/^[A-Z].{20,}\.$/); // a sentence
    expect(json.requestId).toBe(res.headers['x-request-id']);
  });

  it('401 when the token is missing or unknown', async () => {
    t = await makeApp();
    const missing = await t.post({ EventID: 40, AssetID: 1 }, { url: '/hooks/hubex' });
    expect(missing.statusCode).toBe(401);
    expect(missing.json().error).toBe('UNAUTHORIZED');
    expect(missing.headers['www-authenticate']).toMatch(/^Bearer/);
    const unknown = await t.post({ EventID: 40, AssetID: 1 }, { token: 'not-a-valid-token-at-all' });
    expect(unknown.statusCode).toBe(401);
  });

  it('413 when the body is over BODY_LIMIT', async () => {
    t = await makeApp({ BODY_LIMIT: '2048' });
    const res = await t.post({ EventID: 40, AssetID: 1, note: 'x'.repeat(3000) });
    expect(res.statusCode).toBe(413);
    expect(res.json()).toMatchObject({ error: 'BODY_TOO_LARGE', message: expect.stringContaining('2048') });
  });

  it('415 when the body is not JSON by its Content-Type', async () => {
    t = await makeApp();
    const res = await t.post('EventID=40', { headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    expect(res.statusCode).toBe(415);
    expect(res.json()).toMatchObject({ error: 'UNSUPPORTED_MEDIA_TYPE', message: expect.stringContaining('application/json') });
  });

  it('accepts application/json with a charset and application/*+json', async () => {
    t = await makeApp();
    const a = await t.post({ EventID: 40, AssetID: 7 }, { headers: { 'content-type': 'application/json; charset=utf-8' } });
    const b = await t.post({ EventID: 40, AssetID: 8 }, { headers: { 'content-type': 'application/vnd.hubex+json' } });
    expect([a.statusCode, b.statusCode]).toEqual([202, 202]);
  });

  it('503 with Retry-After when the store cannot take the write, and nothing is acknowledged', async () => {
    t = await makeApp();
    await t.app.store.close();
    const res = await t.post({ EventID: 40, AssetID: 1 });
    expect(res.statusCode).toBe(503);
    expect(res.headers['retry-after']).toBe('5');
    expect(res.json()).toMatchObject({ error: 'STORE_UNAVAILABLE', requestId: res.headers['x-request-id'] });
  });

  it('405 for other methods on the webhook URL, without asking for the token', async () => {
    t = await makeApp();
    const res = await t.app.inject({ method: 'GET', url: '/hooks/hubex/anything' });
    expect(res.statusCode).toBe(405);
    expect(res.headers.allow).toBe('POST');
  });

  it('404 with the error shape for unknown routes', async () => {
    t = await makeApp();
    const res = await t.app.inject({ method: 'POST', url: '/hooks/other' });
    expect(res.statusCode).toBe(404);
    expect(res.json()).toMatchObject({ error: 'NOT_FOUND', requestId: expect.any(String) });
  });
});
