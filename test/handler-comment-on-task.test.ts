// The comment-on-task example handler against the fake HubEx, through the real client.
import { afterEach, beforeEach, expect, it } from 'vitest';
import { commentOnTask } from '../handlers/comment-on-task.js';
import { createHubexClient, type HubexClient } from '../src/hubex/client.js';
import { createTestRouter, type TestRouter } from '../src/testing/index.js';
import { type FakeHubex, startFakeHubex } from '../src/testing/fake-hubex.js';

let hubex: FakeHubex;
let client: HubexClient;
let router: TestRouter | undefined;
beforeEach(async () => {
  hubex = await startFakeHubex();
  client = createHubexClient({ baseUrl: hubex.url, applicationId: 5, serviceToken: hubex.serviceToken, retryBaseMs: 5, retryMaxMs: 10 });
});
afterEach(async () => {
  await router?.close();
  router = undefined;
  client.close();
  await hubex.close();
});

it('reads the task and adds one message to its conversation', async () => {
  hubex.tasks.set(98231, { number: 'T-1042', taskStageID: 4 });
  router = await createTestRouter({ handlers: [commentOnTask({ on: [12], text: 'Seen' })], hubex: client });
  const answer = await router.send({ eventID: 12, taskID: 98231, taskStageID: 4 });
  expect(answer.status).toBe(202);
  const [delivery] = await router.settled();
  expect(delivery).toMatchObject({ handler: 'comment-on-task', status: 'done', attempts: 1 });
  const eventId = answer.body.events![0]!.id;
  expect(hubex.conversations.get(98231)).toEqual([{ message: `Seen: event.12 (task T-1042), event ${eventId}`, isExternal: false }]);
  const work = hubex.calls.filter((c) => !c.path.startsWith('/AUTHZ/')).map((c) => `${c.method} ${c.path}`);
  expect(work).toEqual(['GET /WORK/Tasks/98231', 'POST /WORK/Tasks/98231/conversation']);
});

it('skips events without a task, and sends a task that is gone to the dead letters at once', async () => {
  router = await createTestRouter({ handlers: [commentOnTask({ on: ['*'] })], hubex: client });
  await router.send({ EventID: 40, AssetID: 5501 }); // an asset event: no task
  await router.send({ eventID: 12, taskID: 404 }); // HubEx has no such task
  const deliveries = await router.settled();
  const details = await Promise.all(deliveries.map((d) => router!.delivery(d.id)));
  expect(details.map((d) => [d!.status, d!.history.map((h) => h.outcome)])).toEqual([
    ['done', ['skipped']],
    ['dead', ['dead']],
  ]);
  expect(details[1]!.lastError).toMatchObject({
    errorClass: 'HubexApiError',
    message: expect.stringMatching(/^HubEx answered 404 to GET \/WORK\/Tasks\/404/),
    traceId: expect.stringMatching(/^0HN/),
  });
});

it('retries when HubEx is briefly down, and adds the message once', async () => {
  hubex.tasks.set(7, { number: 'T-7' });
  hubex.fail({ path: '/WORK/Tasks/7/conversation', status: 503 });
  router = await createTestRouter({ handlers: [commentOnTask({ on: [12] })], hubex: client });
  await router.send({ eventID: 12, taskID: 7 });
  const [delivery] = await router.settled();
  expect(delivery).toMatchObject({ status: 'done', attempts: 2 });
  expect(hubex.conversations.get(7)).toHaveLength(1);
});

it('is off unless TASK_COMMENT_ON names events', () => {
  expect(commentOnTask({ on: [] }).enabled).toBe(false);
  expect(commentOnTask({ on: ['task.created', 12] }).enabled).toBe(true);
});
