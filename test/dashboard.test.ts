// The dashboard's contract over HTTP (the real app, SQLite in a temporary folder): there only with
// ADMIN_TOKEN, behind ALLOWED_IPS; sign-in by a form, a session cookie that is HttpOnly and
// SameSite=Strict, CSRF-checked actions, escaped output, bounded input, pages a screenful at a time.
// The browser walk-through is test/dashboard-browser.test.ts.
import { afterEach, describe, expect, it } from 'vitest';
import { defineHandler } from '../src/delivery/define-handler.js';
import { checkHandler } from '../src/delivery/loader.js';
import { clientKey } from '../routes/ui.js';
import { makeApp, type TestApp } from './support/test-app.js';
import { sleep, waitFor } from './support/wait.js';

const ADMIN = 'dashboard-admin-token-0123456789';
const FORM = { 'content-type': 'application/x-www-form-urlencoded' };
const apps: TestApp[] = [];
afterEach(async () => {
  await Promise.all(apps.splice(0).map((a) => a.close()));
});

const failing = checkHandler(
  defineHandler({
    name: 'always-fails',
    on: 40,
    maxAttempts: 1,
    handle: () => {
      throw new Error('nope <b>bold</b>');
    },
  }),
  'always-fails.mjs',
);

async function app(env: Record<string, string> = {}) {
  const a = await makeApp({ ADMIN_TOKEN: ADMIN, ...env }, { handlers: [failing] });
  apps.push(a);
  return a;
}

/** Waits until the store holds `n` dead deliveries. */
const deadLetters = (a: TestApp, n: number) =>
  waitFor(
    () => a.app.store.counts(),
    (c) => c.dead === n,
    { what: `${n} dead deliveries` },
  );

/** Signs in; answers the session cookie and a CSRF token read from a page's form. */
async function signIn(a: TestApp): Promise<{ cookie: string; csrf: string }> {
  const res = await a.app.inject({ method: 'POST', url: '/ui/login', headers: FORM, payload: `token=${ADMIN}` });
  expect(res.statusCode).toBe(303);
  const cookie = String(res.headers['set-cookie']).split(';')[0]!;
  const page = await a.app.inject({ url: '/ui/', headers: { cookie } });
  const csrf = /name="_csrf" value="([^"]+)"/.exec(page.body)![1]!;
  return { cookie, csrf };
}

