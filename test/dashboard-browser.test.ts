// The dashboard in a real browser: Debian's Chromium, driven by playwright-core, against the real
// app listening on a port. Signs in, finds a dead delivery, opens its history, replays it and sees
// it done, from the keyboard alone; in Russian too. Under CI Chromium must be there (.ci/run
// installs it); elsewhere the test is skipped with one line when it is not.
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type Browser, chromium, type Page } from 'playwright-core';
import { defineHandler } from '../src/delivery/define-handler.js';
import { checkHandler } from '../src/delivery/loader.js';
import { PermanentError } from '../src/errors.js';
import { makeApp, type TestApp } from './support/test-app.js';
import { waitFor } from './support/wait.js';

const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const hasChromium = existsSync(CHROMIUM);
if (!hasChromium && process.env.CI) throw new Error(`${CHROMIUM} is not installed; CI runs the browser test (.ci/run installs chromium)`);
if (!hasChromium)
  process.stdout.write(
    `chromium not found at ${CHROMIUM}: skipping the dashboard's browser test; install it with: apt-get install chromium\n`,
  );

const ADMIN = 'dashboard-admin-token-0123456789';
let browser: Browser | undefined;
let t: TestApp;
let base: string;
let failing = true;

beforeAll(async () => {
  if (!hasChromium) return;
  const flaky = checkHandler(
    defineHandler({
      name: 'sync-asset',
      on: 40,
      handle: () => {
        if (failing) throw new PermanentError('ERP refused asset 5501: no such cost centre');
      },
    }),
    'sync-asset.mjs',
  );
  t = await makeApp({ ADMIN_TOKEN: ADMIN, RETRY_BASE_MS: '5' }, { handlers: [flaky] });
  await t.app.listen({ port: 0, host: '127.0.0.1' });
  base = `http://127.0.0.1:${(t.app.server.address() as { port: number }).port}`;
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu'] });
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await t?.close();
});

/** Presses Tab until the focused element's text is `label` (at most 60 times), then Enter. */
async function tabTo(page: Page, label: string): Promise<void> {
  for (let i = 0; i < 60; i++) {
    await page.keyboard.press('Tab');
    // A string: it runs in the page (the test's own types have no DOM).
    const text = await page.evaluate<string>("document.activeElement?.innerText?.trim() ?? ''");
    if (text === label) {
      await page.keyboard.press('Enter');
      return;
    }
  }
  throw new Error(`no element labelled ${JSON.stringify(label)} is reachable with Tab`);
}

it.skipIf(!hasChromium)(
  'signs in, sees a dead delivery, opens its history, replays it and sees it done: from the keyboard, no token in any URL or log',
  async () => {
    expect((await t.post({ EventID: 40, AssetID: 5501 })).statusCode).toBe(202);
    await waitFor(
      () => t.app.store.counts(),
      (c) => c.dead === 1,
      { what: 'the delivery dead' },
    );

    const context = await browser!.newContext({ locale: 'en-US' });
    const page = await context.newPage();
    const urls: string[] = [];
    page.on('request', (r) => urls.push(r.url()));

    // 1. Sign in: the first page sends the browser to the sign-in form.
    await page.goto(`${base}/ui/`);
    expect(new URL(page.url()).pathname).toBe('/ui/login');
    // The token field has the focus (autofocus): typing goes there, once the page has given it.
    await page.waitForFunction("document.activeElement && document.activeElement.id === 'token'");
    await page.keyboard.type(ADMIN);
    await page.keyboard.press('Enter');
    await page.waitForURL(`${base}/ui/`);
    expect(await page.locator('h1').innerText()).toBe('Overview');

    // 2. The dead delivery: the overview links to the dead letters.
    await tabTo(page, 'See the dead letters');
    await page.waitForURL(/\/ui\/deliveries\?status=dead$/);
    const row = page.locator('tbody tr');
    expect(await row.count()).toBe(1);
    expect(await row.innerText()).toContain('sync-asset');
    expect(await row.innerText()).toContain('ERP refused asset 5501');

    // 3. Its history.
    const id = (await row.locator('a').first().innerText()).trim();
    await tabTo(page, id);
    await page.waitForURL(/\/ui\/deliveries\/[^/]+$/);
    const history = page.locator('table.history tbody tr');
    expect(await history.count()).toBe(1);
    expect(await history.innerText()).toMatch(/dead[\s\S]*ERP refused asset 5501[\s\S]*PermanentError/);

    // 4. Replay it, after a confirmation (the confirm button has the focus).
    failing = false;
    await tabTo(page, 'Replay…');
    await page.waitForURL(/\/replay$/);
    expect(await page.locator('main p').first().innerText()).toContain('sync-asset');
    await page.keyboard.press('Enter');
    await page.waitForURL(/replayed=1/);
    expect(await page.locator('[role=status]').innerText()).toBe('Replayed: 1.');

    // 5. Done.
    await waitFor(
      async () => {
        await page.reload();
        return page.locator('.fields .status').innerText();
      },
      (s) => s === 'done',
      { what: 'the delivery done on the page', everyMs: 100 },
    );
    expect(await history.count()).toBe(2);

    expect(urls.length).toBeGreaterThan(5);
    for (const u of urls) expect(u).not.toContain(ADMIN);
    expect(t.logs.text).not.toContain(ADMIN);
    const cookies = await context.cookies();
    expect(cookies.find((c) => c.name === 'hxr_session')).toMatchObject({ httpOnly: true, sameSite: 'Strict', path: '/ui' });
    await context.close();
  },
  60_000,
);

it.skipIf(!hasChromium)('speaks Russian to a Russian browser, and the switch changes it', async () => {
  const context = await browser!.newContext({ locale: 'ru-RU' });
  const page = await context.newPage();
  await page.goto(`${base}/ui/login`);
  expect(await page.locator('h1').innerText()).toBe('Вход');
  expect(await page.locator('html').getAttribute('lang')).toBe('ru');
  await page.locator('input[name=token]').fill(ADMIN);
  await page.locator('button[type=submit]').click();
  await page.waitForURL(`${base}/ui/`);
  expect(await page.locator('h1').innerText()).toBe('Обзор');
  await page.locator('a[hreflang=en]').click();
  await page.waitForURL(`${base}/ui/`);
  expect(await page.locator('h1').innerText()).toBe('Overview');
  await page.goto(`${base}/ui/handlers`);
  expect(await page.locator('h1').innerText()).toBe('Handlers'); // the choice is kept
  await context.close();
});
