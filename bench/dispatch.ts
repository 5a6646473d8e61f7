// Dispatch benchmark: how soon a handler starts after the 202, and how many events/s go through
// end to end. The router (dist/src/main.js, SQLite) runs as a child process with handler modules
// written into a temporary HANDLERS_DIR; the generator is this process, on 127.0.0.1.
//
//   npm run bench:dispatch                # full: 3 x 10 s at 500 events/s, 3 x 20,000 events with 8 handlers
//   npm run bench:dispatch -- --quick     # a quick check: 1 x 3 s, 1 x 5,000 events
//
// Part 1, start latency: an open-loop generator sends one event per request, evenly spaced at
// BENCH_RATE/s; for each it notes when the 202 arrived. A handler that does nothing else notes
// when it started (performance.timeOrigin + now(): one clock for both processes). The figure is
// start minus answer; a handler may start before the client has read its 202 (the dispatcher
// is woken by the commit, while the answer is on its way): those count as 0.
// Part 2, end to end: BENCH_E2E_EVENTS events sent by autocannon (50 connections), fanned out to
// BENCH_HANDLERS handlers that do nothing; events/s = events / (first send to last delivery done).
//
// Settings (environment, or flags named after them): BENCH_RATE (500), BENCH_LAT_ROUNDS (3),
// BENCH_LAT_DURATION s (10), BENCH_E2E_ROUNDS (3), BENCH_E2E_EVENTS (20000), BENCH_HANDLERS (8),
// BENCH_CONCURRENCY (HANDLER_CONCURRENCY, 8), BENCH_ROUTER_MAIN (dist/src/main.js), BENCH_KEEP=1.
// Read ../shared/BENCHMARKING.md: absolute figures on this 2-core machine swing from run to run.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import autocannon from 'autocannon';
import { Database } from '../src/store/sqlite/driver.js';
import {
  cpuSeconds,
  f0,
  f1,
  f2,
  HOST,
  log,
  median,
  num,
  PATH,
  pct,
  ROOT,
  type Server,
  setting,
  sleep,
  start,
  stop,
  TEMPLATE,
  uniqueBody,
} from './support.js';

const S = {
  rate: num('BENCH_RATE', 500, 500),
  latRounds: num('BENCH_LAT_ROUNDS', 3, 1),
  latDuration: num('BENCH_LAT_DURATION', 10, 3),
  e2eRounds: num('BENCH_E2E_ROUNDS', 3, 1),
  e2eEvents: num('BENCH_E2E_EVENTS', 20_000, 5000),
  handlers: num('BENCH_HANDLERS', 8, 8),
  concurrency: num('BENCH_CONCURRENCY', 8, 8),
  routerMain: setting('BENCH_ROUTER_MAIN', 'dist/src/main.js'),
  keep: setting('BENCH_KEEP', '') === '1',
};

const clock = () => performance.timeOrigin + performance.now();

// A handler that notes when it started, in memory, written out in blocks (not per event).
const PROBE = `
import { appendFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
let lines = [];
const flush = () => { if (lines.length) { appendFileSync(process.env.PROBE_FILE, lines.join('')); lines = []; } };
setInterval(flush, 100).unref();
process.once('exit', flush);
export default {
  name: 'probe',
  on: '*',
  handle({ event }) {
    lines.push(event.id + ' ' + (performance.timeOrigin + performance.now()) + '\\n');
  },
};
`;

// The same probe with orderBy: each event's key one of 20 (from its id), as for 20 busy tasks.
const PROBE_ORDERED = PROBE.replace("on: '*',", "on: '*',\n  orderBy: (event) => event.id.charCodeAt(event.id.length - 1) % 20,");

const NOOP = (i: number) => `export default { name: 'noop-${i}', on: '*', handle() {} };\n`;

async function router(dir: string, files: Record<string, string>, env: Record<string, string> = {}): Promise<Server> {
  const handlersDir = join(dir, 'handlers');
  const dataDir = join(dir, 'data');
  rmSync(handlersDir, { recursive: true, force: true });
  rmSync(dataDir, { recursive: true, force: true });
  mkdirSync(handlersDir, { recursive: true });
  for (const [name, source] of Object.entries(files)) writeFileSync(join(handlersDir, name), source);
  return start(
    'router',
    [S.routerMain],
    {
      ...process.env,
      DATA_DIR: dataDir,
      HANDLERS_DIR: handlersDir,
      WEBHOOK_TOKENS: 'bench-token-0123456789abcdef',
      LOG_EVENTS: 'false',
      LOG_LEVEL: 'warn',
      HANDLER_CONCURRENCY: String(S.concurrency),
      ...env,
    },
    'ignore',
  );
}

