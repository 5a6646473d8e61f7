// Handler CPU benchmark: what a CPU-bound handler does to intake latency. Handlers run in the
// same event loop as the HTTP intake, so a handler that computes for 200 ms holds every request
// that arrives meanwhile. The router (dist/src/main.js, SQLite) runs as a child process with one
// handler module on '*' written into a temporary HANDLERS_DIR; the generator is this process.
//
//   npm run bench:handler-cpu                 # full: 3 rounds x 3 variants x (2 s warm-up + 15 s measured), about 5 min
//   npm run bench:handler-cpu -- --quick      # a quick check: 1 round x 5 s
//
// Variants (one fresh router, DATA_DIR and HANDLERS_DIR per run; the order rotates each round):
//   a  timer    the handler awaits a BENCH_HANDLER_MS timer: no CPU (the reference)
//   b  busy     the handler busy-loops BENCH_HANDLER_MS: `while (performance.now() < end) {}`
//   c  busy-c1  the same busy loop with HANDLER_CONCURRENCY=1
// (a) and (b) run with HANDLER_CONCURRENCY=BENCH_CONCURRENCY (8, the router's default).
//
// Load: single-event POSTs ({"EventID":40,"AssetID":<n>}, unique) evenly spaced at BENCH_RATE/s,
// open loop: an http.Agent with keep-alive, and each latency taken from the request's scheduled
// send time to the end of its answer, so a stalled answer cannot delay the next sends and hide
// itself. The first BENCH_WARMUP s of each run are sent but not counted (they open the sockets
// and fill the handler's backlog). "handled/s" counts the handler runs that finished inside the
// measured window (the handler notes each, on one clock for both processes, and writes them out
// when the router exits). At 50 events/s both handlers fall behind by design (a timer handler
// manages concurrency x 1000/200 = 40 runs/s, a 200 ms busy loop 5 runs/s), so the handler is
// busy for the whole window.
//
// Settings (environment, or flags named after them: BENCH_ROUNDS=2 or --rounds=2):
//   BENCH_ROUNDS (3), BENCH_DURATION s measured per run (15), BENCH_WARMUP s (2), BENCH_RATE
//   events/s (50), BENCH_HANDLER_MS (200), BENCH_CONCURRENCY (8, for a and b), BENCH_VARIANTS
//   (a,b,c), BENCH_SOCKETS (0: no limit; the Agent's limit), BENCH_TIMEOUT s per request, from its
//   scheduled send time (15; an unanswered request counts as this long, a lower bound shown with '>'),
//   BENCH_ROUTER_MAIN (dist/src/main.js; another build to compare), BENCH_KEEP=1 (keep the temp folder),
//   BENCH_TRACE (a folder: one CSV per run, each request's send offset s, latency ms and status).
//
// Read ../shared/BENCHMARKING.md: on this 2-core machine absolute figures swing from run to run
// and the generator shares the cores with the router; compare the variants' ratios in one run.
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
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
  pad,
  pct,
  ROOT,
  type Server,
  setting,
  sleep,
  start,
  stop,
  TOKEN,
} from './support.js';

const S = {
  rounds: num('BENCH_ROUNDS', 3, 1),
  duration: num('BENCH_DURATION', 15, 5),
  warmup: num('BENCH_WARMUP', 2, 1),
  rate: num('BENCH_RATE', 50, 50),
  handlerMs: num('BENCH_HANDLER_MS', 200, 200),
  concurrency: num('BENCH_CONCURRENCY', 8, 8),
  sockets: num('BENCH_SOCKETS', 0, 0),
  timeout: num('BENCH_TIMEOUT', 15, 15),
  variants: setting('BENCH_VARIANTS', 'a,b,c')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean),
  routerMain: setting('BENCH_ROUTER_MAIN', 'dist/src/main.js'),
  keep: setting('BENCH_KEEP', '') === '1',
  trace: setting('BENCH_TRACE', ''),
};

const clock = () => performance.timeOrigin + performance.now();

// ---------------------------------------------------------------------------------------------
// The handler modules. Each notes when its runs finished, in memory, written out at exit.

