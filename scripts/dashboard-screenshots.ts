// Makes the screenshots of docs/dashboard.md: a router (SQLite in a temporary folder) with sample
// events, a handler that fails on some, a fake HubEx with one webhook HubEx has stopped, and
// Debian's Chromium driven by playwright-core. Run: npm run docs:screenshots (writes docs/img/).
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { loadConfig } from '../src/config.js';
import { checkHandler } from '../src/delivery/loader.js';
import { defineHandler, PermanentError } from '../src/index.js';
import { createLogger } from '../src/observability/log.js';
import { buildApp } from '../src/server.js';
import { startFakeHubex } from '../src/testing/fake-hubex.js';
import { tempDir } from '../test/support/test-app.js';

const OUT = fileURLToPath(new URL('../docs/img/', import.meta.url));
const ADMIN = 'screenshots-admin-token-0123456789';
const TOKEN = 'screenshots-webhook-token-0123456';
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';

async function main(): Promise<void> {
  mkdirSync(OUT, { recursive: true });
  const fake = await startFakeHubex();
  const { dir, remove } = tempDir('screenshots-');
  const handlers = [
    checkHandler(
      defineHandler({
        name: 'sync-asset-to-erp',
        on: ['asset.created', 'asset.updated'],
        maxAttempts: 3,
        retry: { baseMs: 10, maxMs: 20 },
        handle: ({ event }) => {
          if (event.assetID === 5503) throw new PermanentError('ERP refused asset 5503: no cost centre "CC-17"');
        },
      }),
      'sync-asset-to-erp.mjs',
    ),
    checkHandler(
      defineHandler({
        name: 'comment-on-new-task',
        on: 'task.created',
        orderBy: (e) => e.taskID,
        handle: () => undefined,
      }),
      'comment-on-new-task.mjs',
    ),
  ];
  const config = loadConfig({
    DATA_DIR: dir,
    WEBHOOK_TOKENS: TOKEN,
    ADMIN_TOKEN: ADMIN,
    LOG_LEVEL: 'silent',
    HUBEX_BASE_URL: fake.url,
    HUBEX_SERVICE_TOKEN: fake.serviceToken,
    WEBHOOK_WATCH_INTERVAL_MS: '200',
    RECONCILE_INTERVAL_MS: '500',
  });
  const app = await buildApp(config, { logger: createLogger('silent'), handlers });
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu'] });
  try {
    await app.listen({ port: 0, host: '127.0.0.1' });
    const base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
    fake.addWebhook({
      name: 'hubex-router (production)',
      uri: `https://hooks.example.com/hooks/hubex/${TOKEN}`,
      events: [40, 41, 12],
      isActive: false,
      callsRemaining: 0,
      lastCall: { started: '2026-12-03T05:58:02Z', completed: '2026-12-03T05:58:32Z', exception: 'The operation has timed out.' },
    });
    const post = (body: unknown) =>
      fetch(`${base}/hooks/hubex/${TOKEN}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    // Spread over 6 s: the overview's events per second needs two of its samples (5 s apart) to show.
    for (let i = 0; i < 40; i++) {
      await new Promise((r) => setTimeout(r, 150));
      await post(
        i % 4 === 0
          ? { EventID: 12, TaskID: 98_200 + i, TaskStageID: 1, occurred: new Date().toISOString() }
          : { EventID: i % 2 ? 41 : 40, AssetID: 5500 + (i % 6), TenantID: 77 },
      );
    }
    fake.modifyTask(98_231, { title: 'Chiller does not cool', taskStage: { id: 3, name: 'In progress' } });
    await new Promise((r) => setTimeout(r, 1500));

    const shoot = async (locale: string, steps: [name: string, path: string][]) => {
      const context = await browser.newContext({ locale, viewport: { width: 1280, height: 800 }, deviceScaleFactor: 1 });
      const page = await context.newPage();
      await page.goto(`${base}/ui/login`);
      if (locale === 'en-US') await page.screenshot({ path: `${OUT}dashboard-sign-in.png` });
      await page.locator('input[name=token]').fill(ADMIN);
      await page.locator('button[type=submit]').click();
      await page.waitForURL(`${base}/ui/`);
      for (const [name, path] of steps) {
        await page.goto(`${base}${path}`);
        await page.screenshot({ path: `${OUT}dashboard-${name}.png`, fullPage: false });
      }
      await context.close();
    };
    const [dead] = await app.store.list({ status: 'dead', limit: 1 });
    const deadPath = `/ui/deliveries/${encodeURIComponent(String(dead!.id))}`;
    const [event] = (await app.store.searchEvents({ name: 'asset.created', limit: 1 })).items;
    await shoot('en-US', [
      ['overview', '/ui/'],
      ['events', '/ui/events'],
      ['event', `/ui/events/${encodeURIComponent(event!.id)}`],
      ['dead-letters', '/ui/deliveries?status=dead'],
      ['delivery', deadPath],
      ['replay', `${deadPath}/replay`],
      ['handlers', '/ui/handlers'],
    ]);
    await shoot('ru-RU', [['overview-ru', '/ui/']]);
    process.stdout.write(`screenshots written to ${OUT}\n`);
  } finally {
    await browser.close();
    await app.close();
    await fake.close();
    remove();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