// ---------------------------------------------------------------------------------------------
// Part 1: start latency at a steady rate

interface LatencyRound {
  sent: number;
  answered: number;
  started: number;
  p50: number;
  p99: number;
  max: number;
  early: number;
  cores: number;
}

async function latencyRound(dir: string, probe = PROBE): Promise<LatencyRound> {
  const probeFile = join(dir, 'probe.log');
  writeFileSync(probeFile, '');
  const server = await router(dir, { 'probe.mjs': probe }, { PROBE_FILE: probeFile });
  const agent = new http.Agent({ keepAlive: true, maxSockets: 50 });
  const answeredAt = new Map<string, number>();
  const total = Math.round(S.rate * S.latDuration);
  const interval = 1000 / S.rate;
  const cpu0 = cpuSeconds(server.child.pid);
  const t0 = performance.now() + 5;
  let sent = 0;
  let finished = 0;
  await new Promise<void>((done) => {
    const fire = () => {
      const body = uniqueBody('d');
      const req = http.request(
        {
          agent,
          host: HOST,
          port: server.port,
          method: 'POST',
          path: PATH,
          headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
        },
        (res) => {
          let text = '';
          res.on('data', (c: Buffer) => (text += c));
          res.on('end', () => {
            const at = clock();
            if (res.statusCode === 202) answeredAt.set((JSON.parse(text) as { events: { id: string }[] }).events[0]!.id, at);
            if (++finished === total) done();
          });
        },
      );
      req.on('error', () => ++finished === total && done());
      req.end(body);
    };
    const tick = () => {
      while (sent < total && t0 + sent * interval <= performance.now()) {
        fire();
        sent++;
      }
      if (sent < total) setTimeout(tick, Math.max(0, t0 + sent * interval - performance.now()));
    };
    setTimeout(tick, 5);
  });
  const seconds = (performance.now() - t0) / 1000;
  const cores = (cpuSeconds(server.child.pid) - cpu0) / seconds;
  // Wait for the handler to have run for every answered event (bounded).
  const startedAt = new Map<string, number>();
  for (const deadline = Date.now() + 10_000; Date.now() < deadline;) {
    for (const line of readFileSync(probeFile, 'utf8').split('\n')) {
      const [id, at] = line.split(' ');
      if (id && at) startedAt.set(id, Number(at));
    }
    if ([...answeredAt.keys()].every((id) => startedAt.has(id))) break;
    await sleep(100);
  }
  await stop(server);
  agent.destroy();
  const gaps: number[] = [];
  let early = 0;
  for (const [id, at] of answeredAt) {
    const s = startedAt.get(id);
    if (s === undefined) continue;
    if (s < at) early++;
    gaps.push(Math.max(0, s - at));
  }
  gaps.sort((a, b) => a - b);
  return {
    sent,
    answered: answeredAt.size,
    started: gaps.length,
    p50: pct(gaps, 50),
    p99: pct(gaps, 99),
    max: gaps.at(-1) ?? Number.NaN,
    early,
    cores,
  };
}

// ---------------------------------------------------------------------------------------------
// Part 2: events/s end to end

interface E2eRound {
  ingestSeconds: number;
  totalSeconds: number;
  events: number;
  deliveries: number;
  cores: number;
}

