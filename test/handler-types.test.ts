// The handler API's types, checked by the type check (`npm run typecheck`, a step of .ci/run):
// `on` types the event, ctx.hubex is the client, a policy typo does not compile. The lines
// marked as expected errors fail the type check if the mistake they hold ever compiles.
import { expect, expectTypeOf, it } from 'vitest';
import { type AssetEvent, defineHandler, type EventSelector, type HubexEvent, type TaskEvent } from '../src/index.js';
import type { HubexClient } from '../src/hubex/index.js';

it('types the event from the names subscribed to, and ctx.hubex as the client', () => {
  const onTask = defineHandler({
    on: 'task.created',
    handle({ event, hubex }) {
      expectTypeOf(event).toEqualTypeOf<TaskEvent>();
      expectTypeOf(event.taskID).toEqualTypeOf<number>();
      expectTypeOf(hubex).toEqualTypeOf<HubexClient>();
    },
    where: (event) => event.taskID > 0,
  });
  defineHandler({
    on: ['asset.created', 'asset.updated'],
    handle({ event }) {
      expectTypeOf(event).toEqualTypeOf<AssetEvent>();
      expectTypeOf(event.assetID).toEqualTypeOf<number>();
    },
  });
  defineHandler({
    on: ['task.created', 'asset.created'],
    handle({ event }) {
      expectTypeOf(event).toEqualTypeOf<TaskEvent | AssetEvent>();
    },
  });
  defineHandler({
    on: [40, '*'],
    handle({ event }) {
      expectTypeOf(event).toEqualTypeOf<HubexEvent>();
      // @ts-expect-error: a numeric id or '*' promises no task
      expectTypeOf(event.taskID).toEqualTypeOf<number>();
    },
  });
  // Known names autocomplete, any other string is allowed (an installation's own events).
  expectTypeOf<'asset.created'>().toMatchTypeOf<EventSelector>();
  expectTypeOf<'my.own_event'>().toMatchTypeOf<EventSelector>();
  defineHandler({
    on: 'asset.created',
    maxAttempts: 3,
    timeoutMs: 10_000,
    retry: { baseMs: 100, maxMs: 5000 },
    handle() {},
    onDead({ event, attempts }, error) {
      // The general event: a delivery may die because its event lacked what `on` promised.
      expectTypeOf(event).toEqualTypeOf<HubexEvent>();
      expectTypeOf(attempts).toEqualTypeOf<number>();
      expectTypeOf(error.message).toEqualTypeOf<string>();
    },
  });
  // @ts-expect-error: a policy field with a typo does not compile (and is refused at load)
  defineHandler({ on: 40, maxAttempt: 3, handle() {} });
  expect(onTask.on).toBe('task.created');
});
