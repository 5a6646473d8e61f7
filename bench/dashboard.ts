// Dashboard benchmark: how long each page takes to answer with 100,000 events in the store (each
// with one delivery, 1 in 100 of them dead), over real HTTP on loopback, signed in as a browser
// is; beside it, in the same run, the reference GET /healthz. SQLite, and Redis when redis-server
// is installed. Target (issue 17): every page under 200 ms.
//
//   npm run bench:dashboard              # 100,000 events, 20 requests a page
//   npm run bench:dashboard -- --quick   # 10,000 events, 5 requests a page
//
// Settings: BENCH_EVENTS (100000), BENCH_REQUESTS (20), BENCH_REDIS (1; 0 leaves Redis out).
import { performance } from 'node:perf_hooks';
import { loadConfig } from '../src/config.js';
import { defineHandler, PermanentError } from '../src/index.js';
import { checkHandler } from '../src/delivery/loader.js';
import { createLogger } from '../src/observability/log.js';
import { buildApp } from '../src/server.js';
import { hasRedis, startRedis } from '../test/support/redis.js';
import { tempDir } from '../test/support/test-app.js';
import { f1, log, median, num, pct, sleep } from './support.js';

const S = {
  events: num('BENCH_EVENTS', 100_000, 10_000),
  requests: num('BENCH_REQUESTS', 20, 5),
  redis: num('BENCH_REDIS', 1, 1),
};
const ADMIN = 'bench-admin-token-0123456789abcdef';
const TOKEN = 'bench-webhook-token-0123456789ab';

const handler = checkHandler(
  defineHandler({
    name: 'sync-asset',
    on: '*',
    maxAttempts: 1,
    handle: ({ event }) => {
      if (Number(event.data.n) % 100 === 0) throw new PermanentError(`ERP refused asset ${String(event.data.assetID)}`);
    },
  }),
  'sync-asset.mjs',
);

async function run(backend: 'sqlite' | 'redis', env: Record<string, string>): Promise<void> {
  const { dir, remove } = tempDir('bench-dashboard-');
  const config = loadConfig({
    DATA_DIR: dir,
    WEBHOOK_TOKENS: TOKEN,
    ADMIN_TOKEN: ADMIN,
    LOG_LEVEL: 'silent',
    HANDLER_CONCURRENCY: '32',
    MAX_BATCH: '1000',
    ...env,
  });
  const app = await buildApp(config, { logger: createLogger('silent'), handlers: [handler] });
  try {
    await app.listen({ port: 0, host: '127.0.0.1' });
    const base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
    const t0 = performance.now();
    for (let i = 0; i < S.events; i += 1000) {
      const body = Array.from({ length: Math.min(1000, S.events - i) }, (_, j) => ({
        EventID: (i + j) % 3 === 0 ? 12 : 41,
        TaskID: 1 + ((i + j) % 5000),
        AssetID: 5000 + ((i + j) % 300),
        n: i + j,
        Note: 'A HubEx-like event for the dashboard benchmark',
      }));
      const res = await fetch(`${base}/hooks/hubex/${TOKEN}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      if (res.status !== 202) throw new Error(`ingest answered ${res.status}`);
    }
    for (;;) {
      const c = await app.store.counts();
      if (c.done + c.dead >= S.events) break;
      await sleep(500);
    }
    log(`${backend}: ${S.events.toLocaleString('en-US')} events stored and run in ${f1((performance.now() - t0) / 1000)} s`);

    const login = await fetch(`${base}/ui/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: `token=${ADMIN}`,
      redirect: 'manual',
    });
    const cookie = String(login.headers.get('set-cookie')).split(';')[0]!;
    const [dead] = await app.store.list({ status: 'dead', limit: 1 });
    const [event] = (await app.store.searchEvents({ limit: 1 })).items;
    const pages: [string, string][] = [
      ['reference: /healthz', '/healthz'],
      ['overview', '/ui/'],
      ['events, newest', '/ui/events'],
      ['events, one task', '/ui/events?task=4321'],
      ['events, by name', '/ui/events?name=asset.updated'],
      ['events, a time span', `/ui/events?from=${new Date(Date.now() - 3_600_000).toISOString().slice(0, 19)}`],
      ['event', `/ui/events/${encodeURIComponent(event!.id)}`],
      ['deliveries', '/ui/deliveries'],
      ['deliveries, dead', '/ui/deliveries?status=dead'],
      ['delivery', `/ui/deliveries/${encodeURIComponent(String(dead!.id))}`],
      ['replay, confirmation', '/ui/replay?handler=sync-asset'],
      ['handlers', '/ui/handlers'],
    ];
    log(`${'page'.padEnd(24)} ${'p50 ms'.padStart(8)} ${'p95 ms'.padStart(8)} ${'max ms'.padStart(8)}  bytes`);
    for (const [name, path] of pages) {
      const times: number[] = [];
      let bytes = 0;
      for (let i = 0; i < S.requests; i++) {
        const start = performance.now();
        const res = await fetch(`${base}${path}`, { headers: { cookie }, redirect: 'manual' });
        const text = await res.text();
        times.push(performance.now() - start);
        if (res.status !== 200) throw new Error(`${path} answered ${res.status}`);
        bytes = text.length;
      }
      times.sort((a, b) => a - b);
      log(
        `${name.padEnd(24)} ${f1(median(times)).padStart(8)} ${f1(pct(times, 95)).padStart(8)} ${f1(times.at(-1)!).padStart(8)}  ${bytes}`,
      );
    }
    log('');
  } finally {
    await app.close();
    remove();
  }
}

async function main(): Promise<void> {
  log(`hubex-router dashboard benchmark, ${new Date().toISOString()}`);
  log(
    `node ${process.version}; ${S.events.toLocaleString('en-US')} events, 1 delivery each (1 in 100 dead); ${S.requests} requests a page, one at a time`,
  );
  log('');
  await run('sqlite', {});
  if (S.redis && hasRedis) {
    const redis = await startRedis();
    try {
      await run('redis', { QUEUE: 'redis', REDIS_URL: redis.url });
    } finally {
      await redis.close();
    }
  } else log('redis: left out (no redis-server, or BENCH_REDIS=0)');
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
