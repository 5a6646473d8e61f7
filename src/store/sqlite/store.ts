// The SQLite store, for one instance: events and their deliveries in one better-sqlite3 file in
// DATA_DIR (WAL, synchronous=FULL). The connection lives in a worker thread (./thread.ts), so that
// commits and fsyncs never block the event loop; the calls of one turn travel in one message and
// are committed in one transaction (group commit), and each promise settles after that commit.
// When the file cannot be written, calls reject with StoreUnavailableError (the route says 503)
// and the thread tries to open it again, instead of taking the process down.
import type { Logger } from 'pino';
import type {
  AcceptResult,
  Backlog,
  DeliveryCounts,
  DeliveryDetail,
  DeliveryFilter,
  DeliveryId,
  DeliveryRecord,
  EventDetail,
  EventFilter,
  EventPage,
  EventRecord,
  EventSearch,
  Flow,
  Health,
  IncomingEvent,
  PruneResult,
  ReplayResult,
  ReplaySelector,
  Store,
} from '../contract.js';
import { scopedFlowKey } from '../contract.js';
import type { ClaimedDelivery, ClaimStore, Settlement } from './claims.js';
import { ThreadLink } from './link.js';
import { fromWireAccepted, type WireAccepted, type WireEvent, type WireFlow } from './protocol.js';
import { DB_FILE } from './writer.js';

export { DB_FILE };

export interface SqliteStoreOptions {
  readonly dataDir: string;
  /** How long an identical body without a unique id of its own counts as a duplicate. Default 1 h. */
  readonly dedupWindowMs?: number;
  /** Ids waiting in memory that start a merge into event_ids (infinite: never, for the CLI), and ids per merge slice (writer.ts). */
  readonly idMergeAt?: number;
  readonly idMergeSlice?: number;
  /** Time without accepts after which the waiting ids are merged one slice after another. Default 100 ms. */
  readonly mergeIdleMs?: number;
  /** The least time between two attempts to open an unavailable store. Default 1 s. */
  readonly reopenIntervalMs?: number;
  readonly log: Logger;
  readonly now?: () => number;
}

export class SqliteStore implements Store, ClaimStore {
  readonly file: string;
  readonly backend = 'sqlite';
  readonly shared = false;
  readonly deliveryIds = 'number';
  readonly #link: ThreadLink;
  readonly #dueListeners: (() => void)[] = [];