const RECORDER = `
import { writeFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
const MS = Number(process.env.BENCH_HANDLER_MS);
const finished = [];
process.once('exit', () => writeFileSync(process.env.BENCH_DONE_FILE, finished.join('\\n')));
const note = () => finished.push(performance.timeOrigin + performance.now());
`;

const TIMER_HANDLER = `${RECORDER}
export default {
  name: 'cpu-bench',
  on: '*',
  async handle() {
    await new Promise((resolve) => setTimeout(resolve, MS));
    note();
  },
};
`;

const BUSY_HANDLER = `${RECORDER}
export default {
  name: 'cpu-bench',
  on: '*',
  handle() {
    const end = performance.now() + MS;
    while (performance.now() < end) {}
    note();
  },
};
`;

interface Variant {
  readonly key: string;
  readonly name: string;
  readonly what: string;
  readonly source: string;
  readonly concurrency: number;
}

const ALL: Variant[] = [
  { key: 'a', name: 'timer', what: `awaits a ${S.handlerMs} ms timer (no CPU)`, source: TIMER_HANDLER, concurrency: S.concurrency },
  { key: 'b', name: 'busy', what: `busy-loops ${S.handlerMs} ms (synchronous)`, source: BUSY_HANDLER, concurrency: S.concurrency },
  { key: 'c', name: 'busy-c1', what: `busy-loops ${S.handlerMs} ms (synchronous)`, source: BUSY_HANDLER, concurrency: 1 },
];
const VARIANTS = ALL.filter((v) => S.variants.includes(v.key));
if (VARIANTS.length === 0) throw new Error(`BENCH_VARIANTS: none of ${S.variants.join(',')} is one of a, b, c`);
const label = (v: Variant) => `${v.key} ${v.name}`;
/** The most runs per second the handler can finish, whatever the load. */
const capacity = (v: Variant) => (v.source === BUSY_HANDLER ? 1 : v.concurrency) * (1000 / S.handlerMs);

// ---------------------------------------------------------------------------------------------
// One run: a fresh router with the variant's handler, then the open-loop load

interface Run {
  sent: number;
  p50: number;
  p99: number;
  max: number;
  s202: number;
  other: number; // any other status
  timeouts: number; // no answer within BENCH_TIMEOUT s: counted in the latencies as BENCH_TIMEOUT (a lower bound)
  errors: number; // other socket errors: not in the latencies
  handled: number; // handler runs finished per second inside the measured window (NaN if unknown)
  cores: number; // the router's CPU use inside the measured window
  lagP99: number; // how late the generator itself sent, p99 (inside the latencies)
  logLines: number; // lines the router wrote at LOG_LEVEL=warn
  stopSeconds: number; // from SIGTERM to exit (the signal waits for the event loop too)
}

let assetId = 1_000_000;
/** What the routers logged at warn or above, by variant and message, with counts. */
const logMessages = new Map<string, number>();

