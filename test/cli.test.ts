// The command line, spawned as a user runs it (node + tsx on src/cli/index.ts), against a real
// store in a temporary folder and a real listening router.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Database } from '../src/store/sqlite/driver.js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { checkHandler } from '../src/delivery/loader.js';
import { defineHandler } from '../src/delivery/define-handler.js';
import { EventCatalogue } from '../src/events/catalogue.js';
import { createNormalizer } from '../src/events/normalize.js';
import { createLogger } from '../src/observability/log.js';
import { DB_FILE, SqliteStore } from '../src/store/sqlite/store.js';
import { readEvents } from './support/db.js';
import { REPO_ROOT, spawnRouter } from './support/spawn-router.js';
import { cli } from './support/cli.js';
import { makeApp, tempDir, TOKEN } from './support/test-app.js';
import { waitFor } from './support/wait.js';
import { incoming } from './support/incoming.js';

let dir: string;
let remove: () => void;
beforeEach(() => {
  ({ dir, remove } = tempDir());
});
afterEach(() => remove());

/** Three events for handler "notify", all dead. */
async function deadLetters(): Promise<number[]> {
  const store = new SqliteStore({ dataDir: dir, log: createLogger('silent') });
  const normalize = createNormalizer({ catalogue: new EventCatalogue(), maxBatch: 10 });
  await store.accept(
    incoming(
      normalize(
        [40, 41, 41].map((EventID, i) => ({ EventID, AssetID: 100 + i })),
        '',
      ),
      ['notify'],
    ),
  );
  const { deliveries } = await store.claim(10, 60_000);
  await store.settle(
    deliveries.map((d) => ({
      id: d.id,
      attempt: d.attempt,
      replays: d.replays,
      startedAt: Date.now(),
      outcome: {
        kind: 'dead',
        error: { message: 'HubEx answered 404 to GET /WORK/Tasks/9', errorClass: 'HubexApiError', traceId: '0HN-7' },
      },
    })),
  );
  await store.close();
  return deliveries.map((d) => d.id);
}

const statusOf = (id: number) => {
  const db = new Database(join(dir, DB_FILE), { readonly: true });
  try {
    return db.prepare('SELECT status, attempts, replays FROM deliveries WHERE id = ?').get(id);
  } finally {
    db.close();
  }
};