  constructor(options: SqliteStoreOptions) {
    const reopenIntervalMs = options.reopenIntervalMs ?? 1000;
    this.file = `${options.dataDir.replace(/\/+$/, '')}/${DB_FILE}`;
    this.#link = new ThreadLink({
      workerData: {
        dataDir: options.dataDir,
        dedupWindowMs: options.dedupWindowMs ?? 3_600_000,
        reopenIntervalMs,
        ...(options.idMergeAt === undefined ? {} : { idMergeAt: options.idMergeAt }),
        ...(options.idMergeSlice === undefined ? {} : { idMergeSlice: options.idMergeSlice }),
        ...(options.mergeIdleMs === undefined ? {} : { mergeIdleMs: options.mergeIdleMs }),
      },
      reopenIntervalMs,
      file: this.file,
      log: options.log,
      now: options.now ?? Date.now,
    });
    // Open (and migrate) now, so that a store that cannot open is logged at start.
    void this.health();
  }

  async accept(incoming: readonly IncomingEvent[]): Promise<AcceptResult> {
    let fannedOut = false;
    const inputs = incoming.map(({ event: e, tenant, handlers, flows }): WireEvent => {
      if (handlers.length > 0) fannedOut = true;
      const entity = e.entity;
      const wireFlows = flows && flows.size > 0 ? [...flows].map(([h, f]) => wireFlow(h, tenant, f)) : undefined;
      const wire: [...WireEvent] = [
        e.id,
        tenant,
        e.idSource,
        e.eventID,
        e.name,
        entity?.type ?? null,
        entity === null ? null : String(entity.id),
        e.raw,
        handlers,
      ];
      if (wireFlows) wire.push(wireFlows);
      return wire;
    });
    const wire = (await this.#link.call('accept', [inputs])) as WireAccepted;
    const result = fromWireAccepted(
      wire,
      incoming.map((i) => i.event.name),
    );
    if (fannedOut && result.accepted > 0) this.#emitDue();
    return result;
  }

  async health(): Promise<Health> {
    try {
      await this.#link.call('probe', []);
      return { ok: true };
    } catch (err) {
      return { ok: false, reason: err instanceof Error ? err.message : String(err) };
    }
  }

  /** Counters since the worker started: transactions committed, events stored, duplicates answered. */
  async stats(): Promise<{ commits: number; accepted: number; duplicates: number }> {
    return (await this.#link.call('stats', [])) as { commits: number; accepted: number; duplicates: number };
  }

  claim(limit: number, leaseMs: number, exclude: readonly number[] = [], excludeHandlers: readonly string[] = []) {
    return this.#link.call('claim', [limit, leaseMs, exclude, excludeHandlers]) as Promise<{
      deliveries: ClaimedDelivery[];
      nextDueAt: number | null;
    }>;
  }

  async settle(settlements: readonly Settlement[]): Promise<void> {
    if (settlements.length > 0) await this.#link.call('settle', [settlements]);
  }

  async releaseClaims(ids: readonly number[]): Promise<void> {
    if (ids.length > 0) await this.#link.call('release', [ids]);
  }

  async extendLeases(ids: readonly number[], leaseMs: number): Promise<void> {
    if (ids.length > 0) await this.#link.call('extend', [ids, leaseMs]);
  }

  list(filter: DeliveryFilter = {}) {
    const afterId = filter.afterId === undefined ? undefined : (numericId(filter.afterId) ?? 0);
    return this.#link.call('list', [{ ...filter, afterId }]) as Promise<DeliveryRecord[]>;
  }

  async show(id: DeliveryId) {
    const n = numericId(id);
    return n === undefined ? undefined : ((await this.#link.call('show', [n])) as DeliveryDetail | undefined);
  }

  async replay(selector: ReplaySelector): Promise<ReplayResult> {
    let sel = selector;
    let notIds: DeliveryId[] = [];
    if ('ids' in selector) {
      notIds = selector.ids.filter((id) => numericId(id) === undefined);
      sel = { ids: selector.ids.map(numericId).filter((id): id is number => id !== undefined) };
    }
    const r = (await this.#link.call('replay', [sel])) as ReplayResult;
    const result = notIds.length ? { replayed: r.replayed, skipped: [...r.skipped, ...notIds] } : r;
    if (result.replayed.length > 0) this.#emitDue();
    return result;
  }

  backlog() {
    return this.#link.call('backlog', []) as Promise<Backlog>;
  }

  counts() {
    return this.#link.call('counts', []) as Promise<DeliveryCounts>;
  }

  listEvents(filter: EventFilter = {}) {
    return this.#link.call('listEvents', [filter]) as Promise<EventRecord[]>;
  }

  showEvent(id: string) {
    return this.#link.call('showEvent', [id]) as Promise<EventDetail | undefined>;
  }

  searchEvents(search: EventSearch) {
    return this.#link.call('searchEvents', [search]) as Promise<EventPage>;
  }

  prune(cutoff: number) {
    return this.#link.call('prune', [cutoff]) as Promise<PruneResult>;
  }

  async readCursor(tenant: string, name: string): Promise<string | null> {
    return (await this.#link.call('readCursor', [tenant, name])) as string | null;
  }

  async writeCursor(tenant: string, name: string, value: string): Promise<void> {
    await this.#link.call('writeCursor', [tenant, name, value]);
  }

  async lease(name: string, holder: string, ms: number): Promise<boolean> {
    return (await this.#link.call('lease', [name, holder, ms])) as boolean;
  }

  async releaseLease(name: string, holder: string): Promise<void> {
    await this.#link.call('releaseLease', [name, holder]);
  }

  async lastPushedTasks(tenant: string, taskIDs: readonly number[], sinceMs: number): Promise<Map<number, number>> {
    if (taskIDs.length === 0) return new Map();
    return new Map((await this.#link.call('lastPushedTasks', [tenant, taskIDs, sinceMs])) as [number, number][]);
  }

  /** Fault injection for tests: ends the store's thread as a crash would. */
  async [Symbol.for('hubex-router.test.crashStoreWorker')](): Promise<void> {
    await this.#link.crash();
  }

  onDue(listener: () => void): void {
    this.#dueListeners.push(listener);
  }

  /** Commits what was submitted (those calls are answered), then closes the store; later calls reject. */
  close(): Promise<void> {
    return this.#link.close();
  }

  #emitDue(): void {
    for (const l of this.#dueListeners) l();
  }
}

/** A delivery id as this store knows them: a whole number (or its digits); anything else names none. */
function numericId(id: DeliveryId): number | undefined {
  const n = typeof id === 'number' ? id : /^\d{1,15}$/.test(id) ? Number(id) : Number.NaN;
  return Number.isSafeInteger(n) && n >= 0 ? n : undefined;
}

const wireFlow = (handler: string, tenant: string, f: Flow): WireFlow =>
  f.kind === 'order'
    ? [handler, 'order', scopedFlowKey(tenant, f.key), 0, 0]
    : [handler, 'debounce', scopedFlowKey(tenant, f.key), f.periodMs, f.maxWaitMs];
