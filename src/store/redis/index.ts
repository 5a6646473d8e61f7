// The Redis back end: its store and its worker, for several instances on one Redis.
import type { Logger } from 'pino';
import type { Backend } from '../contract.js';
import { RedisDispatcher } from './dispatcher.js';
import { RedisStore, type RedisStoreOptions } from './store.js';

export { jobIdOf } from './jobs.js';
export { RedisStore, type RedisStoreOptions } from './store.js';

export interface RedisBackendOptions extends RedisStoreOptions {
  readonly concurrency: number;
  /** How long a job's lock holds without renewal. */
  readonly leaseMs: number;
  /** A job that stalls this many times (its instance died during each run) is failed. */
  readonly maxAttempts: number;
  /** The worker's log (the store logs to `log`). */
  readonly workerLog?: Logger;
}

export function createRedisBackend(o: RedisBackendOptions): Backend & { readonly store: RedisStore } {
  const store = new RedisStore(o);
  const worker = new RedisDispatcher({
    url: o.url,
    prefix: store.prefix,
    log: o.workerLog ?? o.log,
    concurrency: o.concurrency,
    leaseMs: o.leaseMs,
    maxAttempts: o.maxAttempts,
    ...(o.now ? { now: o.now } : {}),
  });
  return { store, worker };
}
