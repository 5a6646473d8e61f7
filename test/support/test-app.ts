// Builds the real app on a real SQLite file in a temporary folder, with its log captured.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { type Env, loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/observability/log.js';
import { type AppDeps, buildApp } from '../../src/server.js';

export const TOKEN = 'test-token-aaaaaaaaaaaaaaaa';
export const TOKEN2 = 'test-token-bbbbbbbbbbbbbbbb';

/** Collects every log line the app writes, parsed. */
export class LogCapture extends Writable {
  readonly lines: Record<string, unknown>[] = [];
  text = '';
  override _write(chunk: Buffer, _enc: string, done: () => void): void {
    const s = chunk.toString();
    this.text += s;
    for (const line of s.split('\n')) if (line.trim()) this.lines.push(JSON.parse(line));
    done();
  }
}

export function tempDir(prefix = 'hubex-router-test-'): { dir: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface TestApp {
  app: FastifyInstance;
  logs: LogCapture;
  dir: string;
  /** POSTs a JSON body (object, array or raw string) to the webhook with the token in the path. */
  post(body: unknown, opts?: { token?: string; headers?: Record<string, string>; url?: string }): Promise<LightMyRequestResponse>;
  close(): Promise<void>;
}

export async function makeApp(env: Env = {}, deps: AppDeps = {}, dir?: string): Promise<TestApp> {
  const tmp = dir ? undefined : tempDir();
  const dataDir = dir ?? tmp!.dir;
  const logs = new LogCapture();
  const config = loadConfig({ DATA_DIR: dataDir, WEBHOOK_TOKENS: `${TOKEN},${TOKEN2}`, LOG_LEVEL: 'info', ...env });
  const app = await buildApp(config, { logger: createLogger(config.logLevel, logs), ...deps });
  return {
    app,
    logs,
    dir: dataDir,
    post: (body, opts = {}) =>
      app.inject({
        method: 'POST',
        url: opts.url ?? `/hooks/hubex/${opts.token ?? TOKEN}`,
        headers: { 'content-type': 'application/json', ...opts.headers },
        payload: typeof body === 'string' ? body : JSON.stringify(body),
      }),
    close: async () => {
      await app.close();
      tmp?.remove();
    },
  };
}

/** A metric's value in the app's registry (`hubex_router_` and `name`), for the series whose labels include these; undefined when none. */
export async function metricValue(t: TestApp, name: string, labels: Record<string, string> = {}): Promise<number | undefined> {
  const got = await t.app.metrics.registry.getSingleMetric(`hubex_router_${name}`)?.get();
  return got?.values.find((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x))?.value;
}