describe('the dashboard', () => {
  it('is not there without ADMIN_TOKEN (404), and is behind ALLOWED_IPS', async () => {
    const none = await makeApp();
    apps.push(none);
    expect((await none.app.inject('/ui/')).statusCode).toBe(404);
    expect((await none.app.inject('/ui/login')).statusCode).toBe(404);
    const fenced = await app({ ALLOWED_IPS: '203.0.113.0/24' });
    expect((await fenced.app.inject({ url: '/ui/login', remoteAddress: '198.51.100.7' })).statusCode).toBe(403);
    expect((await fenced.app.inject({ url: '/ui/login', remoteAddress: '203.0.113.9' })).statusCode).toBe(200);
  });

  it('sends a visitor to sign in; refuses actions without a session', async () => {
    const a = await app();
    for (const url of ['/ui/', '/ui/events', '/ui/deliveries/1', '/ui/handlers', '/ui']) {
      const res = await a.app.inject(url);
      expect([res.statusCode, res.headers.location]).toEqual([303, '/ui/login']);
    }
    const post = await a.app.inject({ method: 'POST', url: '/ui/replay', headers: FORM, payload: 'handler=x' });
    expect(post.statusCode).toBe(403);
    const forged = await a.app.inject({
      url: '/ui/',
      headers: { cookie: 'hxr_session=v1.99999999999999.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' },
    });
    expect(forged.statusCode).toBe(303);
  });

  it("signs in with the token in a form's body: a session cookie (HttpOnly, SameSite=Strict, Secure over https), never the token itself", async () => {
    const a = await app({ TRUST_PROXY: '127.0.0.1' });
    const page = await a.app.inject('/ui/login');
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-security-policy']).toContain("default-src 'none'");
    expect(page.body).toContain('<form method="post" action="/ui/login"');
    const res = await a.app.inject({
      method: 'POST',
      url: '/ui/login',
      headers: { ...FORM, 'x-forwarded-proto': 'https' },
      payload: `token=${ADMIN}`,
    });
    expect(res.statusCode).toBe(303);
    const set = String(res.headers['set-cookie']);
    expect(set).toMatch(/^hxr_session=v1\.\d+\.[A-Za-z0-9_-]{43}; Path=\/ui; Max-Age=43200; SameSite=Strict; HttpOnly; Secure$/);
    expect(set).not.toContain(ADMIN);
    expect(a.logs.text).not.toContain(ADMIN);
    expect(a.logs.lines.some((l) => l.msg === 'dashboard sign-in')).toBe(true);
  });

  it('signing out ends every session, this browser’s and any other’s; signing in again opens a new one', async () => {
    const a = await app();
    const first = await signIn(a);
    await sleep(5); // the second session is opened a moment later, as in another browser
    const second = await signIn(a);
    const out = await a.app.inject({
      method: 'POST',
      url: '/ui/logout',
      headers: { ...FORM, cookie: first.cookie },
      payload: `_csrf=${first.csrf}`,
    });
    expect([out.statusCode, out.headers.location]).toEqual([303, '/ui/login']);
    expect(String(out.headers['set-cookie'])).toContain('Max-Age=0');
    await sleep(5);
    for (const { cookie } of [first, second]) expect((await a.app.inject({ url: '/ui/', headers: { cookie } })).statusCode).toBe(303);
    const again = await signIn(a);
    expect((await a.app.inject({ url: '/ui/', headers: { cookie: again.cookie } })).statusCode).toBe(200);
    expect(a.logs.lines.some((l) => l.msg === 'dashboard sign-out: every session ends')).toBe(true);
  });

  it('a wrong token gets 401 and a warning (not the token); ten a minute from one address, then 429', async () => {
    const a = await app();
    for (let i = 0; i < 10; i++) {
      const res = await a.app.inject({ method: 'POST', url: '/ui/login', headers: FORM, payload: `token=wrong-token-${i}-xxxxxxxxxxxx` });
      expect(res.statusCode).toBe(401);
      expect(res.body).toContain('That is not the admin token.');
    }
    const blocked = await a.app.inject({ method: 'POST', url: '/ui/login', headers: FORM, payload: `token=${ADMIN}` });
    expect(blocked.statusCode).toBe(429);
    expect(a.logs.lines.filter((l) => l.msg === 'dashboard sign-in refused: not the admin token')).toHaveLength(10);
    expect(a.logs.text).not.toContain('wrong-token-');
    // Another address is not held back.
    const other = await a.app.inject({
      method: 'POST',
      url: '/ui/login',
      headers: FORM,
      payload: `token=${ADMIN}`,
      remoteAddress: '127.0.0.9',
    });
    expect(other.statusCode).toBe(303);
  });

  it('counts sign-in failures by address, an IPv6 one by its /64; a trailing slash signs in too', async () => {
    expect(clientKey('203.0.113.7')).toBe('203.0.113.7');
    expect(clientKey('::ffff:203.0.113.7')).toBe('203.0.113.7');
    expect(clientKey('2001:db8:1:2:aaaa:bbbb:cccc:dddd')).toBe('2001:db8:1:2::/64');
    expect(clientKey('2001:0db8:0001:0002::9')).toBe('2001:db8:1:2::/64');
    expect(clientKey('2001:db8::1')).toBe('2001:db8:0:0::/64');
    expect(clientKey('::1')).toBe('0:0:0:0::/64');
    const a = await app();
    for (let i = 0; i < 10; i++) {
      const res = await a.app.inject({
        method: 'POST',
        url: '/ui/login',
        headers: FORM,
        payload: 'token=wrong-token-xxxxxxxxxxxx',
        remoteAddress: `2001:db8:1:2::${i + 1}`,
      });
      expect(res.statusCode).toBe(401);
    }
    const neighbour = await a.app.inject({
      method: 'POST',
      url: '/ui/login',
      headers: FORM,
      payload: `token=${ADMIN}`,
      remoteAddress: '2001:db8:1:2::ff',
    });
    expect(neighbour.statusCode).toBe(429);
    const elsewhere = await a.app.inject({
      method: 'POST',
      url: '/ui/login/',
      headers: FORM,
      payload: `token=${ADMIN}`,
      remoteAddress: '2001:db8:9:9::1',
    });
    expect([elsewhere.statusCode, elsewhere.headers.location]).toEqual([303, '/ui/']);
  });

  it('checks the CSRF token of every action, and refuses one sent from another site', async () => {
    const a = await app();
    await a.post({ EventID: 40, AssetID: 1 });
    await deadLetters(a, 1);
    const { cookie, csrf } = await signIn(a);
    const replay = (payload: string, headers: Record<string, string> = {}) =>
      a.app.inject({ method: 'POST', url: '/ui/replay', headers: { ...FORM, cookie, ...headers }, payload });
    expect((await replay('handler=always-fails')).statusCode).toBe(403);
    expect((await replay('handler=always-fails&_csrf=not-it')).statusCode).toBe(403);
    expect((await replay(`handler=always-fails&_csrf=${csrf}`, { 'sec-fetch-site': 'cross-site' })).statusCode).toBe(403);
    expect((await a.app.store.counts()).dead).toBe(1); // nothing happened
    const ok = await replay(`handler=always-fails&_csrf=${csrf}`, { 'sec-fetch-site': 'same-origin' });
    expect([ok.statusCode, ok.headers.location]).toEqual([303, '/ui/deliveries?replayed=1&handler=always-fails']);
    // A session signed with another admin token is no session here.
    const other = await makeApp({ ADMIN_TOKEN: 'another-admin-token-000000000000' });
    apps.push(other);
    expect((await other.app.inject({ url: '/ui/', headers: { cookie } })).statusCode).toBe(303);
  });

  it('escapes what senders wrote: a field, an error message, a search term', async () => {
    const a = await app();
    const res = await a.post({ EventID: 40, AssetID: 7, Note: '<script>alert(1)</script>', EventUID: 'x"><img src=x onerror=alert(1)>' });
    expect(res.statusCode).toBe(202);
    await deadLetters(a, 1);
    const { cookie } = await signIn(a);
    const [event] = await a.app.store.listEvents();
    const eventPage = await a.app.inject({ url: `/ui/events/${encodeURIComponent(event!.id)}`, headers: { cookie } });
    expect(eventPage.statusCode).toBe(200);
    expect(eventPage.body).not.toContain('<script>alert');
    expect(eventPage.body).not.toContain('<img src=x');
    expect(eventPage.body).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    const [d] = await a.app.store.list();
    const deliveryPage = await a.app.inject({ url: `/ui/deliveries/${d!.id}`, headers: { cookie } });
    expect(deliveryPage.body).toContain('nope &lt;b&gt;bold&lt;/b&gt;');
    const search = await a.app.inject({ url: `/ui/events?name=${encodeURIComponent('"><script>x</script>')}`, headers: { cookie } });
    expect(search.body).not.toContain('<script>x');
  });

  it('bounds and checks what a query holds: a bad task id or time is a 400 page; an unknown page a 404 page', async () => {
    const a = await app();
    const { cookie } = await signIn(a);
    const get = (url: string) => a.app.inject({ url, headers: { cookie } });
    const badTask = await get('/ui/events?task=12abc');
    expect(badTask.statusCode).toBe(400);
    expect(badTask.headers['content-type']).toContain('text/html');
    expect(badTask.body).toContain('The task id must be a whole number');
    expect((await get('/ui/events?from=yesterday')).statusCode).toBe(400);
    expect((await get('/ui/deliveries?status=lost')).statusCode).toBe(400);
    expect((await get(`/ui/events?name=${'x'.repeat(100_000)}`)).statusCode).toBeLessThan(500);
    expect((await get('/ui/deliveries/999999')).statusCode).toBe(404);
    expect((await get('/ui/nowhere')).statusCode).toBe(404);
    expect((await get('/ui/lang?to=ru&next=https://evil.example/')).headers.location).toBe('/ui/');
    expect((await get('/ui/lang?to=ru&next=//evil.example/')).headers.location).toBe('/ui/');
  });

  it('what a hostile review found: a repeated or odd `next`, a planted session cookie, a made-up flash, repeated query keys, a 429', async () => {
    const a = await app({ RATE_LIMIT_MAX: '40' });
    const lang = (next: string) => a.app.inject(`/ui/lang?to=ru&${next}`);
    const twice = await lang('next=/ui/a&next=https://evil.example/');
    expect([twice.statusCode, twice.headers.location]).toEqual([303, '/ui/a']); // one Location, on this site
    for (const next of ['next=/ui/%0d%0aX:1', 'next=/ui/%D0%97', 'next=/ui//evil.example', 'next=/ui/%5Cevil.example']) {
      const res = await lang(next);
      expect(res.statusCode).toBe(303);
      expect(String(res.headers.location)).toMatch(/^\/ui\/[^\r\n]*$/);
    }
    expect(a.logs.lines.filter((l) => l.level === 'error')).toEqual([]);
    const { cookie } = await signIn(a);
    const planted = await a.app.inject({ url: '/ui/', headers: { cookie: `hxr_session=bogus; ${cookie}` } });
    expect(planted.statusCode).toBe(200);
    expect((await a.app.inject({ url: '/ui/deliveries?replayed=x', headers: { cookie } })).statusCode).toBe(200);
    const repeated = await a.app.inject({ url: '/ui/deliveries?status=dead&status=done', headers: { cookie } });
    expect(repeated.body).toMatch(/<option value="dead"\s+selected>/);
    let limited;
    for (let i = 0; i < 45 && limited?.statusCode !== 429; i++) limited = await a.app.inject({ url: '/ui/handlers', headers: { cookie } });
    expect(limited!.statusCode).toBe(429);
    expect(limited!.headers['retry-after']).toBeDefined();
  });

  it('shows 50 events a page, newest first, with a link to the older ones; finds a task, a name and a time span', async () => {
    const a = await app();
    for (let i = 0; i < 120; i++) await a.post({ EventID: i % 2 ? 41 : 12, TaskID: i % 4, AssetID: 9, n: i });
    const { cookie } = await signIn(a);
    const rows = (body: string) => body.match(/<td>\s*\d{4}-\d\d-\d\d /g)?.length ?? 0;
    const first = await a.app.inject({ url: '/ui/events', headers: { cookie } });
    expect(rows(first.body)).toBe(50);
    const older = /href="(\/ui\/events\?before=\d+)"/.exec(first.body)![1]!;
    const second = await a.app.inject({ url: older.replace(/&amp;/g, '&'), headers: { cookie } });
    expect(rows(second.body)).toBe(50);
    const task = await a.app.inject({ url: '/ui/events?task=2', headers: { cookie } });
    expect(rows(task.body)).toBe(30); // i % 4 === 2: event 12 (a task event), never an asset one
    const named = await a.app.inject({ url: '/ui/events?name=asset.updated', headers: { cookie } });
    expect(rows(named.body)).toBe(50);
    const future = await a.app.inject({ url: '/ui/events?from=2999-01-01T00:00', headers: { cookie } });
    expect(future.body).toContain('No event matches.');
  });

  it('replays every dead delivery of a handler after a confirmation that counts them', async () => {
    const a = await app();
    for (let i = 0; i < 3; i++) await a.post({ EventID: 40, AssetID: 100 + i });
    await deadLetters(a, 3);
    const { cookie, csrf } = await signIn(a);
    const list = await a.app.inject({ url: '/ui/deliveries?status=dead&handler=always-fails', headers: { cookie } });
    expect(list.body).toContain('href="/ui/replay?handler=always-fails"');
    const ids = [...list.body.matchAll(/href="\/ui\/deliveries\/(\d+)"/g)].map((m) => Number(m[1]));
    expect(ids).toHaveLength(3);
    expect(ids).toEqual([...ids].sort((x, y) => y - x)); // newest first
    const confirm = await a.app.inject({ url: '/ui/replay?handler=always-fails', headers: { cookie } });
    expect(confirm.body).toContain('Run again every dead delivery of handler always-fails: 3.');
    const res = await a.app.inject({
      method: 'POST',
      url: '/ui/replay',
      headers: { ...FORM, cookie },
      payload: `handler=always-fails&event=&_csrf=${csrf}`,
    });
    expect(res.headers.location).toBe('/ui/deliveries?replayed=3&handler=always-fails');
    const after = await a.app.inject({ url: res.headers.location!, headers: { cookie } });
    expect(after.body).toContain('Replayed: 3.');
    const handlers = await a.app.inject({ url: '/ui/handlers', headers: { cookie } });
    expect(handlers.body).toContain('always-fails');
    expect(handlers.body).toContain('1 attempts');
  });
});
