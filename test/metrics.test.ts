// GET /metrics: the exposition format, and figures that move when events flow.
import { spawnSync } from 'node:child_process';
import { afterEach, expect, it } from 'vitest';
import { defineHandler } from '../src/delivery/define-handler.js';
import { checkHandler } from '../src/delivery/loader.js';
import { PermanentError } from '../src/errors.js';
import { makeApp, type TestApp } from './support/test-app.js';
import { waitFor } from './support/wait.js';

let t: TestApp | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

/** `name{a="1",b="2"} value` lines to a map; labels as written (prom-client sorts nothing, so match exactly). */
function parse(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][\w:]*(?:\{[^}]*\})?) (\S+)$/.exec(line);
    if (!m) throw new Error(`not exposition format: ${line}`);
    out.set(m[1]!, Number(m[2]));
  }
  return out;
}

async function scrape(): Promise<Map<string, number>> {
  const res = await t!.app.inject('/metrics');
  expect(res.statusCode).toBe(200);
  expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
  return parse(res.body);
}

it('counts webhook answers, events, duplicates and handler outcomes, and shows the backlog', async () => {
  let calls = 0;
  t = await makeApp(
    { RETRY_BASE_MS: '5', RETRY_MAX_MS: '10', MAX_ATTEMPTS: '3' },
    {
      handlers: [
        checkHandler(
          defineHandler({
            name: 'flaky',
            on: 'asset.created',
            handle: () => {
              if (++calls === 1) throw new Error('once');
            },
          }),
          'flaky.ts',
        ),
        checkHandler(
          defineHandler({
            name: 'strict',
            on: 41,
            handle: () => {
              throw new PermanentError('never');
            },
          }),
          'strict.ts',
        ),
      ],
    },
  );
  const before = await scrape();
  expect(before.get('hubex_router_deliveries_queued{status="pending"}')).toBe(0);
  expect([...before.keys()].some((k) => k.startsWith('hubex_router_process_cpu'))).toBe(true);

  await t.post({ EventID: 40, AssetID: 1 });
  await t.post({ EventID: 40, AssetID: 1 }); // duplicate
  await t.post({ EventID: 41, AssetID: 2 });
  await t.post({ EventID: 43, AssetID: 3 }); // no handler: unrouted
  await t.post({ EventID: 40, AssetID: 4 }, { token: 'wrong-token-wrong-token' });
  await waitFor(
    () => t!.app.store.counts(),
    (c) => c.done === 1 && c.dead === 1,
    { what: 'both deliveries settled' },
  );

  const m = await scrape();
  expect(m.get('hubex_router_webhook_requests_total{status="202"}')).toBe(3);
  expect(m.get('hubex_router_webhook_requests_total{status="200"}')).toBe(1);
  expect(m.get('hubex_router_webhook_requests_total{status="401"}')).toBe(1);
  expect(m.get('hubex_router_events_accepted_total{name="asset.created"}')).toBe(1);
  expect(m.get('hubex_router_events_accepted_total{name="asset.published"}')).toBe(1);
  expect(m.get('hubex_router_events_duplicate_total{name="asset.created"}')).toBe(1);
  expect(m.get('hubex_router_deliveries_total{handler="flaky",outcome="retry"}')).toBe(1);
  expect(m.get('hubex_router_deliveries_total{handler="flaky",outcome="done"}')).toBe(1);
  expect(m.get('hubex_router_deliveries_total{handler="strict",outcome="dead"}')).toBe(1);
  expect(m.get('hubex_router_delivery_duration_seconds_count{handler="flaky",outcome="done"}')).toBe(1);
  expect(m.get('hubex_router_deliveries_queued{status="dead"}')).toBe(1);
  expect(m.get('hubex_router_deliveries_queued{status="pending"}')).toBe(0);
  expect(m.get('hubex_router_events_unrouted')).toBe(1);
  expect(m.get('hubex_router_oldest_pending_delivery_age_seconds')).toBe(0);
});

it('shows the age of the oldest delivery still waiting', async () => {
  t = await makeApp(
    { RETRY_BASE_MS: '60000', RETRY_MAX_MS: '60000', MAX_ATTEMPTS: '3' },
    {
      handlers: [
        checkHandler(
          defineHandler({
            name: 'down',
            on: '*',
            handle: () => {
              throw new Error('down');
            },
          }),
          'down.ts',
        ),
      ],
    },
  );
  await t.post({ EventID: 40, AssetID: 1 });
  await waitFor(
    () => t!.app.store.counts(),
    (c) => c.pending === 1,
    { what: 'a retry waiting' },
  );
  await new Promise((resolve) => setTimeout(resolve, 1100));
  const m = await scrape();
  expect(m.get('hubex_router_deliveries_queued{status="pending"}')).toBe(1);
  expect(m.get('hubex_router_oldest_pending_delivery_age_seconds')).toBeGreaterThanOrEqual(1);
});

it('keeps the event-name label bounded: names the sender makes up fold into "other" past 50', async () => {
  t = await makeApp();
  // 1,000 events with 1,000 ids no catalogue knows: event.1000 ... event.1999.
  const batch = Array.from({ length: 1000 }, (_, i) => ({ EventID: 1000 + i, AssetID: i }));
  expect((await t.post(batch)).statusCode).toBe(202);
  expect((await t.post({ EventID: 40, AssetID: 1 })).statusCode).toBe(202); // a known name keeps its label
  const m = await scrape();
  const series = [...m.keys()].filter((k) => k.startsWith('hubex_router_events_accepted_total{'));
  expect(series.length).toBe(52); // 50 made-up names, "other", asset.created
  expect(m.get('hubex_router_events_accepted_total{name="other"}')).toBe(950);
  expect(m.get('hubex_router_events_accepted_total{name="asset.created"}')).toBe(1);
});

const hasPromtool = spawnSync('promtool', ['--version'], { stdio: 'ignore' }).status === 0;
if (!hasPromtool && !process.env.CI) {
  process.stdout.write('promtool not found: skipping the check of /metrics with it; install it with: apt-get install prometheus\n');
}

it.skipIf(!hasPromtool && !process.env.CI)(
  "passes Prometheus's own lint (promtool check metrics), with traffic of every kind",
  async () => {
    t = await makeApp(
      { RETRY_BASE_MS: '5', RETRY_MAX_MS: '10', MAX_ATTEMPTS: '2' },
      {
        handlers: [
          checkHandler(
            defineHandler({
              name: 'fails',
              on: 41,
              handle: () => {
                throw new Error('no');
              },
            }),
            'fails.ts',
          ),
        ],
      },
    );
    await t.post({ EventID: 40, AssetID: 1 });
    await t.post({ EventID: 40, AssetID: 1 });
    await t.post({ EventID: 41, AssetID: 2 });
    await t.post('{nope');
    await waitFor(
      () => t!.app.store.counts(),
      (c) => c.dead === 1,
      { what: 'the delivery dead' },
    );
    const res = await t.app.inject('/metrics');
    const check = spawnSync('promtool', ['check', 'metrics'], { input: res.body, encoding: 'utf8' });
    expect(check.error, 'promtool must run (under CI, .ci/run installs it)').toBeUndefined();
    expect(`${check.stdout}${check.stderr}`.trim()).toBe('');
    expect(check.status).toBe(0);
  },
);