async function run(dir: string, v: Variant, round: number): Promise<Run> {
  const handlersDir = join(dir, 'handlers');
  const dataDir = join(dir, 'data');
  const doneFile = join(dir, 'handler-done.txt');
  const logFile = join(dir, `router-${round}-${v.key}.log`);
  for (const p of [handlersDir, dataDir, doneFile, logFile]) rmSync(p, { recursive: true, force: true });
  mkdirSync(handlersDir);
  mkdirSync(dataDir);
  writeFileSync(join(handlersDir, 'cpu-bench.mjs'), v.source);
  const logFd = openSync(logFile, 'a');
  let server: Server | undefined;
  try {
    server = await start(
      'router',
      [S.routerMain],
      {
        ...process.env,
        DATA_DIR: dataDir,
        HANDLERS_DIR: handlersDir,
        WEBHOOK_TOKENS: TOKEN,
        LOG_EVENTS: 'false',
        LOG_LEVEL: 'warn',
        QUEUE: 'sqlite',
        HANDLER_CONCURRENCY: String(v.concurrency),
        SHUTDOWN_TIMEOUT_MS: '1000', // a backlog is left at the end of every run: do not wait for it
        BENCH_HANDLER_MS: String(S.handlerMs),
        BENCH_DONE_FILE: doneFile,
      },
      logFd,
    );
    const r = await load(server, S.trace ? join(S.trace, `handler-cpu-${round}-${v.key}-${v.name}.csv`) : undefined);
    const stopAt = performance.now();
    await stop(server);
    const stopSeconds = (performance.now() - stopAt) / 1000;
    let handled = Number.NaN;
    if (existsSync(doneFile)) {
      const times = readFileSync(doneFile, 'utf8').split('\n').filter(Boolean).map(Number);
      handled = times.filter((t) => t >= r.windowStart && t < r.windowEnd).length / S.duration;
    }
    const lines = readFileSync(logFile, 'utf8').split('\n').filter(Boolean);
    for (const l of lines) {
      let msg = l.slice(0, 120);
      try {
        const j = JSON.parse(l) as { msg?: unknown; err?: { message?: unknown } };
        msg = String(j.msg ?? msg) + (j.err?.message && j.err.message !== j.msg ? ` (err: ${String(j.err.message).slice(0, 160)})` : '');
      } catch {
        // not a JSON line: its start is the message
      }
      logMessages.set(`${v.key}: ${msg}`, (logMessages.get(`${v.key}: ${msg}`) ?? 0) + 1);
    }
    return { ...r.figures, handled, logLines: lines.length, stopSeconds };
  } finally {
    if (server) await stop(server);
    closeSync(logFd);
  }
}

interface Load {
  figures: Omit<Run, 'handled' | 'logLines' | 'stopSeconds'>;
  windowStart: number; // on clock()
  windowEnd: number;
}

