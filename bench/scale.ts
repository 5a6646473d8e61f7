// Scale benchmark: ingest and end-to-end events/s with SQLite (one instance), with one instance
// on Redis, and with two instances on one Redis, in one run, the set-ups alternated round by round.
//
//   npm run bench:scale               # full: 3 rounds x 3 set-ups x 20,000 events
//   npm run bench:scale -- --quick    # 1 round x 4,000 events
//
// Each round starts from empty stores: a fresh redis-server (AOF on, appendfsync always: the
// durable set-up of docs/scaling.md) on a free loopback port, fresh DATA_DIRs. The routers
// (dist/src/main.js) are child processes with BENCH_HANDLERS handlers that do nothing. autocannon,
// in this process, sends BENCH_EVENTS unique events with 50 connections in all (two instances:
// 25 each, at the same time). Ingest events/s = 2xx answers / time to the last answer; end to end
// events/s = events / time from the first send until every delivery is done (read from
// /admin/stats, polled every 50 ms). CPU: cores used over the round (end to end) by the routers
// together and by redis-server, from /proc.
//
// Settings (environment, or flags named after them): BENCH_ROUNDS (3), BENCH_EVENTS (20000),
// BENCH_HANDLERS (2), BENCH_CONCURRENCY (HANDLER_CONCURRENCY, 8), BENCH_APPENDFSYNC (always;
// everysec shows what the fsync costs), BENCH_SETUPS (sqlite,redis1,redis2), REDIS_SERVER.
// Read ../shared/BENCHMARKING.md: 2 cores carry the load generator, Redis and the routers, so two
// instances here measure the cost of sharing, not the gain of a second machine.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import autocannon, { type Result } from 'autocannon';
import {
  canConnect,
  cpuSeconds,
  f0,
  f1,
  f2,
  freePort,
  HOST,
  log,
  median,
  num,
  PATH,
  setting,
  sleep,
  start,
  stop,
  type Server,
  TEMPLATE,
} from './support.js';

const S = {
  rounds: num('BENCH_ROUNDS', 3, 1),
  events: num('BENCH_EVENTS', 20_000, 4000),
  handlers: num('BENCH_HANDLERS', 2, 2),
  concurrency: num('BENCH_CONCURRENCY', 8, 8),
  redisServer: setting('REDIS_SERVER', 'redis-server'),
  appendfsync: setting('BENCH_APPENDFSYNC', 'always'),
  /** Comma-separated: sqlite, redis1, redis2. */
  setups: setting('BENCH_SETUPS', 'sqlite,redis1,redis2').split(','),
};
const ADMIN = 'bench-admin-token-0123456789';
const NOOP = (i: number) => `export default { name: 'noop-${i}', on: '*', handle() {} };\n`;

type Setup = 'sqlite, 1 instance' | 'redis, 1 instance' | 'redis, 2 instances';
const SETUPS = (['sqlite, 1 instance', 'redis, 1 instance', 'redis, 2 instances'] as Setup[]).filter((_, i) =>
  S.setups.includes(['sqlite', 'redis1', 'redis2'][i]!),
);

interface Round {
  /** CPU cores used over the round: the routers together, and redis-server. */
  routerCores: number;
  redisCores: number;
  ingest: number;
  e2e: number;
  p99: number;
  errors: number;
  done: number;
}

async function startRedis(dir: string): Promise<{ url: string; child: ChildProcess }> {
  const port = await freePort();
  const child = spawn(
    S.redisServer,
    [
      '--port',
      String(port),
      '--bind',
      HOST,
      '--dir',
      dir,
      '--appendonly',
      'yes',
      '--appendfsync',
      S.appendfsync,
      '--save',
      '',
      '--maxmemory-policy',
      'noeviction',
    ],
    { stdio: 'ignore' },
  );
  for (const deadline = Date.now() + 10_000; !(await canConnect(port));) {
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`${S.redisServer} did not start`);
    await sleep(20);
  }
  return { url: `redis://${HOST}:${port}`, child };
}

function get(port: number, path: string): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: HOST, port, path, headers: { authorization: `Bearer ${ADMIN}` } }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d));
      res.on('end', () => resolve(JSON.parse(body)));
    });
    req.on('error', reject);
  });
}

