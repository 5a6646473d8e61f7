// The SQLite back end: its store and its worker, for one instance.
import type { Logger } from 'pino';
import type { Backend } from '../contract.js';
import { SqliteDispatcher } from './dispatcher.js';
import { SqliteStore, type SqliteStoreOptions } from './store.js';

export { DB_FILE, SqliteStore, type SqliteStoreOptions } from './store.js';

export interface SqliteBackendOptions extends SqliteStoreOptions {
  readonly concurrency: number;
  /** How long a claimed delivery stays leased without a heartbeat. */
  readonly leaseMs: number;
  /** The worker's log (the store logs to `log`). */
  readonly workerLog?: Logger;
}

export function createSqliteBackend(o: SqliteBackendOptions): Backend & { readonly store: SqliteStore } {
  const store = new SqliteStore(o);
  const worker = new SqliteDispatcher({
    store,
    log: o.workerLog ?? o.log,
    concurrency: o.concurrency,
    leaseMs: o.leaseMs,
    ...(o.now ? { now: o.now } : {}),
  });
  return { store, worker };
}
