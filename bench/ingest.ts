// Ingest benchmark: the router (dist/src/main.js, SQLite, logging on) against bare Fastify
// (bench/bare-server.ts), both as child processes on 127.0.0.1, in one run, alternated.
//
//   npm run bench:ingest                  # full run: 5 x 10 s throughput rounds, 3 x 10 s latency rounds
//   npm run bench:ingest -- --quick       # a quick check: 2 x 3 s and 1 x 3 s
//
// Part 1, throughput: autocannon 9 (in this process) with 50 connections and a unique ~600-byte
// HubEx-like body per request ([<id>] + idReplacement), servers alternated round by round
// (the order swapped each round). Prints req/s, p50, p99 per round, the medians, the ratio.
// Part 2, latency at a fixed rate: an open-loop generator (http.Agent, keep-alive) sends
// requests evenly spaced at BENCH_RATE/s and measures each from its scheduled send time, so a
// slow answer cannot delay the next sends and hide itself (coordinated omission).
// Finally the router is stopped and the rows in DATA_DIR/hubex-router.db are counted against
// the 202 answers.
//
// Settings (environment, or flags named after them: BENCH_LAT_ROUNDS=2 or --lat-rounds=2):
//   BENCH_ROUNDS (5), BENCH_DURATION s (10), BENCH_CONNECTIONS (50), BENCH_WARMUP s (3),
//   BENCH_RATE req/s (1000), BENCH_LAT_ROUNDS (3), BENCH_LAT_DURATION s (10), BENCH_SOCKETS (50),
//   BENCH_ROUTER_LOG (a file; default DATA_DIR/../router.log; "null" for /dev/null),
//   BENCH_CPU_PROF (a folder: run the router under --cpu-prof, the profile is written there on stop),
//   BENCH_KEEP=1 (keep the temporary folder), BENCH_PARTS (throughput,latency),
//   BENCH_SYNC=0 (do not wait for idle servers and sync(1) before each run),
//   BENCH_ROUTER_MAIN (dist/src/main.js; another build to compare), BENCH_LOG_LEVEL (info).
//
// Read ../shared/BENCHMARKING.md: absolute figures on this 2-core machine swing by 2x from run
// to run, and the generator shares the cores with the server; only same-run ratios mean much.
import { execFileSync } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync, statSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import autocannon, { type Result } from 'autocannon';
import { Database } from '../src/store/sqlite/driver.js';
import {
  type Server as AnyServer,
  cpuSeconds,
  f0,
  f1,
  f2,
  HOST,
  ID,
  log,
  median,
  num,
  PATH,
  pad,
  pct,
  setting,
  sleep,
  start,
  stop,
  TEMPLATE,
  TOKEN,
  uniqueBody,
} from './support.js';

type Name = 'bare' | 'router';
type Server = AnyServer<Name>;

// ---------------------------------------------------------------------------------------------
// Settings

const S = {
  rounds: num('BENCH_ROUNDS', 5, 2),
  duration: num('BENCH_DURATION', 10, 3),
  connections: num('BENCH_CONNECTIONS', 50, 50),
  warmup: num('BENCH_WARMUP', 3, 1),
  rate: num('BENCH_RATE', 1000, 1000),
  latRounds: num('BENCH_LAT_ROUNDS', 3, 1),
  latDuration: num('BENCH_LAT_DURATION', 10, 3),
  sockets: num('BENCH_SOCKETS', 50, 50),
  routerLog: setting('BENCH_ROUTER_LOG', ''),
  cpuProf: setting('BENCH_CPU_PROF', ''),
  keep: setting('BENCH_KEEP', '') === '1',
  sync: setting('BENCH_SYNC', '1') !== '0',
  routerMain: setting('BENCH_ROUTER_MAIN', 'dist/src/main.js'),
  logLevel: setting('BENCH_LOG_LEVEL', 'info'),
  // The ingest figure is for ingest alone (issue 2); true adds the log-events handler's delivery per event.
  logEvents: setting('BENCH_LOG_EVENTS', 'false'),
  parts: new Set(
    setting('BENCH_PARTS', 'throughput,latency')
      .split(',')
      .map((s) => s.trim()),
  ),
};

const BODY_BYTES = Buffer.byteLength(TEMPLATE) - ID.length + 33;

// ---------------------------------------------------------------------------------------------
// Child processes

/**
 * Before each measured run: waits until every server is idle (the router checkpoints its WAL
 * after a busy round), then flushes dirty pages to disk, so that one run's background work
 * (checkpoint, kernel writeback of hundreds of MB) does not land in the next run.
 */
