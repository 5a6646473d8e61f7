// HubEx client benchmark: calls/s and latency through the client (token, X-Application-ID,
// in-flight cap, retries armed, JSON) against the fake HubEx on loopback, beside plain
// node-fetch calls with a keep-alive agent to the same fake, in the same run, alternated.
//
//   npm run bench:client              # 5 rounds x 5 s each
//   npm run bench:client -- --quick   # 2 rounds x 2 s
//
// Settings: BENCH_ROUNDS (5), BENCH_DURATION s (5), BENCH_CONCURRENCY (50).
// The fake runs in a child process; the callers share this process and the 2 cores with it.
import { spawn } from 'node:child_process';
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import fetch from 'node-fetch';
import { createHubexClient } from '../src/hubex/client.js';
import { cpuSeconds, f0, f2, log, median, num, pct, ROOT } from './support.js';

const S = {
  rounds: num('BENCH_ROUNDS', 5, 2),
  duration: num('BENCH_DURATION', 5, 2),
  concurrency: num('BENCH_CONCURRENCY', 50, 50),
};

interface Run {
  calls: number;
  errors: number;
  rps: number;
  p50: number;
  p99: number;
}

/** `concurrency` loops, each calling `once` back to back for `seconds`. */
async function load(once: () => Promise<void>, seconds: number): Promise<Run> {
  const latencies: number[] = [];
  let errors = 0;
  const until = performance.now() + seconds * 1000;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: S.concurrency }, async () => {
      while (performance.now() < until) {
        const start = performance.now();
        try {
          await once();
          latencies.push(performance.now() - start);
        } catch {
          errors++;
        }
      }
    }),
  );
  const elapsed = (performance.now() - t0) / 1000;
  latencies.sort((a, b) => a - b);
  return { calls: latencies.length, errors, rps: latencies.length / elapsed, p50: pct(latencies, 50), p99: pct(latencies, 99) };
}

async function main(): Promise<void> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'bench/fake-hubex-server.ts'], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const first = await new Promise<string>((resolve) => createInterface({ input: child.stdout! }).once('line', resolve));
  const fake = JSON.parse(first) as { url: string; serviceToken: string };
  try {
    const client = createHubexClient({ baseUrl: fake.url, applicationId: 5, serviceToken: fake.serviceToken, maxInFlight: S.concurrency });
    const token = await client.http.tokens.get();
    const agent = new http.Agent({ keepAlive: true, maxSockets: S.concurrency });
    const url = `${fake.url}/WORK/Tasks/5`;
    const plain = async () => {
      const res = await fetch(url, {
        agent,
        headers: { accept: 'application/json', 'x-application-id': '5', authorization: `Bearer ${token}` },
      });
      if (!res.ok) throw new Error(String(res.status));
      await res.json();
    };
    const viaClient = async () => {
      await client.work.getTask(5);
    };
    log(`hubex-router client benchmark, ${new Date().toISOString()}`);
    log(
      `GET /WORK/Tasks/5 against the fake HubEx (child process ${child.pid}), ${S.concurrency} concurrent callers, ${S.rounds} rounds x ${S.duration} s, alternated`,
    );
    await load(plain, 1);
    await load(viaClient, 1);
    log('round  caller        calls/s  p50 ms  p99 ms  errors  fake cpu');
    const runs: Record<'plain' | 'client', Run[]> = { plain: [], client: [] };
    for (let r = 1; r <= S.rounds; r++) {
      const order: ('plain' | 'client')[] = r % 2 ? ['plain', 'client'] : ['client', 'plain'];
      for (const who of order) {
        const cpu0 = cpuSeconds(child.pid);
        const run = await load(who === 'plain' ? plain : viaClient, S.duration);
        const cpu = (cpuSeconds(child.pid) - cpu0) / S.duration;
        runs[who].push(run);
        log(
          `${String(r).padEnd(6)} ${who.padEnd(12)} ${f0(run.rps).padStart(8)} ${f2(run.p50).padStart(7)} ${f2(run.p99).padStart(7)} ${String(run.errors).padStart(7)} ${f2(cpu).padStart(9)}`,
        );
      }
    }
    const rps = (w: 'plain' | 'client') => median(runs[w].map((r) => r.rps));
    const p99 = (w: 'plain' | 'client') => median(runs[w].map((r) => r.p99));
    const overhead = 1 - rps('client') / rps('plain');
    log();
    log(`median plain node-fetch ${f0(rps('plain'))} calls/s, p99 ${f2(p99('plain'))} ms`);
    log(`median client           ${f0(rps('client'))} calls/s, p99 ${f2(p99('client'))} ms`);
    log(`client overhead (1 - client/plain calls/s): ${(overhead * 100).toFixed(1)}%; target < 10%: ${overhead < 0.1 ? 'met' : 'MISSED'}`);
    client.close();
    agent.destroy();
  } finally {
    child.kill('SIGTERM');
  }
}

await main();