async function e2eRound(dir: string): Promise<E2eRound> {
  const files = Object.fromEntries(Array.from({ length: S.handlers }, (_, i) => [`noop-${i + 1}.mjs`, NOOP(i + 1)]));
  const server = await router(dir, files);
  const cpu0 = cpuSeconds(server.child.pid);
  const t0 = performance.now();
  const result = await autocannon({
    url: `http://${HOST}:${server.port}${PATH}`,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: TEMPLATE,
    idReplacement: true,
    connections: 50,
    amount: S.e2eEvents,
    timeout: 10,
  });
  const ingestSeconds = (performance.now() - t0) / 1000;
  const events = result['2xx'];
  const want = events * S.handlers;
  const db = new Database(join(dir, 'data', 'hubex-router.db'), { readonly: true, fileMustExist: true });
  const done = db.prepare("SELECT count(*) AS n FROM deliveries WHERE status = 'done'").pluck();
  let deliveries = 0;
  for (const deadline = Date.now() + 600_000; Date.now() < deadline;) {
    deliveries = done.get() as number;
    if (deliveries >= want) break;
    await sleep(20);
  }
  const totalSeconds = (performance.now() - t0) / 1000;
  const cores = (cpuSeconds(server.child.pid) - cpu0) / totalSeconds;
  db.close();
  await stop(server);
  return { ingestSeconds, totalSeconds, events, deliveries, cores };
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const dir = mkdtempSync(join(os.tmpdir(), 'hubex-dispatch-'));
  log(`hubex-router dispatch benchmark, ${new Date().toISOString()}`);
  log(`machine: ${os.cpus().length} x ${os.cpus()[0]?.model ?? '?'}, ${f0(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}`);
  log(`router: ${S.routerMain} in ${ROOT}, SQLite in ${dir}, HANDLER_CONCURRENCY=${S.concurrency}`);
  log('the generator (this process) shares the 2 cores with the router');
  try {
    log();
    log(`== Start latency: 202 answer to handler start, ${S.rate} events/s for ${S.latDuration} s, ${S.latRounds} round(s)`);
    log('round   sent  answered  started  p50 ms  p99 ms  max ms  early  srv cpu');
    const lat: LatencyRound[] = [];
    for (let i = 1; i <= S.latRounds; i++) {
      const r = await latencyRound(dir);
      lat.push(r);
      log(
        `${String(i).padEnd(5)} ${f0(r.sent).padStart(6)} ${f0(r.answered).padStart(9)} ${f0(r.started).padStart(8)} ${f2(r.p50).padStart(7)} ${f2(r.p99).padStart(7)} ${f1(r.max).padStart(7)} ${String(r.early).padStart(6)} ${f2(r.cores).padStart(8)}`,
      );
    }
    const summary = (rounds: LatencyRound[]) => {
      const p50 = median(rounds.map((r) => r.p50));
      const p99 = median(rounds.map((r) => r.p99));
      log(
        `median p50 ${f2(p50)} ms (target < 5: ${p50 < 5 ? 'met' : 'MISSED'}), p99 ${f2(p99)} ms (target < 50: ${p99 < 50 ? 'met' : 'MISSED'})`,
      );
    };
    summary(lat);
    log('("early": handlers that started before the client had read the 202; counted as 0 ms)');

    log();
    log(`== The same with orderBy (20 keys), ${S.latRounds} round(s), alternating with one without it as the reference`);
    log('round   kind       sent  answered  started  p50 ms  p99 ms  max ms  early  srv cpu');
    const ordered: LatencyRound[] = [];
    const plain: LatencyRound[] = [];
    for (let i = 1; i <= S.latRounds; i++) {
      for (const [kind, probe, into] of [
        ['orderBy', PROBE_ORDERED, ordered],
        ['none', PROBE, plain],
      ] as const) {
        const r = await latencyRound(dir, probe);
        into.push(r);
        log(
          `${String(i).padEnd(7)} ${kind.padEnd(8)} ${f0(r.sent).padStart(6)} ${f0(r.answered).padStart(9)} ${f0(r.started).padStart(8)} ${f2(r.p50).padStart(7)} ${f2(r.p99).padStart(7)} ${f1(r.max).padStart(7)} ${String(r.early).padStart(6)} ${f2(r.cores).padStart(8)}`,
        );
      }
    }
    log('with orderBy:');
    summary(ordered);
    log('without (same rounds):');
    summary(plain);

    log();
    log(
      `== End to end: ${f0(S.e2eEvents)} events (autocannon, 50 connections), ${S.handlers} handlers that do nothing, ${S.e2eRounds} round(s)`,
    );
    log('round  events  ingest s  ingest ev/s  total s  end-to-end ev/s  deliveries/s  srv cpu');
    const e2e: E2eRound[] = [];
    for (let i = 1; i <= S.e2eRounds; i++) {
      const r = await e2eRound(dir);
      e2e.push(r);
      const ok = r.deliveries >= r.events * S.handlers ? '' : `  (only ${r.deliveries} deliveries done!)`;
      log(
        `${String(i).padEnd(5)} ${f0(r.events).padStart(7)} ${f2(r.ingestSeconds).padStart(9)} ${f0(r.events / r.ingestSeconds).padStart(12)} ${f2(r.totalSeconds).padStart(8)} ${f0(r.events / r.totalSeconds).padStart(16)} ${f0(r.deliveries / r.totalSeconds).padStart(13)} ${f2(r.cores).padStart(8)}${ok}`,
      );
    }
    log(
      `median end to end: ${f0(median(e2e.map((r) => r.events / r.totalSeconds)))} events/s, ${f0(median(e2e.map((r) => r.deliveries / r.totalSeconds)))} deliveries/s`,
    );
  } finally {
    if (S.keep) log(`kept ${dir}`);
    else rmSync(dir, { recursive: true, force: true });
  }
}

await main();
