// Reconciliation benchmark: one poll that finds 10,000 changed tasks in HubEx (none covered by a
// push), walks them through Range pages and stores a task.modified event (with one delivery) for
// each in a fresh SQLite store; beside it, in the same run and alternated, the reference: the bare
// walk of the same list with the same client (no store). Then a second poll over the same
// changes (the overlap re-reads them; every one is a duplicate). It prints the time and the HubEx
// calls of each, per round, and the medians.
//
//   npm run bench:reconcile              # 5 rounds, 10,000 tasks
//   npm run bench:reconcile -- --quick   # 2 rounds, 2,000 tasks
//
// Settings: BENCH_ROUNDS (5), BENCH_TASKS (10000), BENCH_PAGE_CAP (0: none; HubEx's own cap on a
// page, if it has one, which makes more calls). The fake HubEx runs in this process, on loopback:
// its JSON work shares the event loop with the poll, for the reference too.
import { rmSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createHubexClient } from '../src/hubex/client.js';
import { createLogger } from '../src/observability/log.js';
import { createSqliteBackend } from '../src/store/sqlite/index.js';
import { PAGE_SIZE, Reconciler, settleDelayMs } from '../src/sync/reconciler.js';
import { startFakeHubex } from '../src/testing/fake-hubex.js';
import { f0, f2, log, median, num, sleep } from './support.js';

const S = {
  rounds: num('BENCH_ROUNDS', 5, 2),
  tasks: num('BENCH_TASKS', 10_000, 2000),
  pageCap: num('BENCH_PAGE_CAP', 0, 0),
};
const INTERVAL = 200;

interface Round {
  walkMs: number;
  walkCalls: number;
  pollMs: number;
  pollCalls: number;
  stored: number;
  repollMs: number;
  duplicates: number;
}

async function main(): Promise<void> {
  const fake = await startFakeHubex({ maxCalls: 100_000, ...(S.pageCap > 0 ? { pageCap: S.pageCap } : {}) });
  const client = createHubexClient(fake.clientOptions);
  const silent = createLogger('silent');
  log(`hubex-router reconciliation benchmark, ${new Date().toISOString()}`);
  log(
    `node ${process.version}; ${S.rounds} rounds; ${S.tasks} changed tasks; ${PAGE_SIZE} a page${S.pageCap ? `, HubEx's cap ${S.pageCap}` : ''}; SQLite, synchronous=FULL`,
  );
  log('');
  log('round  walk ms  calls  poll ms  calls  stored  poll/walk  re-poll ms  duplicates');
  const rounds: Round[] = [];
  try {
    await client.http.tokens.get(); // the token exchange is not part of either
    for (let r = 0; r < S.rounds; r++) {
      fake.tasks.clear();
      const before = new Date(Date.now() - 1000).toISOString();
      for (let id = 1; id <= S.tasks; id++) {
        fake.modifyTask(id, {
          number: `T-${id}`,
          title: `Maintenance of unit ${id}`,
          taskStage: { id: 3, name: 'In progress', color: '#ffaa00' },
          asset: { id: 5000 + (id % 300), name: `Chiller ${id % 300}` },
          company: { id: 12, name: 'Frigotec' },
          assignedTo: { id: 3127, name: 'I. Petrov' },
        });
      }
      await sleep(settleDelayMs(INTERVAL) + 50); // past the wait a change gets for its push
      const query = { lastModifiedFrom: new Date(Date.parse(before) - 60_000).toISOString() };

      const walk = async () => {
        const calls = fake.calls.length;
        const t0 = performance.now();
        let n = 0;
        for await (const _ of client.work.listTasks(query, { pageSize: PAGE_SIZE })) n++;
        if (n !== S.tasks) throw new Error(`the walk listed ${n} tasks, not ${S.tasks}`);
        return { ms: performance.now() - t0, calls: fake.calls.length - calls };
      };
      const poll = async () => {
        const dir = mkdtempSync(join(tmpdir(), 'bench-reconcile-'));
        const { store } = createSqliteBackend({ dataDir: dir, log: silent, concurrency: 1, leaseMs: 15_000 });
        try {
          await store.health();
          await store.writeCursor('default', 'tasks', before);
          const reconciler = new Reconciler({
            store,
            hubex: client,
            tenant: 'default',
            intervalMs: INTERVAL,
            fanOut: (event) => ({ event, tenant: 'default', handlers: ['on-modified'] }),
            log: silent,
          });
          const calls = fake.calls.length;
          let t0 = performance.now();
          const first = await reconciler.poll();
          const pollMs = performance.now() - t0;
          const pollCalls = fake.calls.length - calls;
          if (first.tasks.modified !== S.tasks) throw new Error(`the poll stored ${first.tasks.modified} events, not ${S.tasks}`);
          t0 = performance.now();
          const again = await reconciler.poll();
          const repollMs = performance.now() - t0;
          if (again.tasks.modified !== 0) throw new Error(`the second poll stored ${again.tasks.modified} events, not 0`);
          return { pollMs, pollCalls, stored: first.tasks.modified, repollMs, duplicates: again.tasks.duplicate };
        } finally {
          await store.close();
          rmSync(dir, { recursive: true, force: true });
        }
      };
      // Alternated: the reference first in even rounds, second in odd ones.
      let w: Awaited<ReturnType<typeof walk>>;
      let p: Awaited<ReturnType<typeof poll>>;
      if (r % 2 === 0) {
        w = await walk();
        p = await poll();
      } else {
        p = await poll();
        w = await walk();
      }
      const round: Round = { walkMs: w.ms, walkCalls: w.calls, ...p };
      rounds.push(round);
      log(
        `${String(r + 1).padStart(5)}  ${f0(round.walkMs).padStart(7)}  ${String(round.walkCalls).padStart(5)}  ${f0(round.pollMs).padStart(7)}  ${String(
          round.pollCalls,
        ).padStart(
          5,
        )}  ${String(round.stored).padStart(6)}  ${f2(round.pollMs / round.walkMs).padStart(9)}  ${f0(round.repollMs).padStart(10)}  ${String(
          round.duplicates,
        ).padStart(10)}`,
      );
    }
  } finally {
    client.close();
    await fake.close();
  }
  const m = (f: (r: Round) => number) => median(rounds.map(f));
  log('');
  log(
    `median: walk ${f0(m((r) => r.walkMs))} ms, ${m((r) => r.walkCalls)} calls; poll ${f0(m((r) => r.pollMs))} ms, ${m((r) => r.pollCalls)} calls`,
  );
  log(
    `median poll/walk ${f2(m((r) => r.pollMs / r.walkMs))}; ${f0((S.tasks / m((r) => r.pollMs)) * 1000)} changes stored a second; re-poll (all duplicates) ${f0(m((r) => r.repollMs))} ms`,
  );
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
