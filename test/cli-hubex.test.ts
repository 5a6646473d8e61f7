// `webhooks` and `doctor`, spawned as a user runs them, against the fake HubEx and a real store.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { cli } from './support/cli.js';
import { type FakeHubex, startFakeHubex } from '../src/testing/fake-hubex.js';
import { tempDir, TOKEN } from './support/test-app.js';

let hubex: FakeHubex;
let dir: string;
let remove: () => void;
let env: Record<string, string>;
beforeEach(async () => {
  hubex = await startFakeHubex();
  ({ dir, remove } = tempDir());
  env = {
    DATA_DIR: dir,
    WEBHOOK_TOKENS: TOKEN,
    PUBLIC_URL: 'https://hooks.example.com',
    HUBEX_BASE_URL: hubex.url,
    HUBEX_SERVICE_TOKEN: hubex.serviceToken,
  };
});
afterEach(async () => {
  await hubex.close();
  remove();
});

describe('webhooks', () => {
  it('registers a webhook that calls this router, lists it with its calls, deactivates and deletes it', async () => {
    const reg = await cli(['webhooks', 'register', '--events', '40,41', '--stages', '1,2', '--name', 'integration'], env);
    expect(reg.code, reg.stderr).toBe(0);
    expect(reg.stdout).toMatch(/^Webhook 1 registered: HubEx now calls this router/);
    expect(hubex.webhooks.get(1)).toMatchObject({
      name: 'integration',
      uri: `https://hooks.example.com/hooks/hubex/${TOKEN}`,
      events: [40, 41],
      taskStages: [1, 2],
      isActive: true,
    });

    hubex.webhooks.get(1)!.lastCall = { started: '2026-11-28T10:00:00Z', completed: null, exception: 'Connection refused' };
    const list = await cli(['webhooks', 'list'], env);
    expect(list.code, list.stderr).toBe(0);
    const [header, row] = list.stdout.trim().split('\n');
    expect(header).toMatch(/^id\s+name\s+active\s+events\s+calls left\s+last call\s+uri$/);
    expect(row).toMatch(
      /^1\s+integration\s+yes\s+40,41\s+10\s+FAILED: Connection refused\s+https:\/\/hooks\.example\.com\/hooks\/hubex\/\[REDACTED\]$/,
    );
    expect(list.stdout).not.toContain(TOKEN); // the token in the URI is a secret

    expect((await cli(['webhooks', 'deactivate', '1'], env)).stdout).toMatch(/Webhook 1 deactivated/);
    expect(hubex.webhooks.get(1)!.isActive).toBe(false);
    const asJson = JSON.parse((await cli(['webhooks', 'list', '--json'], env)).stdout);
    expect(asJson).toMatchObject([{ id: 1, active: false, events: [40, 41], callsRemaining: 10 }]);
    expect((await cli(['webhooks', 'delete', '1'], env)).code).toBe(0);
    expect(hubex.webhooks.size).toBe(0);
  });

  it('says what is missing: no HubEx token (78), no PUBLIC_URL (78), no events, a webhook that does not exist (1)', async () => {
    const noToken = await cli(['webhooks', 'list'], { DATA_DIR: dir });
    expect(noToken.code).toBe(78);
    expect(noToken.stderr).toMatch(/Set HUBEX_SERVICE_TOKEN/);
    const noUrl = await cli(['webhooks', 'register', '--events', '40'], { ...env, PUBLIC_URL: '' });
    expect(noUrl.code).toBe(78);
    expect(noUrl.stderr).toMatch(/Set PUBLIC_URL/);
    const noEvents = await cli(['webhooks', 'register'], env);
    expect(noEvents.code).toBe(78);
    expect(noEvents.stderr).toMatch(/--events/);
    const badEvents = await cli(['webhooks', 'register', '--events', 'forty'], env);
    expect(badEvents.code).toBe(2);
    const missing = await cli(['webhooks', 'activate', '99'], env);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/HubEx answered 404 to PUT \/MSG\/Webhooks\/activate\/99 .*trace 0HN/);
  });
});

