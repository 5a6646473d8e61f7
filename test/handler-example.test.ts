// The handler test that docs/handlers.md shows users (the part between the docs markers is
// copied there verbatim; test/handlers-doc.test.ts checks that it still is).
import { expect, it } from 'vitest';
import { PermanentError } from '../src/errors.js';
import { defineHandler } from '../src/delivery/define-handler.js';
import { createTestRouter } from '../src/testing.js';
import logEvents from '../handlers/log-events.js';

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
