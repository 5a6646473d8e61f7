// What a command works on: the settings from the environment and .env (as for serve), and the
// store they name.
import { type Config, loadConfig, readEnv } from '../config.js';
import { OperationError } from '../delivery/operations.js';
import { createLogger } from '../observability/log.js';
import type { Store } from '../store/contract.js';
import { describeStore, openStore } from '../store/open.js';

/** The settings from the environment and .env, read as serve reads them. */
export function readConfig(): Config {
  return loadConfig(readEnv());
}

/** The store, opened as a tool beside a running router. */
export function openToolStore(c: Config): Store {
  // A command beside a running router never merges event ids: that is the router's work.
  return openStore(c, { tool: true, log: createLogger('silent', undefined) });
}

/** Runs `fn` on a store that takes writes, closed after; an unhealthy one is an OperationError (exit 1). */
export async function withStore<T>(fn: (store: Store) => Promise<T>): Promise<T> {
  const c = readConfig();
  const store = openToolStore(c);
  try {
    const health = await store.health();
    if (!health.ok) throw new OperationError(`${health.reason} (${describeStore(c)})`);
    return await fn(store);
  } finally {
    await store.close();
  }
}
