// The handler tests that docs/handlers.md shows users (each part between docs markers is copied
// there verbatim; test/handlers-doc.test.ts checks that it still is). They import the package by
// name, as a user's tests do (vitest.config.ts maps the name to the sources).
// docs:begin
import { expect, it } from 'vitest';
import { defineHandler, PermanentError } from 'hubex-router';
import { createTestRouter, runHandler, startFakeHubex } from 'hubex-router/testing';
import { createHubexClient } from 'hubex-router/hubex';
import logEvents from '../handlers/log-events.js';

const addNote = defineHandler({
  name: 'add-note',
  on: 'task.created',
  async handle({ event, hubex, signal }) {
    // event.taskID is a number here: the router runs this handler only for events that have one.
    await hubex.work.addMessage(event.taskID, { message: `seen: ${event.id}` }, { signal });
  },
});

it('adds a message to the task, against the fake HubEx', async () => {
  const fake = await startFakeHubex();
  const hubex = createHubexClient(fake.clientOptions);
  try {
    fake.tasks.set(5, { notes: 'Fix the pump' });
    // The installation's own event names, as HubEx's catalogue gives them at start.
    const events = [{ id: 12, name: 'task.created' }];
    const result = await runHandler(addNote, { EventID: 12, TaskID: 5 }, { hubex, events });
    expect(result.status).toBe('done');
    expect(fake.conversations.get(5)).toMatchObject([{ message: `seen: ${result.event.id}` }]);
    // A task that does not exist: HubEx answers 404, which no retry can fix.
    expect((await runHandler(addNote, { EventID: 12, TaskID: 99 }, { hubex, events })).status).toBe('dead');
  } finally {
    hubex.close();
    await fake.close();
  }
});
// docs:end

// docs:begin
it('logs each event once, with its name and entity', async () => {
  const router = await createTestRouter({ handlers: [logEvents] });
  try {
    const answer = await router.send({ EventID: 40, AssetID: 5501 });
    expect(answer.status).toBe(202);
    const [delivery] = await router.settled();
    expect(delivery).toMatchObject({ handler: 'log-events', status: 'done', attempts: 1 });
    const lines = router.logs.filter((l) => l.msg === 'event received');
    expect(lines).toMatchObject([{ event: 'asset.created', entity: { type: 'asset', id: 5501 } }]);
  } finally {
    await router.close();
  }
});

it('sends a handler that cannot succeed to the dead letters with its reason', async () => {
  const strict = defineHandler({
    name: 'needs-a-task',
    on: 'asset.created',
    handle({ event }) {
      if (event.taskID === undefined) throw new PermanentError('asset events carry no task');
    },
  });
  const router = await createTestRouter({ handlers: [strict] });
  try {
    await router.send({ EventID: 40, AssetID: 5501 });
    const [delivery] = await router.settled();
    expect(delivery).toMatchObject({ status: 'dead', lastError: { message: 'asset events carry no task' } });
  } finally {
    await router.close();
  }
});
// docs:end
