// A subscription by a name that no event has never matches: the router says so at start, naming
// the handler and the name, instead of leaving it silent. (doctor says the same: cli-hubex.test.ts.)
import { afterEach, expect, it } from 'vitest';
import { defineHandler } from '../src/delivery/define-handler.js';
import { checkHandler } from '../src/delivery/loader.js';
import { startFakeHubex, type FakeHubex } from '../src/testing/fake-hubex.js';
import { makeApp, type TestApp } from './support/test-app.js';

const apps: TestApp[] = [];
let fake: FakeHubex | undefined;
afterEach(async () => {
  await Promise.all(apps.splice(0).map((a) => a.close()));
  await fake?.close();
});

const subscriber = checkHandler(
  defineHandler({ name: 'watcher', on: ['task.created', 'asset.craeted', 12, '*', 'event.99'], handle() {} }),
  'watcher.mjs',
);
const warnings = (a: TestApp) =>
  a.logs.lines.filter((l) => l.level === 'warn' && typeof l.msg === 'string' && String(l.msg).includes('which no event is named'));

it('warns at start for each name no event has, naming the handler and the name (numeric ids, * and event.<id> always resolve)', async () => {
  const a = await makeApp({}, { handlers: [subscriber] });
  apps.push(a);
  expect(warnings(a).map((l) => [l.handler, l.name])).toEqual([
    ['watcher', 'task.created'], // HubEx's catalogue did not load: no HubEx token
    ['watcher', 'asset.craeted'],
  ]);
  expect(warnings(a)[0]!.msg).toContain('`hubex-router events` lists the names, numeric ids always work');
});

it("knows the installation's names once HubEx's catalogue has loaded: only the typo is left", async () => {
  fake = await startFakeHubex(); // its catalogue has TaskCreated (12)
  const a = await makeApp({ HUBEX_BASE_URL: fake.url, HUBEX_SERVICE_TOKEN: fake.serviceToken }, { handlers: [subscriber] });
  apps.push(a);
  expect(warnings(a).map((l) => l.name)).toEqual(['asset.craeted']);
});
