// Handlers share the event loop with the intake: one that computes without yielding holds
// webhooks up for about one of its runs, not for the whole queue of runs waiting (which used to
// start one after another without the loop reading a socket in between). Told by order, not by
// timing: a webhook sent while the first of six queued runs computes is answered before the third
// starts. The figures are in bench/RESULTS.md (npm run bench:handler-cpu). A real child process.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it, onTestFinished } from 'vitest';
import { httpRequest, spawnRouter } from './support/spawn-router.js';
import { tempDir } from './support/test-app.js';
import { waitFor } from './support/wait.js';

it('a handler that computes for 150 ms per run holds a webhook up for a run or two, not for the queue', async () => {
  const data = tempDir();
  const handlers = tempDir('hubex-router-handlers-');
  onTestFinished(() => {
    data.remove();
    handlers.remove();
  });
  const starts = join(handlers.dir, 'starts.log');
  writeFileSync(starts, '');
  writeFileSync(
    join(handlers.dir, 'busy.mjs'),
    `import { appendFileSync } from 'node:fs';
     export default {
       name: 'busy',
       on: 40,
       handle() {
         appendFileSync(${JSON.stringify(starts)}, Date.now() + '\\n');
         const end = performance.now() + 150;
         while (performance.now() < end) {} // no await at all
       },
     };`,
  );
  const router = await spawnRouter({
    dataDir: data.dir,
    env: { HANDLERS_DIR: handlers.dir, LOG_EVENTS: 'false', HANDLER_CONCURRENCY: '1' },
  });
  const queued = await httpRequest(router.url(), {
    body: JSON.stringify(Array.from({ length: 6 }, (_, i) => ({ EventID: 40, AssetID: i }))),
  });
  expect(queued.status).toBe(202);
  const startTimes = () => readFileSync(starts, 'utf8').trim().split('\n').filter(Boolean).map(Number);
  await waitFor(startTimes, (s) => s.length >= 1, { what: 'the first run to start' });
  // A webhook on a new connection (HubEx's calls may each come on one), while the runs queue up.
  const answer = await httpRequest(router.url(), { body: JSON.stringify({ EventID: 41, AssetID: 99 }) });
  const answeredAt = Date.now();
  expect(answer.status).toBe(202);
  const all = await waitFor(startTimes, (s) => s.length === 6, { what: 'all six runs to start' });
  const startedBefore = all.filter((t) => t <= answeredAt).length;
  expect(startedBefore, `runs started before the answer: ${startedBefore} of 6`).toBeLessThanOrEqual(2);
  const warning = router.stdout.split('\n').find((l) => l.includes('a handler computed without yielding'));
  expect(warning && JSON.parse(warning)).toMatchObject({ level: 'warn', handler: 'busy', blockedMs: expect.any(Number) });
  const metrics = await httpRequest(`${router.base}/metrics`);
  expect(metrics.text).toMatch(/^hubex_router_handler_blocking_seconds_total\{handler="busy"\} (0\.[3-9]|[1-9])/m);
});
