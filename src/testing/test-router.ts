// Testing your handlers: a whole router in your test process (a real SQLite file in a temporary
// folder, the real route, the real dispatcher), with quick retries and captured logs.
//
//   import { createTestRouter } from 'hubex-router/testing';
//   const router = await createTestRouter({ handlers: [myHandler], hubex });
//   await router.send({ EventID: 12, TaskID: 5 });
//   const [delivery] = await router.settled();
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { type Env, loadConfig } from '../config.js';
import type { AnyHandlerDefinition } from '../delivery/define-handler.js';
import { checkHandler } from '../delivery/loader.js';
import type { DeliveryDetail, DeliveryId, DeliveryRecord } from '../store/contract.js';
import { createLogger } from '../observability/log.js';
import { buildApp } from '../server.js';
import { logCapture } from './log-capture.js';

export interface TestRouterOptions {
  readonly handlers: readonly AnyHandlerDefinition[];
  /** What handlers get as ctx.hubex: a client pointed at the fake HubEx, for example. */
  readonly hubex?: unknown;
  /** Over the defaults: RETRY_BASE_MS=10, RETRY_MAX_MS=100, MAX_ATTEMPTS=3, LOG_LEVEL=debug. */
  readonly env?: Env;
}

export interface TestRouter {
  readonly app: FastifyInstance;
  /** The JSON log lines written so far (handlers' ctx.log included). */
  readonly logs: Record<string, unknown>[];
  /** Posts a webhook body as HubEx would; resolves with the status and the answer. */
  send(
    body: unknown,
  ): Promise<{ status: number; body: { accepted?: number; duplicates?: number; events?: { id: string; name: string }[] } }>;
  /** Waits until no delivery is pending or running (bounded), and returns them all. */
  settled(timeoutMs?: number): Promise<DeliveryRecord[]>;
  /** One delivery with its event and the history of its attempts. */
  delivery(id: DeliveryId): Promise<DeliveryDetail | undefined>;
  close(): Promise<void>;
}

export async function createTestRouter(options: TestRouterOptions): Promise<TestRouter> {
  const dir = mkdtempSync(join(tmpdir(), 'hubex-router-test-'));
  const token = `test-${randomBytes(12).toString('hex')}`;
  const config = loadConfig({
    DATA_DIR: dir,
    WEBHOOK_TOKENS: token,
    RETRY_BASE_MS: '10',
    RETRY_MAX_MS: '100',
    MAX_ATTEMPTS: '3',
    LOG_LEVEL: 'debug',
    ...options.env,
  });
  const { sink, lines: logs } = logCapture();
  const handlers = options.handlers.map((h, i) => checkHandler(h, h.name ?? `handler-${i + 1}`));
  const app = await buildApp(config, { logger: createLogger(config.logLevel, sink), handlers, hubexFor: () => options.hubex });
  return {
    app,
    logs,
    async send(body) {
      const res = await app.inject({
        method: 'POST',
        url: `/hooks/hubex/${token}`,
        headers: { 'content-type': 'application/json' },
        payload: typeof body === 'string' ? body : JSON.stringify(body),
      });
      return { status: res.statusCode, body: res.json() };
    },
    async settled(timeoutMs = 10_000) {
      const until = Date.now() + timeoutMs;
      for (;;) {
        const counts = await app.store.counts();
        if (counts.pending === 0 && counts.running === 0 && (app.dispatcher?.active ?? 0) === 0) break;
        if (Date.now() > until) throw new Error(`deliveries still pending or running after ${timeoutMs} ms: ${JSON.stringify(counts)}`);
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      return app.store.list({ limit: 1000 });
    },
    delivery: (id) => app.store.show(id),
    async close() {
      await app.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
