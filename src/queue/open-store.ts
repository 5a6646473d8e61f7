// The store QUEUE names: SQLite in DATA_DIR (one instance), or Redis at REDIS_URL (several).
// The app, the command line and `doctor` all open it here.
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import type { HubexEvent } from '../events/event.js';
import type { DeliveryOps } from './deliveries.js';
import type { Inbox } from './inbox.js';
import { RedisStore } from './redis/redis-store.js';
import { SqliteInbox } from './sqlite/sqlite-inbox.js';

/** The inbox the route writes to, and the deliveries the tools read and replay. */
export type Store = Inbox & DeliveryOps;

export interface OpenStoreOptions {
  readonly log: Logger;
  /** The handlers an event fans out to; none for the command line, which only reads and replays. */
  readonly route?: (event: HubexEvent) => readonly string[];
  /**
   * For a command beside a running router (SQLite): it never merges event ids into event_ids,
   * which is the router's work (its view of the newest events may be behind the router's).
   */
  readonly tool?: boolean;
}

export function openStore(config: Config, o: OpenStoreOptions): SqliteInbox | RedisStore {
  if (config.queue === 'redis') {
    return new RedisStore({
      url: config.redisUrl!,
      dedupWindowMs: config.dedupWindowMs,
      retentionMs: config.retentionDays * 86_400_000,
      route: o.route,
      log: o.log,
    });
  }
  return new SqliteInbox({
    dataDir: config.dataDir,
    dedupWindowMs: config.dedupWindowMs,
    route: o.route,
    log: o.log,
    ...(o.tool ? { idMergeAt: Number.POSITIVE_INFINITY } : {}),
  });
}

/** Where the store is, for messages: never the Redis password. */
export function describeStore(config: Config): string {
  if (config.queue !== 'redis') return `DATA_DIR is ${config.dataDir}`;
  const u = new URL(config.redisUrl!);
  const db = /^\/\d+$/.test(u.pathname) ? u.pathname : '';
  return `REDIS_URL is ${u.protocol}//${u.host}${db}`;
}