async function round(setup: Setup, dir: string): Promise<Round> {
  rmSync(dir, { recursive: true, force: true });
  const handlersDir = join(dir, 'handlers');
  mkdirSync(handlersDir, { recursive: true });
  for (let i = 1; i <= S.handlers; i++) writeFileSync(join(handlersDir, `noop-${i}.mjs`), NOOP(i));
  const redis = setup.startsWith('redis') ? await startRedis(mkdtempSync(join(dir, 'redis-'))) : undefined;
  const count = setup === 'redis, 2 instances' ? 2 : 1;
  const routers: Server[] = [];
  for (let i = 0; i < count; i++) {
    routers.push(
      await start(
        `router-${i + 1}`,
        ['dist/src/main.js'],
        {
          ...process.env,
          DATA_DIR: join(dir, `data-${i}`),
          HANDLERS_DIR: handlersDir,
          WEBHOOK_TOKENS: 'bench-token-0123456789abcdef',
          ADMIN_TOKEN: ADMIN,
          LOG_EVENTS: 'false',
          LOG_LEVEL: 'warn',
          HANDLER_CONCURRENCY: String(S.concurrency),
          ...(redis ? { QUEUE: 'redis', REDIS_URL: redis.url } : { QUEUE: 'sqlite' }),
        },
        'ignore',
      ),
    );
  }
  const want = S.events * S.handlers;
  const cpu = () => [routers.reduce((n, r) => n + cpuSeconds(r.child.pid), 0), redis ? cpuSeconds(redis.child.pid) : 0] as const;
  const cpu0 = cpu();
  const t0 = performance.now();
  // autocannon resolves on its 1 s ticker: the last answer's own time makes the ingest figure exact.
  let lastAnswer = t0;
  const results: Result[] = await Promise.all(
    routers.map((r) =>
      autocannon({
        url: `http://${HOST}:${r.port}${PATH}`,
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: TEMPLATE,
        idReplacement: true,
        connections: 50 / count,
        amount: S.events / count,
        timeout: 10,
        setupClient: (client) => client.on('response', () => (lastAnswer = performance.now())),
      }),
    ),
  );
  const ingestSeconds = (lastAnswer - t0) / 1000;
  const accepted = results.reduce((n, r) => n + r['2xx'], 0);
  let done = 0;
  for (const deadline = Date.now() + 600_000; Date.now() < deadline;) {
    done = ((await get(routers[0]!.port, '/admin/stats')) as { deliveries: { done: number } }).deliveries.done;
    if (done >= accepted * S.handlers) break;
    await sleep(50);
  }
  const totalSeconds = (performance.now() - t0) / 1000;
  const cpu1 = cpu();
  for (const r of routers) await stop(r);
  if (redis) {
    redis.child.kill('SIGKILL');
    await new Promise((r) => redis.child.once('exit', r));
  }
  return {
    routerCores: (cpu1[0] - cpu0[0]) / totalSeconds,
    redisCores: (cpu1[1] - cpu0[1]) / totalSeconds,
    ingest: accepted / ingestSeconds,
    e2e: accepted / totalSeconds,
    p99: Math.max(...results.map((r) => r.latency.p99)),
    errors: results.reduce((n, r) => n + r.errors + r.non2xx, 0) + (done < want ? 1 : 0),
    done,
  };
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(os.tmpdir(), 'hubex-scale-'));
  log(`hubex-router scale benchmark, ${new Date().toISOString()}`);
  log(`machine: ${os.cpus().length} x ${os.cpus()[0]?.model ?? '?'}, ${f0(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}`);
  log(
    `${f0(S.events)} events per round, 50 connections in all, ${S.handlers} handlers that do nothing, HANDLER_CONCURRENCY=${S.concurrency}, Redis with appendfsync ${S.appendfsync}`,
  );
  log();
  log(
    `${'round'.padEnd(6)}${'set-up'.padEnd(22)}${'ingest ev/s'.padStart(12)}${'p99 ms'.padStart(9)}${'e2e ev/s'.padStart(10)}${'router cpu'.padStart(11)}${'redis cpu'.padStart(10)}${'errors'.padStart(8)}`,
  );
  const all = new Map<Setup, Round[]>(SETUPS.map((s) => [s, []]));
  try {
    for (let i = 1; i <= S.rounds; i++) {
      // Alternate the order, so that no set-up always runs first.
      const order = i % 2 ? SETUPS : [...SETUPS].reverse();
      for (const setup of order) {
        const r = await round(setup, join(dir, 'round'));
        all.get(setup)!.push(r);
        log(
          `${String(i).padEnd(6)}${setup.padEnd(22)}${f0(r.ingest).padStart(12)}${f1(r.p99).padStart(9)}${f0(r.e2e).padStart(10)}${f2(r.routerCores).padStart(11)}${f2(r.redisCores).padStart(10)}${String(r.errors).padStart(8)}`,
        );
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  log();
  const med = (s: Setup, k: keyof Round) => median(all.get(s)!.map((r) => r[k]));
  const base = { ingest: med(SETUPS[0]!, 'ingest'), e2e: med(SETUPS[0]!, 'e2e') };
  for (const s of SETUPS) {
    log(
      `median ${s.padEnd(20)} ingest ${f0(med(s, 'ingest')).padStart(7)} ev/s (${(med(s, 'ingest') / base.ingest).toFixed(2)} of ${SETUPS[0]}), ` +
        `end to end ${f0(med(s, 'e2e')).padStart(7)} ev/s (${(med(s, 'e2e') / base.e2e).toFixed(2)} of ${SETUPS[0]}), p99 ${f1(med(s, 'p99'))} ms`,
    );
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