function load(server: Server, traceFile?: string): Promise<Load> {
  // No socket limit by default: a new connection whenever every open one waits for an answer
  // (how HubEx pools its connections is not known; BENCH_SOCKETS=256 caps them).
  const agent = new http.Agent({ keepAlive: true, ...(S.sockets > 0 ? { maxSockets: S.sockets, maxFreeSockets: S.sockets } : {}) });
  const interval = 1000 / S.rate;
  const skip = Math.round(S.rate * S.warmup); // warm-up requests: sent, not counted
  const total = skip + Math.max(1, Math.round(S.rate * S.duration));
  const latencies = new Float64Array(total).fill(Number.NaN);
  const outcome: string[] = new Array(total).fill('');
  const lags = new Float64Array(total);
  const counted = { s202: 0, other: 0, timeouts: 0, errors: 0 };
  let sent = 0;
  let finished = 0;
  const t0 = performance.now() + 5;
  const windowStart = performance.timeOrigin + t0 + skip * interval;
  const windowEnd = windowStart + S.duration * 1000;
  let cpu0 = Number.NaN;
  let cpu1 = Number.NaN;
  setTimeout(() => (cpu0 = cpuSeconds(server.child.pid)), Math.max(0, windowStart - clock()));
  setTimeout(() => (cpu1 = cpuSeconds(server.child.pid)), Math.max(0, windowEnd - clock()));

  return new Promise((done) => {
    const finish = () => {
      if (++finished < total) return;
      agent.destroy();
      if (traceFile) {
        mkdirSync(dirname(traceFile), { recursive: true });
        const rows = [...latencies].map(
          (l, i) => `${((i * interval) / 1000).toFixed(3)},${l.toFixed(1)},${outcome[i]},${i >= skip ? 1 : 0}`,
        );
        writeFileSync(traceFile, `send_s,latency_ms,status,measured\n${rows.join('\n')}\n`);
      }
      const ok = [...latencies.subarray(skip)].filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
      const lagSorted = [...lags.subarray(skip)].sort((a, b) => a - b);
      // cpu1 is taken at the window's end; if the last answers came sooner than that, take it now.
      if (Number.isNaN(cpu1)) cpu1 = cpuSeconds(server.child.pid);
      const seconds = (Math.min(clock(), windowEnd) - windowStart) / 1000;
      done({
        figures: {
          sent: total - skip,
          p50: pct(ok, 50),
          p99: pct(ok, 99),
          max: ok.at(-1) ?? Number.NaN,
          ...counted,
          cores: (cpu1 - cpu0) / seconds,
          lagP99: pct(lagSorted, 99),
        },
        windowStart,
        windowEnd,
      });
    };
    const fire = (i: number, scheduled: number) => {
      const body = JSON.stringify({ EventID: 40, AssetID: assetId++ });
      const count = i >= skip;
      let timedOut = false;
      // A deadline from the scheduled send time (not the socket's idle time): the whole call, queueing included.
      const deadline = setTimeout(
        () => {
          timedOut = true;
          req.destroy(new Error('timeout'));
        },
        Math.max(0, scheduled + S.timeout * 1000 - performance.now()),
      );
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
            clearTimeout(deadline);
            latencies[i] = performance.now() - scheduled;
            outcome[i] = String(res.statusCode);
            if (count && res.statusCode === 202) counted.s202++;
            else if (count) counted.other++;
            finish();
          });
        },
      );
      req.on('error', () => {
        clearTimeout(deadline);
        if (timedOut) latencies[i] = Math.max(S.timeout * 1000, performance.now() - scheduled); // censored: at least this
        outcome[i] = timedOut ? 'timeout' : 'error';
        if (count && timedOut) counted.timeouts++;
        else if (count) counted.errors++;
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

// ---------------------------------------------------------------------------------------------
// Figures

const loadavg = () =>
  os
    .loadavg()
    .map((x) => x.toFixed(2))
    .join(', ');
const nonOk = (r: Run) => r.other + r.timeouts + r.errors;
/** Latencies at or above the request timeout are lower bounds: shown with '>'. */
const censored = (ms: number) => ms >= S.timeout * 1000;
const ms = (x: number) => (censored(x) ? `>${f0(x)}` : f1(x));
const COLS: [string, number][] = [
  ['round', 5],
  ['variant', 9],
  ['sent', 6],
  ['p50 ms', 8],
  ['p99 ms', 8],
  ['max ms', 8],
  ['non-202', 8],
  ['handled/s', 10],
  ['srv cpu', 8],
  ['lag p99', 8],
  ['log', 5],
  ['stop s', 7],
];

function row(cells: string[]): string {
  return cells.map((c, i) => (i < 2 ? c.padEnd(COLS[i]![1]) : pad(c, COLS[i]![1]))).join(' ');
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(os.tmpdir(), 'hubex-handler-cpu-'));
  const loadBefore = loadavg();
  log(`hubex-router: intake latency with a CPU-bound handler, ${new Date().toISOString()}`);
  log(`machine: ${os.cpus().length} x ${os.cpus()[0]?.model ?? '?'}, ${f0(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}`);
  log(
    `load average before (1, 5, 15 min): ${loadBefore}  (other work on this machine shows here; the generator shares the cores with the router)`,
  );
  log(
    `router: ${S.routerMain} in ${ROOT}, SQLite, LOG_LEVEL=warn, LOG_EVENTS=false; a fresh router, DATA_DIR and HANDLERS_DIR per run, in ${dir}`,
  );
  log(`one handler on '*':`);
  for (const v of VARIANTS)
    log(`  ${label(v).padEnd(9)} ${v.what}, HANDLER_CONCURRENCY=${v.concurrency}: at most ${f0(capacity(v))} runs/s`);
  log(
    `load: ${S.rate} single-event POSTs/s, evenly spaced, open loop (latency from the scheduled send time), keep-alive Agent ` +
      `(${S.sockets > 0 ? `up to ${S.sockets}` : 'no limit of'} sockets), ${S.timeout} s timeout per request; per run ${S.warmup} s warm-up (not counted) + ${S.duration} s measured; ` +
      `${S.rounds} round(s), variant order rotated each round`,
  );
  log();
  const runs = new Map<string, Run[]>(VARIANTS.map((v) => [v.key, []]));
  try {
    log(row(COLS.map(([h]) => h)));
    for (let round = 0; round < S.rounds; round++) {
      const order = VARIANTS.map((_, i) => VARIANTS[(i + round) % VARIANTS.length]!);
      for (const v of order) {
        const r = await run(dir, v, round + 1);
        runs.get(v.key)!.push(r);
        log(
          row([
            String(round + 1),
            label(v),
            f0(r.sent),
            ms(r.p50),
            ms(r.p99),
            censored(r.max) ? `>${f0(r.max)}` : f0(r.max),
            f0(nonOk(r)),
            f1(r.handled),
            f2(r.cores),
            f1(r.lagP99),
            f0(r.logLines),
            f1(r.stopSeconds),
          ]),
        );
        await sleep(500);
      }
    }
  } finally {
    if (S.keep) log(`kept ${dir}`);
    else rmSync(dir, { recursive: true, force: true });
  }

  // Medians, side by side ---------------------------------------------------------------------
  const med = (key: string, f: (r: Run) => number) => median(runs.get(key)!.map(f));
  const ref = VARIANTS.find((v) => v.key === 'a');
  const w = 11;
  log();
  log(`== Medians over ${S.rounds} round(s)`);
  log(`${''.padEnd(26)}${VARIANTS.map((v) => pad(label(v), w)).join('')}`);
  const line = (name: string, f: (v: Variant) => string) => log(`${name.padEnd(26)}${VARIANTS.map((v) => pad(f(v), w)).join('')}`);
  const sum = (key: string, f: (r: Run) => number) => runs.get(key)!.reduce((n, r) => n + f(r), 0);
  line('intake p50 ms', (v) => ms(med(v.key, (r) => r.p50)));
  line('intake p99 ms', (v) => ms(med(v.key, (r) => r.p99)));
  line('intake max ms', (v) => (censored(med(v.key, (r) => r.max)) ? '>' : '') + f0(med(v.key, (r) => r.max)));
  line('requests (all rounds)', (v) => f0(sum(v.key, (r) => r.sent)));
  line('non-202 (all rounds)', (v) => f0(sum(v.key, nonOk)));
  line(`  of which timeouts (${S.timeout} s)`, (v) => f0(sum(v.key, (r) => r.timeouts)));
  line('handled events/s', (v) => f1(med(v.key, (r) => r.handled)));
  line('  (handler capacity /s)', (v) => f0(capacity(v)));
  line('router cpu (cores)', (v) => f2(med(v.key, (r) => r.cores)));
  if (ref) {
    const refP99 = med('a', (r) => r.p99);
    const refP50 = med('a', (r) => r.p50);
    const ratio = (x: number, of: number) => `${censored(x) ? '>' : ''}${f1(x / of)}x`;
    line('p99 / a p99 (medians)', (v) =>
      ratio(
        med(v.key, (r) => r.p99),
        refP99,
      ),
    );
    line('p50 / a p50 (medians)', (v) =>
      ratio(
        med(v.key, (r) => r.p50),
        refP50,
      ),
    );
    for (const v of VARIANTS.filter((x) => x !== ref)) {
      const perRound = runs.get(v.key)!.map((r, i) => ratio(r.p99, runs.get('a')![i]!.p99));
      log(`p99 ratio ${v.key}/a per round: ${perRound.join(', ')}`);
    }
  }
  const errs = VARIANTS.reduce((n, v) => n + sum(v.key, (r) => r.errors), 0);
  if (errs) log(`note: ${errs} socket errors other than timeouts among the non-202 answers (not in the latencies)`);
  log(
    `(a request not answered within ${S.timeout} s counts as ${S.timeout} s in the latencies, a lower bound; figures that are lower bounds show '>')`,
  );
  log('("lag p99": how late the generator itself sent, inside the latencies; "log": lines the router wrote at warn or above;');
  log(' "stop s": SIGTERM to exit, SHUTDOWN_TIMEOUT_MS=1000; the signal too waits for the event loop)');
  if (logMessages.size) {
    log('router log at warn or above, by variant and message:');
    for (const [m, n] of logMessages) log(`  ${n} x ${m}`);
  }
  log(`load average after (1, 5, 15 min): ${loadavg()}  (before: ${loadBefore})`);
}

await main();