describe('deliveries', () => {
  it('list shows the dead letters with their last error, as a table and as JSON', async () => {
    const ids = await deadLetters();
    const asJson = await cli(['deliveries', 'list', '--status', 'dead', '--json'], { DATA_DIR: dir });
    expect(asJson.code, asJson.stderr).toBe(0);
    const list = JSON.parse(asJson.stdout);
    expect(list.map((d: { id: number }) => d.id)).toEqual(ids);
    expect(list[0]).toMatchObject({ handler: 'notify', status: 'dead', eventName: 'asset.created', lastError: { traceId: '0HN-7' } });

    const human = await cli(['deliveries', 'list', '--event', 'asset.updated'], { DATA_DIR: dir });
    expect(human.code).toBe(0);
    const lines = human.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^id\s+status\s+handler\s+event\s+attempts\s+updated\s+last error$/);
    expect(lines).toHaveLength(3);
    expect(lines[1]).toMatch(/dead\s+notify\s+asset\.updated\s+1 .*HubexApiError: HubEx answered 404/);
  });

  it('show prints one delivery with its event and every attempt', async () => {
    const [id] = await deadLetters();
    const run = await cli(['deliveries', 'show', String(id)], { DATA_DIR: dir });
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toContain(`delivery ${id}: dead, handler notify`);
    expect(run.stdout).toMatch(/last error: HubexApiError: HubEx answered 404 to GET \/WORK\/Tasks\/9 \(trace 0HN-7\)/);
    expect(run.stdout).toMatch(/\n0\s+1\s+\S+ \S+\s+\d+\s+dead\s+HubexApiError/);
    expect(run.stdout).toContain('raw: {"EventID":40,"AssetID":100}');
  });

  it('replay puts one, then all dead ones back to pending; unknown ids fail with exit code 1', async () => {
    const ids = await deadLetters();
    const one = await cli(['deliveries', 'replay', String(ids[0])], { DATA_DIR: dir });
    expect(one.code, one.stderr).toBe(0);
    expect(one.stdout).toMatch(/^1 delivery pending again/);
    expect(statusOf(ids[0]!)).toEqual({ status: 'pending', attempts: 0, replays: 1 });
    expect(statusOf(ids[1]!)).toMatchObject({ status: 'dead' });

    const all = await cli(['deliveries', 'replay', '--all-dead', '--json'], { DATA_DIR: dir });
    expect(all.code).toBe(0);
    expect(JSON.parse(all.stdout)).toEqual({ replayed: [ids[1], ids[2]], skipped: [] });

    const none = await cli(['deliveries', 'replay', '999'], { DATA_DIR: dir });
    expect(none.code).toBe(1);
    expect(none.stdout).toMatch(/0 deliveries pending again/);
    expect(none.stdout).toMatch(/not replayed .*: 999/);
  });

  it('a replay from the command line is run by the router that is already running', async () => {
    let broken = true;
    const t = await makeApp(
      { RETRY_BASE_MS: '5', RETRY_MAX_MS: '10', MAX_ATTEMPTS: '1' },
      {
        handlers: [
          checkHandler(
            defineHandler({
              name: 'flaky',
              on: '*',
              handle: () => {
                if (broken) throw new Error('down');
              },
            }),
            'flaky.ts',
          ),
        ],
      },
      dir,
    );
    try {
      await t.post({ EventID: 40, AssetID: 1 });
      const [dead] = await waitFor(
        () => t.app.store.list({ status: 'dead' }),
        (l) => l.length === 1,
        { what: 'a dead letter' },
      );
      broken = false;
      const run = await cli(['deliveries', 'replay', String(dead!.id)], { DATA_DIR: dir });
      expect(run.code, run.stderr).toBe(0);
      // No accept wakes the router: it looks again on its own (every 5 s when idle).
      await waitFor(
        () => t.app.store.show(dead!.id),
        (d) => d?.status === 'done',
        { timeoutMs: 10_000, what: 'the replayed delivery to run' },
      );
    } finally {
      await t.app.close();
    }
  });

  it('refuses what it cannot do with a sentence: exit 1 for a bad value, 2 for bad usage', async () => {
    await deadLetters();
    const badStatus = await cli(['deliveries', 'list', '--status', 'failed'], { DATA_DIR: dir });
    expect(badStatus.code).toBe(1);
    expect(badStatus.stderr).toMatch(/"failed" is not a delivery status; use one of pending, running, done, dead/);
    const badSub = await cli(['deliveries', 'frob'], { DATA_DIR: dir });
    expect(badSub.code).toBe(2);
    expect(badSub.stderr).toMatch(/deliveries takes list, show or replay, not "frob"/);
    const both = await cli(['deliveries', 'replay', '1', '--all-dead'], { DATA_DIR: dir });
    expect(both.code).toBe(2);
    const unknownFlag = await cli(['deliveries', 'list', '--colour'], { DATA_DIR: dir });
    expect(unknownFlag.code).toBe(2);
    const badConfig = await cli(['deliveries', 'list'], { DATA_DIR: dir, PORT: 'eighty' });
    expect(badConfig.code).toBe(78);
    expect(badConfig.stderr).toMatch(/PORT: must be a whole number/);
  });
});

describe('events, token, help', () => {
  it('events lists the catalogue', async () => {
    const run = await cli(['events', '--json'], { DATA_DIR: dir });
    expect(JSON.parse(run.stdout).map((e: { name: string }) => e.name)).toEqual([
      'asset.created',
      'asset.updated',
      'asset.deleted',
      'asset.published',
      'asset.unpublished',
    ]);
  });

  it('token prints the webhook URL to register', async () => {
    const run = await cli(['token'], { DATA_DIR: dir, WEBHOOK_TOKENS: TOKEN, PUBLIC_URL: 'https://hooks.example.com' });
    expect(run.stdout.trim()).toBe(`https://hooks.example.com/hooks/hubex/${TOKEN}`);
  });

  it('--help lists the commands; an unknown command exits 2', async () => {
    const help = await cli(['--help'], {});
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/deliveries replay --all-dead/);
    const unknown = await cli(['frobnicate'], {});
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/unknown command "frobnicate"/);
  });
});

