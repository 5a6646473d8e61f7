// The webhook token: each source, several valid at once, constant-time compare, never logged.
import { afterEach, describe, expect, it } from 'vitest';
import { TokenVerifier } from '../src/webhook-tokens.js';
import { makeApp, type TestApp, TOKEN, TOKEN2 } from './support/test-app.js';

let t: TestApp;
afterEach(async () => t?.close());

const event = (n: number) => ({ EventID: 41, AssetID: n });

describe('webhook token', () => {
  it('is accepted in the path', async () => {
    t = await makeApp();
    expect((await t.post(event(1), { url: `/hooks/hubex/${TOKEN}` })).statusCode).toBe(202);
  });

  it('is accepted in X-Webhook-Token', async () => {
    t = await makeApp();
    const res = await t.post(event(2), { url: '/hooks/hubex', headers: { 'x-webhook-token': TOKEN } });
    expect(res.statusCode).toBe(202);
  });

  it('is accepted as Authorization: Bearer', async () => {
    t = await makeApp();
    const res = await t.post(event(3), { url: '/hooks/hubex', headers: { authorization: `Bearer ${TOKEN}` } });
    expect(res.statusCode).toBe(202);
  });

  it('accepts each of two configured tokens (rotation)', async () => {
    t = await makeApp();
    expect((await t.post(event(4), { token: TOKEN })).statusCode).toBe(202);
    expect((await t.post(event(5), { token: TOKEN2 })).statusCode).toBe(202);
  });

  it('refuses a wrong token of the right length', async () => {
    t = await makeApp();
    const wrong = TOKEN.slice(0, -1) + (TOKEN.endsWith('a') ? 'b' : 'a');
    expect(wrong).toHaveLength(TOKEN.length);
    expect((await t.post(event(6), { token: wrong })).statusCode).toBe(401);
    expect((await t.post(event(6), { url: '/hooks/hubex', headers: { 'x-webhook-token': wrong } })).statusCode).toBe(401);
    expect((await t.post(event(6), { url: '/hooks/hubex', headers: { authorization: `Bearer ${wrong}` } })).statusCode).toBe(401);
  });

  it('refuses other Authorization schemes', async () => {
    t = await makeApp();
    const basic = `Basic ${Buffer.from(`x:${TOKEN}`).toString('base64')}`;
    expect((await t.post(event(7), { url: '/hooks/hubex', headers: { authorization: basic } })).statusCode).toBe(401);
  });

  it('answers 401 before reading a large body from an unknown caller', async () => {
    t = await makeApp({ BODY_LIMIT: '2048' });
    const res = await t.post({ EventID: 40, AssetID: 1, pad: 'x'.repeat(10_000) }, { token: 'wrong-token-wrong-token' });
    expect(res.statusCode).toBe(401);
  });

  it('stores nothing for a refused call', async () => {
    t = await makeApp();
    await t.post(event(8), { token: 'wrong-token-wrong-token' });
    const ok = await t.post(event(8));
    expect(ok.statusCode).toBe(202); // not a duplicate: the refused call left no row
  });

  it('never reaches the log: path, header, bearer, query', async () => {
    t = await makeApp();
    await t.post(event(9), { url: `/hooks/hubex/${TOKEN}?token=${TOKEN2}` });
    await t.post(event(10), { url: '/hooks/hubex', headers: { 'x-webhook-token': TOKEN } });
    await t.post(event(11), { url: '/hooks/hubex', headers: { authorization: `Bearer ${TOKEN2}` } });
    await t.post(event(12), { token: 'wrong-token-wrong-token' });
    await t.post('not json', { token: TOKEN });
    await t.app.inject({ method: 'GET', url: `/hooks/hubex/${TOKEN}` });
    await t.app.inject({ method: 'POST', url: `/hooks/hubex/${TOKEN}/extra` });
    t.app.log.info({ req: { headers: { authorization: `Bearer ${TOKEN}` } }, token: TOKEN2 }, 'a careless call site');
    expect(t.logs.lines.length).toBeGreaterThanOrEqual(8);
    expect(t.logs.text).not.toContain(TOKEN);
    expect(t.logs.text).not.toContain(TOKEN2);
    expect(t.logs.text).not.toContain('wrong-token-wrong-token');
    expect(t.logs.text).toContain('/hooks/hubex/[REDACTED]');
  });
});

describe('TokenVerifier', () => {
  it('matches only exact tokens, whatever their length', () => {
    const v = new TokenVerifier([TOKEN, TOKEN2]);
    expect(v.verify(TOKEN)).toBe(true);
    expect(v.verify(TOKEN2)).toBe(true);
    expect(v.verify(TOKEN + 'x')).toBe(false);
    expect(v.verify(TOKEN.slice(1))).toBe(false);
    expect(v.verify('')).toBe(false);
  });

  it('tells apart tokens of different lengths, zero bytes, prefixes and characters of several bytes', () => {
    const short = 'short-token-0123';
    const long = `${short}-and-a-longer-one-äöü`;
    const v = new TokenVerifier([long, short]);
    expect(v.verify(short)).toBe(true);
    expect(v.verify(long)).toBe(true);
    expect(v.verify(`${short}\u0000`), 'the padding is not part of a token').toBe(false);
    expect(v.verify(`${short}\u0000\u0000\u0000`)).toBe(false);
    expect(v.verify(long.slice(0, -1)), 'a prefix of a token').toBe(false);
    expect(v.verify(`${long.slice(0, -1)}u`), 'same length in characters, not in bytes').toBe(false);
    expect(v.verify(`${long}${long}`), 'longer than every token').toBe(false);
    expect(v.verify('😀'.repeat(40))).toBe(false);
    // Each call starts from a clean buffer: a long candidate leaves nothing behind for a short one.
    expect(v.verify(`${short}xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx`)).toBe(false);
    expect(v.verify(short)).toBe(true);
  });
});