async function settle(servers: readonly Server[]): Promise<void> {
  if (!S.sync) return;
  const deadline = Date.now() + 30_000;
  for (;;) {
    const before = servers.map((s) => cpuSeconds(s.child.pid));
    await sleep(500);
    const busy = servers.some((s, i) => cpuSeconds(s.child.pid) - before[i]! > 0.05 * 0.5);
    if (!busy || Date.now() > deadline) break;
  }
  try {
    execFileSync('sync');
  } catch {
    // no sync(1): the runs are less isolated, nothing more
  }
  await sleep(200);
}

/** Measures the server's and this process's (the generator's) CPU use, in cores, around fn. */
async function withCpu<T>(server: Server, fn: () => Promise<T>): Promise<{ value: T; serverCores: number; genCores: number }> {
  const s0 = cpuSeconds(server.child.pid);
  const g0 = process.cpuUsage();
  const t0 = performance.now();
  const value = await fn();
  const wall = (performance.now() - t0) / 1000;
  const g = process.cpuUsage(g0);
  return {
    value,
    serverCores: (cpuSeconds(server.child.pid) - s0) / wall,
    genCores: (g.user + g.system) / 1e6 / wall,
  };
}

// ---------------------------------------------------------------------------------------------
// Part 1: throughput with autocannon

interface Statuses {
  s202: number;
  s200: number;
  other: number; // any other status
  errors: number; // socket errors and timeouts
}

const noStatuses = (): Statuses => ({ s202: 0, s200: 0, other: 0, errors: 0 });

function addStatuses(into: Statuses, from: Statuses): void {
  into.s202 += from.s202;
  into.s200 += from.s200;
  into.other += from.other;
  into.errors += from.errors;
}

function statusesOf(r: Result): Statuses {
  const out = noStatuses();
  for (const [code, { count }] of Object.entries(r.statusCodeStats)) {
    if (code === '202') out.s202 += count;
    else if (code === '200') out.s200 += count;
    else out.other += count;
  }
  out.errors = r.errors + r.timeouts;
  return out;
}

interface CannonRun {
  rps: number;
  p50: number;
  p99: number;
  statuses: Statuses;
  serverCores: number;
  genCores: number;
}

async function cannon(server: Server, seconds: number): Promise<CannonRun> {
  const {
    value: r,
    serverCores,
    genCores,
  } = await withCpu(server, () =>
    autocannon({
      url: `http://${HOST}:${server.port}${PATH}`,
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: TEMPLATE,
      idReplacement: true,
      connections: S.connections,
      duration: seconds,
      timeout: 10,
    }),
  );
  return { rps: r.requests.average, p50: r.latency.p50, p99: r.latency.p99, statuses: statusesOf(r), serverCores, genCores };
}

// ---------------------------------------------------------------------------------------------
// Part 2: latency at a fixed rate, open loop

interface OpenLoopRun {
  sent: number;
  p50: number;
  p99: number;
  max: number;
  /** How late the generator itself sent, p99 (included in the latencies, for both servers alike). */
  sendLagP99: number;
  statuses: Statuses;
  serverCores: number;
  genCores: number;
}

function openLoop(server: Server, agent: http.Agent, rate: number, seconds: number): Promise<OpenLoopRun> {
  const total = Math.max(1, Math.round(rate * seconds));
  const interval = 1000 / rate;
  const latencies = new Float64Array(total).fill(Number.NaN);
  const lags = new Float64Array(total);
  const statuses = noStatuses();
  let sent = 0;
  let finished = 0;

  return new Promise((done) => {
    const t0 = performance.now() + 5;
    const finish = () => {
      if (++finished < total) return;
      const ok = [...latencies].filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
      const lagSorted = [...lags].sort((a, b) => a - b);
      done({
        sent,
        p50: pct(ok, 50),
        p99: pct(ok, 99),
        max: ok.at(-1) ?? Number.NaN,
        sendLagP99: pct(lagSorted, 99),
        statuses,
        serverCores: 0,
        genCores: 0,
      });
    };
    const fire = (i: number, scheduled: number) => {
      const body = uniqueBody(server.name[0]!);
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
          res.on('data', () => {});
          res.on('end', () => {
            latencies[i] = performance.now() - scheduled;
            if (res.statusCode === 202) statuses.s202++;
            else if (res.statusCode === 200) statuses.s200++;
            else statuses.other++;
            finish();
          });
        },
      );
      req.setTimeout(10_000, () => req.destroy(new Error('timeout')));
      req.on('error', () => {
        statuses.errors++;
        finish();
      });
      req.end(body);
    };
    const tick = () => {
      const now = performance.now();
      while (sent < total && t0 + sent * interval <= now) {
        const scheduled = t0 + sent * interval;
        lags[sent] = now - scheduled;
        fire(sent, scheduled);
        sent++;
      }
      if (sent < total) setTimeout(tick, Math.max(0, t0 + sent * interval - performance.now()));
    };
    setTimeout(tick, 5);
  });
}