describe('doctor', () => {
  it('prints one line per check, all ok when everything is in place', async () => {
    await cli(['webhooks', 'register', '--events', '40'], env);
    const run = await cli(['doctor'], env);
    expect(run.code, run.stdout + run.stderr).toBe(0);
    const lines = run.stdout.trim().split('\n');
    expect(lines.map((l) => l.split(/\s{2,}/).slice(0, 2))).toEqual([
      ['ok', 'configuration'],
      ['ok', 'store'],
      ['ok', 'webhook token'],
      ['ok', 'hubex token'],
      ['ok', 'x-application-id'],
      ['ok', 'webhook registered'],
      ['ok', 'reconciliation'],
      ['ok', 'handlers'],
    ]);
    expect(run.stdout).toMatch(/ok\s+webhook registered\s+#1 active, 10 failed calls left, never called\n/);
    expect(run.stdout).toMatch(/ok\s+reconciliation\s+every 60000 ms; not started yet/);
  });

  it("shows what the watchdog watches: an inactive webhook, its calls left and its last call's error (token hidden)", async () => {
    await cli(['webhooks', 'register', '--events', '40'], env);
    await cli(['webhooks', 'deactivate', '1'], env);
    const hook = hubex.webhooks.get(1)!;
    hook.callsRemaining = 0;
    hook.lastCall = {
      started: '2026-12-01T10:00:00Z',
      completed: '2026-12-01T10:00:30Z',
      exception: `timeout calling ${String(hook.uri)}`,
    };
    const run = await cli(['doctor'], env);
    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(
      /FAIL\s+webhook registered\s+none active: #1 INACTIVE, 0 failed calls left, last call FAILED: timeout calling https:\/\/hooks\.example\.com\/hooks\/hubex\/\[REDACTED\]\n/,
    );
    expect(run.stdout).toMatch(/-> hubex-router webhooks activate 1, or WEBHOOK_AUTO_ACTIVATE=true/);
  });

  it("names each handler subscribed to a name no event has, with HubEx's catalogue read and without it", async () => {
    await cli(['webhooks', 'register', '--events', '40'], env);
    const handlers = join(dir, 'handlers');
    mkdirSync(handlers);
    writeFileSync(
      join(handlers, 'typo.mjs'),
      "import { defineHandler } from 'hubex-router';\nexport default defineHandler({ on: ['task.created', 'task.craeted', 40], handle() {} });\n",
    );
    const run = await cli(['doctor'], { ...env, HANDLERS_DIR: handlers });
    expect(run.code).toBe(1);
    // task.created is in the fake's catalogue (TaskCreated, 12); the typo is not.
    expect(run.stdout).toMatch(/FAIL\s+handlers\s+subscribed to names no event has: typo -> "task.craeted"\n/);
    expect(run.stdout).toContain('-> check the spelling against `hubex-router events`');

    // A handler module that leaves a timer running does not keep doctor from exiting.
    writeFileSync(join(handlers, 'ticks.mjs'), 'setInterval(() => {}, 1000);\nexport default { on: 40, handle() {} };\n');
    const offline = await cli(['doctor', '--json'], { DATA_DIR: dir, HANDLERS_DIR: handlers });
    expect(offline.code).toBe(1); // not null: the helper kills a command still running after 20 s
    const check = (JSON.parse(offline.stdout) as { name: string; ok: boolean; detail: string; fix: string }[]).find(
      (c) => c.name === 'handlers',
    );
    expect(check).toMatchObject({ ok: false, fix: expect.stringContaining("HubEx's catalogue") });
    expect(check!.detail).toContain('typo -> "task.created", typo -> "task.craeted"');
  });

  it('fails with what to do: no webhook pointing here (unless pull-only), a refused service token, no token at all', async () => {
    const pullOnly = await cli(['doctor'], env);
    expect(pullOnly.code, pullOnly.stdout).toBe(0);
    expect(pullOnly.stdout).toMatch(/ok\s+webhook registered\s+none: pull-only, task changes arrive as task.modified every 60000 ms/);
    const noHook = await cli(['doctor'], { ...env, RECONCILE_INTERVAL_MS: '0' });
    expect(noHook.code).toBe(1);
    expect(noHook.stdout).toMatch(
      /FAIL\s+webhook registered\s+no HubEx webhook points at this router, and reconciliation is off \(RECONCILE_INTERVAL_MS=0\): no event reaches it\n\s+-> hubex-router webhooks register --events 40,41/,
    );

    const refused = await cli(['doctor'], { ...env, HUBEX_SERVICE_TOKEN: 'svc-not-the-right-one' });
    expect(refused.code).toBe(1);
    expect(refused.stdout).toMatch(/FAIL\s+hubex token\s+HubEx answered 401 to POST \/AUTHZ\/AccessTokens/);
    expect(refused.stdout).toMatch(/-> check HUBEX_SERVICE_TOKEN/);
    expect(refused.stdout).not.toContain('svc-not-the-right-one');

    const none = await cli(['doctor', '--json'], { DATA_DIR: dir });
    expect(none.code).toBe(1);
    expect((JSON.parse(none.stdout) as { name: string }[]).find((c) => c.name === 'hubex token')).toMatchObject({
      name: 'hubex token',
      ok: false,
      fix: expect.stringMatching(/HUBEX_SERVICE_TOKEN/),
    });
  });
});