describe('send', () => {
  it('posts a built-in sample, a file from stdin, and says when no router answers', async () => {
    const t = await makeApp({}, {}, dir);
    try {
      await t.app.listen({ port: 0, host: '127.0.0.1' });
      const url = `http://127.0.0.1:${(t.app.server.address() as { port: number }).port}`;
      const env = { DATA_DIR: dir, WEBHOOK_TOKENS: TOKEN };
      const sample = await cli(['send', 'asset.created', '--asset', '77', '--url', url], env);
      expect(sample.code, sample.stderr).toBe(0);
      expect(sample.stdout).toMatch(/^202 Accepted: \{"accepted":1/);
      const stdin = await cli(['send', '-', '--url', url, '--json'], env, '{"EventID": 41, "AssetID": 78}');
      expect(JSON.parse(stdin.stdout)).toMatchObject({ accepted: 1, events: [{ name: 'asset.updated' }] });
      const bad = await cli(['send', '-', '--url', url], env, '{"nothing": 1}');
      expect(bad.code).toBe(1);
      expect(bad.stdout).toMatch(/^400 Bad Request: .*NO_EVENT/);
      expect(readEvents(dir).map((r) => JSON.parse(r.raw).AssetID)).toEqual([77, 78]);
    } finally {
      await t.app.close();
    }
    const down = await cli(['send', 'asset.created', '--url', 'http://127.0.0.1:9'], { DATA_DIR: dir, WEBHOOK_TOKENS: TOKEN });
    expect(down.code).toBe(1);
    expect(down.stderr).toMatch(/No router answered at http:\/\/127\.0\.0\.1:9 .*is it running\?/);
    const missing = await cli(['send', '/nonexistent.json'], { DATA_DIR: dir, WEBHOOK_TOKENS: TOKEN });
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/Cannot read \/nonexistent\.json \(ENOENT\)/);
  });
});

describe('serve', () => {
  it('prints a generated token in full only on the start that makes it; later starts mask it, and `token` prints it', async () => {
    const env = { WEBHOOK_TOKENS: '' }; // unset: the router generates one into DATA_DIR
    const first = await spawnRouter({ dataDir: dir, env });
    const token = readFileSync(join(dir, 'webhook-token'), 'utf8').trim();
    expect(first.stderr).toContain(`/hooks/hubex/${token}\n`);
    expect(first.stderr).toMatch(/The token was generated and is kept in DATA_DIR/);
    await first.kill('SIGTERM');
    const second = await spawnRouter({ dataDir: dir, env });
    expect(second.stderr).not.toContain(token);
    expect(second.stderr).toContain(`/hooks/hubex/${token.slice(0, 4)}********\n`);
    expect(second.stderr).toMatch(/`hubex-router token` \(in a clone: `npm run cli token`\) prints the whole URL/);
    expect(second.stdout).not.toContain(token);
    await second.kill('SIGTERM');
    const shown = await cli(['token'], { DATA_DIR: dir, PUBLIC_URL: 'https://hooks.example.com' });
    expect(shown.stdout.trim()).toBe(`https://hooks.example.com/hooks/hubex/${token}`);
  });

  it('warns at start when it trusts every proxy hop while listening beyond loopback', async () => {
    const router = await spawnRouter({ dataDir: dir, env: { TRUST_PROXY: 'true', HOST: '0.0.0.0' } });
    const warning = router.stdout.split('\n').find((l) => l.includes('TRUST_PROXY=true trusts every X-Forwarded-For hop'));
    expect(warning && JSON.parse(warning)).toMatchObject({ level: 'warn' });
    const quiet = await spawnRouter({ dataDir: dir, env: { TRUST_PROXY: '127.0.0.1' } });
    expect(quiet.stdout).not.toContain('TRUST_PROXY');
  });

  it('refuses to start when ADMIN_TOKEN is a webhook token, generated ones included (exit 78)', async () => {
    writeFileSync(join(dir, 'webhook-token'), 'generated-token-0123456789\n');
    const run = await cli(['serve'], { DATA_DIR: dir, PORT: '0', HOST: '127.0.0.1', ADMIN_TOKEN: 'generated-token-0123456789' });
    expect(run.code).toBe(78);
    expect(run.stderr).toMatch(/ADMIN_TOKEN must differ from every webhook token/);
    expect(run.stderr).not.toContain('generated-token-0123456789');
  });

  it('runs the router (also with no command), prints the webhook URL, and stops on SIGTERM with exit code 0', async () => {
    const { spawn } = await import('node:child_process');
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/index.ts', 'serve'], {
      cwd: REPO_ROOT,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', DATA_DIR: dir, PORT: '0', HOST: '127.0.0.1', LOG_EVENTS: 'false' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      await waitFor(
        () => stderr,
        (s) => /Webhook URL to register in HubEx:\n\s+http:\/\/127\.0\.0\.1:\d+\/hooks\/hubex\/\S{16,}/.test(s),
        { timeoutMs: 20_000, what: 'the banner' },
      );
      const url = /(http:\/\/127\.0\.0\.1:\d+\/hooks\/hubex\/\S+)/.exec(stderr)![1]!;
      const res = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{"EventID": 40, "AssetID": 7}',
      });
      expect(res.status).toBe(202);
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
  });
});
