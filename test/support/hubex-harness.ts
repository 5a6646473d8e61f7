// The fake HubEx and clients of it, started before each test and closed after: what the client
// tests share. The clock is the tests' own: `h.clock += 60_000` moves every client's time.
import { afterEach, beforeEach } from 'vitest';
import { createHubexClient, type HubexClient, type HubexClientOptions } from '../../src/hubex/client.js';
import { createLogger } from '../../src/observability/log.js';
import { type FakeHubex, startFakeHubex } from '../../src/testing/fake-hubex.js';
import { LogCapture } from './test-app.js';

export interface HubexHarness {
  readonly hubex: FakeHubex;
  readonly logs: LogCapture;
  clock: number;
  /** A client of the fake with fast retries and the harness's clock; closed after the test. */
  client(options?: Partial<HubexClientOptions>): HubexClient;
  /** The calls the fake took on one path. */
  calls(path: string): FakeHubex['calls'];
  /** Replaces the fake with one started with these options. */
  restart(options: Parameters<typeof startFakeHubex>[0]): Promise<FakeHubex>;
}

export function useFakeHubex(o: { level?: 'debug' | 'trace'; setup?: (hubex: FakeHubex) => void } = {}): HubexHarness {
  let hubex: FakeHubex | undefined;
  let logs = new LogCapture();
  const clients: HubexClient[] = [];
  const h: HubexHarness = {
    get hubex() {
      if (!hubex) throw new Error('the fake HubEx runs only inside a test');
      return hubex;
    },
    get logs() {
      return logs;
    },
    clock: Date.now(),
    client(options = {}) {
      const c = createHubexClient({
        ...h.hubex.clientOptions,
        log: createLogger(o.level ?? 'debug', logs),
        retryBaseMs: 5,
        retryMaxMs: 20,
        now: () => h.clock,
        ...options,
      });
      clients.push(c);
      return c;
    },
    calls: (path) => h.hubex.calls.filter((c) => c.path === path),
    async restart(options) {
      await hubex?.close();
      hubex = await startFakeHubex(options);
      return hubex;
    },
  };
  beforeEach(async () => {
    hubex = await startFakeHubex();
    o.setup?.(hubex);
    logs = new LogCapture();
    h.clock = Date.now();
  });
  afterEach(async () => {
    for (const c of clients.splice(0)) c.close();
    await hubex?.close();
    hubex = undefined;
  });
  return h;
}
