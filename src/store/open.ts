// The back end QUEUE names: SQLite in DATA_DIR (one instance), or Redis at REDIS_URL (several).
// The app, the command line and `doctor` all open it here.
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import type { Backend, Store } from './contract.js';
import { createRedisBackend } from './redis/index.js';
import { createSqliteBackend } from './sqlite/index.js';

export interface OpenBackendOptions {
  /** The store's log. */
  readonly log: Logger;
  /** Its worker's log. Default the store's. */
  readonly workerLog?: Logger;
  /**
   * For a command beside a running router (SQLite): it never merges event ids into event_ids,
   * which is the router's work (its view of the newest events may be behind the router's).
   */
  readonly tool?: boolean;
}

export function openBackend(config: Config, o: OpenBackendOptions): Backend {
  const worker = {
    concurrency: config.handlerConcurrency,
    leaseMs: config.handlerLeaseMs,
    ...(o.workerLog ? { workerLog: o.workerLog } : {}),
  };
  if (config.queue === 'redis') {
    return createRedisBackend({
      url: config.redisUrl!,
      dedupWindowMs: config.dedupWindowMs,
      retentionMs: config.retentionDays * 86_400_000,
      log: o.log,
      maxAttempts: config.maxAttempts,
      ...worker,
    });
  }
  return createSqliteBackend({
    dataDir: config.dataDir,
    dedupWindowMs: config.dedupWindowMs,
    log: o.log,
    ...(o.tool ? { idMergeAt: Number.POSITIVE_INFINITY } : {}),
    ...worker,
  });
}

/** The store alone, for the command line: it reads and replays, and runs nothing. */
export function openStore(config: Config, o: OpenBackendOptions): Store {
  return openBackend(config, o).store;
}

/** Where the store is, for messages: never the Redis password. */
export function describeStore(config: Config): string {
  if (config.queue !== 'redis') return `DATA_DIR is ${config.dataDir}`;
  const u = new URL(config.redisUrl!);
  const db = /^\/\d+$/.test(u.pathname) ? u.pathname : '';
  return `REDIS_URL is ${u.protocol}//${u.host}${db}`;
}
