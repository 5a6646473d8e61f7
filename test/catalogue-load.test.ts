// The installation's event catalogue, loaded from HubEx (GET /COMMON/Events) at start.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { defineHandler } from '../src/delivery/define-handler.js';
import { checkHandler } from '../src/delivery/loader.js';
import { nameFromCode } from '../src/events/load-catalogue.js';
import { createHubexClient, type HubexClient } from '../src/hubex/client.js';
import { type FakeHubex, startFakeHubex } from '../src/testing/fake-hubex.js';
import { makeApp, type TestApp } from './support/test-app.js';
import { waitFor } from './support/wait.js';

describe('nameFromCode', () => {
  it.each([
    ['TaskCreated', 'task.created'],
    ['TaskStageChanged', 'task.stage_changed'],
    ['AssetUnpublished', 'asset.unpublished'],
    ['SLAExpired', 'sla.expired'],
    ['Created', undefined],
    ['', undefined],
  ])('%s -> %s', (code, name) => expect(nameFromCode(code)).toBe(name));
});

describe('loading at start', () => {
  let hubex: FakeHubex;
  let client: HubexClient;
  let t: TestApp | undefined;
  beforeEach(async () => {
    hubex = await startFakeHubex();
    client = createHubexClient({
      baseUrl: hubex.url,
      applicationId: 5,
      serviceToken: hubex.serviceToken,
      retries: 1,
      retryBaseMs: 5,
      retryMaxMs: 10,
    });
  });
  afterEach(async () => {
    await t?.close();
    t = undefined;
    client.close();
    await hubex.close();
  });

  it('names task events from HubEx, so that handlers subscribe by name; known names stay', async () => {
    const seen: string[] = [];
    const onTask = checkHandler(
      defineHandler({ name: 'on-task', on: 'task.created', handle: ({ event }) => void seen.push(event.name) }),
      'on-task.ts',
    );
    t = await makeApp({}, { hubex: client, handlers: [onTask] });
    expect(t.app.catalogue.nameOf(12)).toBe('task.created');
    expect(t.app.catalogue.nameOf(40)).toBe('asset.created');
    const res = await t.post({ eventID: 12, taskID: 5 });
    expect(res.json()).toMatchObject({ events: [{ name: 'task.created' }] });
    await waitFor(
      () => seen,
      (s) => s.length === 1,
      { what: 'the handler to run' },
    );
    expect(seen).toEqual(['task.created']);
  });

  it('starts anyway when HubEx does not answer, and says so', async () => {
    hubex.fail({ path: '/COMMON/Events', status: 503, times: 5 });
    t = await makeApp({}, { hubex: client });
    expect(t.app.catalogue.nameOf(12)).toBe('event.12');
    expect(t.logs.lines.some((l) => l.level === 'warn' && /could not load the event catalogue/.test(String(l.msg)))).toBe(true);
    expect((await t.post({ eventID: 12, taskID: 5 })).json()).toMatchObject({ events: [{ name: 'event.12' }] });
  });
});