async function openLoopRun(server: Server, agent: http.Agent, seconds: number): Promise<OpenLoopRun> {
  const { value, serverCores, genCores } = await withCpu(server, () => openLoop(server, agent, S.rate, seconds));
  return { ...value, serverCores, genCores };
}

// ---------------------------------------------------------------------------------------------
// Figures

function statusText(s: Statuses): string {
  const parts = [`202: ${s.s202}`];
  if (s.s200) parts.push(`200 (duplicate!): ${s.s200}`);
  if (s.other) parts.push(`other: ${s.other}`);
  if (s.errors) parts.push(`errors/timeouts: ${s.errors}`);
  return parts.join(', ');
}

// ---------------------------------------------------------------------------------------------
// The run

async function main(): Promise<void> {
  const tmp = mkdtempSync(join(os.tmpdir(), 'hubex-bench-'));
  const dataDir = join(tmp, 'data');
  mkdirSync(dataDir);
  const logFile = S.routerLog === 'null' ? '/dev/null' : S.routerLog || join(tmp, 'router.log');
  const logFd = openSync(logFile, 'a');

  log(`hubex-router ingest benchmark, ${new Date().toISOString()}`);
  log(
    `machine: ${os.cpus().length} cores (${os.cpus()[0]?.model ?? '?'}), ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB, ` +
      `node ${process.version}, ${os.platform()} ${os.release()}`,
  );
  log(
    `payload: ${BODY_BYTES} bytes, unique per request; router: ${S.routerMain}, LOG_LEVEL=${S.logLevel} to ${logFile}, DATA_DIR ${dataDir}`,
  );
  log(`before each run: ${S.sync ? 'wait for idle servers, then sync(1)' : 'nothing (BENCH_SYNC=0)'}`);
  log('the generator (this process) shares the cores with the server under test; see the "gen" column\n');

  const servers: Server[] = [];
  const totals: Record<Name, Statuses> = { bare: noStatuses(), router: noStatuses() };
  const count = (server: Server, s: Statuses) => addStatuses(totals[server.name], s);
  try {
    const bare = await start('bare', ['--import', 'tsx', 'bench/bare-server.ts'], process.env, 'ignore');
    servers.push(bare);
    const routerArgs = S.cpuProf ? ['--cpu-prof', `--cpu-prof-dir=${resolve(S.cpuProf)}`] : [];
    const router = await start(
      'router',
      [...routerArgs, S.routerMain],
      { ...process.env, DATA_DIR: dataDir, WEBHOOK_TOKENS: TOKEN, LOG_LEVEL: S.logLevel, QUEUE: 'sqlite', LOG_EVENTS: S.logEvents },
      logFd,
    );
    servers.push(router);
    const order = (round: number) => (round % 2 === 0 ? [bare, router] : [router, bare]);

    // Part 1 -----------------------------------------------------------------------------------
    const runs: Record<Name, CannonRun[]> = { bare: [], router: [] };
    if (S.parts.has('throughput')) {
      log(`== Throughput: autocannon, ${S.connections} connections, ${S.rounds} rounds x ${S.duration} s per server, alternated`);
      if (S.warmup > 0) {
        for (const s of [bare, router]) {
          const w = await cannon(s, S.warmup);
          count(s, w.statuses);
          log(`warm-up ${s.name}: ${f0(w.rps)} req/s (discarded)`);
        }
      }
      log(
        `${'round'.padEnd(6)} ${'server'.padEnd(7)} ${pad('req/s', 8)} ${pad('p50 ms', 7)} ${pad('p99 ms', 7)} ${pad('srv cpu', 8)} ${pad('gen cpu', 8)}  answers`,
      );
      for (let round = 0; round < S.rounds; round++) {
        for (const s of order(round)) {
          await settle(servers);
          const r = await cannon(s, S.duration);
          runs[s.name].push(r);
          count(s, r.statuses);
          log(
            `${String(round + 1).padEnd(6)} ${s.name.padEnd(7)} ${pad(f0(r.rps), 8)} ${pad(f1(r.p50), 7)} ${pad(f1(r.p99), 7)} ` +
              `${pad(f2(r.serverCores), 8)} ${pad(f2(r.genCores), 8)}  ${statusText(r.statuses)}`,
          );
        }
      }
      const med = (name: Name, k: 'rps' | 'p50' | 'p99' | 'serverCores' | 'genCores') => median(runs[name].map((r) => r[k]));
      const ratios = runs.router.map((r, i) => r.rps / runs.bare[i]!.rps);
      log('');
      for (const name of ['bare', 'router'] as const) {
        log(
          `median ${name.padEnd(7)} ${pad(f0(med(name, 'rps')), 8)} req/s, p50 ${f1(med(name, 'p50'))} ms, p99 ${f1(med(name, 'p99'))} ms, ` +
            `server ${f2(med(name, 'serverCores'))} cores, generator ${f2(med(name, 'genCores'))} cores`,
        );
      }
      const ratio = med('router', 'rps') / med('bare', 'rps');
      log(
        `ratio router/bare (medians): ${f2(ratio)}; per round: ${ratios.map(f2).join(', ')} (median ${f2(median(ratios))}); ` +
          `target >= 0.40: ${ratio >= 0.4 ? 'met' : 'MISSED'}`,
      );
      log('');
    }

    // Part 2 -----------------------------------------------------------------------------------
    if (S.parts.has('latency')) {
      log(
        `== Latency at ${S.rate} req/s, evenly spaced, open loop (from the scheduled send time), ${S.latRounds} rounds x ${S.latDuration} s per server`,
      );
      const agents = new Map<Server, http.Agent>();
      for (const s of [bare, router]) {
        const agent = new http.Agent({ keepAlive: true, maxSockets: S.sockets, maxFreeSockets: S.sockets });
        agents.set(s, agent);
        const w = await openLoop(s, agent, S.rate, Math.min(2, Math.max(1, S.warmup))); // opens the sockets
        count(s, w.statuses);
      }
      const lat: Record<Name, OpenLoopRun[]> = { bare: [], router: [] };
      log(
        `${'round'.padEnd(6)} ${'server'.padEnd(7)} ${pad('p50 ms', 7)} ${pad('p99 ms', 7)} ${pad('max ms', 7)} ${pad('lag p99', 8)} ${pad('srv cpu', 8)} ${pad('gen cpu', 8)}  answers`,
      );
      for (let round = 0; round < S.latRounds; round++) {
        for (const s of order(round)) {
          await settle(servers);
          const r = await openLoopRun(s, agents.get(s)!, S.latDuration);
          lat[s.name].push(r);
          count(s, r.statuses);
          log(
            `${String(round + 1).padEnd(6)} ${s.name.padEnd(7)} ${pad(f2(r.p50), 7)} ${pad(f2(r.p99), 7)} ${pad(f1(r.max), 7)} ` +
              `${pad(f2(r.sendLagP99), 8)} ${pad(f2(r.serverCores), 8)} ${pad(f2(r.genCores), 8)}  ${statusText(r.statuses)}`,
          );
        }
      }
      for (const a of agents.values()) a.destroy();
      const med = (name: Name, k: 'p50' | 'p99' | 'max') => median(lat[name].map((r) => r[k]));
      log('');
      for (const name of ['bare', 'router'] as const) {
        log(`median ${name.padEnd(7)} p50 ${f2(med(name, 'p50'))} ms, p99 ${f2(med(name, 'p99'))} ms, max ${f1(med(name, 'max'))} ms`);
      }
      const ratio = med('router', 'p99') / med('bare', 'p99');
      const perRound = lat.router.map((r, i) => r.p99 / lat.bare[i]!.p99);
      log(
        `p99 ratio router/bare (medians): ${f2(ratio)}; per round: ${perRound.map(f2).join(', ')}; ` +
          `target <= 2: ${ratio <= 2 ? 'met' : 'MISSED'}`,
      );
      log('("lag p99" is how late the generator itself sent; it is inside both servers\' latencies)');
      log('');
    }

    // Sanity check: every 202 is a row --------------------------------------------------------
    await stop(router); // graceful: flushes the group commit and checkpoints the WAL
    const db = new Database(join(dataDir, 'hubex-router.db'), { readonly: true, fileMustExist: true });
    const rows = (db.prepare('SELECT count(*) AS n FROM events').get() as { n: number }).n;
    db.close();
    const t = totals.router;
    log('== Router answers over the whole run (warm-ups included) and the rows stored');
    log(`router: ${statusText(t)}; bare: ${statusText(totals.bare)}`);
    log(
      `rows in events: ${rows}; 202 answers: ${t.s202}; ${rows >= t.s202 ? 'OK' : 'FAIL'}: rows ${rows >= t.s202 ? '>=' : '<'} 202s ` +
        `(${rows - t.s202} more rows than 202s: requests still in flight when a run stopped)`,
    );
    log(`router log: ${f0(statSync(logFile).size / 2 ** 20)} MiB written to ${logFile}`);
    if (S.cpuProf) log(`router CPU profile written to ${resolve(S.cpuProf)}`);
    if (t.s200 || t.other || rows < t.s202) process.exitCode = 1;
    if (t.errors) log(`note: ${t.errors} socket errors or timeouts against the router`);
  } finally {
    for (const s of servers) await stop(s);
    closeSync(logFd);
    if (S.keep) log(`kept ${tmp}`);
    else rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
